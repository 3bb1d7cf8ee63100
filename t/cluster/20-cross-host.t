#!/usr/bin/perl
# What one host does, the other host honours (the local cluster: three
# Galera nodes, two opsd hosts, each preferring its own node): a logout and a
# disabled account on host 1 reject the session on host 2; a blocklist entry
# added on host 1 blocks the address on host 2 and its removal lets it in;
# rate limits set at run time on host 1 apply on host 2, and what a client
# spreading its requests over both hosts gets against one host is measured;
# an org's migration to a dedicated database (runbook 3) completes while
# writers on both hosts keep writing, and every acknowledged write is in the
# target on every node. The write latency of the cluster is measured against
# the same node's commits without replication. Numbers go to note() for the
# README; nothing here asserts a duration.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use HTTP::Tiny;
use OpsdTest;
use OpsdTest::Cluster;

my $c = cluster_start();
my $TAG = run_tag();
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin signs in on host 1' or BAIL_OUT('no session');
my $org = create_org(name => "Cross $TAG", slug => 'cross-' . lc $TAG);
ok $org->{id}, 'an org' or BAIL_OUT('no org');

# Polls host $h with $req until $want matches its status: the seconds it took (undef: not in $timeout s).
sub seen_on($h, $timeout, $want, $req) {
	my $t0 = time;
	my $ok = wait_until($timeout, sub { $req->($h)->{status} =~ $want }, 0.05);
	return $ok ? time - $t0 : undef;
}

# ---------------------------------------------------------------- sessions
{
	my $u = create_user(role => 'member', org => $org);
	my $s = login($u->{email}, $u->{password});
	is on_host(2, GET => '/auth/me', session => $s)->{status}, 200, 'a session made on host 1 works on host 2';
	status_is on_host(1, POST => '/auth/logout', session => $s), 200, 'logout on host 1';
	my $dt = seen_on(2, 10, qr/^401$/, sub ($h) { on_host($h, GET => '/auth/me', session => $s) });
	ok defined $dt, 'host 2 rejects the logged-out session (401)';
	note sprintf 'logout on host 1 seen on host 2 after %.2f s', $dt // -1;

	my $s2 = login($u->{email}, $u->{password});
	is on_host(2, GET => '/auth/me', session => $s2)->{status}, 200, 'signed in again: valid on host 2';
	status_is on_host(1, POST => "/security/users/$u->{id}/disable", session => $admin,
	    json => { reason => "cross-host $TAG" }), 200, 'the account disabled on host 1';
	$dt = seen_on(2, 10, qr/^401$/, sub ($h) { on_host($h, GET => '/auth/me', session => $s2) });
	ok defined $dt, 'host 2 rejects the disabled account\'s session (401)';
	note sprintf 'disable on host 1 seen on host 2 after %.2f s', $dt // -1;

	my $f = create_user(role => 'member', org => $org);
	my $sf = login($f->{email}, $f->{password});
	is on_host(2, GET => '/auth/me', session => $sf)->{status}, 200, 'another member\'s session valid on host 2';
	status_is on_host(1, POST => '/security/sessions/flush', session => $admin, json => { scope => 'user', id => $f->{id} }),
	    200, 'the member\'s sessions flushed on host 1';
	$dt = seen_on(2, 10, qr/^401$/, sub ($h) { on_host($h, GET => '/auth/me', session => $sf) });
	ok defined $dt, 'host 2 rejects the flushed session (401)';
	note sprintf 'flush on host 1 seen on host 2 after %.2f s', $dt // -1;

	my $sr = login($f->{email}, $f->{password});
	is on_host(2, GET => "/orgs/$org->{id}/users", session => $sr)->{status}, 403, 'a member may not list the org\'s users on host 2';
	status_is on_host(1, PATCH => "/users/$f->{id}", session => $admin, json => { roles => ['org_admin'] }), 200,
	    'made org_admin on host 1';
	$dt = seen_on(2, 10, qr/^401$/, sub ($h) { on_host($h, GET => '/auth/me', session => $sr) });
	ok defined $dt, 'host 2 drops the session made under the old role (401)';
	my $sn = login($f->{email}, $f->{password});
	is on_host(2, GET => "/orgs/$org->{id}/users", session => $sn)->{status}, 200, '  and grants the new role\'s permission';
}

