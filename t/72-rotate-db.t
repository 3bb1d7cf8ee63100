#!/usr/bin/perl
# The MariaDB password of OPSD_DB_URI rotated on a live stack, with the commands
# of README "Runbook 7" step 3, under a steady loop of reads and writes (session
# checks, tenant records created and listed, test messages queued) while
# OPSD_MAX_REQUESTS recycles a worker every few requests, so fresh connections
# are made all along: 1. the env file gets the new password and the old one as
# OPSD_DB_URI_PREVIOUS, SIGHUP (fresh connections are refused the new one and
# fall back, logged as db_previous_credentials; opsctl too); 2. ALTER USER
# (fresh connections use the new one at once); 3. OPSD_DB_URI_PREVIOUS removed,
# SIGHUP. Then: no request of the loop failed, the sessions opened with the old
# password are gone, a fresh client is refused the old password and let in
# with the new one, the recycled workers and the jobs process (every queued
# message delivered once) work on, no password in the logs. Also: a previous
# URI naming another database is refused at reload (old configuration kept),
# and opsctl with a password MariaDB does not know yet fails without
# OPSD_DB_URI_PREVIOUS and works with it.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $TAG = run_tag();
my $peer = start_smtp_peer(no_starttls => 1);
start_stack(env => { OPSD_WORKERS => 3, OPSD_MAX_REQUESTS => 15,
    %{ smtp_env($peer, undef, SMTP_SECURE => 'none') } });

