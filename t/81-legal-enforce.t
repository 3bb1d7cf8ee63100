#!/usr/bin/perl
# Legal enforcement (README "Runbook 1") with LEGAL_ENFORCE=1:
# after privacy and terms are published, a user's next non-legal request
# (cookie or bearer token, safe or unsafe) gets 403 legal_acceptance_required
# listing exactly what is pending, while /auth/*, /legal/*, /healthz, /readyz
# and the console still answer; accepting one document leaves the other
# pending, accepting both lets the user through; a new version of one type
# blocks again for that type only; a scheduled version blocks by itself once
# it takes effect; service principals are never blocked; the superadmin can
# publish (on /legal) while blocked elsewhere until they accept.
# Containment and the audit log (routes marked legalContainment) stay
# reachable for whoever holds their permission: a pending security_admin
# flushes (with tokens), revokes tokens, disables and enables a user, edits
# the blocklist, places a hold and reads /audit and /audit/verify, each answer
# carrying Legal-Pending, while /legal/acceptance/status still shows the
# documents pending and other routes stay blocked; a pending compliance
# officer holds and reads the audit log; a pending member is still blocked.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2, LEGAL_ENFORCE => 1 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

sub pending_of($r) {
	my $e = j($r)->{error};
	my $p = ref $e eq 'HASH' && ref $e->{details} eq 'HASH' ? $e->{details}{pending} : undef;
	return undef unless ref $p eq 'ARRAY';
	return [sort map { ($_->{type} // '?') . ' ' . ($_->{version} // '?') } @$p];
}
# 403 legal_acceptance_required whose details.pending is exactly @want ("type version")
sub blocked($r, $name, @want) {
	my $ok = check_error($r, 403, 'legal_acceptance_required', $name);
	$ok &= is_deeply pending_of($r), [sort @want], "$name: details.pending lists exactly @want";
	diag "body: $r->{body}" unless $ok;
	return $ok;
}
sub status_pending($s) { return [sort map { "$_->{type} $_->{version}" } @{ j(legal_status($s))->{pending} // [] }] }

my $org = create_org();
ok $org->{id}, 'an org' or diag $org->{res}{body};
# org_admin: GET /users and GET /orgs/:id are non-exempt routes the role may call
my $oa = create_user(role => 'org_admin', org => $org);
my $oa_s = login($oa->{email}, $oa->{password});
ok $oa_s->{cookie}, 'an org_admin logs in' or diag $oa_s->{res}{body};
my $pa = create_user(role => 'platform_admin');
my $pa_s = login($pa->{email}, $pa->{password});
ok $pa_s->{cookie}, 'a platform_admin logs in' or diag $pa_s->{res}{body};
# a service principal with a token (created before anything is published)
my $svc = create_user(role => 'org_admin', org => $org, service => 1);
ok $svc->{id}, 'a service user' or diag $svc->{res}{body};
my $svc_s = login($svc->{email}, $svc->{password});
my $svc_tok = j(http(POST => '/auth/tokens', session => $svc_s, json => { name => 'svc', scopes => ['users.read', 'orgs.read'] }))->{token};
ok $svc_tok, 'the service user has a users.read token' or diag $svc_s->{res}{body};
# a normal user's token: bearer requests are gated too
my $oa_tok = j(http(POST => '/auth/tokens', session => $oa_s, json => { name => 'oa', scopes => ['users.read'] }))->{token};
ok $oa_tok, "the org_admin has a users.read token";

# the routes chosen must be non-exempt in the route table
{
	my ($rc, $out, $err) = opsctl('routes');
	my %by = map { ("$_->{method} $_->{pattern}" => $_) } @{ json_decode($out) // [] };
	for my $k ('GET /users', 'GET /orgs/:id', 'POST /users') {
		is(($by{$k} // {})->{legalExempt}, JSON::PP::false, "opsctl routes: $k is not legalExempt");
	}
	for my $k ('GET /auth/me', 'GET /legal/:type', 'GET /legal/acceptance/status', 'POST /legal/acceptance', 'POST /legal',
	    'GET /healthz') {
		is(($by{$k} // {})->{legalExempt}, JSON::PP::true, "opsctl routes: $k is legalExempt");
	}
	for my $k ('POST /security/sessions/flush', 'POST /security/blocklist', 'GET /security/blocklist',
	    'DELETE /security/blocklist/:id', 'POST /security/users/:id/disable', 'POST /security/users/:id/enable',
	    'POST /security/tokens/revoke', 'POST /compliance/legal-hold', 'GET /audit', 'GET /audit/verify') {
		my $r = $by{$k} // {};
		is $r->{legalContainment}, JSON::PP::true, "opsctl routes: $k is legalContainment";
		is $r->{legalExempt}, JSON::PP::false, '  not legalExempt';
		ok defined $r->{permission}, '  and needs a permission';
	}
	is(($by{'GET /users'} // {})->{legalContainment}, JSON::PP::false, 'opsctl routes: GET /users is not legalContainment');
}

# the security and compliance roles, and a member with a session and a token
my $sec = create_user(role => 'security_admin');
my $sec_s = login($sec->{email}, $sec->{password});
ok $sec_s->{cookie}, 'a security_admin logs in' or diag $sec_s->{res}{body};
my $co = create_user(role => 'compliance_officer');
my $co_s = login($co->{email}, $co->{password});
ok $co_s->{cookie}, 'a compliance_officer logs in' or diag $co_s->{res}{body};
my $mem = create_user(role => 'member', org => $org);
my $mem_s = login($mem->{email}, $mem->{password});
ok $mem_s->{cookie}, 'a member logs in' or diag $mem_s->{res}{body};
my $mem_tok = j(http(POST => '/auth/tokens', session => $mem_s, json => { name => 'mem', scopes => ['tenant.read'] }));
ok $mem_tok->{token}, 'the member has a token';

# ============================================================ nothing published: nothing blocked
status_is http(GET => '/users', session => $oa_s), 200, 'nothing published yet: GET /users 200';
{
	my $s = j(legal_status($oa_s));
	is $s->{enforced}, JSON::PP::true, 'acceptance/status: enforced true (LEGAL_ENFORCE=1)';
	is_deeply $s->{pending}, [], 'nothing pending';
}

# ============================================================ the admin publishes without having accepted anything
status_is legal_publish($admin, type => 'privacy', version => 'p1', content => "Privacy p1\n"), 201,
    'the superadmin publishes privacy p1 (POST /legal is exempt)';
status_is legal_publish($admin, type => 'terms', version => 't1', content => "Terms t1\n"), 201,
    'and terms t1 (while privacy p1 is pending for them)';

# ============================================================ blocked until both are accepted
blocked(http(GET => '/users', session => $oa_s), 'org_admin GET /users', 'privacy p1', 'terms t1');
blocked(http(GET => "/orgs/$org->{id}", session => $oa_s), 'org_admin GET /orgs/:id', 'privacy p1', 'terms t1');
blocked(http(GET => '/users', bearer => $oa_tok), "GET /users with the org_admin's bearer token", 'privacy p1', 'terms t1');
{
	my $email = 'blocked-' . int(rand 1e9) . '@example.test';
	my $r = http(POST => '/users', session => $pa_s,
	    json => { email => $email, name => 'Nope', password => 'Pw-' . ('x' x 20), roles => ['member'], orgId => $org->{id} });
	blocked($r, 'platform_admin POST /users (unsafe, with CSRF)', 'privacy p1', 'terms t1');
	is mysql("SELECT COUNT(*) FROM users WHERE email = '$email'") // '', "0\n", 'the blocked POST created nothing';
}
check_error(http(GET => '/users'), 401, 'unauthenticated', 'GET /users without credentials: 401, not the legal gate');

# what still answers while blocked
status_is http(GET => '/auth/me', session => $oa_s), 200, 'blocked user: GET /auth/me 200';
status_is http(GET => '/auth/tokens', session => $oa_s), 200, 'blocked user: GET /auth/tokens 200';
status_is http(GET => '/legal/privacy', session => $oa_s), 200, 'blocked user: GET /legal/privacy 200';
status_is http(GET => '/legal/terms/versions', session => $oa_s), 200, 'blocked user: GET /legal/terms/versions 200';
status_is http(GET => '/legal/privacy'), 200, 'anonymous: GET /legal/privacy 200';
status_is http(GET => '/healthz', session => $oa_s), 200, 'blocked user: /healthz 200';
status_is http(GET => '/readyz', session => $oa_s), 200, 'blocked user: /readyz 200';
status_is http(GET => '/console/', session => $oa_s), 200, 'blocked user: the console (static, nginx) 200';
{
	my $r = legal_status($oa_s);
	status_is $r, 200, 'blocked user: GET /legal/acceptance/status 200';
	is j($r)->{enforced}, JSON::PP::true, 'enforced true';
	is_deeply status_pending($oa_s), ['privacy p1', 'terms t1'], 'status: privacy p1 and terms t1 pending';
}
status_is http(GET => '/users', bearer => $svc_tok), 200, 'the service user (bearer) is not blocked';

# ============================================================ containment while pending
{
	my $PENDING = 'privacy=p1, terms=t1';
	# the answer went through, and still asks for acceptance
	my $through = sub ($r, $status, $name) {
		my $ok = status_is($r, $status, "pending security role: $name");
		$ok &= is $r->{headers}{'legal-pending'}, $PENDING, "  Legal-Pending: $PENDING";
		diag "body: $r->{body}" unless $ok;
		return $r;
	};
	my $T = JSON::PP::true;
	$through->(http(POST => '/security/sessions/flush', session => $sec_s,
	    json => { scope => 'user', id => $mem->{id}, tokens => $T }), 200, 'security_admin flushes a user with tokens');
	check_error(me($mem_s), 401, 'unauthenticated', "  the member's session is gone");
	is http(GET => '/auth/me', bearer => $mem_tok->{token})->{status}, 401, "  and their token";
	$mem_s = login($mem->{email}, $mem->{password});
	$mem_tok = j(http(POST => '/auth/tokens', session => $mem_s, json => { name => 'mem2', scopes => ['tenant.read'] }));
	is j($through->(http(POST => '/security/tokens/revoke', session => $sec_s, json => { userId => $mem->{id} }), 200,
	    'security_admin revokes the member\'s tokens'))->{revoked}, 1, '  revoked 1';
	$through->(http(POST => "/security/users/$mem->{id}/disable", session => $sec_s, json => { reason => 'incident' }), 200,
	    'security_admin disables the member');
	$through->(http(POST => "/security/users/$mem->{id}/enable", session => $sec_s, json => {}), 200,
	    'security_admin enables the member');
	my $bl = $through->(http(POST => '/security/blocklist', session => $sec_s,
	    json => { cidr => '192.0.2.0/24', reason => 'incident' }), 201, 'security_admin blocks a range');
	$through->(http(GET => '/security/blocklist', session => $sec_s), 200, 'security_admin lists the blocklist');
	$through->(http(DELETE => '/security/blocklist/' . (j($bl)->{id} // uuid7_like()), session => $sec_s), 200,
	    'security_admin removes the range');
	$through->(http(POST => '/compliance/legal-hold', session => $sec_s,
	    json => { entity => 'users', ids => [$mem->{id}], hold => $T, reason => 'incident' }), 200, 'security_admin places a hold');
	$through->(http(GET => '/audit?limit=5', session => $sec_s), 200, 'security_admin reads /audit');
	$through->(http(GET => '/audit/verify', session => $sec_s), 200, 'security_admin verifies the audit chain');
	$through->(http(GET => '/audit?action=user.disabled', session => $co_s), 200, 'compliance_officer reads /audit');
	$through->(http(GET => '/audit/verify', session => $co_s), 200, 'compliance_officer verifies the chain');
	$through->(http(POST => '/compliance/legal-hold', session => $co_s,
	    json => { entity => 'users', ids => [$mem->{id}], hold => JSON::PP::false, reason => 'done' }), 200,
	    'compliance_officer releases the hold');
	$through->(http(GET => '/audit?limit=1', session => $admin), 200, 'the superadmin reads /audit before accepting');
	# everything else stays blocked, for them and for the member
	blocked(http(GET => '/users', session => $sec_s), 'pending security_admin GET /users', 'privacy p1', 'terms t1');
	blocked(http(GET => "/orgs/$org->{id}", session => $co_s), 'pending compliance_officer GET /orgs/:id', 'privacy p1', 'terms t1');
	blocked(http(GET => "/compliance/records/users/$mem->{id}", session => $sec_s),
	    'pending security_admin GET /compliance/records (not containment)', 'privacy p1', 'terms t1');
	$mem_s = login($mem->{email}, $mem->{password});
	ok $mem_s->{cookie}, 'the enabled member logs in';
	blocked(http(GET => "/orgs/$org->{id}/contacts", session => $mem_s), 'pending member GET /orgs/:id/contacts', 'privacy p1', 'terms t1');
	check_error(http(GET => '/audit', session => $mem_s), 403, 'forbidden', 'pending member GET /audit: 403 forbidden (no audit.read)');
	check_error(http(POST => '/security/sessions/flush', session => $mem_s, json => { scope => 'all' }), 403, 'forbidden',
	    'pending member flushing: 403 forbidden, nothing flushed');
	status_is me($sec_s), 200, '  (the security_admin is still signed in)';
	ok !exists http(GET => '/auth/me', session => $sec_s)->{headers}{'legal-pending'}, 'exempt routes carry no Legal-Pending';
	is_deeply status_pending($sec_s), ['privacy p1', 'terms t1'], 'acceptance/status still shows both pending for the security_admin';
	is_deeply status_pending($co_s), ['privacy p1', 'terms t1'], 'and for the compliance_officer';
	status_is legal_accept($sec_s, 'privacy', 'p1'), 200, 'the security_admin accepts privacy p1';
	my $r = http(GET => '/audit?limit=1', session => $sec_s);
	is $r->{headers}{'legal-pending'}, 'terms=t1', '  Legal-Pending now names terms=t1 only';
	status_is legal_accept($sec_s, 'terms', 't1'), 200, '  and accepts terms t1';
	$r = http(GET => '/audit?limit=1', session => $sec_s);
	status_is $r, 200, 'GET /audit after accepting';
	ok !exists $r->{headers}{'legal-pending'}, '  without Legal-Pending';
	status_is http(GET => '/users', session => $sec_s), 200, '  and GET /users passes';
}
status_is http(GET => "/orgs/$org->{id}", bearer => $svc_tok), 200, 'the service user: GET /orgs/:id 200';

# accept privacy: only terms left
status_is legal_accept($oa_s, 'privacy', 'p1'), 200, 'the org_admin accepts privacy p1';
blocked(http(GET => '/users', session => $oa_s), 'after accepting privacy: GET /users', 'terms t1');
is_deeply status_pending($oa_s), ['terms t1'], 'status: only terms t1 pending';
# accept terms: through
status_is legal_accept($oa_s, 'terms', 't1'), 200, 'the org_admin accepts terms t1';
status_is http(GET => '/users', session => $oa_s), 200, 'after accepting both: GET /users 200';
status_is http(GET => "/orgs/$org->{id}", session => $oa_s), 200, 'GET /orgs/:id 200';
status_is http(GET => '/users', bearer => $oa_tok), 200, 'and with the bearer token 200';
is_deeply status_pending($oa_s), [], 'status: nothing pending';
blocked(http(GET => '/users', session => $pa_s), 'the platform_admin (not accepted) is still blocked', 'privacy p1', 'terms t1');

# ============================================================ the superadmin is gated too
blocked(http(GET => '/users', session => $admin), 'superadmin GET /users before accepting', 'privacy p1', 'terms t1');
blocked(http(GET => '/orgs', session => $admin), 'superadmin GET /orgs before accepting', 'privacy p1', 'terms t1');
status_is legal_accept($admin, 'privacy', 'p1'), 200, 'the superadmin accepts privacy p1';
status_is legal_accept($admin, 'terms', 't1'), 200, 'and terms t1';
status_is http(GET => '/users', session => $admin), 200, 'superadmin GET /users 200 after accepting';

# ============================================================ a new version makes that type pending again
status_is legal_publish($admin, type => 'terms', version => 't2', content => "Terms t2\n"), 201, 'publish terms t2';
blocked(http(GET => '/users', session => $oa_s), 'org_admin after terms t2', 'terms t2');
blocked(http(GET => '/users', session => $admin), 'superadmin after terms t2', 'terms t2');
{
	my $s = j(legal_status($oa_s));
	is_deeply [map { "$_->{type} $_->{version}" } @{ $s->{pending} // [] }], ['terms t2'], 'status: terms t2 pending';
	is_deeply [sort map { "$_->{type} $_->{version}" } @{ $s->{accepted} // [] }], ['privacy p1'],
	    'status: accepted lists privacy p1 (current versions only)';
}
status_is http(GET => '/users', bearer => $svc_tok), 200, 'the service user is still not blocked';
check_error(legal_accept($oa_s, 'terms', 't1'), 409, 'conflict', 'accepting the old terms t1 again: 409');
status_is legal_accept($oa_s, 'terms', 't2'), 200, 'the org_admin accepts terms t2';
status_is http(GET => '/users', session => $oa_s), 200, 'GET /users 200 again';

# ============================================================ a scheduled version blocks once it takes effect
{
	my $eff = int(time) + 4;
	my $r = legal_publish($admin, type => 'privacy', version => 'p2', content => "Privacy p2\n", effectiveAt => rfc3339_at($eff));
	status_is $r, 201, 'publish privacy p2 effective in ~3 s';
	is j($r)->{current}, JSON::PP::false, 'p2 not current yet';
	status_is http(GET => '/users', session => $oa_s), 200, 'before it takes effect: GET /users still 200';
	ok time < $eff, '(checked before effectiveAt)';
	sleep 0.1 while time < $eff + 0.3;
	my @r = map { http(GET => '/users', session => $oa_s) } 1 .. 4;
	my @st = map { $_->{status} } @r;
	is_deeply \@st, [403, 403, 403, 403], 'after effectiveAt: GET /users 403 on every try (both workers)' or diag "@st";
	blocked($r[0], 'after privacy p2 took effect', 'privacy p2');
	status_is legal_accept($oa_s, 'privacy', 'p2'), 200, 'accept privacy p2';
	status_is http(GET => '/users', session => $oa_s), 200, 'GET /users 200';
}

# ============================================================ audit
{
	my @acc = audit_rows('legal.accepted');
	# org_admin p1 t1 t2 p2, superadmin p1 t1
	cmp_ok scalar(@acc), '>=', 6, 'audit has legal.accepted for every acceptance (' . scalar(@acc) . ')';
	cmp_ok scalar(audit_rows('legal.updated')), '==', 4, 'audit has legal.updated for the 4 publishes';
}

finish();
