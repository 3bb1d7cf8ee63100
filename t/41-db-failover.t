#!/usr/bin/perl
# OPSD_DB_URI listing several hosts (README "Configuration"), the client side
# of a cluster's failover: the stack's MariaDB is reached through TCP
# forwarders this test runs (each a port forwarding to the private server's
# socket), so killing a forwarder is a node going away. 1. A dead port listed
# first: fresh workers, the jobs process and opsctl connect to the next host
# and serve (db_failover logged, no password). 2. Two live addresses, the
# preferred one killed under a stream of reads and writes from two clients:
# no more requests fail than were in flight, each a 503 unavailable, every
# acknowledged write is stored. 3. It comes back and the other goes away: the
# connections move back. 4. Every host gone: 503 with Retry-After, then
# recovery when one returns. No password in the logs.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX qw(_exit);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time sleep);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $var = var_dir();
my $envf = "$var/opsd.env";
my $sock = "$var/run/mysqld.sock";
chomp(my $pw = slurp("$var/db-password") // '');
ok length $pw, 'script/server made a MariaDB password';
my $orig_uri = parse_env_file($envf)->{OPSD_DB_URI};
like $orig_uri, qr/\?socket=/, 'the stack runs on the private MariaDB\'s socket';
my $TAG = lc run_tag();

# ---- TCP forwarders to the private MariaDB's socket
my %forwarders;    # pid => 1, killed at the end whatever happens
END { kill 'KILL', map { -$_ } keys %forwarders if %forwarders }

sub pipe_conn($c) {
	my $u = IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM) or return;
	my $sel = IO::Select->new($c, $u);
	while (my @ready = $sel->can_read) {
		for my $from (@ready) {
			my $n = sysread $from, my $buf, 65536;
			return unless $n;
			my $to = $from == $c ? $u : $c;
			for (my $off = 0; $off < $n;) {
				my $w = syswrite $to, $buf, $n - $off, $off;
				return unless defined $w;
				$off += $w;
			}
		}
	}
}

# A forwarder listening on 127.0.0.1:$port (0: any free port), in its own
# process group with one process per connection: killing the group is the
# node and every connection to it going away at once.
sub forwarder($port = 0) {
	my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1', LocalPort => $port,
	    ReuseAddr => 1, Proto => 'tcp') or die "forwarder: listen on $port: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		setpgrp 0, 0;
		$SIG{CHLD} = 'IGNORE';
		eval {
			while (1) {
				my $c = $l->accept or next;
				my $k = fork;
				if (defined $k && $k == 0) {
					close $l;
					pipe_conn($c);
					_exit(0);
				}
				close $c;
			}
		};
		_exit(1);
	}
	my $f = { pid => $pid, port => $l->sockport };
	close $l;
	$forwarders{$pid} = 1;
	return $f;
}

sub kill_forwarder($f) {
	kill 'KILL', -$f->{pid};
	waitpid $f->{pid}, 0;
	delete $forwarders{ $f->{pid} };
}