my $var = var_dir();
my $envf = "$var/opsd.env";
my $sock = "$var/run/mysqld.sock";
chomp(my $old_pw = slurp("$var/db-password") // '');
ok length $old_pw, 'script/server made a MariaDB password ($OPSD_VAR/db-password)';
my $new_pw = sensitive('the new MariaDB password', join '', map { sprintf '%02x', int rand 256 } 1 .. 24);

# README "Runbook 7" step 3, the MariaDB password, as a script/server stack runs it
my %STEP = (
	1 => q{perl -i -pe 'print "OPSD_DB_URI_PREVIOUS=$1\n" if /^OPSD_DB_URI=(.*)/;
    s{^((?:OPSD_DB_URI|OPSD_DEDICATED_DB_URI)=\W?mysql://opsd:)[^\@]*}{$1$ENV{NEW}}' "$ENVF"
reload},
	2 => q{printf "ALTER USER 'opsd'@'localhost' IDENTIFIED BY '%s';\n" "$NEW" |
    mariadb --no-defaults --socket="$OPSD_VAR/run/mysqld.sock" -uroot
printf '%s\n' "$NEW" > "$OPSD_VAR/db-password"},
	3 => q{perl -i -pe 's/^OPSD_DB_URI_PREVIOUS=.*/OPSD_DB_URI_PREVIOUS=/' "$ENVF"
reload},
);
sub step($n) {
	my $sh = qq{reload() { kill -HUP "\$(cat "\$OPSD_VAR/run/opsd.pid")"; }\n$STEP{$n}};
	my $r = run_cmd(cmd => ['bash', '-euo', 'pipefail', '-c', $sh], tag => "step$n",
	    env => { %ENV, NEW => $new_pw, ENVF => $envf, OPSD_VAR => $var });
	is $r->{rc}, 0, "step $n runs" or diag $r->{err};
}
# Log times are whole milliseconds: a line written right after $from may show
# a time just before it.
sub events_between($event, $from, $to = 9e9) {
	return grep { ($_->{event} // '') eq $event && (rfc3339_epoch($_->{time}) // 0) >= $from - 0.002
	    && (rfc3339_epoch($_->{time}) // 0) < $to } log_records('opsd.log');
}
sub opsd_sessions() {
	my $out = mysql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'opsd'") // '';
	return grep { /^\d+$/ } split /\n/, $out;
}
sub client_with($pw) {
	return run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uopsd', '-N', '-B', 'opsd',
	    '-e', 'SELECT 1'], env => { %ENV, MYSQL_PWD => $pw }, tag => 'client');
}
sub uri_pw($uri) { return (($uri // '') =~ m{^mysql://[^:]*:([^@]*)@})[0] // '' }
# Waits (never a fixed sleep) until the loop has had n answers since $from and,
# when asked, every step n answers in all; the counts are checked at the end.
my $loop;
sub loop_ran($from, $n, $each = 0) {
	return wait_until(90, sub {
		my @rows = $loop->rows;
		my %by;
		$by{ $_->{label} }++ for @rows;
		return 0 if $each && grep { ($by{$_} // 0) < $each } 'read session', 'write contact', 'read contacts', 'queue mail';
		return $n <= grep { $_->{t} > $from } @rows;
	}, 0.2);
}

my $admin = admin_session();
my $org = create_org();
ok $org->{id}, 'an org for the loop to write in';
$loop = request_loop(pause => 0.01, steps => [
	{ label => 'read session', method => 'GET', path => '/auth/me', session => $admin },
	{ label => 'write contact', method => 'POST', path => "/orgs/$org->{id}/contacts", session => $admin,
	  json => sub ($i) { { name => "Rotation $i", email => "rot-$TAG-$i\@example.test" } } },
	{ label => 'read contacts', method => 'GET', path => "/orgs/$org->{id}/contacts?limit=5", session => $admin },
	{ label => 'queue mail', method => 'POST', path => '/email/test', session => $admin, every => 4,
	  json => sub ($i) { { to => "rot-$TAG-$i\@allowed.test" } } },
]);
ok scalar($loop->rows), 'the request loop runs';
loop_ran(0, 10);

# ---- 1. the new password in the env file, the old one as OPSD_DB_URI_PREVIOUS, SIGHUP
my $t1 = time;
ok reload_opsd(by => sub { step(1) }), 'step 1: the reload replaced every worker and the jobs process';
{
	my $env = parse_env_file($envf);
	is uri_pw($env->{OPSD_DB_URI}), $new_pw, 'opsd.env: OPSD_DB_URI has the new password';
	is uri_pw($env->{OPSD_DB_URI_PREVIOUS}), $old_pw, 'opsd.env: OPSD_DB_URI_PREVIOUS has the old one';
	is uri_pw($env->{OPSD_DEDICATED_DB_URI}), $new_pw, 'opsd.env: OPSD_DEDICATED_DB_URI (the same user) too';
	is((stat $envf)[2] & 0777, 0600, 'opsd.env is still 0600');
}
ok wait_until(30, sub { events_between('db_previous_credentials', $t1) }),
    'MariaDB refuses the new password for now: fresh connections use OPSD_DB_URI_PREVIOUS (logged)';
{
	my ($rc, $out, $err) = opsctl('db', 'status');
	is $rc, 0, 'opsctl db status works meanwhile (it falls back too)' or diag "$out$err";
}
loop_ran($t1, 10);

# ---- 2. ALTER USER: the server gets the new password
my @old_sessions = opsd_sessions();
ok scalar(@old_sessions), scalar(@old_sessions) . ' MariaDB sessions of opsd opened before ALTER USER';
my $t2 = time;
step(2);
# a connection begun before ALTER USER (step 2 took its time) may still fall back: a
# second's margin after the step returned
my $altered = time + 1;
is client_with($old_pw)->{rc} != 0 ? 1 : 0, 1, 'right after ALTER USER a fresh client is refused the old password';
ok wait_until(60, sub { events_between('worker_recycle', $altered) >= 3 }, 0.1),
    'workers were recycled (fresh connections) since ALTER USER';
ok !events_between('db_previous_credentials', $altered),
    'after ALTER USER fresh connections (recycled workers) use the new password at the first try';
loop_ran($t2, 10);

# ---- 3. OPSD_DB_URI_PREVIOUS removed, SIGHUP
my $t3 = time;
ok reload_opsd(by => sub { step(3) }), 'step 3: the reload replaced every worker and the jobs process';
is parse_env_file($envf)->{OPSD_DB_URI_PREVIOUS}, '', 'opsd.env has OPSD_DB_URI_PREVIOUS empty';
ok wait_until(30, sub { my %now = map { $_ => 1 } opsd_sessions(); !grep { $now{$_} } @old_sessions }, 0.2),
    'every MariaDB session opened before ALTER USER has gone (old connections drained)';
loop_ran($t3, 10, 5);
my $sum = $loop->stop;

is scalar(@{ $sum->{failed} }), 0, "no request of the loop failed ($sum->{total} requests)"
    or diag join "\n", @{ $sum->{failed} }[0 .. ($#{ $sum->{failed} } > 19 ? 19 : $#{ $sum->{failed} })];
for my $l ('read session', 'write contact', 'read contacts', 'queue mail') {
	cmp_ok $sum->{by_label}{$l} // 0, '>=', 5, "the loop did '$l' ($sum->{by_label}{$l} times)";
}
for ([1, $t1, $t2], [2, $t2, $t3], [3, $t3, 9e9]) {
	my ($n, $from, $to) = @$_;
	my $k = grep { $_->{t} >= $from && $_->{t} < $to } @{ $sum->{rows} };
	cmp_ok $k, '>=', 10, "$k requests answered between step $n and the next";
}

# ---- afterwards: who gets in, opsd and its jobs process
{
	my $r = client_with($old_pw);
	isnt $r->{rc}, 0, 'a fresh mariadb client is refused the old password';
	like $r->{err}, qr/Access denied|1045/, '(access denied)';
	my $n = client_with($new_pw);
	is $n->{rc}, 0, 'and let in with the new one' or diag $n->{err};
}
{
	my @w0 = worker_pids();
	my @r = map { http(GET => '/auth/me', session => $admin) } 1 .. 60;
	is scalar(grep { $_->{status} == 200 } @r), 60, '60 more requests after the rotation: all 200';
	my %w0 = map { $_ => 1 } @w0;
	ok wait_until(30, sub { grep { !$w0{$_} } worker_pids() }), 'workers recycled after the rotation serve (new connections)';
	is http(GET => '/readyz')->{status}, 200, '/readyz 200';
	is tenant_create($admin, $org->{id}, 'contacts', { name => 'After', email => "after-$TAG\@example.test" })->{status},
	    201, 'a write after the rotation';
}
{
	my @ids = map { $_->{id} } grep { $_->{label} eq 'queue mail' && $_->{id} } @{ $sum->{rows} };
	my @tos = map { "rot-$TAG-$_->{round}\@allowed.test" } grep { $_->{label} eq 'queue mail' } @{ $sum->{rows} };
	cmp_ok scalar(@ids), '>=', 5, scalar(@ids) . ' messages queued during the rotation';
	my $all_sent = wait_until(60, sub { !grep { (outbox_row($_) // {})->{status} ne 'sent' } @ids }, 0.25);
	ok $all_sent, 'the jobs process delivered every message queued before, during and after the rotation'
	    or diag join ' ', map { (outbox_row($_) // {})->{status} // 'none' } @ids;
	my @twice = grep { scalar($peer->messages_to($_)) != 1 } @tos;
	is scalar(@twice), 0, 'each arrived exactly once at the SMTP peer' or diag "@twice";
}

# ---- a previous URI for another database is refused at reload; the running configuration stays
{
	my $before = scalar events_between('reload', 0);
	my $bad = "mysql://opsd:$old_pw\@localhost/elsewhere?socket=$sock";
	env_file_set(OPSD_DB_URI_PREVIOUS => $bad);
	my $t = time;
	kill 'HUP', master_pid();
	ok wait_until(30, sub { events_between('reload_refused', $t) }), 'OPSD_DB_URI_PREVIOUS naming another database: reload refused';
	my @lines = grep { ($_->{msg} // '') =~ /OPSD_DB_URI_PREVIOUS/ } events_between('config_error', $t);
	is scalar(@lines), 1, 'one config_error line names OPSD_DB_URI_PREVIOUS';
	like $lines[0]{msg} // '', qr/same server and database/, 'it says why';
	is scalar(events_between('reload', 0)), $before, 'no new generation';
	is http(GET => '/auth/me', session => $admin)->{status}, 200, 'opsd serves on with the running configuration';
	env_file_set(OPSD_DB_URI_PREVIOUS => undef);
}

# ---- opsctl: a password MariaDB does not know yet fails alone, works with the previous one
{
	my $env = parse_env_file($envf);
	my $next = sensitive('a password MariaDB does not know', "next$TAG" . int rand 1e6);
	(my $uri = $env->{OPSD_DB_URI}) =~ s{^(mysql://opsd:)[^@]*}{$1$next};
	my $alt = "$var/../alt.env";
	for my $with_previous (0, 1) {
		open my $fh, '>', $alt or die "$alt: $!";
		chmod 0600, $alt;
		print {$fh} map { "$_='$env->{$_}'\n" } grep { $_ ne 'OPSD_DB_URI' } sort keys %$env;
		print {$fh} "OPSD_DB_URI='$uri'\n";
		print {$fh} "OPSD_DB_URI_PREVIOUS='$env->{OPSD_DB_URI}'\n" if $with_previous;
		close $fh;
		my ($rc, $out, $err) = opsctl({ env => { OPSD_ENV_FILE => $alt } }, 'db', 'status');
		if ($with_previous) {
			is $rc, 0, 'opsctl with OPSD_DB_URI_PREVIOUS set: connected with the previous password' or diag "$out$err";
			like $err, qr/db_previous_credentials/, 'and it said so';
		} else {
			is $rc, 1, 'opsctl with a password MariaDB does not know (no OPSD_DB_URI_PREVIOUS): exit 1';
			like $err, qr/Access denied/, 'access denied';
		}
		unlike "$out$err", qr/\Q$next\E|\Q$new_pw\E|\Q$old_pw\E/, 'no password in its output';
	}
	unlink $alt;
}

{
	my $all = join '', map { logs($_) } qw(opsd.log nginx-error.log);
	ok index($all, $new_pw) < 0 && index($all, $old_pw) < 0, 'neither password appears in log/';
}

finish();
