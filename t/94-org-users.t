#!/usr/bin/perl
# An org's users (README "Identity, sessions and roles", "Runbook 2"):
# /orgs/:orgId/users CRUD as the superadmin, a platform_admin and an org_admin of the org — create (201,
# the /users/:id shape, no secret), list with cursor paging (only the org's
# live users), get, PATCH of name, roles and disabled (sessions revoked on
# a role change or a disable; not one's own roles), DELETE as a soft delete
# (204, then 404 on the org's path, the login fails, /users/:id still shows
# it disabled, archived with reason "deleted", audit user.deleted without
# PII). Scoping: another org's admin gets 404 for the org and its users, a
# member 403 on every write, org roles only (platform roles are a 400 on
# "roles"), a user holding roles the caller cannot grant is 403, deleting
# oneself is 403; duplicate emails 409; bad input in the README "API" envelope
# with nothing written; malformed and unknown ids 404. Legal hold (set
# through POST /compliance/legal-hold): a new name is 409 legal_hold on both
# /orgs/:orgId/users/:id and /users/:id and nothing changes, while roles and
# disabled stay changeable; DELETE of a held user (or of a user of a held
# org) is 409 and the user still signs in and is listed; after the release
# DELETE works. Subject export of users and orgs through GET
# /compliance/export, redacted after strip-PII with the original values
# nowhere in the answer; no PII written here reaches audit_events or log/.
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(encode_utf8);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
my $R = run_tag();
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my $TOMB = qr/^redacted\+[0-9a-f]{16}\@redacted\.invalid$/;
my $RED = '[redacted]';
my @USER_KEYS = qw(id email name roles orgId service disabled createdAt updatedAt);

sub email_count($email) { return db_count("SELECT COUNT(*) FROM users WHERE email = '" . lc($email) . "'") }
sub list_ids($s, $org) {
	my $all = tenant_list_all($s, $org, 'users', limit => 2);
	ok !@{ $all->{errors} }, "  GET /orgs/:orgId/users pages all answer 200 ($all->{pages} pages)" or diag join "\n", @{ $all->{errors} };
	return { map { ($_->{id} => $_) } @{ $all->{items} } };
}