# A port nothing listens on: bound and released.
sub free_port() {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
	    or die "listen: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

sub uri(@ports) { return "mysql://opsd:$pw\@" . join(',', map { "127.0.0.1:$_" } @ports) . '/opsd' }

# Log times are whole milliseconds: a line written right after $from may show
# a time just before it.
sub events_since($event, $from) {
	return grep { ($_->{event} // '') eq $event && (rfc3339_epoch($_->{time}) // 0) >= $from - 0.002 }
	    log_records('opsd.log');
}

sub all_ok($n, $path = '/__test/db') {
	my @st = map { http(GET => $path, fresh => 1)->{status} } 1 .. $n;
	return !grep { $_ != 200 } @st;
}

my $admin = admin_session();
my $org = create_org();
ok $org->{id}, 'an org for the writes';
my $contacts = "/orgs/$org->{id}/contacts";

# ---- 1. a dead port first
my $dead = free_port();
my $fa = forwarder();
ok $fa->{port}, "forwarder A on 127.0.0.1:$fa->{port}; nothing listens on 127.0.0.1:$dead";
my $t1 = time;
env_file_set(OPSD_DB_URI => uri($dead, $fa->{port}));
ok reload_opsd(), 'reload with OPSD_DB_URI listing the dead port first: every worker and the jobs process are new';
ok all_ok(10), '10 database requests in a row 200 (each worker skipped the dead host)';
is http(GET => '/readyz')->{status}, 200, '/readyz 200';
is tenant_create($admin, $org->{id}, 'contacts', { name => 'Failover 1', email => "fo1-$TAG\@example.test" })->{status},
    201, 'a write succeeds';
{
	my @fo = events_since('db_failover', $t1);
	cmp_ok scalar(@fo), '>=', 3, scalar(@fo) . ' db_failover lines (2 workers and the jobs process at least)';
	my @odd = grep { ($_->{node} // '') ne "127.0.0.1:$fa->{port}" || ($_->{from} // '') ne "127.0.0.1:$dead" } @fo;
	ok !@odd, "each names node 127.0.0.1:$fa->{port} and from 127.0.0.1:$dead" or diag explain \@odd;
	like $fo[0]{reason} // '', qr/127\.0\.0\.1:$dead/, 'the reason names the dead host';
}
{
	my ($rc, $out, $err) = opsctl('db', 'status');
	is $rc, 0, 'opsctl db status connects through the same list' or diag "$out$err";
	like $err, qr/db_failover/, 'opsctl logs its failover too';
}

# ---- 2. two live addresses; the preferred one goes away under load
my $fb = forwarder();
env_file_set(OPSD_DB_URI => uri($fa->{port}, $fb->{port}));
my $t2 = time;
ok reload_opsd(), "reload with A (127.0.0.1:$fa->{port}) then B (127.0.0.1:$fb->{port})";
ok all_ok(6), 'requests 200 on A';
is scalar(events_since('db_failover', $t2)), 0, 'nothing failed over while A serves';
my @loops = map {
	my $c = $_;
	request_loop(pause => 0.01, steps => [
		{ label => 'write', method => 'POST', path => $contacts, session => $admin,
		  json => sub ($i) { { name => "Failover $c-$i", email => "fo-$TAG-$c-$i\@example.test" } } },
		{ label => 'read', method => 'GET', path => "$contacts?limit=5", session => $admin },
		{ label => 'me', method => 'GET', path => '/auth/me', session => $admin },
	]);
} 1 .. 2;
sleep 0.5;    # requests flowing
my $t_kill = time;
kill_forwarder($fa);
ok 1, 'forwarder A killed with every connection through it';
my $resumed = wait_until(30, sub {
	(grep { $_->{ok} && $_->{label} eq 'write' } map { $_->rows_after($t_kill + 0.5) } @loops) >= 20;
}, 0.2);
ok $resumed, 'the clients\' writes go on after A went away';
my @sums = map { $_->stop } @loops;
my @rows = map { @{ $_->{rows} } } @sums;
my @failed = grep { !$_->{ok} } @rows;
note sprintf '%d requests, %d failed (%s)', scalar @rows, scalar @failed,
    join ' ', map { "$_->{label}:$_->{status}" } @failed;
ok !grep({ $_->{t} < $t_kill } @failed), 'nothing failed before the kill';
cmp_ok scalar(@failed), '<=', scalar(@loops), 'no more requests failed than were in flight (one per client)';
my @odd = grep { $_->{status} != 503 || $_->{body} !~ /"unavailable"/ } @failed;
ok !@odd, 'a failed request is a 503 unavailable' or diag join "\n", map { "$_->{label} $_->{status} $_->{body}" } @odd;
my @lost = map { acked_missing($_, 'write', 'contacts') } @sums;
is scalar(@lost), 0, 'every acknowledged write is in the database' or diag "lost: @lost";
{
	my @fo = events_since('db_failover', $t_kill);
	cmp_ok scalar(@fo), '>=', 1, scalar(@fo) . ' db_failover lines after the kill';
	note 'e.g. ' . join ' ', map { "$_=" . ($fo[0]{$_} // '') } qw(node from reason);
	ok !grep({ ($_->{node} // '') ne "127.0.0.1:$fb->{port}" || ($_->{from} // '') ne "127.0.0.1:$fa->{port}" } @fo),
	    'each from A to B';
	my ($n) = (http(GET => '/metrics')->{body} // '') =~ /^opsd_db_failovers_total (\d+)$/m;
	cmp_ok $n // 0, '>=', scalar(@fo), "opsd_db_failovers_total counts them ($n)";
}
ok all_ok(10), '10 more database requests in a row 200 on B';

# ---- 3. A back, B gone: the connections go back to A
$fa = forwarder($fa->{port});
my $t3 = time;
ok all_ok(6), 'A is back: requests 200';
is scalar(events_since('db_failover', $t3)), 0, 'the workers stay on B while it serves (no flapping)';
kill_forwarder($fb);
my $t3b = time;
ok wait_until(10, sub { all_ok(10) }, 0.2), 'B gone: requests 200 again (on A)';
ok !grep({ ($_->{node} // '') ne "127.0.0.1:$fa->{port}" } events_since('db_failover', $t3b)),
    'the failovers after B went away went to A';

# ---- 4. every host gone, then one back
kill_forwarder($fa);
{
	my $r = wait_until(10, sub { my $x = http(GET => '/__test/db'); $x->{status} == 503 ? $x : undef }, 0.2);
	check_error($r // {}, 503, 'unavailable', 'no host answers: a database request');
	like(($r // {})->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'with Retry-After');
	cmp_ok(($r // {})->{elapsed} // 99, '<', 3, 'answered fast (refused at once)');
	is http(GET => '/healthz')->{status}, 200, '/healthz 200 meanwhile';
}
$fb = forwarder($fb->{port});
ok wait_until(15, sub { all_ok(10) }, 0.2), 'B back: every worker serves again';

# ---- back to the socket
env_file_set(OPSD_DB_URI => $orig_uri);
ok reload_opsd(), 'reload with the original OPSD_DB_URI';
kill_forwarder($fb);
ok all_ok(6), 'requests 200 on the socket';
{
	my $all = join '', map { logs($_) } qw(opsd.log nginx-error.log);
	ok index($all, $pw) < 0, 'the MariaDB password appears nowhere in log/';
}

finish();
