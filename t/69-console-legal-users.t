#!/usr/bin/perl
# Runbook 1 and the Users and orgs screen of the console in chromium
# (t/browser/legal-users.mjs), with LEGAL_ENFORCE=1 and the browser in
# Europe/Berlin. A platform_admin sees enforcement on, publishes a terms
# version (current), one with notify and an effective time typed in its
# zone (scheduled; the UTC value shown before sending), and a third that
# becomes current; a past effective time is refused next to its field.
# It lists the versions, compares the first and the third side by side
# (removed lines in the old column, added ones in the new, marked by class
# and text) and a missing version is refused next to its field. Then,
# after accepting the new terms at the gate, it changes a member's roles
# (the roles it may not grant cannot be ticked, a compliance_officer's row
# offers no Change roles, no role refused next to the roles), the
# list shows the new roles; an unknown role in the create form is refused
# next to Roles; it lists an org's users and creates an org (a bad slug
# next to its field). A compliance_officer reads the report and has no
# publish form or role editor; an org_admin sees its own org's users; a
# member sees neither the publish form nor the role editor. Then, through
# the API, the database and the audit log: the versions and V2's effective
# time in UTC, notify recorded, the roles changed (user.updated by the
# admin, nothing for the refusals), the org created, GET /auth/me's
# roleTable.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;
use OpsdTest::Audit;

browser_ready();

start_stack(env => { LEGAL_ENFORCE => 1 });
my $org = create_org();
my $admin = create_user(role => 'platform_admin');
my $officer = create_user(role => 'compliance_officer');
my $member = create_user(role => 'member', org => $org);
my $orgadmin = create_user(role => 'org_admin', org => $org);
my $target = create_user(role => 'member', org => $org);
ok $_->{id}, "$_->{roles}[0] created" for $admin, $officer, $member, $orgadmin, $target;
my $new_slug = 'console-org-' . run_tag();
my $new_org_name = 'Console Org ' . run_tag();

# The effective time typed in Berlin (summer time, UTC+2) and what the API
# must store; V1 and V3 take effect at once.
my %V = (v1 => '2026.1', v2 => '2030.7', v3 => '2026.2');
my ($local, $utc) = ('2030-07-01T10:30', '2030-07-01T08:30:00.000Z');

my $screens = browser_run('legal-users.mjs', TZ => 'Europe/Berlin', CONSOLE_ZONE => 'Europe/Berlin',
	CONSOLE_ADMIN_EMAIL => $admin->{email}, CONSOLE_ADMIN_PASSWORD => $admin->{password},
	CONSOLE_OFFICER_EMAIL => $officer->{email}, CONSOLE_OFFICER_PASSWORD => $officer->{password},
	CONSOLE_MEMBER_EMAIL => $member->{email}, CONSOLE_MEMBER_PASSWORD => $member->{password},
	CONSOLE_ORGADMIN_EMAIL => $orgadmin->{email}, CONSOLE_ORGADMIN_PASSWORD => $orgadmin->{password},
	CONSOLE_TARGET_EMAIL => $target->{email}, CONSOLE_ORG_NAME => $org->{name},
	CONSOLE_NEW_ORG_NAME => $new_org_name, CONSOLE_NEW_ORG_SLUG => $new_slug,
	CONSOLE_V1 => $V{v1}, CONSOLE_V2 => $V{v2}, CONSOLE_V3 => $V{v3},
	CONSOLE_V2_LOCAL => $local, CONSOLE_V2_UTC => $utc);

# ---- runbook 1 through the API
my $vr = http(GET => '/legal/terms/versions');
is $vr->{status}, 200, 'GET /legal/terms/versions 200';
my %ver = map { ($_->{version} => $_) } items($vr);
is_deeply [sort keys %ver], [sort values %V], 'the three versions published in the browser, and no other'
    or diag $vr->{body};
