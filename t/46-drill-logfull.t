#!/usr/bin/perl
# The log's filesystem full (README "Logging" and "Runbook 6"): opsd logs to a file on a
# 1 MiB tmpfs, which is then filled. Requests that log (404s, failed logins) keep being
# answered by the same workers, none blocks or dies; the lines that could not be written
# are counted in opsd_log_lines_dropped_total (one count for every process); SIGUSR1 (the
# log reopened, workers replaced) and SIGHUP (a reload) meanwhile change nothing of that;
# once there is room again the next lines are written, whole and parseable.
# Needs root and a kernel that lets it mount a tmpfs; skipped otherwise, saying why.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);
use OpsdTest;

my $T0 = time;
my $mnt = tempdir('opsd-logfs-XXXXXX', TMPDIR => 1, CLEANUP => 0);
plan skip_all => 'mounting a tmpfs needs root' if $> != 0;
{
	my $out = `mount -t tmpfs -o size=1m,mode=0755 opsd-drill-log '$mnt' 2>&1`;
	plan skip_all => "cannot mount a tmpfs for the log ($out)" if $? != 0;
}
my $MAIN = $$;
# Lazy: the stack (stopped after this block runs) may still hold the file open.
END { if ($$ == $MAIN) { local $?; system 'umount', '-l', $mnt; rmdir $mnt } }
my $LOG = "$mnt/opsd.log";
my $FILL = "$mnt/filler";

start_stack(env => { OPSD_WORKERS => 2, OPSD_LOG => $LOG });
ok -s $LOG, "opsd logs to $LOG (a 1 MiB tmpfs)";

sub dropped() {
	my $r = http(GET => '/metrics');
	return $r->{status} == 200 && $r->{body} =~ /^opsd_log_lines_dropped_total (\d+)$/m ? $1 + 0 : undef;
}
sub restarts() {
	my $r = http(GET => '/metrics');
	return $r->{body} =~ /^opsd_worker_restarts_total (\d+)$/m ? $1 + 0 : undef;
}
# Requests that each write a line: n 404s and a failed login.
sub logging_requests($n, $tag) {
	my $ok = 0;
	for my $i (1 .. $n) {
		my $r = http(GET => "/no-such-route-$tag-$i");
		$ok++ if $r->{status} == 404 && ref $r->{json} eq 'HASH';
	}
	my $l = http(POST => '/auth/login', json => { email => admin_email(), password => "wrong-$tag" });
	$ok++ if $l->{status} == 401;
	return $ok;
}
sub log_lines() {
	open my $f, '<', $LOG or return ();
	local $/;
	return split /\n/, <$f> // '';
}

is dropped(), 0, 'opsd_log_lines_dropped_total is 0 before the disk fills';
my $restarts0 = restarts();
my @workers0 = sort { $a <=> $b } worker_pids();

# ------------------------------------------------------------ fill it
system("dd if=/dev/zero of='$FILL' bs=4k 2>/dev/null");
my $free = `df --output=avail -B1 '$mnt' | tail -1` + 0;
ok $free < 4096, "the log's filesystem is full ($free bytes free)";

my $t = time;
is logging_requests(40, 'full'), 41, 'with the disk full: 40 requests of unknown paths answered 404 (JSON), a bad login 401';
my $d1 = dropped();
ok defined $d1 && $d1 >= 20, "opsd_log_lines_dropped_total counts the lines lost ($d1)";
is_deeply [sort { $a <=> $b } worker_pids()], \@workers0, 'the same workers serve: none died';
is restarts(), $restarts0, 'opsd_worker_restarts_total unchanged';
note sprintf '41 requests in %.1f s with the disk full', time - $t;

# ------------------------------------------------------------ the signals while full
ok kill('USR1', master_pid()), 'SIGUSR1 with the disk full (the log reopened, workers replaced)';
ok wait_until(15, sub { my @w = worker_pids(); @w && !grep { my $w = $_; grep { $_ == $w } @workers0 } @w }),
    '  new workers replaced the old ones';
ok kill('HUP', master_pid()), 'SIGHUP with the disk full (a reload)';
sleep 1;
is logging_requests(20, 'signals'), 21, 'after both signals, still full: every request answered';
my $d2 = dropped();
ok $d2 > $d1, "  the new processes add to the same count ($d1 -> $d2)";

# ------------------------------------------------------------ room again
unlink $FILL;
my $tag = "back$$";
my $r = http(GET => "/no-such-route-$tag");
is $r->{status}, 404, 'room again: a request of an unknown path 404';
ok wait_until(5, sub { grep { /no-such-route-\Q$tag\E/ } log_lines() }), '  and its line is in the log again';
my @after = grep { length } log_lines();
my $bad = grep { !defined json_decode($_) } @after;
cmp_ok $bad, '<=', 1, "every line of the log parses as JSON (at most one torn by the full disk: $bad)";
my ($last) = grep { /no-such-route-\Q$tag\E/ } @after;
ok $last && json_decode($last), '  the line written once there was room is whole';
note 'elapsed ' . sprintf('%.1fs', time - $T0);
finish();
