#!/usr/bin/perl
# Drill (README "The process model and signals"): first a worker killed while
# it starts (MariaDB held with SIGSTOP) counts toward the crash-loop guard and
# one killed while running does not. Then workers killed with kill -9
# every 0.4 s while four clients read and write. Only the request in
# flight on a killed worker may fail, a kill storm never pauses the pool (no
# crash_loop), SIGHUP and SIGUSR1 to the master in the middle of it change
# nothing of that, and every acknowledged write is in the database. Then
# workers that crash (SIGABRT) ten times in a row: the crash-loop guard still
# pauses spawning, and the pool comes back by itself.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use List::Util qw(sum0);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $WORKERS = 4;
my $CLIENTS = 4;
start_stack(env => { OPSD_PM => 'static', OPSD_WORKERS => $WORKERS });
my $master = master_pid();
my $admin = admin_session();
my $org = create_org();
ok $org->{id}, 'an org for the writes';
my $contacts = "/orgs/$org->{id}/contacts";
my $TAG = lc run_tag();

sub events($name) { return grep { ($_->{event} // '') eq $name } log_records('opsd.log.1'), log_records('opsd.log') }
sub settled() { my @w = worker_pids(); return @w == $WORKERS ? \@w : undef }
# workers /status shows ready (idle or busy), still alive
sub ready_workers() {
	my %alive = map { $_ => 1 } worker_pids();
	my $st = http(GET => '/status?full')->{json} // {};
	my @r = grep { $alive{$_} } map { $_->{pid} } grep { ($_->{state} // '') =~ /^(idle|busy)$/ } @{ $st->{processes} // [] };
	return @r ? \@r : undef;
}
# opsd_worker_exits_total by cause, as /metrics shows it now
sub exits() {
	my $body = http(GET => '/metrics')->{body} // '';
	my %v = map { $_ => 0 } qw(crash error killed);
	$v{$1} = $2 while $body =~ /^opsd_worker_exits_total\{cause="(\w+)"\} (\d+)$/mg;
	return \%v;
}
sub all_ok($n, $name) {
	my @bad = grep { $_->{status} != 200 } map { http(GET => '/healthz') } 1 .. $n;
	ok !@bad, "$name: $n requests all 200" or diag join "\n", map { "$_->{status} $_->{body}" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
}

ok settled(), "$WORKERS workers at start";
my $before = exits();
is_deeply $before, { crash => 0, error => 0, killed => 0 }, 'opsd_worker_exits_total: every cause at 0';

# ---- a worker killed before it is ready counts toward the guard (one that
# cannot start loops as a crashing one does); one killed while serving does not
{
	my $mysqld = mysqld_pid();
	# a new worker opens its database connection before it is ready: with
	# MariaDB stopped (SIGSTOP) it stays in its start
	ok $mysqld && kill('STOP', $mysqld), 'MariaDB paused with SIGSTOP';
	my %old = map { $_ => 1 } worker_pids();
	my ($first) = sort { $a <=> $b } keys %old;
	ok kill('KILL', $first), "kill -9 a running worker ($first)";
	my $new = wait_until(5, sub { my ($n) = grep { !$old{$_} } worker_pids(); $n });
	ok $new, 'a replacement is forked' . ($new ? " ($new)" : '');
	sleep 0.3;
	ok $new && kill('KILL', $new), 'kill -9 the replacement while it starts';
	kill 'CONT', $mysqld;
	my %ev = map { my $p = $_; ($p => wait_until(5, sub { my @e = grep { ($_->{childPid} // 0) == $p } events('child_died'); $e[0] })) } grep { $_ } $first, $new;
	my $running = $ev{$first} // {};
	my $starting = $ev{ $new // 0 } // {};
	is_deeply [@$running{qw(cause ready countsAsCrash)}], ['killed', JSON::PP::true, JSON::PP::false],
	    'the running one: cause killed, ready, not counted' or diag explain $running;
	is_deeply [@$starting{qw(cause ready countsAsCrash)}], ['killed', JSON::PP::false, JSON::PP::true],
	    'the starting one: cause killed, not ready, counted as a crash' or diag explain $starting;
	is $starting->{requests}, 0, 'it had served no request';
	ok wait_until(15, \&settled), 'the pool is whole again once MariaDB runs';
	all_ok(10, 'after MariaDB resumed');
	$before = exits();
	is_deeply $before, { crash => 0, error => 0, killed => 2 }, 'opsd_worker_exits_total{cause="killed"} 2';
}

# ---- kill -9 storm under load, SIGHUP and SIGUSR1 in the middle
{
	my @loops = map {
		my $c = $_;
		request_loop(pause => 0, steps => [
			{ label => 'health', method => 'GET', path => '/healthz' },
			# a request that lasts: most kills find their worker busy
			{ label => 'slow', method => 'GET', path => '/__test/sleep?ms=40' },
			{ label => 'me', method => 'GET', path => '/auth/me', session => $admin },
			{ label => 'write', method => 'POST', path => $contacts, session => $admin,
			  json => sub ($i) { { name => "Drill $c-$i", email => "drill-$TAG-$c-$i\@example.test" } } },
		]);
	} 1 .. $CLIENTS;
	my (@kills, %signalled);
	my $t0 = time;
	for my $k (1 .. 20) {
		# a ready worker (idle or busy in /status): one killed while it still
		# starts counts toward the guard by design (the case above), and on a
		# loaded machine a replacement can take a while to start
		my @w = @{ wait_until(3, \&ready_workers) || [] };
		my $victim = $w[int rand @w];
		push @kills, $victim if $victim && kill 'KILL', $victim;
		if ($k == 7) { $signalled{HUP} = kill 'HUP', $master }
		if ($k == 14) { $signalled{USR1} = kill 'USR1', $master }
		sleep 0.4;
	}
	my $storm = time - $t0;
	my $t_last = time;
	my $back = wait_until(15, \&settled);
	my $recover = time - $t_last;
	sleep 1;    # a second of service after the storm
	my @sums = map { $_->stop } @loops;
	my @rows = map { @{ $_->{rows} } } @sums;
	my @failed = grep { !$_->{ok} } @rows;
	my $n = scalar @kills;

	note sprintf 'storm: %d kills in %.1fs, %d requests from %d clients, %d failed (%s), pool back %.2fs after the last kill',
	    $n, $storm, scalar @rows, $CLIENTS, scalar @failed, join(' ', map { $_->{status} } @failed), $recover;
	cmp_ok $n, '>=', 18, "$n workers killed in ${\ sprintf '%.1f', $storm} s (more than the guard's 10 in 10 s)";
	ok $signalled{HUP} && $signalled{USR1}, 'SIGHUP and SIGUSR1 sent to the master during the storm';
	cmp_ok scalar(@rows), '>=', 100, 'the clients kept sending (' . scalar(@rows) . ' requests)';
	# A worker serves one request at a time: a kill fails at most the one it holds.
	cmp_ok scalar(@failed), '<=', $n, "failed requests (${\ scalar @failed}) <= kills ($n): only those in flight";
	my @odd = grep { $_->{status} != 502 } @failed;
	ok !@odd, 'every failure is the 502 nginx answers for a worker that died mid-request'
	    or diag join "\n", map { "$_->{label} $_->{status} $_->{body}" } @odd;
	my @lost = map { acked_missing($_, 'write', 'contacts') } @sums;
	my $acked = grep { $_->{label} eq 'write' && $_->{ok} } @rows;
	cmp_ok $acked, '>=', 10, "$acked writes acknowledged during the storm";
	is scalar(@lost), 0, 'every acknowledged write is in the database' or diag "lost: @lost";

	ok $back, sprintf('the pool is back to %d workers %.2fs after the last kill', $WORKERS, $recover);
	is master_pid(), $master, 'the master is unchanged';
	my @pause = events('crash_loop');
	ok !@pause, 'no crash_loop: the kills never paused spawning' or diag explain \@pause;
	my %killed = map { $_ => 1 } @kills;
	my @died = grep { $killed{ $_->{childPid} // 0 } } events('child_died');
	cmp_ok scalar(@died), '>=', 1, scalar(@died) . ' child_died lines for the killed workers (draining ones are expected to go)';
	my @wrong = grep { ($_->{cause} // '') ne 'killed' || ($_->{signal} // 0) != 9 } @died;
	ok !@wrong, 'each says cause "killed", signal 9' or diag explain \@wrong;
	my $young = grep { $_->{countsAsCrash} } @died;
	note "$young of them died before they were ready (counted by the guard)";
	cmp_ok $young, '<', 10, 'fewer than the guard\'s ten counted as crashes';
	ok scalar(events('reload')) >= 1, 'the reload is logged';
	ok scalar(events('log_reopened')) >= 1, 'the log reopening is logged';
	my $after = exits();
	is $after->{crash} + $after->{error}, 0, 'opsd_worker_exits_total: no crash, no error';
	is $after->{killed} - $before->{killed}, scalar(@died), "opsd_worker_exits_total{cause=\"killed\"} grew by the child_died lines";
	all_ok(20, 'after the storm');
}

# ---- a crash loop: workers abort, ten within seconds
{
	my $t_before = exits();
	my (%aborted, $t0);
	$t0 = time;
	while (keys(%aborted) < 10 && time - $t0 < 20) {
		my @w = grep { !$aborted{$_} } worker_pids();
		if (!@w) { sleep 0.05; next }
		for my $pid (@w) {
			last if keys(%aborted) >= 10;
			# no core file, whatever the test's own limit is
			run_cmd(cmd => ['prlimit', "--pid=$pid", '--core=0:0'], timeout => 10, tag => 'prlimit');
			$aborted{$pid} = 1 if kill 'ABRT', $pid;
		}
	}
	my $dt = time - $t0;
	is scalar(keys %aborted), 10, sprintf('10 workers aborted in %.1fs', $dt);
	my $pause = wait_until(5, sub { my @e = events('crash_loop'); @e ? $e[-1] : undef });
	ok $pause, 'the master logs crash_loop and pauses spawning' or diag logs('opsd.log');
	my $t1 = time;
	my $back = wait_until(30, \&settled);
	ok $back, sprintf('the pool comes back by itself after the pause (%.1fs)', time - $t1);
	my @died = grep { $aborted{ $_->{childPid} // 0 } } events('child_died');
	is scalar(@died), 10, 'a child_died line for each';
	my @wrong = grep { ($_->{cause} // '') ne 'crash' || !$_->{countsAsCrash} || ($_->{signal} // 0) != 6 } @died;
	ok !@wrong, 'each says cause "crash", signal 6, countsAsCrash' or diag explain \@wrong;
	my $x = exits();
	is $x->{crash} - $t_before->{crash}, 10, 'opsd_worker_exits_total{cause="crash"} counts the ten';
	is master_pid(), $master, 'the master is unchanged';
	all_ok(20, 'after the crash loop');
}

finish();