my $seq = 0;
# A body for POST /orgs/:orgId/users with distinctive values.
sub new_body(%o) {
	my $n = ++$seq;
	my %b = (
		email => pii("email $n", $o{email} // "person$n.$R\@org-users.example"),
		name => pii("name $n", $o{name} // "Pat Person$n $R"),
		password => pii("password $n", 'Pw-' . $R . "-org-user-$n"),
		roles => $o{roles} // ['member'],
	);
	delete $b{password} if $o{no_password};
	return \%b;
}

# ============================================================ orgs and people
my $A = create_org(name => pii('org A', "Users Org A $R"));
my $B = create_org(name => pii('org B', "Users Org B $R"));
ok $A->{id} && $B->{id}, 'two orgs A and B' or BAIL_OUT('cannot create orgs');
my %U = (
	adminA => create_user(role => 'org_admin', org => $A),
	memA => create_user(role => 'member', org => $A),
	adminB => create_user(role => 'org_admin', org => $B),
	memB => create_user(role => 'member', org => $B),
	pa => create_user(role => 'platform_admin'),
	comp => create_user(role => 'compliance'),
	sec => create_user(role => 'security_admin'),
);
my %S = map { ($_ => login_ok($U{$_}, $_)) } sort keys %U;
my ($adminA, $memA, $adminB, $pa, $comp) = @S{qw(adminA memA adminB pa comp)};

# ============================================================ create
my %NEW;   # label => {body, json}
{
	my @cases = (
		['super', $admin, $A, new_body(roles => ['member'])],
		['adminA', $adminA, $A, new_body(roles => ['org_admin'])],
		['adminA2', $adminA, $A, new_body(roles => ['member', 'org_admin'])],
		['pa', $pa, $B, new_body(roles => ['member'])],
		['nopw', $adminA, $A, new_body(roles => ['member'], no_password => 1)],
	);
	for my $c (@cases) {
		my ($l, $s, $org, $body) = @$c;
		my $r = tenant_create($s, $org, 'users', $body);
		status_is $r, 201, "POST /orgs/:orgId/users as $l 201";
		my $u = j($r);
		my @miss = grep { !exists $u->{$_} } @USER_KEYS;
		ok !@miss, '  has ' . join(' ', @USER_KEYS) or diag "missing @miss: $r->{body}";
		like $u->{id} // '', $UUID, '  id is a UUID';
		is $u->{email}, $body->{email}, '  email';
		is $u->{name}, $body->{name}, '  name';
		is_deeply [sort @{ $u->{roles} // [] }], [sort @{ $body->{roles} }], '  roles';
		is $u->{orgId}, $org->{id}, "  orgId is the path's org";
		is $u->{disabled}, JSON::PP::false, '  not disabled';
		is $u->{service}, JSON::PP::false, '  not a service principal';
		ok $r->{body} !~ /password|scrypt|hash/i, '  no password or hash in the answer' or diag $r->{body};
		my $g = http(GET => "/users/$u->{id}", session => $admin);
		is_deeply j($g), $u, '  the same JSON as GET /users/:id' or diag $g->{body};
		$NEW{$l} = { body => $body, json => $u };
	}
	my $s = login_ok($NEW{adminA}{body}, 'a user created by the org_admin');
	my $me = me($s);
	ok((grep { $_ eq 'org_users.manage' } @{ j($me)->{permissions} // [] }), '  as an org_admin it holds org_users.manage')
	    or diag $me->{body};
	my $row = db_row('users', $NEW{super}{json}{id});
	like $row->{password_hash} // '', qr/^\$scrypt\$/, '(the password is stored hashed, as through /users)';
	is db_row('users', $NEW{nopw}{json}{id})->{password_hash}, undef, 'without password: no hash stored';
	my @created = db_rows("SELECT target_id, LOWER(HEX(org_id)) AS org FROM audit_events WHERE action = 'user.created'");
	my %by = map { (norm_id($_->{target_id}) => $_) } @created;
	ok !(grep { !$by{ norm_id($_->{json}{id}) } } values %NEW), 'user.created audited for each';
	is $by{ norm_id($NEW{pa}{json}{id}) }{org}, norm_id($B->{id}), '  with the org of the path';
}

# ============================================================ list and get
{
	my $ids = list_ids($adminA, $A);
	my @wantA = ($U{adminA}{id}, $U{memA}{id}, map { $NEW{$_}{json}{id} } qw(super adminA adminA2 nopw));
	ok !(grep { !$ids->{$_} } @wantA), 'the org_admin of A lists every user of A' or diag json_encode([keys %$ids]);
	ok !(grep { ($_->{orgId} // '') ne $A->{id} } values %$ids), '  and only users of A';
	ok !$ids->{ $NEW{pa}{json}{id} } && !$ids->{ $U{adminB}{id} }, '  none of B';
	my $one = tenant_list($adminA, $A, 'users');
	status_is $one, 200, 'GET /orgs/A/users without limit 200';
	ok exists j($one)->{nextCursor} && !defined j($one)->{nextCursor}, '  nextCursor null';
	is_deeply [map { $_->{id} } @{ j($one)->{items} // [] }], [sort @wantA], '  the same users, by id' or diag $one->{body};
	my $sup = list_ids($admin, $B);
	ok $sup->{ $NEW{pa}{json}{id} } && $sup->{ $U{adminB}{id} } && !$sup->{ $U{adminA}{id} }, 'the superadmin lists B: B users only';

	my $g = tenant_get($adminA, $A, 'users', $NEW{super}{json}{id});
	status_is $g, 200, 'GET /orgs/A/users/:id as the org_admin of A 200';
	is_deeply j($g), j(http(GET => "/users/$NEW{super}{json}{id}", session => $admin)), '  the /users/:id JSON';
	status_is tenant_get($S{sec}, $A, 'users', $U{memA}{id}), 200, 'security_admin (users.read) reads users of A';
	status_is tenant_list($pa, $A, 'users'), 200, 'platform_admin lists users of A';
	check_error(tenant_list($adminA, $A, 'users', limit => 0), 400, 'validation_failed', 'GET /orgs/A/users?limit=0');
	check_error(tenant_list($adminA, $A, 'users', cursor => 'nope!'), 400, 'validation_failed', 'GET /orgs/A/users with a garbage cursor');
}

# ============================================================ patch: name, roles, disabled
{
	my $t = $NEW{super};
	my $ts = login_ok($t->{body}, 'the target');
	my $newname = pii('renamed', "Renamed Person $R");
	my $r = tenant_patch($adminA, $A, 'users', $t->{json}{id}, { name => $newname });
	status_is $r, 200, 'PATCH /orgs/A/users/:id {name} as the org_admin 200';
	is j($r)->{name}, $newname, '  renamed';
	is_deeply j($r)->{roles}, $t->{json}{roles}, '  roles unchanged';
	status_is me($ts), 200, "  a rename keeps the user's session";

	$r = tenant_patch($adminA, $A, 'users', $t->{json}{id}, { roles => ['org_admin'] });
	status_is $r, 200, 'PATCH {roles: [org_admin]} 200';
	is_deeply j($r)->{roles}, ['org_admin'], '  roles changed';
	check_error(me($ts), 401, 'unauthenticated', "  the user's session ends with the role change");

	$ts = login_ok($t->{body}, 'the target again');
	$r = tenant_patch($pa, $A, 'users', $t->{json}{id}, { disabled => JSON::PP::true });
	status_is $r, 200, 'PATCH {disabled: true} as platform_admin 200';
	is j($r)->{disabled}, JSON::PP::true, '  disabled';
	check_error(me($ts), 401, 'unauthenticated', '  the session ends');
	is login($t->{body}{email}, $t->{body}{password})->{status}, 401, '  and the user cannot log in';
	$r = tenant_patch($adminA, $A, 'users', $t->{json}{id}, { disabled => JSON::PP::false, roles => ['member'] });
	status_is $r, 200, 'PATCH {disabled: false, roles: [member]} 200';
	login_ok($t->{body}, '  the enabled user');
	my @upd = db_rows("SELECT action, LOWER(HEX(org_id)) AS org, payload FROM audit_events WHERE action IN ('user.updated', 'user.disabled')"
	    . " AND target_id = '$t->{json}{id}' ORDER BY seq");
	is_deeply [map { $_->{action} } @upd], [qw(user.updated user.updated user.disabled user.updated)], 'audit: user.updated ×2, user.disabled, user.updated';
	ok !(grep { ($_->{org} // '') ne norm_id($A->{id}) } @upd), '  each with the org of the user';

	# own roles and disabling oneself: 403; one's own name is fine
	my $self = $U{adminA}{id};
	check_error(tenant_patch($adminA, $A, 'users', $self, { roles => ['member'] }), 403, 'forbidden', 'the org_admin changing its own roles');
	check_error(tenant_patch($adminA, $A, 'users', $self, { disabled => JSON::PP::true }), 403, 'forbidden', 'the org_admin disabling itself');
	status_is tenant_patch($adminA, $A, 'users', $self, { name => pii('self name', "Self Renamed $R") }), 200, 'the org_admin renaming itself 200';
	status_is me($adminA), 200, "  the org_admin's session is intact";
}

# ============================================================ scoping and permissions
{
	my $b = $NEW{pa}{json};
	my $snapB = db_row('users', $b->{id});
	my $nB = db_count("SELECT COUNT(*) FROM users WHERE org_id = UNHEX('" . uuid_hex($B->{id}) . "')");
	check_error(tenant_list($adminA, $B, 'users'), 404, 'not_found', 'org_admin of A: GET /orgs/B/users');
	check_error(tenant_get($adminA, $B, 'users', $b->{id}), 404, 'not_found', 'org_admin of A: GET /orgs/B/users/:id');
	my $intr = new_body();
	check_error(tenant_create($adminA, $B, 'users', $intr), 404, 'not_found', 'org_admin of A: POST /orgs/B/users');
	is email_count($intr->{email}), 0, '  no user was created';
	check_error(tenant_patch($adminA, $B, 'users', $b->{id}, { name => "Intruder $R" }), 404, 'not_found', 'org_admin of A: PATCH /orgs/B/users/:id');
	check_error(tenant_delete($adminA, $B, 'users', $b->{id}), 404, 'not_found', 'org_admin of A: DELETE /orgs/B/users/:id');
	# B's user through A's path, even for the superadmin
	for my $c (['org_admin of A', $adminA], ['superadmin', $admin]) {
		my ($l, $s) = @$c;
		check_error(tenant_get($s, $A, 'users', $b->{id}), 404, 'not_found', "$l: GET /orgs/A/users/<B's user>");
		check_error(tenant_patch($s, $A, 'users', $b->{id}, { name => "Intruder $R" }), 404, 'not_found', "$l: PATCH /orgs/A/users/<B's user>");
		check_error(tenant_delete($s, $A, 'users', $b->{id}), 404, 'not_found', "$l: DELETE /orgs/A/users/<B's user>");
	}
	is_deeply db_row('users', $b->{id}), $snapB, "B's user is unchanged in MariaDB";
	is db_count("SELECT COUNT(*) FROM users WHERE org_id = UNHEX('" . uuid_hex($B->{id}) . "')"), $nB, 'B has no new user';

	# a member reads nothing and writes nothing
	my $m = new_body();
	check_error(tenant_create($memA, $A, 'users', $m), 403, 'forbidden', 'member of A: POST /orgs/A/users');
	is email_count($m->{email}), 0, '  no user was created';
	check_error(tenant_patch($memA, $A, 'users', $NEW{adminA2}{json}{id}, { name => "By Member $R" }), 403, 'forbidden', 'member of A: PATCH');
	check_error(tenant_delete($memA, $A, 'users', $NEW{adminA2}{json}{id}), 403, 'forbidden', 'member of A: DELETE');
	check_error(tenant_list($memA, $A, 'users'), 403, 'forbidden', 'member of A: GET /orgs/A/users (no users.read)');
	check_error(tenant_create($S{sec}, $A, 'users', new_body()), 403, 'forbidden', 'security_admin: POST (no org_users.manage)');
	check_error(tenant_create($comp, $A, 'users', new_body()), 403, 'forbidden', 'compliance: POST');
	check_error(tenant_create(undef, $A, 'users', new_body()), 401, 'unauthenticated', 'nobody: POST');

	# org roles only
	my $users = db_count('SELECT COUNT(*) FROM users');
	my $audits = audit_count('user.%');
	for my $role (qw(superadmin platform_admin compliance compliance_officer security_admin)) {
		my $r = tenant_create($admin, $A, 'users', new_body(roles => ['member', $role]));
		check_error($r, 400, 'validation_failed', "POST /orgs/A/users with roles [member, $role] as superadmin");
		fields_named($r, 'roles');
		$r = tenant_patch($admin, $A, 'users', $NEW{adminA2}{json}{id}, { roles => [$role] });
		check_error($r, 400, 'validation_failed', "PATCH /orgs/A/users/:id with roles [$role]");
		fields_named($r, 'roles');
	}
	my $r = tenant_create($adminA, $A, 'users', new_body(roles => ['bogus']));
	check_error($r, 400, 'validation_failed', 'POST with an unknown role');
	fields_named($r, 'roles');
	is db_count('SELECT COUNT(*) FROM users'), $users, 'no user written by the refused role requests';
	is audit_count('user.%'), $audits, 'no user.* audit event either';

	# a user of A holding a platform role is out of the org_admin's reach
	my $mixed = create_user(roles => ['member', 'security_admin'], org => $A);
	ok $mixed->{id}, '(a user of A with member + security_admin, made through /users)';
	my $mrow = db_row('users', $mixed->{id});
	check_error(tenant_patch($adminA, $A, 'users', $mixed->{id}, { name => "Demoted $R" }), 403, 'forbidden',
	    'org_admin of A: PATCH a user holding roles it cannot grant');
	check_error(tenant_delete($adminA, $A, 'users', $mixed->{id}), 403, 'forbidden', 'org_admin of A: DELETE that user');
	is_deeply db_row('users', $mixed->{id}), $mrow, '  unchanged in MariaDB';
	status_is tenant_patch($admin, $A, 'users', $mixed->{id}, { roles => ['member'] }), 200, 'the superadmin may (200)';

	# deleting oneself
	check_error(tenant_delete($adminA, $A, 'users', $U{adminA}{id}), 403, 'forbidden', 'the org_admin deleting itself');
	status_is me($adminA), 200, '  still signed in';
}

# ============================================================ duplicates, bad input, ids
{
	my $dup = new_body(email => $NEW{adminA}{body}{email});
	check_error(tenant_create($adminA, $A, 'users', $dup), 409, 'conflict', 'POST with an email already used');
	check_error(tenant_create($adminB, $B, 'users', new_body(email => uc $U{memA}{email})), 409, 'conflict',
	    'POST with the upper-cased email of a user of another org');
	my $users = db_count('SELECT COUNT(*) FROM users');
	my $audits = audit_count('user.%');
	my $ok = new_body();
	my @bad = (
		[{ %$ok, email => undef }, ['email'], 'no email', 1],
		[{ %$ok, email => 'not-an-email' }, ['email'], 'a malformed email'],
		[{ %$ok, email => 'two@@at.example' }, ['email'], 'an email with two @'],
		[{ %$ok, email => 42 }, ['email'], 'an email that is a number'],
		[{ %$ok, name => undef }, ['name'], 'no name', 1],
		[{ %$ok, name => '' }, ['name'], 'an empty name'],
		[{ %$ok, name => 'n' x 201 }, ['name'], 'a name of 201 characters'],
		[{ %$ok, name => ['x'] }, ['name'], 'a name that is an array'],
		[{ %$ok, password => 'short' }, ['password'], 'a password of 5 characters'],
		[{ %$ok, password => 123456789012345 }, ['password'], 'a password that is a number'],
		[{ %$ok, roles => undef }, ['roles'], 'no roles', 1],
		[{ %$ok, roles => [] }, ['roles'], 'roles []'],
		[{ %$ok, roles => 'member' }, ['roles'], 'roles as a string'],
		[{ %$ok, roles => [1] }, ['roles'], 'roles [1]'],
		[{ %$ok, orgId => $B->{id} }, ['orgId'], 'an orgId (the path names the org)'],
		[{ %$ok, service => JSON::PP::true }, ['service'], 'service (not on this path)'],
		[{ %$ok, legalHold => JSON::PP::true }, ['legalHold'], 'legalHold'],
		[{ %$ok, shoeSize => 42 }, ['shoeSize'], 'an unknown field'],
	);
	for my $c (@bad) {
		my ($body, $fields, $name, $drop) = @$c;
		if ($drop) { delete $body->{$_} for @$fields }
		my $r = tenant_create($adminA, $A, 'users', $body);
		check_error($r, 400, 'validation_failed', "POST /orgs/A/users with $name");
		fields_named($r, @$fields);
	}
	check_error(tenant_create($adminA, $A, 'users', '[1,2]'), 400, undef, 'POST with a JSON array');
	check_error(tenant_create($adminA, $A, 'users', '{"email":'), 400, 'invalid_json', 'POST with broken JSON');
	is db_count('SELECT COUNT(*) FROM users'), $users, 'no user written by the bad creates';
	is email_count($ok->{email}), 0, '  (not even the valid email)';

	my $t = $NEW{adminA2}{json};
	my $row = db_row('users', $t->{id});
	my @badp = (
		[{ nickname => 'x' }, ['nickname'], 'an unknown field'],
		[{ name => '' }, ['name'], 'an empty name'],
		[{ name => 'n' x 201 }, ['name'], 'a name of 201 characters'],
		[{ disabled => 'yes' }, ['disabled'], 'disabled "yes"'],
		[{ roles => [] }, ['roles'], 'roles []'],
		[{ roles => 'member' }, ['roles'], 'roles as a string'],
		[{ email => 'new@x.example' }, ['email'], 'email (not changeable)'],
		[{ name => "Fine $R", bogus => 1 }, ['bogus'], 'a valid and an unknown field'],
	);
	for my $c (@badp) {
		my ($body, $fields, $name) = @$c;
		my $r = tenant_patch($adminA, $A, 'users', $t->{id}, $body);
		check_error($r, 400, 'validation_failed', "PATCH /orgs/A/users/:id with $name");
		fields_named($r, @$fields);
	}
	is_deeply db_row('users', $t->{id}), $row, 'the user is unchanged after the bad patches';
	is audit_count('user.%'), $audits, 'no user.* audit event for any refused request';

	my $X = uuid7_like();
	for my $id ('not-a-uuid', '12345', uc(norm_id($t->{id})) . 'zz') {
		check_error(tenant_get($adminA, $A, 'users', $id), 404, 'not_found', "GET /orgs/A/users/$id (malformed id)");
		check_error(tenant_patch($adminA, $A, 'users', $id, { name => "X $R" }), 404, 'not_found', "PATCH /orgs/A/users/$id");
		check_error(tenant_delete($adminA, $A, 'users', $id), 404, 'not_found', "DELETE /orgs/A/users/$id");
	}
	check_error(tenant_get($adminA, $A, 'users', $X), 404, 'not_found', 'GET /orgs/A/users/<unknown id>');
	check_error(tenant_patch($adminA, $A, 'users', $X, { name => "X $R" }), 404, 'not_found', 'PATCH /orgs/A/users/<unknown id>');
	check_error(tenant_delete($adminA, $A, 'users', $X), 404, 'not_found', 'DELETE /orgs/A/users/<unknown id>');
	check_error(tenant_list($admin, { id => uuid7_like() }, 'users'), 404, 'not_found', 'GET /orgs/<unknown org>/users');
	check_error(tenant_create($admin, { id => uuid7_like() }, 'users', new_body()), 404, 'not_found', 'POST /orgs/<unknown org>/users');
	check_error(tenant_list($admin, { id => 'not-an-org' }, 'users'), 404, 'not_found', 'GET /orgs/not-an-org/users');
	is audit_count('user.%'), $audits, 'still no user.* audit event';
}

# ============================================================ legal hold on a user
my $H = $NEW{adminA2};
{
	my $id = $H->{json}{id};
	my $hs = login_ok($H->{body}, 'the user to hold');
	my $r = legal_hold($comp, entity => 'users', ids => [$id], hold => 1, reason => "Case $R");
	status_is $r, 200, 'POST /compliance/legal-hold {users, [H], hold: true} 200';
	is_deeply [map { $_->{result} } @{ j($r)->{results} // [] }], ['held'], '  held' or diag $r->{body};
	my $row = db_row('users', $id);
	is $row->{legal_hold}, 1, '(legal_hold = 1 in MariaDB)';
	my $audits = audit_count('user.%');
	check_error(tenant_patch($adminA, $A, 'users', $id, { name => "Held Rename $R" }), 409, 'legal_hold',
	    'PATCH /orgs/A/users/:id {name} of the held user');
	check_error(http(PATCH => "/users/$id", session => $admin, json => { name => "Held Rename $R" }), 409, 'legal_hold',
	    'PATCH /users/:id {name} of the held user as superadmin');
	check_error(tenant_patch($adminA, $A, 'users', $id, { name => "Held Rename $R", disabled => JSON::PP::true }), 409, 'legal_hold',
	    'PATCH {name, disabled} of the held user: all or nothing');
	is_deeply db_row('users', $id), $row, 'the held user is unchanged in MariaDB';
	is j(tenant_get($adminA, $A, 'users', $id))->{name}, $H->{body}{name}, 'GET shows the old name';
	check_error(tenant_delete($adminA, $A, 'users', $id), 409, 'legal_hold', 'DELETE of the held user as the org_admin');
	check_error(tenant_delete($admin, $A, 'users', $id), 409, 'legal_hold', 'DELETE of the held user as superadmin');
	is_deeply db_row('users', $id), $row, '  still unchanged';
	is audit_count('user.%'), $audits, '  no user.* audit event for the refused requests';
	status_is me($hs), 200, "  the held user's session still works";
	ok list_ids($adminA, $A)->{$id}, '  and the user is still listed';

	# containment stays possible: roles and disabled
	$r = tenant_patch($adminA, $A, 'users', $id, { roles => ['member'] });
	status_is $r, 200, 'PATCH {roles} of the held user 200 (containment)';
	check_error(me($hs), 401, 'unauthenticated', '  its session ends');
	$r = tenant_patch($adminA, $A, 'users', $id, { disabled => JSON::PP::true });
	status_is $r, 200, 'PATCH {disabled: true} of the held user 200';
	is login($H->{body}{email}, $H->{body}{password})->{status}, 401, '  it cannot log in';
	status_is tenant_patch($adminA, $A, 'users', $id, { disabled => JSON::PP::false }), 200, 'enabled again 200';
	$hs = login_ok($H->{body}, '  the held user');

	$r = legal_hold($comp, entity => 'users', ids => [$id], hold => 0, reason => "Closed $R");
	is_deeply [map { $_->{result} } @{ j($r)->{results} // [] }], ['released'], 'release the user' or diag $r->{body};
	my $p = tenant_patch($adminA, $A, 'users', $id, { name => pii('released rename', "Released Rename $R") });
	status_is $p, 200, 'PATCH {name} after the release 200';
	$H->{hs} = $hs;
}

# ============================================================ legal hold on an org: its users cannot be deleted
{
	my $victim = tenant_create($adminB, $B, 'users', my $vb = new_body());
	status_is $victim, 201, 'a user of B';
	my $id = j($victim)->{id};
	my $h = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 1, reason => "Org case $R");
	is_deeply [map { $_->{result} } @{ j($h)->{results} // [] }], ['held'], 'hold org B' or diag $h->{body};
	my $row = db_row('users', $id);
	check_error(tenant_delete($adminB, $B, 'users', $id), 409, 'legal_hold', 'org B held: DELETE of its user');
	check_error(tenant_patch($adminB, $B, 'users', $id, { name => "Org Held $R" }), 409, 'legal_hold', 'org B held: PATCH {name}');
	is_deeply db_row('users', $id), $row, '  unchanged';
	login_ok($vb, '  the user of the held org');
	my $o = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 0, reason => "Org case closed $R");
	is_deeply [map { $_->{result} } @{ j($o)->{results} // [] }], ['released'], 'release org B' or diag $o->{body};
	status_is tenant_delete($adminB, $B, 'users', $id), 204, 'DELETE after the release 204';
}

# ============================================================ delete: a soft delete
{
	my $id = $H->{json}{id};
	my $hex = uuid_hex($id);
	my $tok = http(POST => '/auth/tokens', session => $H->{hs}, json => { name => 'soon gone', scopes => ['tenant.read'] });
	status_is $tok, 201, 'the user makes an API token';
	my $token = j($tok)->{token};
	my $d = tenant_delete($adminA, $A, 'users', $id);
	status_is $d, 204, 'DELETE /orgs/A/users/:id as the org_admin 204';
	is $d->{body}, '', '  no body';
	check_error(tenant_get($adminA, $A, 'users', $id), 404, 'not_found', 'GET /orgs/A/users/:id of the deleted user');
	check_error(tenant_get($admin, $A, 'users', $id), 404, 'not_found', '  also for the superadmin');
	check_error(tenant_patch($adminA, $A, 'users', $id, { name => "Ghost $R" }), 404, 'not_found', 'PATCH of the deleted user');
	check_error(tenant_delete($adminA, $A, 'users', $id), 404, 'not_found', 'DELETE it again');
	ok !list_ids($adminA, $A)->{$id}, 'the list no longer has it';
	check_error(me($H->{hs}), 401, 'unauthenticated', 'its session ended');
	check_error(http(GET => "/orgs/$A->{id}/contacts", bearer => $token), 401, 'unauthenticated', 'its API token was revoked');
	is login($H->{body}{email}, $H->{body}{password})->{status}, 401, 'it cannot log in';
	my $u = http(GET => "/users/$id", session => $admin);
	status_is $u, 200, 'GET /users/:id still shows it';
	is j($u)->{disabled}, JSON::PP::true, '  disabled';
	my $row = db_row('users', $id);
	ok defined $row->{archived_at}, '(archived_at set in MariaDB)';
	is $row->{archived_reason}, 'deleted', "(archived_reason 'deleted')";
	is db_count("SELECT COUNT(*) FROM sessions WHERE user_id = UNHEX('$hex')"), 0, '(no session row left)';
	my $rec = compliance_record($comp, 'users', $id);
	is j($rec)->{archived}, JSON::PP::true, '/compliance/records: archived';
	is j($rec)->{archivedReason}, 'deleted', '  reason deleted';
	my @ev = db_rows("SELECT actor_id IS NOT NULL AS has_actor, LOWER(HEX(org_id)) AS org, payload FROM audit_events"
	    . " WHERE action = 'user.deleted' AND target_id = '$id'");
	is scalar(@ev), 1, 'one user.deleted audit event';
	is $ev[0]{org}, norm_id($A->{id}), '  with the org of the user';
	is_deeply json_decode($ev[0]{payload} // 'null'), { credentialsRevoked => JSON::PP::true }, '  payload {credentialsRevoked: true}'
	    or diag $ev[0]{payload};
	check_error(tenant_create($adminA, $A, 'users', new_body(email => $H->{body}{email})), 409, 'conflict',
	    "the deleted user's email stays taken (the row is kept)");
	check_error(http(PATCH => "/users/$id", session => $admin, json => { disabled => JSON::PP::false }), 409, 'conflict',
	    'PATCH /users/:id {disabled: false} of the deleted user: it is not enabled again');
	is login($H->{body}{email}, $H->{body}{password})->{status}, 401, '  and it still cannot log in';
}

# ============================================================ batch-archive of a user ends the account
{
	my $body = new_body(roles => ['member']);
	my $c = tenant_create($adminA, $A, 'users', $body);
	status_is $c, 201, 'a user to archive';
	my $V = { body => $body, json => j($c) };
	$V->{hs} = login_ok($body, 'the user to archive');
	my $id = $V->{json}{id};
	ok me($V->{hs})->{status} == 200, 'a user signed in';
	my $r = http(POST => '/compliance/batch-archive', session => $comp,
	    json => { entity => 'users', ids => [$id], reason => "offboarding $R" });
	status_is $r, 200, 'POST /compliance/batch-archive {entity: users} 200';
	check_error(me($V->{hs}), 401, 'unauthenticated', '  its session ended');
	is login($V->{body}{email}, $V->{body}{password})->{status}, 401, '  it cannot log in';
	is j(http(GET => "/users/$id", session => $admin))->{disabled}, JSON::PP::true, '  /users/:id shows it disabled';
	check_error(http(PATCH => "/users/$id", session => $admin, json => { disabled => JSON::PP::false }), 409, 'conflict',
	    '  and it cannot be enabled again');
}

# ============================================================ subject export of users and orgs
{
	my $X = $NEW{nopw};
	my $id = $X->{json}{id};
	my $n = audit_count('compliance.exported');
	my $r = compliance_export($comp, 'users', $id);
	status_is $r, 200, 'GET /compliance/export?entity=users&id= 200';
	my $rec = j($r)->{record} // {};
	is j($r)->{entity}, 'users', '  entity users';
	is j($r)->{id}, $id, '  id';
	is_deeply [sort keys %$rec], [sort qw(id orgId email name legalHold piiStripped archived createdAt updatedAt)],
	    '  record: id, orgId, email, name and the state' or diag $r->{body};
	is $rec->{email}, $X->{body}{email}, '  email';
	is $rec->{name}, $X->{body}{name}, '  name';
	is $rec->{orgId}, $A->{id}, '  orgId';
	is $rec->{piiStripped}, JSON::PP::false, '  piiStripped false';
	ok $r->{body} !~ /password|scrypt|roles/i, '  no password, hash or roles' or diag $r->{body};

	my $o = compliance_export($comp, 'orgs', $B->{id});
	status_is $o, 200, 'GET /compliance/export?entity=orgs&id= 200';
	my $orec = j($o)->{record} // {};
	is j($o)->{entity}, 'orgs', '  entity orgs';
	is $orec->{name}, $B->{name}, '  name';
	is $orec->{id}, $B->{id}, '  id';
	ok exists $orec->{legalHold} && exists $orec->{piiStripped} && exists $orec->{archived} && exists $orec->{createdAt},
	    '  the state' or diag $o->{body};
	ok $o->{body} !~ /dedicated_target|dedicatedTarget/, '  no connection target';
	my @ex = db_rows("SELECT target_type, payload FROM audit_events WHERE action = 'compliance.exported' ORDER BY seq DESC LIMIT 2");
	is_deeply [sort map { $_->{target_type} } @ex], [qw(orgs users)], 'compliance.exported for both';
	is audit_count('compliance.exported'), $n + 2, '  two events';

	# after strip-PII: redacted, the originals nowhere
	my $s = strip_pii($comp, entity => 'users', ids => [$id], reason => "DSR $R");
	is_deeply [map { $_->{result} } @{ j($s)->{results} // [] }], ['stripped'], 'strip-PII of the user' or diag $s->{body};
	my $r2 = compliance_export($comp, 'users', $id);
	status_is $r2, 200, 'the export after strip-PII 200';
	my $rec2 = j($r2)->{record} // {};
	like $rec2->{email} // '', $TOMB, '  email redacted+…@redacted.invalid';
	is $rec2->{name}, $RED, '  name [redacted]';
	is $rec2->{piiStripped}, JSON::PP::true, '  piiStripped true';
	ok index($r2->{body}, $X->{body}{email}) < 0 && index($r2->{body}, encode_utf8($X->{body}{name})) < 0,
	    '  neither the original email nor the name is in the answer' or diag $r2->{body};

	my $bad = compliance_export($comp, 'widgets', $id);
	check_error($bad, 400, 'validation_failed', 'GET /compliance/export?entity=widgets');
	fields_named($bad, 'entity');
	like j($bad)->{error}{details}{fields}{entity} // '', qr/users.*orgs|orgs.*users/, '  the message names users and orgs';
	check_error(compliance_export($comp, 'users', uuid7_like()), 404, 'not_found', 'export of an unknown user');
	check_error(compliance_export($comp, 'orgs', 'nope'), 404, 'not_found', 'export of a malformed org id');
	check_error(compliance_export($adminA, 'users', $U{memA}{id}), 403, 'forbidden', 'export as org_admin');
}

# ============================================================ no PII in audit_events or the logs
{
	my $text = audit_text() // '';
	ok index($text, 'user.deleted') >= 0, '(control: the audit text has user.deleted)';
	my @hits = pii_hits($text);
	ok !@hits, 'no email, name or password written here appears in audit_events (' . scalar(keys %{ pii_values() })
	    . ' strings)'
	    or diag join "\n", @hits;
	my @log = pii_in_logs(labels => qr/password/);
	ok !@log, 'no password in log/' or diag join "\n", @log;
}

finish();