is $ver{$V{v2}}{effectiveAt}, $utc, "V2's effective time is the one typed in Berlin, in UTC ($local → $utc)";
ok $ver{$V{v3}}{current}, 'V3 is current';
ok !$ver{$V{v1}}{current} && !$ver{$V{v2}}{current}, 'V1 and V2 are not';
my $list = http(GET => '/legal');
my ($terms) = grep { $_->{type} eq 'terms' } items($list);
is $terms->{current}{version}, $V{v3}, 'GET /legal: V3 current';
is_deeply [map { $_->{version} } @{ $terms->{scheduled} // [] }], [$V{v2}], 'GET /legal: V2 scheduled';
my %upd = map { my $p = audit_payload($_); ($p->{version} => { %$p, actor => $_->{actor_hex} }) } audit_rows('legal.updated');
ok $upd{$V{v2}}{notify}, 'legal.updated of V2 records notify';
ok !$upd{$V{v1}}{notify} && !$upd{$V{v3}}{notify}, 'V1 and V3 without notify';
is $upd{$V{v2}}{effectiveAt}, $utc, 'legal.updated of V2: the same effective time';
is $upd{$_}{actor}, uuid_hex($admin->{id}), "legal.updated of $_ by the platform_admin" for values %V;
is db_count("SELECT COUNT(*) FROM legal_documents WHERE type = 'terms' AND notify = 1 AND notified_at IS NULL"), 1,
    'V2 waits to notify until it takes effect';
check_error(http(GET => "/legal/terms/diff?from=$V{v1}&to=no-such-version"), 404, 'not_found',
    'the diff the browser was refused: 404');
my $d = http(GET => "/legal/terms/diff?from=$V{v1}&to=$V{v3}");
is_deeply [map { "$_->{op}$_->{line}" } @{ j($d)->{diff} // [] }],
    ['=Terms of the console test.', '=Keep this line.', '-Old clause: 30 days.', '+New clause: 14 days.', '+Added clause.', '=Last line.'],
    'the diff the browser showed' or diag $d->{body};
my %acc = map { (audit_payload($_)->{version} // '') eq $V{v3} ? ($_->{actor_hex} => 1) : () } audit_rows('legal.accepted');
is_deeply [sort keys %acc], [sort map { uuid_hex($_->{id}) } $admin, $officer, $orgadmin, $member],
    'V3 accepted at the gate by the admin, the officer, the org_admin and the member';

# ---- users and orgs through the API
my $as_admin = login($admin->{email}, $admin->{password});
my $u = http(GET => "/users/$target->{id}", session => $as_admin);
is_deeply j($u)->{roles}, ['org_admin'], 'the roles changed in the browser' or diag $u->{body};
my @ev = audit_rows('user.updated', target_id => $target->{id});
is scalar(@ev), 1, 'one user.updated for it (the refused changes recorded nothing)' or diag explain \@ev;
is $ev[0]{actor_hex}, uuid_hex($admin->{id}), 'by the platform_admin' if @ev;
is audit_payload($ev[0])->{roles}, 'org_admin', 'with the new roles' if @ev;
ok audit_payload($ev[0])->{credentialsRevoked}, 'and its sessions and tokens revoked' if @ev;
is login($target->{email}, $target->{password})->{status}, 200, 'the user signs in again';
is_deeply j(http(GET => "/users/$member->{id}", session => $as_admin))->{roles}, ['member'], 'Cancel left the member a member';
my @mev = audit_rows('user.updated', target_id => $member->{id});
is scalar(@mev), 0, 'no user.updated for it' or diag explain \@mev;
is scalar(grep { ($_->{email} // '') eq 'nobody-created@example.test' } items(http(GET => '/users?limit=500', session => $as_admin))), 0,
    'the user with an unknown role was not created';
my ($norg) = grep { ($_->{slug} // '') eq $new_slug } items(http(GET => '/orgs?limit=500', session => $as_admin));
ok $norg, 'the org created in the browser exists';
is $norg->{name}, $new_org_name, 'with its name' if $norg;
is scalar(audit_rows('org.created', target_id => $norg ? $norg->{id} : 'none')), 1, 'one org.created for it';
is db_count("SELECT COUNT(*) FROM orgs WHERE name = '$new_org_name'"), 1, 'the bad slug made no org (one org of that name)';

# ---- GET /auth/me's role table, as the editor read it
my %rt = map { ($_->{role} => $_) } @{ j(me($as_admin))->{roleTable} // [] };
is_deeply [map { $_->{role} } @{ j(me($as_admin))->{roleTable} // [] }],
    [qw(superadmin platform_admin compliance compliance_officer security_admin org_admin member)],
    'roleTable: every role, in the role table\'s order';
is_deeply [grep { $rt{$_}{grantable} } sort keys %rt], [qw(member org_admin platform_admin)],
    'a platform_admin may grant platform_admin, org_admin and member';
is_deeply [grep { $rt{$_}{orgRole} } sort keys %rt], [qw(member org_admin)], 'the org roles';
my %mrt = map { ($_->{role} => $_->{grantable}) } @{ j(me(login($member->{email}, $member->{password})))->{roleTable} // [] };
is_deeply [grep { $mrt{$_} } sort keys %mrt], ['member'], 'a member could grant member only';

ok -s "$screens/legal-diff-1280x800.png" && -s "$screens/legal-diff-390x844.png", 'diff screenshots at both sizes';
ok -s "$screens/users-roles-1280x800.png" && -s "$screens/users-roles-390x844.png", 'role editor screenshots at both sizes';

finish();
