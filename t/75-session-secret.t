#!/usr/bin/perl
# A new SESSION_SECRET applied by a reload (README "Runbook 7", step 1), on
# two hosts at once: the stack's opsd and a second opsd master on the same
# database (its own socket, env file and workers), as a second host would be.
#   - the first start records the secret's fingerprint without an event; a
#     second host starting with the same secret adds none;
#   - the new secret is written to both env files and both masters get
#     SIGHUP at the same moment: exactly one security.session_secret_rotated
#     event, by "system", with the fingerprint and the previous one (HMAC
#     keyed by the secret: neither the secret nor its sha256);
#   - once the old workers are gone, the cookies from before the reload
#     answer 401 from every worker of both hosts (each worker is seen in
#     /status?full with /auth/me answered 401), while a new login works on
#     both; an API token (not signed with SESSION_SECRET) is used in a loop
#     through both hosts during the whole change: no request fails;
#   - a reload or a new jobs process with the same secret writes nothing
#     more; no secret in the logs, the audit log or the database.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex sha256_hex);
use POSIX qw(_exit setsid);
use Time::HiRes ();
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $var = var_dir();
my $ACTION = 'security.session_secret_rotated';
my $SOCK2 = "$var/run/opsd-host2.sock";

sub fingerprint($secret) { return substr(hmac_sha256_hex('opsd session secret fingerprint', $secret), 0, 16) }
sub stored_fingerprint() { my $v = mysql("SELECT fingerprint FROM secret_fingerprints WHERE name = 'session_secret'") // ''; chomp $v; return $v }
sub events() { return audit_payloads($ACTION) }

# ---- the README says what to look for
{
	my $readme = slurp(repo_root() . '/README.md') // '';
	my ($section) = $readme =~ /^(## Runbook 7[^\n]*\n.*?)(?=^## |\z)/ms;
	like $section // '', qr/\Q$ACTION\E/, 'README runbook 7 names security.session_secret_rotated';
}

my $old = session_secret();
ok wait_until(30, sub { stored_fingerprint() eq fingerprint($old) }, 0.2),
    'the first start records the fingerprint of SESSION_SECRET' or diag 'stored: ' . stored_fingerprint();
is scalar(events()), 0, '  and writes no rotation event (nothing was seen before)';

# ---- a second host: another opsd master on the same database
sub env_with($text, %set) {
	for my $k (sort keys %set) {
		$text =~ s/^\Q$k\E=.*\n//mg;
		$text .= "$k='$set{$k}'\n";
	}
	return $text;
}
sub write_env($path, $text) {
	open my $fh, '>', "$path.new" or die "$path: $!";
	chmod 0600, "$path.new";
	print {$fh} $text;
	close $fh;
	rename "$path.new", $path or die "rename $path: $!";
}
my $env1 = "$var/opsd.env";
my $env2 = "$var/opsd-host2.env";
write_env($env2, env_with(slurp($env1) // '', OPSD_LISTEN => "unix:$SOCK2", OPSD_PID_FILE => "$var/run/opsd-host2.pid",
    OPSD_WORKERS => 2));
my $host2 = fork // die "fork: $!";
if ($host2 == 0) {
	setsid();
	open STDIN, '<', '/dev/null';
	open STDOUT, '>>', "$var/log/opsd.log.host2";
	open STDERR, '>&', \*STDOUT;
	$ENV{OPSD_ENV_FILE} = $env2;
	$ENV{OPSD_LOG} = "$var/log/opsd.log.host2";
	exec opsd_bin() or _exit(127);
}
END { if ($host2 && pid_alive($host2)) { kill 'QUIT', $host2; sleep 1; kill 'KILL', $host2 if pid_alive($host2) } }
sub host2(@a) { return fcgi_http(@a, socket => $SOCK2) }
sub host2_workers() { return grep { (proc_title($_) // '') =~ /^opsd: worker/ } children_of($host2) }
sub host2_jobs() { my ($j) = grep { (proc_title($_) // '') =~ /^opsd: jobs/ } children_of($host2); return $j }
# The times of the answers loop $which has had so far.
sub loop_times($which) {
	open my $in, '<', "$var/../bearer-loop-$which.txt" or return ();
	return map { /^\d+ (\S+)\n\z/ ? $1 : () } <$in>;
}
ok wait_until(60, sub { -S $SOCK2 && host2(GET => '/readyz', remote_addr => '127.0.0.1')->{status} == 200 }, 0.2),
    'a second opsd master (the second host) serves on its own socket';
ok wait_until(30, sub { host2_jobs() }, 0.2), '  with its own jobs process';
sleep 2;   # its jobs process compares the fingerprint within a second
is scalar(events()), 0, '  starting it with the same secret writes no event';

# ---- sessions and an API token from before the change
my $u = create_user(role => 'compliance');
my $s1 = login_ok($u, 'a compliance user (through nginx)');
my $admin = admin_session();
is host2(GET => '/auth/me', cookie => $s1->{cookie})->{status}, 200, 'the same cookie works on the second host';
my $tok = http(POST => '/auth/tokens', session => $s1, json => { name => 'rotation', scopes => ['tenant.read'] });
is $tok->{status}, 201, 'and an API token' or diag $tok->{body};
$tok = j($tok)->{token};

# A loop through each host, with the token, for the whole change.
my $stop = "$var/../bearer-loop.stop";
my @loops;
for my $which (1, 2) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open my $out, '>', "$var/../bearer-loop-$which.txt" or _exit(2);
		$out->autoflush(1);
		my $n = 0;
		until (-e $stop && $n >= 20) {
			my $r = $which == 1 ? http(GET => '/auth/me', bearer => $tok, fresh => 1) : host2(GET => '/auth/me', bearer => $tok);
			printf {$out} "%d %.6f\n", $r->{status}, Time::HiRes::time();
			$n++;
			Time::HiRes::sleep(0.02);
		}
		close $out;
		_exit(0);
	}
	push @loops, $pid;
}

# ---- the new secret in both env files, SIGHUP to both masters at once
my $new = sensitive('new SESSION_SECRET', 'rot-' . join('', map { ('a' .. 'z', '0' .. '9')[rand 36] } 1 .. 48));
my @old1 = worker_pids();
my @old2 = host2_workers();
is scalar(@old1) + scalar(@old2), 4, 'two workers on each host before the reload';
write_env($env1, env_with(slurp($env1), SESSION_SECRET => $new));
write_env($env2, env_with(slurp($env2), SESSION_SECRET => $new));
ok wait_until(60, sub { 3 <= loop_times(1) && 3 <= loop_times(2) }, 0.1), 'the loops run before the change';
my @jobs_before = (jobs_pid(), host2_jobs());
my $hup_at = Time::HiRes::time();
ok kill('HUP', master_pid(), $host2) == 2, 'SIGHUP to both masters';
my %was = map { $_ => 1 } @old1, @old2;
ok wait_until(30, sub { my @w = (worker_pids(), host2_workers()); @w == 4 && !grep { $was{$_} } @w }, 0.1),
    'every worker of both hosts is replaced';
ok wait_until(30, sub { !grep { pid_alive($_) } keys %was }, 0.1), '  and the old ones are gone';

ok wait_until(30, sub { scalar(events()) >= 1 }, 0.2), "$ACTION is written";
# a new jobs process compares the fingerprint in its first round: both hosts have
# one, then time for a second, wrong event
ok wait_until(30, sub { my %b = map { $_ => 1 } @jobs_before; my @j = grep { $_ } (jobs_pid(), host2_jobs());
    @j == 2 && !grep { $b{$_} } @j }, 0.1), '  both hosts run a new jobs process';
sleep 2;
my @ev = events();
is scalar(@ev), 1, '  exactly once for both hosts';
my $e = $ev[0] // { p => {} };
is_deeply $e->{p}, { fingerprint => fingerprint($new), previousFingerprint => fingerprint($old) },
    '  payload {fingerprint, previousFingerprint}: HMAC-SHA256 keyed by each secret, 8 bytes';
is mysql("SELECT actor_label FROM audit_events WHERE seq = $e->{seq}") =~ s/\s+\z//r, 'system', '  by system';
is stored_fingerprint(), fingerprint($new), '  and the new fingerprint is stored';
my $plain = substr(sha256_hex($new), 0, 16);
unlike $e->{payload} // '', qr/\Q$new\E|\Q$old\E|$plain/, '  the payload holds neither secret nor a plain hash of one';
my @logged = grep { ($_->{event} // '') eq 'session_secret_rotated' }
    log_records('opsd.log'), map { json_decode($_) // () } split /\n/, slurp("$var/log/opsd.log.host2") // '';
is scalar(@logged), 1, '  one host logs session_secret_rotated';

# ---- every worker of both hosts refuses the old cookies
sub covered($get, $status, @workers) {
	my (%seen, @bad);
	for (1 .. 200) {
		my $r = $get->(GET => '/auth/me', cookie => $s1->{cookie});
		push @bad, $r->{status} if $r->{status} != 401;
		my $st = j($get->(GET => '/status?full', remote_addr => '127.0.0.1'));
		for my $p (@{ $st->{processes} // [] }) {
			$seen{ $p->{pid} } = 1 if ($p->{lastRequestUri} // '') eq '/auth/me' && ($p->{lastRequestStatus} // 0) == $status;
		}
		last if @workers == grep { $seen{$_} } @workers;
	}
	return (scalar(grep { $seen{$_} } @workers), \@bad);
}
{
	my ($n, $bad) = covered(sub(@a) { my ($m, $p, %o) = @a; return fcgi_http($m, $p, %o) }, 401, worker_pids());
	is $n, 2, 'the old cookie answers 401 from both workers of the first host';
	is_deeply $bad, [], '  and never anything else';
	($n, $bad) = covered(\&host2, 401, host2_workers());
	is $n, 2, 'and from both workers of the second host';
	is_deeply $bad, [], '  never anything else';
	check_error(me($s1), 401, 'unauthenticated', "the compliance user's old cookie through nginx");
	check_error(me($admin), 401, 'unauthenticated', "the superadmin's old cookie through nginx");
}
my $s2 = login_ok($u, 'the compliance user signs in again');
is make_session_cookie($new, cookie_session_id($s2->{cookie} // '') // ''), $s2->{cookie} // '-', '  with a cookie signed by the new secret';
is_deeply [map { me($s2)->{status} } 1 .. 6], [(200) x 6], '  which works through nginx';
is_deeply [map { host2(GET => '/auth/me', cookie => $s2->{cookie})->{status} } 1 .. 6], [(200) x 6], '  and on the second host';

# ---- the loops: no request failed
sub answers_after($which, $t) { return scalar grep { $_ > $t } loop_times($which) }
ok wait_until(60, sub { answers_after(1, $hup_at) >= 3 && answers_after(2, $hup_at) >= 3 }, 0.1),
    'the loops run after the change';
open my $fh, '>', $stop or die "$stop: $!";
close $fh;
waitpid $_, 0 for @loops;
for my $which (1, 2) {
	my (@fail, $before, $after);
	open my $in, '<', "$var/../bearer-loop-$which.txt" or die "loop $which: $!";
	while (<$in>) {
		my ($st, $t) = split;
		$t < $hup_at ? $before++ : $after++;
		push @fail, sprintf('%s at HUP%+.3fs', $st, $t - $hup_at) if $st != 200;
	}
	ok $before && $after, "host $which: the token was used before (" . ($before // 0) . ') and after (' . ($after // 0) . ') the reload';
	is scalar(@fail), 0, "  no request failed" or diag join ', ', @fail[0 .. ($#fail > 9 ? 9 : $#fail)];
}

# ---- the same secret again: nothing more
{
	ok reload_opsd(), 'another SIGHUP with the same secret: the workers and the jobs process are replaced';
	my $j = host2_jobs();
	kill 'TERM', $j;
	ok wait_until(30, sub { my $n = host2_jobs(); $n && $n != $j }, 0.1), "the second host's jobs process is replaced";
	sleep 2;   # their first round compares the fingerprint
	is scalar(events()), 1, '  neither writes another event';
}

# ---- no secret anywhere
{
	my %s = ('old SESSION_SECRET' => $old, 'new SESSION_SECRET' => $new);
	my @hits = find_in_logs(\%s);
	ok !@hits, 'no SESSION_SECRET in any log file' or diag join "\n", @hits;
	my $audit = audit_text();
	ok !(grep { index($audit, $_) >= 0 } values %s), 'nor in the audit log';
	SKIP: {
		my $dump = db_dump();
		skip 'no mariadb-dump', 1 unless defined $dump;
		ok !(grep { index($dump, $_) >= 0 } values %s), 'nor in the database';
	}
}

kill 'QUIT', $host2;
ok wait_until(15, sub { waitpid($host2, POSIX::WNOHANG()) == $host2 || !pid_alive($host2) }, 0.1), 'the second host stops';
finish();
