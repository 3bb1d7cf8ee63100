#!/usr/bin/perl
# Runbook 4 step 3, containment of accounts, and the roles that can do their
# own runbook (README "Identity, sessions and roles"):
#   - a security_admin disables a user (POST /security/users/:id/disable): the
#     user's session and API token stop working at once and login fails; a
#     legal hold does not refuse it; enabling lets them log in again; repeats
#     answer changed:false and write nothing; user.disabled / user.enabled;
#   - POST /security/tokens/revoke by user, by token id and for everyone:
#     bearer requests answer 401 after, other users' tokens survive (user and
#     token scopes); security.tokens_revoked with scope and count, never a
#     token value;
#   - POST /security/sessions/flush {"tokens": true} revokes the scope's API
#     tokens too (and needs security.tokens_revoke); without it they survive;
#   - bad input (no selector, two, all:false, malformed and unknown ids, blank
#     reasons, the caller's own account) writes nothing; 403 for every role
#     without the permission;
#   - compliance roles list orgs and an org's users; platform_admin reads
#     /audit; the new events are counted in /metrics;
#   - opsctl user disable|enable, token revoke, sessions flush --tokens:
#     output, exit codes, the same events with actor cli:root.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

my $org = create_org();
ok $org->{id}, 'an org' or diag $org->{res}{body};
my %U = map { $_->[0] => create_user(role => $_->[1], ($_->[2] ? (org => $org) : ())) }
    [sec => 'security_admin'], [comp => 'compliance'], [compo => 'compliance_officer'], [pa => 'platform_admin'],
    [oa => 'org_admin', 1], [victim => 'member', 1], [other => 'member', 1], [held => 'member', 1],
    [gone => 'member', 1], [cli => 'member', 1];
my %S = map { $_ => login_ok($U{$_}, $_) } qw(sec comp compo pa oa victim other held);

