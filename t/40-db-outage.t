#!/usr/bin/perl
# MariaDB stopped and started again under a running opsd (README "Runbook 6"):
# 503 unavailable with Retry-After while it is down, /healthz unaffected, and
# recovery without restarting opsd.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
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

finish();
