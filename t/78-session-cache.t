#!/usr/bin/env perl
# The host cache of signed-in principals and legal acceptance states (README "Caching"), on two
# opsd hosts of one database (host A: the stack; host B: OpsdTest::Hosts):
#   - a session or API token works on both hosts; disabling its user with SQL ends it on both
#     within a second; what ends or changes it (logout, a session
#     flush, a role change, disabling the account, revoking a token, a password change) is
#     refused on the host that made the change at once and on the other within a second
#     (asserted loosely: within 3 s, polled every 50 ms);
#   - with LEGAL_ENFORCE=1 a publish on one host closes the gate on both, and an acceptance
#     on one host opens it on the other;
#   - a change whose feed row was deleted before any host read it is still applied (each host
#     forgets everything when it sees the hole in the ids);
#   - deleting an expired session, or one idle past @opsd_expiry_idle_min (the expiry job),
#     writes no feed row; deleting a valid one does;
#   - a warm session costs no query: /metrics counts session and legal acceptance cache hits
#     for (almost) every signed-in request, and the invalidations.
use v5.36;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;
use OpsdTest::Hosts;

start_stack(env => { LEGAL_ENFORCE => 1, OPSD_WORKERS => 2, OPSD_CACHE_POLL_MS => 250 });
my $B = start_host(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
my $org = create_org();

sub me_a($s) { return me($s)->{status} }
sub me_b($s) { return http_on($B, GET => '/auth/me', session => $s)->{status} }
sub bearer_a($t) { return http(GET => '/auth/me', bearer => $t)->{status} }
sub bearer_b($t) { return http_on($B, GET => '/auth/me', bearer => $t)->{status} }

# Waits (50 ms steps, 3 s at most) until $probe answers $want; true with the time it took.
sub within($probe, $want, $name) {
	my $t0 = time;
	my $got;
	while (1) {
		$got = $probe->();
		last if $got == $want || time - $t0 > 3;
		sleep 0.05;
	}
	my $took = time - $t0;
	ok $got == $want, sprintf('%s (%.2f s)', $name, $took) or diag "still $got after 3 s";
	return $got == $want;
}

# A member signed in on host A whose session is warm in both hosts' caches.
sub warm_member($label) {
	my $u = create_user(org => $org, role => 'member');
	my $s = login_ok($u, $label);
	is_deeply [map { me_a($s), me_b($s) } 1 .. 3], [(200) x 6], "  $label: the session works on A and B";
	return ($u, $s);
}

# ---------------------------------------------------------------- an operator's SQL
# (first: the feed is still empty, as on a new database)
{
	my ($u, $s) = warm_member('sql');
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), 0, '  the feed is empty';
	mysql("UPDATE users SET disabled_at = NOW(3) WHERE id = UNHEX('" . uuid_hex($u->{id}) . "')");
	is db_count('SELECT COUNT(*) FROM cache_invalidations WHERE kind = \'user\''), 1,
	    'disabling a user with SQL writes one row to the feed';
	within(sub { me_a($s) }, 401, '  A refuses the session within a second');
	within(sub { me_b($s) }, 401, '  B refuses it within a second');
}

# ---------------------------------------------------------------- logout, flush, role, disable
{
	my ($u, $s) = warm_member('logout');
	status_is http(POST => '/auth/logout', session => $s), 200, 'logout on A';
	is me_a($s), 401, '  A refuses the session at once';
	within(sub { me_b($s) }, 401, '  B refuses it within a second');
}
{
	my ($u, $s) = warm_member('flush');
	status_is http(POST => '/security/sessions/flush', session => $admin, json => { scope => 'user', id => $u->{id} }),
	    200, 'flush the user on A';
	is me_a($s), 401, '  A refuses the session at once';
	within(sub { me_b($s) }, 401, '  B refuses it within a second');
}
{
	my ($u, $s) = warm_member('org flush');
	status_is http_on($B, POST => '/security/sessions/flush', session => $admin,
	    json => { scope => 'org', id => $org->{id} }), 200, 'flush the org on B';
	is me_b($s), 401, '  B refuses the session at once';
	within(sub { me_a($s) }, 401, '  A refuses it within a second');
}
{
	my ($u, $s) = warm_member('role change');
	status_is http(PATCH => "/users/$u->{id}", session => $admin, json => { roles => ['org_admin'] }), 200,
	    'a new role on A';
	is me_a($s), 401, '  A refuses the session at once';
	within(sub { me_b($s) }, 401, '  B refuses it within a second');
	my $s2 = login_ok($u, '  the org_admin');
	is http_on($B, GET => "/orgs/$org->{id}/users", session => $s2)->{status}, 200,
	    '  B grants the new role\'s permission';
}
{
	my ($u, $s) = warm_member('disable');
	status_is http_on($B, POST => "/security/users/$u->{id}/disable", session => $admin, json => {}), 200,
	    'disable the user on B';
	is me_b($s), 401, '  B refuses the session at once';
	within(sub { me_a($s) }, 401, '  A refuses it within a second');
}
{
	my ($u, $s) = warm_member('password');
	my $other = login_ok($u, '  a second session of the same user');
	is me_b($other), 200, '  the second session is warm on B';
	my $new = 'Pw-new-' . time . '-cache-test';
	my $r = http(POST => '/auth/password', session => $s, json => { currentPassword => $u->{password}, newPassword => $new });
	status_is $r, 200, 'change the password on A';
	is me_a($other), 401, '  A refuses the other session at once';
	within(sub { me_b($other) }, 401, '  B refuses it within a second');
}

