#!/usr/bin/perl
# The worker pool (README "The process model and signals"): process titles
# and privilege drop, kill -9 of a worker and of the jobs process, recycling after OPSD_MAX_REQUESTS, the
# master's request timeout, the slow log, SIGUSR1 log reopening, SIGHUP
# reload (quiet and under 2,000 requests), SIGQUIT graceful stop.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $WORKERS = 3;
my $MAX_REQ = 20;
start_stack(env => { OPSD_PM => 'static', OPSD_WORKERS => $WORKERS, OPSD_MAX_REQUESTS => $MAX_REQ,
    OPSD_REQUEST_TIMEOUT => 2 });
my $master = master_pid();
ok $master, "run/opsd.pid names the master ($master)";

sub settled() { my @w = worker_pids(); return @w == $WORKERS ? \@w : undef }
# both files: a failed log rotation (SIGUSR1 below) must not hide later events
sub events($name) { return grep { ($_->{event} // '') eq $name } log_records('opsd.log.1'), log_records('opsd.log') }
sub all_ok($n, $name) {
	my @bad = grep { $_->{status} != 200 } map { http(GET => '/healthz') } 1 .. $n;
	ok !@bad, "$name: $n requests all 200" or diag join "\n", map { "$_->{status} $_->{body}" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
}

# ---- process titles and privilege drop
{
	ok settled(), "$WORKERS workers at start";
	like proc_title($master) // '', qr/^opsd: master\b/, 'the master is titled "opsd: master"';
	my @kids = children_of($master);
	my @workers = grep { (proc_title($_) // '') =~ /^opsd: worker\b/ } @kids;
	my @jobs = grep { (proc_title($_) // '') =~ /^opsd: jobs\b/ } @kids;
	my @nginx = grep { (proc_title($_) // '') =~ /^opsd: nginx\b/ } @kids;
	is scalar(@workers), $WORKERS, "$WORKERS children titled \"opsd: worker\"";
	is scalar(@jobs), 1, 'one child titled "opsd: jobs"';
	is scalar(@nginx), 1, 'one child titled "opsd: nginx" (it applies the blocklist to nginx)';
	is scalar(@kids), $WORKERS + 2, 'the master has no other children'
	    or diag join "\n", map { "$_: " . (proc_title($_) // '?') } @kids;
	# the one process that writes nginx's include and signals nginx keeps the master's user
	is_deeply proc_uids($nginx[0] // 0)->{uid}, [(0) x 4], 'opsd: nginx keeps root, as the master';

	my ($wuid, $wgid) = (getpwnam('www-data'))[2, 3];
	ok defined $wuid, 'www-data exists';
	is proc_uids($master)->{uid}[1], 0, 'the master keeps root (we started it as root)';
	for my $pid (@workers, @jobs) {
		my $u = proc_uids($pid);
		my $t = proc_title($pid);
		is_deeply $u->{uid}, [($wuid) x 4], "$t $pid: real/effective/saved/fs uid are www-data";
		is_deeply $u->{gid}, [($wgid) x 4], "$t $pid: all gids are www-data's";
		ok !grep({ $_ == 0 } @{ $u->{groups} }), "$t $pid: no root supplementary group";
	}
}

# ---- kill -9 of a worker
{
	my @w0 = @{ settled() // [worker_pids()] };
	my $victim = $w0[0];
	my $t0 = time;
	ok kill('KILL', $victim), "kill -9 worker $victim";
	my $replaced = wait_until(3, sub { my $w = settled(); $w && !grep { $_ == $victim } @$w });
	my $dt = time - $t0;
	ok $replaced, sprintf('a new worker replaces the killed one (%.2fs)', $dt)
	    or diag 'workers now: ' . join(' ', worker_pids());
	# at once, at the master's next tick; 3 s leaves room for a loaded CI machine
	cmp_ok $dt, '<', 3, 'replaced within a few seconds (no crash-loop pause)';
	all_ok(20, 'after kill -9');
	ok wait_until(2, sub { grep { ($_->{childPid} // 0) == $victim } events('child_died') }),
	    'the log has child_died for the killed worker';
	is master_pid(), $master, 'the master is unchanged';
}

# ---- kill -9 of the jobs process
{
	my $jobs = jobs_pid();
	ok $jobs, "a jobs process runs ($jobs)";
	kill 'KILL', $jobs if $jobs;
	my $new = wait_until(3, sub { my $j = jobs_pid(); $j && $j != $jobs ? $j : undef });
	ok $new, 'a new jobs process replaces the killed one' . ($new ? " ($new)" : '');
	like proc_title($new // 0) // '', qr/^opsd: jobs/, 'it is titled "opsd: jobs"';
	ok settled(), "still $WORKERS workers";
}

# ---- recycling after OPSD_MAX_REQUESTS
{
	wait_until(2, \&settled);
	my %before = map { $_ => 1 } worker_pids();
	my $n = $WORKERS * $MAX_REQ + 10;
	all_ok($n, 'recycling run');
	ok wait_until(3, sub { my $w = settled(); $w && grep { !$before{$_} } @$w }),
	    "after $n requests the worker pids changed (recycled)";
	my @gone = grep { !pid_alive($_) } keys %before;
	ok scalar(@gone) >= 1, 'at least one old worker exited: ' . join(' ', @gone);
	ok wait_until(2, sub { scalar(events('worker_recycle')) >= 1 }), 'the log has worker_recycle';
	my %died = map { ($_->{childPid} // 0) => 1 } events('child_died');
	ok !grep({ $died{$_} } @gone), 'a recycled worker is not reported as died';

	my $ok = wait_until(3, sub {
		my $j = http(GET => '/status?full')->{json} // {};
		my @p = sort { $a <=> $b } map { $_->{pid} } @{ $j->{processes} // [] };
		return "@p" eq join(' ', worker_pids()) ? $j : undef;
	});
	ok $ok, '/status?full lists the new worker pids';
	my @over = grep { ($_->{requests} // 0) > $MAX_REQ } @{ ($ok // {})->{processes} // [] };
	ok !@over, "no worker has served more than $MAX_REQ requests" or diag explain \@over;
	ok !grep({ $before{$_->{pid}} && !pid_alive($_->{pid}) } @{ ($ok // {})->{processes} // [] }),
	    '/status does not list exited workers';
}

# ---- a stuck request is killed by the master at OPSD_REQUEST_TIMEOUT
{
	my $w0 = wait_until(2, \&settled) // [];
	my $r = http(GET => '/__test/sleep?ms=10000', fresh => 1, timeout => 30);
	check_error($r, [502, 504], ['bad_gateway', 'gateway_timeout'], 'a request stuck past the timeout');
	cmp_ok $r->{elapsed}, '<', 8, sprintf('it is cut well before 10 s (%.2fs)', $r->{elapsed});
	cmp_ok $r->{elapsed}, '>=', 1.5, 'and not before the 2 s timeout';
	my ($line) = wait_until(3, sub { my @e = events('request_timeout'); @e ? [@e] : undef }) // [];
	my $ev = ref $line eq 'ARRAY' ? $line->[-1] : undef;
	ok $ev, 'the log has a request_timeout line' or diag logs('opsd.log');
	$ev //= {};
	is $ev->{path}, '/__test/sleep', 'request_timeout names the path';
	is $ev->{timedOutRequestId}, $r->{headers}{'x-request-id'}, 'request_timeout names the request id'
	    if $r->{headers}{'x-request-id'};
	my $killed = $ev->{workerPid} // 0;
	ok((grep { $_ == $killed } @$w0), "the killed worker ($killed) was one of the pool");
	ok wait_until(2, sub { my $w = settled(); $w && !grep { $_ == $killed } @$w }),
	    'the killed worker is replaced';
	# others may have left by recycling (a clean exit); none may have died
	my %w0 = map { $_ => 1 } @$w0;
	my @died = grep { $w0{ $_->{childPid} // 0 } } events('child_died');
	ok !@died, 'no other worker died' or diag explain \@died;
	all_ok(10, 'after the timeout');
	my $st = http(GET => '/status')->{json} // {};
	cmp_ok $st->{requestTimeouts} // 0, '>=', 1, '/status counts the timeout' if exists $st->{requestTimeouts};
}

# ---- slow log
{
	my $r = http(GET => '/__test/sleep?ms=1200', timeout => 10);
	is $r->{status}, 200, 'a 1.2 s request (below the 2 s timeout) succeeds' or diag $r->{body};
	my $rid = $r->{headers}{'x-request-id'} // 'none';
	ok wait_until(3, sub { grep { ($_->{requestId} // '') eq $rid } events('slow_request') }),
	    'log has a slow_request line with its request id (OPSD_SLOWLOG_MS default 1000)';
	my $fast = http(GET => '/healthz');
	my $frid = $fast->{headers}{'x-request-id'} // 'none';
	ok !grep({ ($_->{requestId} // '') eq $frid } events('slow_request')), 'a fast request is not in the slow log';
	cmp_ok((http(GET => '/status')->{json} // {})->{slowRequests} // 0, '>=', 1, '/status counts slow requests');
}

# ---- SIGUSR1 reopens the log
{
	my $log = var_dir() . '/log/opsd.log';
	ok rename($log, "$log.1"), 'rotate log/opsd.log to opsd.log.1';
	ok kill('USR1', $master), 'SIGUSR1 to the master';
	ok wait_until(3, sub { -s $log }), 'a new log/opsd.log appears';
	ok wait_until(3, sub { grep { ($_->{event} // '') eq 'log_reopened' } log_records('opsd.log') }),
	    'the new file has log_reopened';
	wait_until(3, \&settled);
	my $r = http(POST => '/__test/echo', body => '{bad', headers => { 'Content-Type' => 'application/json' });
	is $r->{status}, 400, 'a request after the rotation';
	my $rid = $r->{headers}{'x-request-id'} // 'none';
	ok wait_until(3, sub { index(logs('opsd.log'), $rid) >= 0 }), "the worker's line lands in the new file";
	ok index(logs('opsd.log.1'), $rid) < 0, 'and not in the rotated one';
	all_ok(10, 'after SIGUSR1');
}

# ---- SIGHUP: graceful reload, quiet, re-reading opsd.env (OPSD_WORKERS 3 → 4)
{
	my $w0 = wait_until(3, \&settled) // [];
	my $envfile = var_dir() . '/opsd.env';
	my $text = do { local (@ARGV, $/) = ($envfile); <> } // '';
	ok $text =~ s/^OPSD_WORKERS=.*$/OPSD_WORKERS='4'/m, 'opsd.env has OPSD_WORKERS; set it to 4';
	open my $fh, '>', $envfile or die "$envfile: $!";
	print {$fh} $text;
	close $fh;
	ok kill('HUP', $master), 'SIGHUP to the master';
	$WORKERS = 4;
	my %old = map { $_ => 1 } @$w0;
	ok wait_until(5, sub { my $w = settled(); $w && !grep { $old{$_} } @$w }),
	    'after SIGHUP every worker is new' or diag 'before: ' . join(' ', @$w0) . ' after: ' . join(' ', worker_pids());
	ok wait_until(3, sub { !grep { pid_alive($_) } @$w0 }), 'the old workers exited';
	is master_pid(), $master, 'the master pid is unchanged by SIGHUP';
	ok wait_until(2, sub { scalar events('reload') }), 'the log has a reload line';
	is scalar(worker_pids()), 4, 'the reload applied OPSD_WORKERS=4 from opsd.env';
	is((http(GET => '/status')->{json} // {})->{totalProcesses}, 4, '/status shows 4 processes');
	all_ok(10, 'after SIGHUP');
}

# ---- SIGHUP while 8 clients send 2,000 requests
{
	my ($clients, $per, $hup_after) = (8, 250, 200);
	my $dir = var_dir() . '/..';
	pipe(my $rd, my $wr) or die "pipe: $!";
	my @kids;
	for my $c (1 .. $clients) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			close $rd;
			my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 },
			    keep_alive => 1, timeout => 30);
			open my $out, '>', "$dir/load-$c.txt" or _exit(2);
			for my $i (1 .. $per) {
				my $r = http(GET => '/healthz', agent => $ua);
				my $body = $r->{status} == 200 ? '' : substr($r->{body} // '', 0, 200);
				$body =~ s/\s+/ /g;
				printf {$out} "%d %.6f %s\n", $r->{status}, time, $body;
				syswrite $wr, '.';
			}
			close $out;
			_exit(0);
		}
		push @kids, $pid;
	}
	close $wr;
	my ($done, $hup_at, $done_at_hup) = (0, undef, undef);
	while (1) {
		my $n = sysread $rd, my $buf, 4096;
		last unless $n;
		$done += $n;
		if (!$hup_at && $done >= $hup_after) {
			kill 'HUP', $master;
			($hup_at, $done_at_hup) = (time, $done);
		}
	}
	waitpid $_, 0 for @kids;
	my (@fail, $total, $after_hup);
	for my $c (1 .. $clients) {
		open my $in, '<', "$dir/load-$c.txt" or next;
		while (<$in>) {
			my ($st, $t, $body) = /^(\d+) (\S+) ?(.*)$/ or next;
			$total++;
			$after_hup++ if $hup_at && $t > $hup_at;
			push @fail, sprintf('client %d: %s at HUP%+.3fs %s', $c, $st, $t - ($hup_at // $t), $body) if $st != 200;
		}
	}
	ok $hup_at, "SIGHUP sent after $done_at_hup requests";
	is $total, $clients * $per, "$clients clients sent " . $clients * $per . ' requests';
	is scalar(@fail), 0, 'no request failed across the reload' or diag join "\n", @fail[0 .. ($#fail > 19 ? 19 : $#fail)];
	cmp_ok $after_hup // 0, '>=', 1000, "the reload happened under load ($after_hup requests after it)";
	ok wait_until(5, \&settled), "$WORKERS workers after the loaded reload";
	is master_pid(), $master, 'the master pid is unchanged';
	ok scalar(events('reload')) >= 2, 'two reloads logged';
	my @crash = events('crash_loop');
	ok !@crash, 'no crash_loop during the run' or diag explain \@crash;
}

# ---- SIGQUIT: graceful stop lets the request in flight finish
{
	my $f = var_dir() . '/../quit.txt';
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $r = http(GET => '/__test/sleep?ms=1500', fresh => 1, timeout => 20);
		open my $o, '>', $f or _exit(2);
		print {$o} "$r->{status}\n";
		close $o;
		_exit(0);
	}
	my $busy = wait_until(3, sub {
		grep { ($_->{requestUri} // '') eq '/__test/sleep' } @{ (http(GET => '/status?full')->{json} // {})->{processes} // [] }
	});
	ok $busy, 'the sleep request is in flight (seen in /status?full)';
	ok kill('QUIT', $master), 'SIGQUIT to the master';
	waitpid $pid, 0;
	open my $in, '<', $f;
	my $st = <$in> // '';
	chomp $st;
	is $st, '200', 'the request in flight completes with 200 during the graceful stop';
	ok wait_until(10, sub { !pid_alive($master) }), 'the master exits after SIGQUIT';
	my @left = grep { pid_alive($_) } children_of($master);
	ok !@left, 'no worker is left behind';
	ok scalar(events('stopping')), 'the log has a stopping line';
}

finish();
