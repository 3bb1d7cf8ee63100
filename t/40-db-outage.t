#!/usr/bin/perl
# MariaDB stopped and started again under a running opsd (README "Runbook 6"):
# 503 unavailable with Retry-After while it is down, /healthz unaffected, and
# recovery without restarting opsd. Then the drill: MariaDB killed with kill -9
# during a stream of writes from three clients, SIGHUP and SIGUSR1 to opsd's
# master while it is down, MariaDB started again: every write answered 2xx is in
# the database, the others got 503 with Retry-After, the pool kept serving,
# /readyz recovers and the audit chain verifies.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $master = master_pid();
my @workers = worker_pids();

is http(GET => '/readyz')->{status}, 200, '/readyz 200 with MariaDB up';
is http(GET => '/__test/db')->{status}, 200, '/__test/db 200 with MariaDB up';
is mysql('SELECT 1'), "1\n", 'OS root reaches the private MariaDB over run/mysqld.sock';
like mysql('SELECT COUNT(*) FROM schema_migrations') // '', qr/^[1-9]\d*$/, 'schema_migrations has rows';

# ---- down
my $t0 = time;
ok stop_mysql(), 'MariaDB stopped';
my $first503 = wait_until(10, sub { http(GET => '/readyz')->{status} == 503 }, 0.2);
ok $first503, sprintf('/readyz turns 503 (after %.1fs)', time - $t0);
{
	my $r = http(GET => '/readyz');
	check_error($r, 503, 'unavailable', '/readyz while MariaDB is down');
	like $r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '/readyz 503 has Retry-After (seconds)';
	cmp_ok $r->{elapsed}, '<', 3, sprintf('/readyz answers fast while down (%.2fs)', $r->{elapsed});

	# every worker must answer the same, not only the first to notice
	my @st = map { http(GET => '/readyz', fresh => 1) } 1 .. 10;
	my @bad = grep { $_->{status} != 503 } @st;
	ok !@bad, '10 /readyz in a row all 503' or diag join ' ', map { $_->{status} } @st;
	my $slow = (sort { $b <=> $a } map { $_->{elapsed} } @st)[0];
	cmp_ok $slow, '<', 3, sprintf('none hangs on the dead database (slowest %.2fs)', $slow);

	my $d = http(GET => '/__test/db');
	check_error($d, 503, 'unavailable', '/__test/db (a DB query) while MariaDB is down');
	like $d->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '/__test/db 503 has Retry-After';

	my @h = map { http(GET => '/healthz')->{status} } 1 .. 10;
	is_deeply \@h, [(200) x 10], '/healthz stays 200 while MariaDB is down';
	my $s = http(GET => '/status');
	is $s->{status}, 200, '/status stays 200 while MariaDB is down';
	my $e = http(POST => '/__test/echo', json => { message => 'no db needed' });
	is $e->{status}, 200, 'a route that needs no DB still works';

	is master_pid(), $master, 'the master survives the outage';
	is scalar(worker_pids()), scalar(@workers), 'the pool size is unchanged during the outage';
	ok !grep({ ($_->{event} // '') eq 'crash_loop' } log_records('opsd.log')), 'no crash loop';
}

# ---- up again
ok start_mysql(), 'MariaDB started again';
$t0 = time;
my $back = wait_until(15, sub { http(GET => '/readyz')->{status} == 200 }, 0.2);
ok $back, sprintf('/readyz 200 again without restarting opsd (after %.1fs)', time - $t0);
cmp_ok time - $t0, '<=', 11, 'recovery within ~10 s';
ok wait_until(10, sub { !grep { $_->{status} != 200 } map { http(GET => '/readyz', fresh => 1) } 1 .. 10 }, 0.5),
    'every worker reconnected: 10 /readyz in a row 200';
my @db = map { http(GET => '/__test/db')->{status} } 1 .. 10;
is_deeply \@db, [(200) x 10], '/__test/db 200 on every try after recovery';
is master_pid(), $master, 'the master pid is unchanged';
ok pid_alive($master), 'the master is alive';

# ---- a second outage is handled the same way (the reconnect is not one-shot)
ok stop_mysql(), 'MariaDB stopped a second time';
ok wait_until(10, sub { http(GET => '/__test/db')->{status} == 503 }, 0.2), '/__test/db 503 again';
ok start_mysql(), 'MariaDB started a second time';
ok wait_until(15, sub { http(GET => '/__test/db')->{status} == 200 && http(GET => '/readyz')->{status} == 200 }, 0.2),
    'recovered again';
is master_pid(), $master, 'the master pid is still unchanged';

# ---- drill: kill -9 of MariaDB during writes; SIGHUP and SIGUSR1 while it is down
{
	my $admin = admin_session();
	my $org = create_org();
	ok $org->{id}, 'an org for the writes';
	my $contacts = "/orgs/$org->{id}/contacts";
	my $TAG = lc run_tag();
	my @loops = map {
		my $c = $_;
		request_loop(pause => 0.01, steps => [
			{ label => 'write', method => 'POST', path => $contacts, session => $admin,
			  json => sub ($i) { { name => "Outage $c-$i", email => "outage-$TAG-$c-$i\@example.test" } } },
			{ label => 'health', method => 'GET', path => '/healthz' },
		]);
	} 1 .. 3;
	sleep 1;    # writes flowing
	my $pid = mysqld_pid();
	ok $pid && kill('KILL', $pid), "kill -9 mariadbd ($pid) during the writes";
	my $t_kill = time;
	ok wait_until(10, sub { !pid_alive($pid) }), 'mariadbd is gone';

	# what a client sees while it is down
	my $w = wait_until(10, sub {
		my $r = http(POST => $contacts, session => $admin, json => { name => 'While down', email => "down-$TAG\@example.test" });
		$r->{status} == 503 ? $r : undef;
	}, 0.1);
	check_error($w // {}, 503, 'unavailable', 'a write while MariaDB is down');
	like(($w // {})->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'the write\'s 503 has Retry-After (seconds)');
	my $rz = http(GET => '/readyz');
	is $rz->{status}, 503, '/readyz 503 while down';
	like $rz->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '/readyz 503 has Retry-After';

	# signals to the master while the database is gone
	my $reloads = grep { ($_->{event} // '') eq 'reload' } log_records('opsd.log');
	ok kill('HUP', $master), 'SIGHUP to the master while MariaDB is down';
	ok wait_until(5, sub { (grep { ($_->{event} // '') eq 'reload' } log_records('opsd.log')) > $reloads }),
	    'the reload is logged';
	ok kill('USR1', $master), 'SIGUSR1 to the master while MariaDB is down';
	ok wait_until(5, sub { grep { ($_->{event} // '') eq 'log_reopened' } log_records('opsd.log') }),
	    'the log reopening is logged';
	ok wait_until(10, sub { worker_pids() == @workers }), 'the pool is back to ' . scalar(@workers) . ' workers';
	my @h = map { http(GET => '/healthz')->{status} } 1 .. 10;
	is_deeply \@h, [(200) x 10], '/healthz 200 while MariaDB is down, after the signals';

	# up again, opsd untouched
	# script/server's start refuses while the old pid exists, a zombie included: wait
	# until its parent (init here) has reaped it
	ok wait_until(30, sub { !kill 0, $pid }, 0.1), 'the killed mariadbd is reaped';
	ok start_mysql(), 'MariaDB started again (crash recovery)';
	my $t_up = time;
	my $back = wait_until(30, sub { http(GET => '/readyz')->{status} == 200 }, 0.2);
	my $t_ready = time;
	ok $back, sprintf('/readyz 200 again without restarting opsd, %.1fs after MariaDB answered (down %.1fs in all)',
	    $t_ready - $t_up, $t_ready - $t_kill);
	my $resumed = wait_until(15, sub {
		my @r = map { $_->rows_after($t_ready) } @loops;
		(grep { $_->{label} eq 'write' && $_->{ok} } @r) >= 3;
	}, 0.2);
	ok $resumed, 'the clients\' writes succeed again';
	my @sums = map { $_->stop } @loops;
	my @rows = map { @{ $_->{rows} } } @sums;
	my @writes = grep { $_->{label} eq 'write' } @rows;
	my @failed = grep { !$_->{ok} } @rows;
	note sprintf '%d writes: %d acknowledged, %d failed (%s); /readyz back %.1fs after the kill',
	    scalar @writes, scalar(grep { $_->{ok} } @writes), scalar @failed,
	    join(' ', map { "$_->{label}:$_->{status}" } @failed[0 .. ($#failed > 9 ? 9 : $#failed)]), $t_ready - $t_kill;
	my @early = grep { $_->{t} < $t_kill } @failed;
	ok !@early, 'nothing failed before the kill' or diag explain \@early;
	my @odd = grep { $_->{label} ne 'write' || $_->{status} != 503 || $_->{body} !~ /"unavailable"/ } @failed;
	ok !@odd, 'every failure is a write answered 503 unavailable (none 500 or 502)'
	    or diag join "\n", map { "$_->{label} $_->{status} $_->{body}" } @odd;
	cmp_ok scalar(@failed), '>=', 1, 'some writes met the outage';
	my @lost = map { acked_missing($_, 'write', 'contacts') } @sums;
	is scalar(@lost), 0, 'every acknowledged write is in the database' or diag "lost: @lost";
	my $org_sql = "org_id = UNHEX('" . org_hex($org) . "')";
	my $stored = db_count("SELECT COUNT(*) FROM contacts WHERE $org_sql");
	is audit_count('tenant.created', $org_sql), $stored, "one tenant.created event for each of the $stored contacts stored";
	my ($vr, $vj) = audit_verify($admin);
	is $vj->{ok}, JSON::PP::true, 'GET /audit/verify: the chain verifies' or diag $vr->{body};
	my ($rc, $out, $err) = opsctl('audit', 'verify', '--full');
	is $rc, 0, 'opsctl audit verify --full exits 0' or diag "$out$err";
	is master_pid(), $master, 'the master pid is unchanged';
	ok !grep({ ($_->{event} // '') eq 'crash_loop' } log_records('opsd.log')), 'no crash loop';
}


# ---- a write that keeps conflicting (README "Running on several hosts"): a deadlock, a
# lock wait timeout or, on Galera, a lost certification, still failing after opsd's
# retries, answers 503 unavailable with Retry-After and reason write_conflict, and
# nothing of it is written. Here another session holds the user's row while
# innodb_lock_wait_timeout is 1 s (workers reconnect to pick it up).
{
	my $u = create_user(role => 'platform_admin');
	mysql('SET GLOBAL innodb_lock_wait_timeout = 1');
	mysql("KILL CONNECTION $_") for split /\s+/, mysql("SELECT id FROM information_schema.PROCESSLIST WHERE USER = 'opsd'") // '';
	my $sock = var_dir() . '/run/mysqld.sock';
	my $hex = uuid_hex($u->{id});
	open my $holder, '|-', 'mariadb', '--no-defaults', "--socket=$sock", '-uroot', 'opsd' or die "mariadb: $!";
	$holder->autoflush(1);
	print {$holder} "BEGIN; SELECT id FROM users WHERE id = UNHEX('$hex') FOR UPDATE; DO SLEEP(20); ROLLBACK;\n";
	ok $u->{id} && wait_until(10, sub { (mysql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'") // 0) =~ /^1/ }),
	    'another session holds the user\'s row';
	my $r = http(PATCH => "/users/$u->{id}", session => admin_session(), json => { name => 'Renamed While Locked' });
	check_error($r, 503, 'unavailable', 'PATCH /users/:id while its row stays locked');
	is $r->{headers}{'retry-after'}, '1', '  with Retry-After: 1';
	is j($r)->{error}{details}{reason}, 'write_conflict', '  and reason write_conflict';
	ok grep({ ($_->{event} // '') eq 'db_conflict' } log_records('opsd.log')), '  the log says db_conflict';
	mysql("KILL $_") for split /\s+/, mysql("SELECT id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'") // '';
	close $holder;
	mysql('SET GLOBAL innodb_lock_wait_timeout = 50');
	is((mysql("SELECT name FROM users WHERE id = UNHEX('$hex')") // '') =~ s/\s+$//r, $u->{name}, '  the name is unchanged');
	my $again = http(PATCH => "/users/$u->{id}", session => admin_session(), json => { name => 'Renamed After' });
	is $again->{status}, 200, 'sent again once the row is free: 200' or diag $again->{body};
}

finish();