# ---------------------------------------------------------------- API tokens
{
	my ($u, $s) = warm_member('tokens');
	my $r = http(POST => '/auth/tokens', session => $s, json => { name => 'cache', scopes => ['tenant.read'] });
	status_is $r, 201, 'a token';
	my ($t, $id) = (j($r)->{token}, j($r)->{id});
	is_deeply [map { bearer_a($t), bearer_b($t) } 1 .. 3], [(200) x 6], '  the token works on A and B';
	status_is http(DELETE => "/auth/tokens/$id", session => $s), 200, 'its owner revokes it on A';
	is bearer_a($t), 401, '  A refuses the token at once';
	within(sub { bearer_b($t) }, 401, '  B refuses it within a second');

	$r = http(POST => '/auth/tokens', session => $s, json => { name => 'cache2', scopes => ['tenant.read'] });
	($t, $id) = (j($r)->{token}, j($r)->{id});
	is_deeply [map { bearer_a($t), bearer_b($t) } 1 .. 2], [(200) x 4], 'a second token works on A and B';
	status_is http_on($B, POST => '/security/tokens/revoke', session => $admin, json => { tokenId => $id }), 200,
	    'a security admin revokes it on B';
	is bearer_b($t), 401, '  B refuses the token at once';
	within(sub { bearer_a($t) }, 401, '  A refuses it within a second');
}

