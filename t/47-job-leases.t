#!/usr/bin/perl
# Jobs on several hosts (README "Running on several hosts"): two opsd hosts on one database.
# The cluster-wide jobs (legal notify, session expiry, audit retention, blocklist expiry) are
# each run by the one jobs process holding the job's lease in job_leases; a published notice
# goes out once per user although both hosts' jobs processes run and both send from the
# outbox; a lease another host holds is waited for, and taken once it expires; the lease of a
# jobs process killed with kill -9 passes on at once (its host sees the process gone).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;
use OpsdTest::Hosts;

my @CLUSTER_JOBS = qw(audit_retention blocklist_expiry legal_notify sessions_expire);
my $ca = make_test_ca();
my $peer = start_smtp_peer(tls => $ca);
start_stack(env => smtp_env($peer, $ca));
my $b = start_host();
my $admin = admin_session();
my $org = create_org();

sub jobs_pids() {
	my @pids = (jobs_pid());
	my $bm = host_pid($b, 'opsd.pid');
	push @pids, grep { (proc_title($_) // '') =~ /^opsd: jobs/ } children_of($bm) if $bm;
	return grep { $_ } @pids;
}

sub leases() {
	my %l;
	for (split /\n/, mysql('SELECT name, holder, epoch, expires_at > NOW(3) FROM job_leases') // '') {
		my ($name, $holder, $epoch, $live) = split /\t/;
		$l{$name} = { holder => $holder, epoch => $epoch, live => $live, pid => ($holder =~ /:(\d+)$/)[0] };
	}
	return \%l;
}

sub notices($type) { return outbox_rows("kind = 'legal_notice' AND subject LIKE 'Updated $type:%'") }

my @pids = jobs_pids();
is scalar(@pids), 2, 'each host runs a jobs process' or diag "@pids";

# ---- every cluster-wide job has one holder, a jobs process of one of the hosts
ok wait_until(15, sub { my $l = leases(); !grep { !$l->{$_} || !$l->{$_}{live} } @CLUSTER_JOBS }),
    'job_leases has a live row for each cluster-wide job' or diag explain leases();
my $l = leases();
for my $job (@CLUSTER_JOBS) {
	my $pid = $l->{$job}{pid} // 0;
	ok((grep { $_ == $pid } @pids), "$job is held by a jobs process of one of the hosts ($l->{$job}{holder})");
}
is_deeply [sort keys %$l], \@CLUSTER_JOBS, 'per-host jobs (nginx_limits, session_secret, migrations) take no lease';

# ---- a notice goes out once per user, both hosts running
my @users = map { create_user(role => 'member', org => $org, email => "lease-$_\@allowed.test") } 1 .. 6;
ok !grep({ !$_->{id} } @users), 'six users created';
my @emails = sort map { lc } split /\n/, mysql('SELECT email FROM users WHERE disabled_at IS NULL AND service = 0') // '';
status_is legal_publish($admin, type => 'terms', version => 'v1', content => "Terms v1\n", notify => 1), 201,
    'POST /legal terms v1 with notify';
ok wait_until(30, sub { my @r = notices('terms'); @r >= @emails && !grep { $_->{status} !~ /^(?:sent|suppressed)$/ } @r }, 0.2),
    'every active user\'s notice is settled';
sleep 2;   # nothing more may come
my %by;
$by{ lc $_->{to_addr} }++ for notices('terms');
is_deeply [sort keys %by], \@emails, 'every active user got a notice';
ok !grep({ $_ != 1 } values %by), 'exactly one each' or diag explain \%by;
for my $u (@users) {
	my @m = $peer->wait_messages(1, 10, to => $u->{email});
	is scalar(@m), 1, "the relay received exactly one notice for $u->{email}";
}

# ---- a lease held elsewhere is waited for, then taken when it expires
mysql("UPDATE job_leases SET holder = 'elsewhere:1-0:42', epoch = epoch + 1, expires_at = NOW(3) + INTERVAL 1 HOUR"
    . " WHERE name = 'legal_notify'");
my $epoch = leases()->{legal_notify}{epoch};
status_is legal_publish($admin, type => 'privacy', version => 'v1', content => "Privacy v1\n", notify => 1), 201,
    'POST /legal privacy v1 with notify while another host holds legal_notify';
sleep 4;
is scalar(notices('privacy')), 0, 'no notice is queued while the other host holds the lease';
ok wait_until(5, sub { grep { ($_->{event} // '') eq 'job_lease_lost' && ($_->{msg} // '') =~ /legal_notify/ }
    log_records('opsd.log'), map { eval { OpsdTest::json_decode($_) } // () } split /\n/, host_logs($b, 'opsd.log') }),
    'the host that held it logs job_lease_lost';
mysql("UPDATE job_leases SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE name = 'legal_notify'");
ok wait_until(30, sub { scalar(notices('privacy')) >= @emails }, 0.2), 'once it expired, the notices are queued';
sleep 2;
is scalar(notices('privacy')), scalar(@emails), 'once per user';
$l = leases()->{legal_notify};
is $l->{epoch}, $epoch + 1, 'the lease was taken over: epoch moved on by one';
ok((grep { $_ == ($l->{pid} // 0) } @pids), "by a jobs process of ours ($l->{holder})");

# ---- kill -9 of the holder: its lease passes on at once, not after it expires
my $victim = $l->{pid};
$epoch = $l->{epoch};
ok kill('KILL', $victim), "kill -9 the jobs process holding legal_notify ($victim)";
my $t0 = time;
ok wait_until(5, sub { my $n = leases()->{legal_notify}; $n->{epoch} > $epoch && ($n->{pid} // 0) != $victim }, 0.2),
    sprintf('another jobs process holds legal_notify within 5 s (%.1f s; the lease lasts 12 s: it did not wait for it to expire)', time - $t0)
    or diag explain leases();
status_is legal_publish($admin, type => 'cookies', version => 'v1', content => "Cookies v1\n", notify => 1), 201,
    'POST /legal cookies v1 with notify after the kill';
ok wait_until(30, sub { scalar(notices('cookies')) >= @emails }, 0.2), 'its notices are queued';
sleep 2;
is scalar(notices('cookies')), scalar(@emails), 'once per user';

# ---- a holder that stalls past its lease (SIGSTOP: a frozen VM) loses it, and commits nothing
# more once it runs again: the other host took the lease and sends the notices once
{
	my $cur = leases()->{legal_notify};
	my $stalled = $cur->{pid};
	my @live = grep { $_ != $stalled } jobs_pids();
	ok kill('STOP', $stalled), "SIGSTOP the jobs process holding legal_notify ($stalled)";
	ok wait_until(20, sub { my $n = leases()->{legal_notify}; $n->{epoch} > $cur->{epoch} && ($n->{pid} // 0) != $stalled }, 0.2),
	    'another jobs process takes the lease once it expires' or diag explain leases();
	status_is legal_publish($admin, type => 'dpa', version => 'v1', content => "DPA v1\n", notify => 1), 201,
	    'POST /legal dpa v1 with notify while the old holder is stopped';
	ok wait_until(30, sub { scalar(notices('dpa')) >= @emails }, 0.2), 'the new holder queues its notices';
	ok kill('CONT', $stalled), 'SIGCONT the old holder';
	my $lost = sub {
		grep { ($_->{event} // '') eq 'job_lease_lost' && ($_->{msg} // '') =~ /legal_notify/ && ($_->{pid} // 0) == $stalled }
		    log_records('opsd.log'), map { eval { OpsdTest::json_decode($_) } // () } split /\n/, host_logs($b, 'opsd.log');
	};
	ok wait_until(10, sub { $lost->() }), 'the old holder logs job_lease_lost when it runs again';
	sleep 3;
	is scalar(notices('dpa')), scalar(@emails), 'and no notice is queued twice';
	isnt leases()->{legal_notify}{pid} // 0, $stalled, 'the lease stays with the new holder';
}

stop_host($b);
finish();