# ---------------------------------------------------------------- a published legal document
{
	my $text = "Terms published on host 1 ($TAG)\n";
	status_is legal_publish($admin, type => 'terms', version => "x$TAG", content => $text), 201, 'terms published on host 1';
	my $dt = seen_on(2, 10, qr/^200$/, sub ($h) {
		my $r = on_host($h, GET => '/legal/terms');
		return { status => ($r->{status} == 200 && (j($r)->{content} // '') eq $text) ? 200 : 0 };
	});
	ok defined $dt, 'host 2 serves the new version (the file its own jobs process wrote)';
	note sprintf 'a publish on host 1 served by host 2 after %.2f s', $dt // -1;
}

# ---------------------------------------------------------------- blocklist
{
	my %ua = map { $_ => HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 10,
	    keep_alive => 0, local_address => '127.0.0.2', agent => 'opsd-test/1') } 1, 2;
	my $from2 = sub ($h) { on_host($h, GET => '/legal', agent => $ua{$h}) };
	is $from2->(2)->{status}, 200, 'host 2 serves 127.0.0.2 before the entry';
	my $r = on_host(1, POST => '/security/blocklist', session => $admin,
	    json => { cidr => '127.0.0.2', reason => "cross-host $TAG" });
	status_is $r, 201, 'POST /security/blocklist 127.0.0.2 on host 1';
	my $dt = seen_on(2, 15, qr/^403$/, $from2);
	ok defined $dt, 'host 2 answers 127.0.0.2 with 403';
	note sprintf 'blocklist entry added on host 1 enforced on host 2 after %.2f s', $dt // -1;
	is on_host(2, GET => '/legal')->{status}, 200, '  another address still passes on host 2';
	status_is on_host(1, DELETE => '/security/blocklist/' . (j($r)->{id} // 'none'), session => $admin,
	    json => { reason => "cross-host $TAG over" }), 200, 'the entry removed on host 1';
	ok defined seen_on(2, 15, qr/^200$/, $from2), 'host 2 lets 127.0.0.2 in again';
}

# ---------------------------------------------------------------- rate limits
{
	my ($PER_MIN, $BURST, $N) = (60, 10, 40);
	my $r = on_host(1, PUT => '/security/rate-limits', session => $admin,
	    json => { userPerMin => $PER_MIN, burst => $BURST, reason => "cross-host $TAG" });
	status_is $r, 200, "rate limits set at run time on host 1: userPerMin $PER_MIN, burst $BURST";
	my $shown = sub ($h) {
		my $l = j(on_host($h, GET => '/security/rate-limits', session => $admin));
		my ($u) = grep { ($_->{name} // '') eq 'userPerMin' } @{ $l->{limits} // [] };
		return { status => ($u && ($u->{value} // -1) == $PER_MIN && ($u->{source} // '') eq 'runtime') ? 200 : 0 };
	};
	ok defined seen_on(2, 15, qr/^200$/, $shown), 'host 2 shows userPerMin as set at run time';
	my @u = map { create_user(role => 'member', org => $org) } 1 .. 5;
	my @s = map { login($_->{email}, $_->{password}) } @u;
	# host 2 enforces it: a third user's burst there meets 429 (each host applies
	# the limits it reads from the database; the time until it does is noted)
	for my $h (1, 2) {
		my $probe = $s[1 + $h];
		my $dt = seen_on($h, 15, qr/^429$/, sub ($hh) {
			my @r = map { on_host($hh, GET => '/auth/me', session => $probe)->{status} } 1 .. $BURST + 2;
			return { status => (grep { $_ == 429 } @r) ? 429 : 200 };
		});
		ok defined $dt, "host $h enforces the run-time limit (a burst of " . ($BURST + 2) . ' meets 429)';
		note sprintf 'rate limits set at run time on host 1: enforced on host %d after %.2f s', $h, $dt // -1;
	}
	# Each worker re-reads the limits at most a second after a change made on
	# another host: until then some of host 2's workers still apply the old
	# ones (none here), and a measurement made at once varies from run to run.
	sleep 1.5;
	# requests as fast as they go: one user on each host alone, another alternating
	my @one = map { on_host(1, GET => '/auth/me', session => $s[0])->{status} } 1 .. $N;
	my @spread = map { on_host(1 + $_ % 2, GET => '/auth/me', session => $s[1])->{status} } 1 .. $N;
	my @two = map { on_host(2, GET => '/auth/me', session => $s[4])->{status} } 1 .. $N;
	my $n_one = grep { $_ == 200 } @one;
	my $n_two = grep { $_ == 200 } @two;
	my $n_spread = grep { $_ == 200 } @spread;
	my @by_host = map { my $h = $_; scalar grep { $spread[$_] == 200 && 1 + ($_ + 1) % 2 == $h } 0 .. $#spread } 1, 2;
	ok scalar(grep { $_ == 429 } @one), "one host throttles a user's burst ($n_one of $N passed)";
	ok scalar(grep { $_ == 429 } @spread), "spreading over both hosts does not escape the limit ($n_spread of $N passed)";
	note sprintf 'rate limit userPerMin %d burst %d: %d rapid requests on host 1 alone, %d passed (on host 2 alone %d); '
	    . 'the same spread over 2 hosts, %d passed (%d on host 1, %d on host 2)', $PER_MIN, $BURST, $N, $n_one, $n_two,
	    $n_spread, @by_host;
	# The superadmin is a user too, under the same limits: its requests are
	# repeated while they meet 429 (its bucket refills one a second).
	my $cleared;
	wait_until(30, sub {
		$cleared = on_host(2, PUT => '/security/rate-limits', session => $admin,
		    json => { userPerMin => undef, burst => undef, reason => "cross-host $TAG over" });
		$cleared->{status} != 429;
	}, 0.5);
	status_is $cleared, 200, 'the run-time limits cleared on host 2';
	my $gone = sub ($h) {
		my $l = j(on_host($h, GET => '/security/rate-limits', session => $admin));
		my ($u) = grep { ($_->{name} // '') eq 'userPerMin' } @{ $l->{limits} // [] };
		return { status => ($u && ($u->{source} // '') ne 'runtime') ? 200 : 0 };
	};
	ok defined seen_on($_, 30, qr/^200$/, $gone), "host $_ no longer applies them" for 1, 2;
	sleep 1.5;   # every worker of both hosts re-read them
}

# ---------------------------------------------------------------- an org migrates with writers on both hosts
{
	my $W = create_org(name => "Mig $TAG", slug => 'mig-' . lc $TAG);
	ok $W->{id}, 'an org to migrate' or BAIL_OUT('no org');
	is bulk_insert_contacts($W, 2000, tag => "c$TAG"), 2000, '  with 2,000 contacts';
	my $load = cluster_load(pause => 0.01, steps => [
		{ label => 'create', method => 'POST', path => "/orgs/$W->{id}/contacts", session => $admin,
		  json => sub ($i) { { name => "Writer $i $TAG", email => "w$i.$TAG\@example.test" } } },
	]);
	sleep 1;
	my $t0 = time;
	my $s = migration_start($admin, orgId => $W->{id}, direction => 'shared_to_dedicated', chunkSize => 200,
	    reason => "cross-host $TAG", timeout => 60);
	status_is $s, 202, 'POST /migration/start shared_to_dedicated on host 1';
	my $d = migration_wait($admin, $W->{id}, qr/^ready_for_cutover$/, 120);
	is $d->{status}, 'ready_for_cutover', sprintf('ready_for_cutover (%.1f s)', time - $t0) or diag json_encode($d);
	sleep 1;
	my $tf = time;
	my $f = on_host(2, POST => '/migration/finalize', session => $admin, json => { orgId => $W->{id} }, timeout => 60);
	status_is $f, 202, 'POST /migration/finalize on host 2';
	$d = migration_wait($admin, $W->{id}, qr/^completed$/, 120);
	is $d->{status}, 'completed', sprintf('completed (cut-over %.1f s, freezeMs %s)', time - $tf, $d->{freezeMs} // 'null')
	    or diag json_encode($d);
	sleep 1;
	my $sum = $load->stop;
	my @rows = @{ $sum->{rows} };
	my @acked = map { norm_id($_->{id}) } grep { $_->{ok} && $_->{id} } @rows;
	my %st;
	$st{ $_->{status} }++ for @rows;
	note 'writers during the migration: ' . join(', ', map { "$_ x$st{$_}" } sort keys %st);
	for my $h (1, 2) {
		ok scalar(grep { $_->{ok} && $_->{host} == $h && $_->{t} > $t0 && $_->{t} < $tf } @rows),
		    "  host $h acknowledged writes while the org was copied";
	}
	my @odd = grep { !$_->{ok} && !($_->{status} == 503 && $_->{body} =~ /org_migrating/) } @rows;
	ok !@odd, 'every write was acknowledged or refused with 503 org_migrating' or diag join "\n", @{ $sum->{failed} }[0 .. 9];
	my $db = $d->{dbName} // '';
	like $db, qr/^org_/, "the org's database: $db";
	my $in = join ',', map { "UNHEX('$_')" } @acked;
	for my $n (1 .. node_count()) {
		my %have = map { $_ => 1 } split /\n/, node_read($n, "SELECT LOWER(HEX(id)) FROM `$db`.contacts WHERE id IN ($in)") // '';
		my @lost = grep { !$have{$_} } @acked;
		ok !@lost, sprintf('node %d: every acknowledged write (%d) is in %s', $n, scalar @acked, $db) or diag "@lost[0 .. 9]";
		my $cnt = node_read($n, "SELECT COUNT(*) FROM `$db`.contacts WHERE org_id = UNHEX('" . org_hex($W) . "')") // '';
		chomp $cnt;
		is $cnt, 2000 + @acked, "  node $n: the target holds the 2,000 contacts and the writers' " . scalar @acked;
	}
	my $after = on_host(2, POST => "/orgs/$W->{id}/contacts", session => $admin,
	    json => { name => "After $TAG", email => "after.$TAG\@example.test" });
	status_is $after, 201, 'a write on host 2 after the cut-over';
	my $got = node_read(3, "SELECT COUNT(*) FROM `$db`.contacts WHERE id = UNHEX('" . norm_id(j($after)->{id}) . "')") // '';
	like $got, qr/^1$/m, '  lands in the dedicated database (read on node 3)';
}

# ---------------------------------------------------------------- write latency
# N sequential POSTs by curl on one connection (curl sets TCP_NODELAY: a
# client that sends a request's head and body in two writes without it waits
# for the server's delayed ACK, ~40 ms a POST whatever the database does).
sub curl_posts($h, $path, $s, $n) {
	my $cfg = cluster()->{tmp} . "/posts-$h.curl";
	open my $fh, '>', $cfg or die "$cfg: $!";
	my $url = 'https://127.0.0.1:' . cluster()->{hosts}[$h - 1]{port} . $path;
	for my $i (1 .. $n) {
		print {$fh} ($i > 1 ? "next\n" : ''), qq{url = "$url"\noutput = "/dev/null"\ninsecure\nsilent\nwrite-out = "%{http_code}\\n"\n},
		    qq{header = "Cookie: @{[session_cookie_header($s->{cookie})]}"\nheader = "X-CSRF-Token: $s->{csrf}"\n},
		    qq{header = "Content-Type: application/json"\ndata = "{\\"name\\":\\"Seq $i $TAG\\"}"\n};
	}
	close $fh;
	my $r = run_cmd(cmd => ['curl', '-K', $cfg], timeout => 120, tag => "curl-posts-$h");
	return ($r->{elapsed}, scalar grep { $_ eq '201' } split /\n/, $r->{out});
}

{
	my $N = 200;
	my ($el, $ok) = curl_posts(1, "/orgs/$org->{id}/contacts", $admin, $N);
	is $ok, $N, "$N sequential POSTs on host 1 acknowledged";
	my $http_ms = $el * 1000 / $N;
	# one INSERT a commit on node 1: replicated, then with wsrep_on=OFF for the session (same node,
	# same disk; a local table the other nodes never see)
	my $commits = sub ($wsrep) {
		my $sql = join ";\n", 'CREATE DATABASE IF NOT EXISTS latency_probe', 'USE latency_probe',
		    ($wsrep ? () : 'SET SESSION wsrep_on = OFF'),
		    "CREATE TABLE IF NOT EXISTS t$wsrep (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))",
		    'SET @t0 = NOW(6)', (map { "INSERT INTO t$wsrep (v) VALUES ('$_')" } 1 .. 500),
		    'SELECT TIMESTAMPDIFF(MICROSECOND, @t0, NOW(6)) / 500000';
		my $out = node_sql(1, $sql) // '';
		return $out =~ /([\d.]+)\s*\z/ ? $1 : -1;
	};
	my ($rep, $local) = ($commits->(1), $commits->(0));
	ok $rep > 0 && $local > 0, 'commit latency measured on node 1';
	note sprintf 'write latency: %.1f ms a POST on host 1 (%d sequential); a commit on node 1 %.3f ms replicated '
	    . 'to 3 nodes vs %.3f ms with wsrep_on=OFF', $http_ms, $N, $rep, $local;
	node_sql(1, 'DROP DATABASE latency_probe');
}

cluster_finish();