sub token_of($s, $name = 'containment') {
	my $r = http(POST => '/auth/tokens', session => $s, json => { name => $name, scopes => ['tenant.read'] });
	is $r->{status}, 201, "$s->{email} creates a token ($name)" or diag $r->{body};
	return j($r);
}
sub bearer_status($tok) { return http(GET => '/auth/me', bearer => $tok->{token})->{status} }
sub disable($s, $id, %body) { return http(POST => "/security/users/$id/disable", session => $s, json => \%body) }
sub enable($s, $id, %body) { return http(POST => "/security/users/$id/enable", session => $s, json => \%body) }
sub revoke($s, $body) { return http(POST => '/security/tokens/revoke', session => $s, json => $body) }
sub live_tokens($u) {
	return db_count('SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL AND user_id = UNHEX(\''
	    . uuid_hex($u->{id}) . "')");
}
sub is_disabled($u) { return db_count("SELECT COUNT(*) FROM users WHERE disabled_at IS NOT NULL AND id = UNHEX('" . uuid_hex($u->{id}) . "')") }
sub last_event($action) { my @e = audit_payloads($action); return $e[-1] // {} }
sub actor_of($e) {
	return mysql("SELECT actor_label FROM audit_events WHERE seq = $e->{seq}") =~ s/\s+\z//r;
}
my @TOKENS;   # every token value made here: none may appear in the audit log

# ============================================================ the roles that do their own runbook
for my $who (qw(comp compo)) {
	my $r = http(GET => '/orgs', session => $S{$who});
	is $r->{status}, 200, "$who: GET /orgs 200 (orgs.read)" or diag $r->{body};
	ok((grep { norm_id($_->{id}) eq norm_id($org->{id}) } items($r)), "  and it lists the org");
	$r = http(GET => "/orgs/$org->{id}/users", session => $S{$who});
	is $r->{status}, 200, "$who: GET /orgs/:id/users 200 (users.read, runbook 2 step 1)" or diag $r->{body};
	ok((grep { norm_id($_->{id}) eq norm_id($U{victim}{id}) } items($r)), "  and it lists the org's member");
	status_is http(GET => "/users/$U{victim}{id}", session => $S{$who}), 200, "$who: GET /users/:id 200";
	check_error(http(POST => '/orgs', session => $S{$who}, json => { name => 'No', slug => "no-$who" }), 403, 'forbidden',
	    "$who: POST /orgs is still 403");
}
{
	my $r = http(GET => '/audit?action=user.created&limit=5', session => $S{pa});
	is $r->{status}, 200, 'platform_admin: GET /audit 200 (audit.read, runbook 1 acceptance)' or diag $r->{body};
	ok scalar(items($r)) >= 1, '  and it lists events';
	check_error(http(GET => '/audit/verify', session => $S{pa}), 403, 'forbidden', 'platform_admin: /audit/verify is still 403');
}

# ============================================================ who may contain
my $vtok = token_of($S{victim});
push @TOKENS, $vtok->{token};
{
	my $audits = audit_count();
	my $tokens = table_snapshot('api_tokens');
	for my $who (qw(pa comp compo oa victim)) {
		for my $c (["users/:id/disable", sub { disable($S{$who}, $U{other}{id}) }, 'security.users_disable'],
		    ["users/:id/enable", sub { enable($S{$who}, $U{other}{id}) }, 'security.users_disable'],
		    ['tokens/revoke', sub { revoke($S{$who}, { all => JSON::PP::true }) }, 'security.tokens_revoke']) {
			my $r = $c->[1]->();
			check_error($r, 403, 'forbidden', "$who: POST /security/$c->[0]");
			is((j($r)->{error}{details} // {})->{permission}, $c->[2], "  details.permission is $c->[2]");
		}
	}
	check_error(revoke(undef, { all => JSON::PP::true }), 401, 'unauthenticated', 'nobody: tokens/revoke');
	check_error(http(POST => "/security/users/$U{other}{id}/disable", session => $S{sec}, csrf => undef, json => {}), 403,
	    'csrf_failed', 'security_admin without X-CSRF-Token');
	is audit_count(), $audits, 'none of those wrote an audit event';
	is_deeply table_snapshot('api_tokens'), $tokens, 'nor touched a token';
	is is_disabled($U{other}), 0, 'nor disabled anyone';
	is bearer_status($vtok), 200, "the member's token still works";
}

# ============================================================ bad input writes nothing
{
	my $audits = audit_count();
	my $users = table_snapshot('users');
	my $tokens = table_snapshot('api_tokens');
	for my $id ('not-a-uuid', uuid7_like(), '0') {
		check_error(disable($S{sec}, $id), 404, 'not_found', "disable $id: 404");
		check_error(enable($S{sec}, $id), 404, 'not_found', "enable $id: 404");
	}
	my $v = $U{victim}{id};
	for my $bad ([{ reason => '   ' }, 'a blank reason'], [{ reason => 'x' x 501 }, 'a 501-character reason'],
	    [{ reason => 5 }, 'a numeric reason'], [{ reason => '' }, 'an empty reason'], [{ bogus => 1 }, 'an unknown field']) {
		my $r = disable($S{sec}, $v, %{ $bad->[0] });
		check_error($r, 400, 'validation_failed', "disable with $bad->[1]");
	}
	check_error(http(POST => "/security/users/$v/disable", session => $S{sec}, body => '[]',
	    headers => { 'Content-Type' => 'application/json' }), 400, 'invalid_json', 'disable with a JSON array body');
	check_error(http(POST => "/security/users/$v/disable", session => $S{sec}, body => 'reason=x',
	    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type', 'disable with a form body');
	check_error(disable($S{sec}, $U{sec}{id}), 403, 'forbidden', 'a security_admin disabling their own account');

	my $T = JSON::PP::true;
	for my $bad ([{}, 'no selector', [qw(userId all tokenId)]], [{ reason => 'x' }, 'only a reason', [qw(userId all tokenId)]],
	    [{ userId => $v, all => $T }, 'userId and all', [qw(userId all)]],
	    [{ userId => $v, tokenId => $vtok->{id} }, 'userId and tokenId', [qw(userId tokenId)]],
	    [{ all => $T, tokenId => $vtok->{id} }, 'all and tokenId', [qw(all tokenId)]],
	    [{ all => JSON::PP::false }, 'all: false', ['all']], [{ all => 'yes' }, 'all: "yes"', ['all']],
	    [{ userId => 'not-a-uuid' }, 'a malformed userId', ['userId']], [{ tokenId => 42 }, 'a numeric tokenId', ['tokenId']],
	    [{ userId => $v, reason => ' ' }, 'a blank reason', ['reason']], [{ userId => $v, reason => 'r' x 501 }, 'a long reason', ['reason']]) {
		my $r = revoke($S{sec}, $bad->[0]);
		check_error($r, 400, 'validation_failed', "tokens/revoke with $bad->[1]");
		fields_named($r, @{ $bad->[2] });
	}
	check_error(revoke($S{sec}, { userId => uuid7_like() }), 404, 'not_found', 'tokens/revoke of an unknown user: 404');
	check_error(revoke($S{sec}, { tokenId => uuid7_like() }), 404, 'not_found', 'tokens/revoke of an unknown token: 404');
	check_error(http(POST => '/security/sessions/flush', session => $S{sec}, json => { scope => 'all', tokens => 'yes' }), 400,
	    'validation_failed', 'flush with tokens: "yes"');
	for my $bad ([' ', 'a blank reason'], ['r' x 501, 'a 501-character reason'], [7, 'a numeric reason']) {
		my $r = http(POST => '/security/sessions/flush', session => $S{sec}, json => { scope => 'all', reason => $bad->[0] });
		check_error($r, 400, 'validation_failed', "flush with $bad->[1]");
		fields_named($r, 'reason');
	}
	is audit_count(), $audits, 'no bad request wrote an audit event';
	is_deeply table_snapshot('users'), $users, 'no user changed';
	is_deeply table_snapshot('api_tokens'), $tokens, 'no token changed';
	is bearer_status($vtok), 200, "the member's token still works";
	status_is me($S{victim}), 200, "and their session too";
}

# ============================================================ disable, enable
{
	my $r = disable($S{sec}, $U{victim}{id}, reason => 'laptop stolen, INC-7');
	is $r->{status}, 200, 'security_admin disables the member: 200' or diag $r->{body};
	is j($r)->{disabled}, JSON::PP::true, '  disabled: true';
	is j($r)->{changed}, JSON::PP::true, '  changed: true';
	is norm_id(j($r)->{id}), norm_id($U{victim}{id}), '  the answer is the user';
	check_error(me($S{victim}), 401, 'unauthenticated', "the disabled member's session at once");
	is bearer_status($vtok), 401, "the disabled member's API token at once: 401";
	is live_tokens($U{victim}), 0, '  its tokens are revoked in MariaDB';
	is db_count("SELECT COUNT(*) FROM sessions WHERE user_id = UNHEX('" . uuid_hex($U{victim}{id}) . "')"), 0,
	    '  and its sessions are gone';
	ok !login($U{victim}{email}, $U{victim}{password})->{cookie}, 'the disabled member cannot log in';
	my $e = last_event('user.disabled');
	is norm_id($e->{target_id}), norm_id($U{victim}{id}), 'user.disabled is about the member';
	is $e->{org}, org_hex($org), '  in its org';
	is_deeply $e->{p}, { reason => 'laptop stolen, INC-7', disabled => JSON::PP::true, credentialsRevoked => JSON::PP::true },
	    '  payload {reason, disabled, credentialsRevoked}';
	is actor_of($e), 'security_admin', '  actor security_admin';

	my $n = audit_count('user.%');
	$r = disable($S{sec}, $U{victim}{id});
	is $r->{status}, 200, 'disabling again: 200';
	is j($r)->{changed}, JSON::PP::false, '  changed: false';
	is audit_count('user.%'), $n, '  and no new event';

	$r = enable($S{sec}, $U{victim}{id}, reason => 'laptop recovered');
	is $r->{status}, 200, 'security_admin enables the member again: 200' or diag $r->{body};
	is j($r)->{disabled}, JSON::PP::false, '  disabled: false';
	is j($r)->{changed}, JSON::PP::true, '  changed: true';
	$S{victim} = login_ok($U{victim}, 'the enabled member');
	is bearer_status($vtok), 401, 'the revoked token stays revoked';
	$e = last_event('user.enabled');
	is norm_id($e->{target_id}), norm_id($U{victim}{id}), 'user.enabled is about the member';
	is_deeply $e->{p}, { reason => 'laptop recovered', disabled => JSON::PP::false }, '  payload {reason, disabled: false}';
	$n = audit_count('user.%');
	is j(enable($S{sec}, $U{victim}{id}))->{changed}, JSON::PP::false, 'enabling again: changed false';
	is audit_count('user.%'), $n, '  and no new event';

	# a legal hold does not stop containment
	status_is legal_hold($S{sec}, entity => 'users', ids => [$U{held}{id}], hold => 1, reason => 'litigation'), 200,
	    'security_admin places a hold on a user';
	$r = disable($S{sec}, $U{held}{id});
	is $r->{status}, 200, 'disabling the held user: 200 (a hold does not refuse containment)' or diag $r->{body};
	check_error(me($S{held}), 401, 'unauthenticated', "the held user's session");
	is_deeply last_event('user.disabled')->{p}, { disabled => JSON::PP::true, credentialsRevoked => JSON::PP::true },
	    '  payload without a reason when none was given';
	status_is enable($S{sec}, $U{held}{id}), 200, 'and enabling it: 200';

	# a deleted account stays ended; a platform user can be contained too
	status_is http(DELETE => "/orgs/$org->{id}/users/$U{gone}{id}", session => $admin), 204, 'the superadmin deletes a member';
	check_error(enable($S{sec}, $U{gone}{id}), 409, 'conflict', 'enabling a deleted user: 409');
	$r = disable($S{sec}, $U{pa}{id});
	is $r->{status}, 200, 'security_admin disables a platform_admin (containment is not a grant)' or diag $r->{body};
	check_error(me($S{pa}), 401, 'unauthenticated', "the platform_admin's session");
	status_is enable($S{sec}, $U{pa}{id}), 200, 'and enables them again';
	$S{pa} = login_ok($U{pa}, 'the platform_admin');
}

# ============================================================ revoke tokens
{
	my @v = map { token_of($S{victim}, "v$_") } 1 .. 2;
	my $o = token_of($S{other});
	push @TOKENS, map { $_->{token} } @v, $o;
	my $r = revoke($S{sec}, { userId => $U{victim}{id}, reason => 'token leaked in a log' });
	is $r->{status}, 200, "revoke the member's tokens: 200" or diag $r->{body};
	is_deeply [j($r)->{scope}, j($r)->{revoked}], ['user', 2], '  scope user, revoked 2';
	is bearer_status($_), 401, "  the member's token $_->{name}: 401" for @v;
	is bearer_status($o), 200, "  another user's token still works";
	status_is me($S{victim}), 200, "  the member's session is not touched";
	my $e = last_event('security.tokens_revoked');
	is_deeply [$e->{target_type}, norm_id($e->{target_id}), $e->{org}], ['user', norm_id($U{victim}{id}), org_hex($org)],
	    'security.tokens_revoked: target the user, in its org';
	is_deeply $e->{p}, { scope => 'user', revoked => 2, reason => 'token leaked in a log' }, '  payload {scope, revoked, reason}';
	is actor_of($e), 'security_admin', '  actor security_admin';
	$r = revoke($S{sec}, { userId => $U{victim}{id} });
	is j($r)->{revoked}, 0, 'revoking again: 200, revoked 0';

	$r = revoke($S{sec}, { tokenId => $o->{id} });
	is $r->{status}, 200, 'revoke one token by id: 200' or diag $r->{body};
	is_deeply [j($r)->{scope}, j($r)->{revoked}], ['token', 1], '  scope token, revoked 1';
	is bearer_status($o), 401, '  that token: 401';
	$e = last_event('security.tokens_revoked');
	is_deeply [$e->{target_type}, norm_id($e->{target_id})], ['api_token', norm_id($o->{id})], '  event about the token';
	is_deeply $e->{p}, { scope => 'token', revoked => 1, userId => $U{other}{id} }, '  payload names its owner, not its value';

	my @all = (token_of($S{victim}, 'a1'), token_of($S{other}, 'a2'), token_of($S{sec}, 'a3'));
	push @TOKENS, map { $_->{token} } @all;
	$r = revoke($S{sec}, { all => JSON::PP::true, reason => 'signing key rotated' });
	is $r->{status}, 200, 'revoke every token: 200' or diag $r->{body};
	is j($r)->{scope}, 'all', '  scope all';
	cmp_ok j($r)->{revoked}, '>=', 3, '  revoked >= 3';
	is bearer_status($_), 401, "  token $_->{name}: 401" for @all;
	is db_count('SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL'), 0, '  no live token is left';
	$e = last_event('security.tokens_revoked');
	ok !defined $e->{target_type} && !defined $e->{org}, '  the event has no target and no org';
	is $e->{p}{revoked}, j($r)->{revoked}, '  and the same count';
}

# ============================================================ flush with tokens
{
	my $t = token_of($S{other});
	push @TOKENS, $t->{token};
	my $r = http(POST => '/security/sessions/flush', session => $S{sec}, json => { scope => 'user', id => $U{other}{id} });
	is $r->{status}, 200, 'flush one user without tokens: 200';
	ok !exists j($r)->{tokensRevoked}, '  no tokensRevoked in the answer';
	is bearer_status($t), 200, '  the API token survives a plain flush';
	is last_event('security.sessions_flushed')->{p}{tokens}, JSON::PP::false, '  the event says tokens: false';
	$S{other} = login_ok($U{other}, 'the member again');

	$r = http(POST => '/security/sessions/flush', session => $S{sec},
	    json => { scope => 'user', id => $U{other}{id}, tokens => JSON::PP::true });
	is $r->{status}, 200, 'flush one user with tokens: true: 200' or diag $r->{body};
	is_deeply [j($r)->{flushed}, j($r)->{tokensRevoked}], [1, 1], '  flushed 1, tokensRevoked 1';
	check_error(me($S{other}), 401, 'unauthenticated', '  the session is gone');
	is bearer_status($t), 401, '  and the API token answers 401';
	my $e = last_event('security.sessions_flushed');
	is_deeply $e->{p}, { scope => 'user', flushed => 1, tokens => JSON::PP::true, tokensRevoked => 1 },
	    '  payload {scope, flushed, tokens, tokensRevoked}';
	$S{other} = login_ok($U{other}, 'the member once more');
	$r = http(POST => '/security/sessions/flush', session => $S{sec}, json => { scope => 'user', id => $U{other}{id}, reason => 'INC-7 shared laptop' });
	is $r->{status}, 200, 'flush one user with a reason: 200' or diag $r->{body};
	is_deeply last_event('security.sessions_flushed')->{p}, { scope => 'user', flushed => 1, tokens => JSON::PP::false, reason => 'INC-7 shared laptop' },
	    '  payload {scope, flushed, tokens, reason}';

	# a token that may flush sessions but not revoke tokens
	my $ft = j(http(POST => '/auth/tokens', session => $S{sec}, json => { name => 'flush-only', scopes => ['security.sessions_flush'] }));
	push @TOKENS, $ft->{token};
	my $audits = audit_count();
	$r = http(POST => '/security/sessions/flush', bearer => $ft->{token}, json => { scope => 'user', id => $U{other}{id}, tokens => JSON::PP::true });
	check_error($r, 403, 'forbidden', 'a flush-only token flushing with tokens: 403');
	is((j($r)->{error}{details} // {})->{permission}, 'security.tokens_revoke', '  details.permission security.tokens_revoke');
	is audit_count(), $audits, '  nothing written';
	status_is http(POST => '/security/sessions/flush', bearer => $ft->{token}, json => { scope => 'user', id => $U{other}{id} }), 200,
	    '  the same token flushes sessions alone: 200';
}

# ============================================================ metrics count the new events
{
	my $m = http(GET => '/metrics')->{body};
	for my $a (qw(user.disabled user.enabled security.tokens_revoked)) {
		my ($n) = $m =~ /^opsd_audit_events_total\{action="\Q$a\E"\} (\d+)/m;
		ok(($n // 0) >= 1, "opsd_audit_events_total{action=\"$a\"} counts the events (" . ($n // 'none') . ')');
	}
}

# ============================================================ opsctl
{
	my $u = $U{cli};
	my $s = login_ok($u, 'the opsctl member');
	my $t = token_of($s);
	push @TOKENS, $t->{token};
	my ($rc, $out, $err) = opsctl(qw(user disable --id), $u->{id}, '--reason', 'phished');
	is $rc, 0, 'opsctl user disable exits 0' or diag $err;
	like $out, qr/^disabled \Q$u->{id}\E\b/m, '  it says so';
	check_error(me($s), 401, 'unauthenticated', '  the session ends');
	is bearer_status($t), 401, '  and the token';
	ok !login($u->{email}, $u->{password})->{cookie}, '  login fails';
	my $e = last_event('user.disabled');
	is norm_id($e->{target_id}), norm_id($u->{id}), '  user.disabled';
	is actor_of($e), 'cli:root', '  with actor cli:root';
	is $e->{p}{reason}, 'phished', '  and the reason';
	($rc, $out) = opsctl(qw(user disable --id), $u->{id});
	is $rc, 0, 'opsctl user disable again exits 0';
	like $out, qr/already disabled/, '  "already disabled"';
	($rc, $out, $err) = opsctl(qw(user enable --id), $u->{id});
	is $rc, 0, 'opsctl user enable exits 0' or diag $err;
	like $out, qr/^enabled \Q$u->{id}\E/m, '  it says so';
	is actor_of(last_event('user.enabled')), 'cli:root', '  user.enabled by cli:root';
	$s = login_ok($u, 'the member enabled by opsctl');

	my $audits = audit_count();
	for my $bad ([[qw(user disable)], 2, 'without --id'], [[qw(user disable --id not-a-uuid)], 2, 'with a malformed id'],
	    [[qw(user disable --id), $u->{id}, '--reason', '  '], 2, 'with a blank reason'],
	    [[qw(user disable --id), uuid7_like()], 1, 'of an unknown user'], [[qw(user enable --id), uuid7_like()], 1, 'enable of an unknown user'],
	    [[qw(user disable --id), $u->{id}, '--force'], 2, 'with an unknown option'],
	    [[qw(token revoke)], 2, 'token revoke without a selector'], [[qw(token revoke --all --user), $u->{id}], 2, 'with two selectors'],
	    [[qw(token revoke --user nope)], 2, 'with a malformed user'], [[qw(token revoke --id), uuid7_like()], 1, 'of an unknown token'],
	    [[qw(token revoke --user), uuid7_like()], 1, 'of an unknown user'],
	    [[qw(token revoke --all --reason), ''], 2, 'with an empty reason']) {
		my ($brc, $bout, $berr) = opsctl(@{ $bad->[0] });
		is $brc, $bad->[1], "opsctl @{ $bad->[0] }: exit $bad->[1] ($bad->[2])" or diag "$bout$berr";
		like $berr, qr/^opsctl: /m, '  one line on stderr' if $brc;
	}
	is audit_count(), $audits, 'none of those wrote an audit event';

	my @t = map { token_of($s, "cli$_") } 1 .. 2;
	push @TOKENS, map { $_->{token} } @t;
	($rc, $out, $err) = opsctl(qw(token revoke --user), $u->{id}, '--reason', 'leaked');
	is $rc, 0, 'opsctl token revoke --user exits 0' or diag $err;
	like $out, qr/^revoked 2 API tokens \(user \Q$u->{id}\E\)/m, '  "revoked 2 API tokens (user …)"';
	is bearer_status($_), 401, "  token $_->{name}: 401" for @t;
	$e = last_event('security.tokens_revoked');
	is actor_of($e), 'cli:root', '  security.tokens_revoked by cli:root';
	is_deeply $e->{p}, { scope => 'user', revoked => 2, reason => 'leaked' }, '  payload {scope, revoked, reason}';
	my $one = token_of($s, 'one');
	push @TOKENS, $one->{token};
	($rc, $out) = opsctl(qw(token revoke --id), $one->{id});
	is $rc, 0, 'opsctl token revoke --id exits 0';
	like $out, qr/^revoked 1 API tokens \(token /m, '  revoked 1';
	is bearer_status($one), 401, '  that token: 401';
	my $last = token_of($s, 'last');
	push @TOKENS, $last->{token};
	($rc, $out) = opsctl(qw(token revoke --all));
	is $rc, 0, 'opsctl token revoke --all exits 0';
	like $out, qr/^revoked [1-9]\d* API tokens \(all\)/m, '  revoked N (all)';
	is bearer_status($last), 401, '  the last token: 401';

	my $ft = token_of($s, 'flush');
	push @TOKENS, $ft->{token};
	($rc, $out, $err) = opsctl(qw(sessions flush --tokens --user), $u->{id});
	is $rc, 0, 'opsctl sessions flush --user --tokens exits 0' or diag $err;
	like $out, qr/^flushed 1 sessions \(user\)\nrevoked 1 API tokens$/m, '  flushed 1 sessions, revoked 1 API tokens';
	check_error(me($s), 401, 'unauthenticated', '  the session ends');
	is bearer_status($ft), 401, '  and the token';
	is_deeply last_event('security.sessions_flushed')->{p}, { scope => 'user', flushed => 1, tokens => JSON::PP::true, tokensRevoked => 1 },
	    '  security.sessions_flushed says tokens and how many';
	($rc, undef, $err) = opsctl(qw(sessions flush --user), $u->{id}, '--reason', ' ');
	is $rc, 2, 'opsctl sessions flush with a blank --reason exits 2';
	like $err, qr/--reason must be/, '  and says why';
	($rc, $out, $err) = opsctl(qw(sessions flush --user), $u->{id}, '--reason', 'INC-7');
	is $rc, 0, 'opsctl sessions flush --user --reason exits 0' or diag $err;
	is last_event('security.sessions_flushed')->{p}{reason}, 'INC-7', '  the event carries the reason';

	($rc, $out) = opsctl('help');
	like $out, qr/^  user disable\s.*--id ID/m, 'opsctl help lists user disable';
	like $out, qr/^  user enable\s/m, '  user enable';
	like $out, qr/^  token revoke\s.*--user ID \| --all \| --id TOKEN_ID/m, '  token revoke';
	like $out, qr/^  sessions flush\s.*--tokens/m, '  and sessions flush --tokens';
}

# ============================================================ no token value in the audit log
{
	my $text = audit_text();
	my @hits = grep { index($text, $_) >= 0 } grep { defined && length } @TOKENS;
	is scalar(@hits), 0, 'no API token value appears in audit_events (' . scalar(@TOKENS) . ' checked)';
	my (undef, $v) = audit_verify($admin);
	is $v->{ok}, JSON::PP::true, 'the audit chain verifies';
}

finish();