# ---------------------------------------------------------------- legal documents
# (/auth/me is exempt from the gate; the org's contacts are not)
sub contacts_a($s) { return http(GET => "/orgs/$org->{id}/contacts", session => $s)->{status} }
sub contacts_b($s) { return http_on($B, GET => "/orgs/$org->{id}/contacts", session => $s)->{status} }
sub pending_a($s) { return scalar @{ j(legal_status($s))->{pending} // [] } }
{
	my ($u, $s) = warm_member('legal');
	is_deeply [map { contacts_a($s), contacts_b($s), pending_a($s) } 1 .. 2], [(200, 200, 0) x 2],
	    '  its org\'s contacts on A and B, nothing pending';
	status_is legal_publish($admin, type => 'terms', version => 'c1', content => "Terms c1\n"), 201,
	    'publish terms c1 on A (LEGAL_ENFORCE=1)';
	check_error(http(GET => "/orgs/$org->{id}/contacts", session => $s), 403, 'legal_acceptance_required',
	    '  A applies the gate at once');
	within(sub { contacts_b($s) }, 403, '  B applies the gate within a second');
	is pending_a($s), 1, '  A: terms c1 pending';
	status_is legal_accept($admin, 'terms', 'c1'), 200, 'the admin accepts on A';
	# each worker of B reads the current documents again within a second of the publish
	within(sub { http_on($B, POST => '/legal/acceptance', session => $s, json => { type => 'terms', version => 'c1' })->{status} },
	    200, 'the member accepts on B');
	is contacts_b($s), 200, '  B lets the member through at once';
	within(sub { pending_a($s) }, 0, '  A\'s acceptance status shows it within a second');
	is contacts_a($s), 200, '  and A lets the member through';
}

# ---------------------------------------------------------------- rows deleted unseen
# A change whose feed row is gone before any host read it (deleted in its own transaction):
# the next row shows a hole after the last id each host applied, and each forgets everything.
{
	my ($u, $s) = warm_member('unseen');
	my ($v, $sv) = warm_member('bystander');
	mysql('BEGIN', "UPDATE users SET disabled_at = NOW(3) WHERE id = UNHEX('" . uuid_hex($u->{id}) . "')",
	    'DELETE FROM cache_invalidations', 'COMMIT');
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), 0, 'a user disabled with its feed row deleted';
	status_is http(POST => '/auth/logout', session => $sv), 200, '  another user logs out on A (the next row)';
	within(sub { me_a($s) }, 401, '  A refuses the disabled user\'s session within a second');
	within(sub { me_b($s) }, 401, '  B refuses it within a second');
}

# ---------------------------------------------------------------- expiry writes no row
# (what the jobs process deletes is refused by every cache already: only the deletion of a
# session still valid is news)
{
	my ($u, $s) = warm_member('expired');
	my $where = "WHERE user_id = UNHEX('" . uuid_hex($u->{id}) . "')";
	mysql("UPDATE sessions SET expires_at = NOW(3) - INTERVAL 1 SECOND $where");
	my $n = db_count('SELECT COUNT(*) FROM cache_invalidations');
	mysql("DELETE FROM sessions $where");
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), $n, 'deleting an expired session writes no row';

	my ($i, $si) = warm_member('idle');
	$where = "WHERE user_id = UNHEX('" . uuid_hex($i->{id}) . "')";
	mysql("UPDATE sessions SET last_seen_at = NOW(3) - INTERVAL 2 HOUR $where");
	$n = db_count('SELECT COUNT(*) FROM cache_invalidations');
	mysql('SET @opsd_expiry_idle_min = 60', "DELETE FROM sessions $where");
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), $n,
	    '  nor one idle past @opsd_expiry_idle_min (what the expiry job sets)';

	my ($w, $sw) = warm_member('idle, no variable');
	$where = "WHERE user_id = UNHEX('" . uuid_hex($w->{id}) . "')";
	mysql("UPDATE sessions SET last_seen_at = NOW(3) - INTERVAL 2 HOUR $where");
	$n = db_count('SELECT COUNT(*) FROM cache_invalidations');
	mysql("DELETE FROM sessions $where");
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), $n + 1, '  an idle one deleted by anyone else writes one';

	my ($f, $sf) = warm_member('valid');
	$where = "WHERE user_id = UNHEX('" . uuid_hex($f->{id}) . "')";
	$n = db_count('SELECT COUNT(*) FROM cache_invalidations');
	mysql('SET @opsd_expiry_idle_min = 60', "DELETE FROM sessions $where");
	is db_count('SELECT COUNT(*) FROM cache_invalidations'), $n + 1, '  a valid one writes one, variable or not';
	within(sub { me_b($sf) }, 401, '  and B refuses it within a second');
}

# ---------------------------------------------------------------- a warm session costs no query
{
	my ($u, $s) = warm_member('hot');
	status_is legal_accept($s, 'terms', 'c1'), 200, '  accepts terms c1';
	legal_status($s) for 1 .. 5;
	# (MariaDB's Com_select counts every SELECT of the server, the polls', the legal documents'
	# refresh and the jobs process's included: the cache's own counters say what was saved)
	my $hits = sub($cache) {
		my $m = http(GET => '/metrics')->{body};
		return $m =~ /^opsd_cache_lookups_total\{cache="$cache",result="hit"\} (\d+)$/m ? $1 : -1;
	};
	my ($h0, $l0) = ($hits->('session'), $hits->('legal_acceptance'));
	my $ok = 0;
	for (1 .. 100) { $ok++ if legal_status($s)->{status} == 200 }
	my ($h1, $l1) = ($hits->('session'), $hits->('legal_acceptance'));
	is $ok, 100, '100 GET /legal/acceptance/status: 200';
	# without the cache each costs two SELECTs (session, acceptances)
	cmp_ok $h1 - $h0, '>=', 90, '  at least 90 of them were session cache hits (' . ($h1 - $h0) . ')';
	cmp_ok $l1 - $l0, '>=', 90, '  and legal acceptance cache hits (' . ($l1 - $l0) . ')';
	my $mb = http_on($B, GET => '/metrics')->{body};
	like $mb, qr/^opsd_cache_invalidations_total\{origin="feed"\} [1-9]\d*$/m, 'B\'s /metrics counts invalidations read from the feed';
	like $mb, qr/^opsd_cache_lookups_total\{cache="token",result="hit"\} [1-9]\d*$/m, '  and token cache hits';
	like $mb, qr/^opsd_cache_lookups_total\{cache="legal_acceptance",result="miss"\} \d+$/m, '  and legal acceptance lookups';
}

stop_host($B);
finish();
