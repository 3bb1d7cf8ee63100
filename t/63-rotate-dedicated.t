#!/usr/bin/perl
# README "Runbook 7", a dedicated database's password: an org moved to its
# own database by a real migration gets new database credentials through
# PUT /orgs/:id/dedicated-target and opsctl tenant set-target. Refused
# before anything is stored: no session (401), roles without migration.run
# (403), bad ids and bodies (404, 400 naming the field), a shared org and a
# migration under way (409), a wrong password (400 target_unreachable,
# the password not echoed), a user without the rights the write path needs
# and a database without the org's rows (409): the org row and the audit
# log are unchanged each time. Accepted: the target is sealed, answered
# and audited with host, database and user only. Then, while three clients
# read and write the org's contacts without pause, the procedure the README
# gives: a second MariaDB user, opsctl tenant set-target to it, the first
# user dropped and its sessions killed; then ALTER USER on the second one
# and the API call at once. No request fails, every worker reaches the
# database as the new user, no password is in any answer, event or log.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;
use OpsdTest::Rotation;

my $WORKERS = 3;
start_stack(env => { OPSD_WORKERS => $WORKERS });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin signs in' or BAIL_OUT('no session');
my $d = dedicated_org($admin, contacts => 4);
my ($ORG, $DB) = ($d->{org}{id}, $d->{db});
ok $ORG && @{ $d->{contacts} } == 4, 'a dedicated org with 4 contacts' or BAIL_OUT('no dedicated org');
my $PATH = "/orgs/$ORG/dedicated-target";
my $SOCK = var_dir() . '/run/mysqld.sock';

sub put_target($body, %o) { return http(PUT => $o{path} // $PATH, json => $body, session => $o{as} // $admin) }
sub stored() { return mysql("SELECT dedicated_target FROM orgs WHERE id = UNHEX('" . org_hex($ORG) . "')") // '' }
sub events() { return audit_payloads('org.dedicated_target_changed') }
sub contact_ok($label) {
	my $r = http(GET => "/orgs/$ORG/contacts/$d->{contacts}[0]", session => $admin);
	status_is $r, 200, $label;
}
sub sessions_of($user) {
	return grep { /^\d+$/ } split /\n/, mysql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '$user'") // '';
}

my ($u1, $p1, $uri1) = tenant_db_user($DB);
contact_ok('the dedicated org answers before any change');
my $before = stored();
like $before, qr/"redacted":\s*"mysql:\/\/opsd:\*\*\*\@/, 'the org reaches its database as opsd (the migration\'s target)';

# ============================================================ refusals: nothing stored, nothing audited
{
	my $plat = login_ok(create_user(role => 'platform_admin'), 'platform_admin');
	my $sec = login_ok(create_user(role => 'security_admin'), 'security_admin');
	check_error(http(PUT => $PATH, json => { targetUri => $uri1 }), 401, 'unauthenticated', 'no session: 401');
	for ([$plat, 'platform_admin'], [$sec, 'security_admin']) {
		my $r = put_target({ targetUri => $uri1 }, as => $_->[0]);
		check_error($r, 403, 'forbidden', "$_->[1]: 403");
		is j($r)->{error}{details}{permission}, 'migration.run', "  names migration.run";
	}
	check_error(put_target({ targetUri => $uri1 }, path => '/orgs/not-a-uuid/dedicated-target'), 404, 'not_found', 'a malformed org id: 404');
	check_error(put_target({ targetUri => $uri1 }, path => '/orgs/' . uuid7_like() . '/dedicated-target'), 404, 'not_found', 'an unknown org: 404');
	for ([{ targetUri => 5 }, 'targetUri', 'a number as targetUri'],
	     [{ targetUri => $uri1, color => 'red' }, 'color', 'an unknown field'],
	     [{ targetUri => $uri1, dbName => 'Bad-Name' }, 'dbName', 'a dbName that is no identifier'],
	     [{ targetUri => $uri1, reason => '   ' }, 'reason', 'a blank reason'],
	     [{ targetUri => 'postgres://u:pw-NOT-SENT@h/db' }, 'targetUri', 'another scheme']) {
		my ($body, $field, $label) = @$_;
		my $r = put_target($body);
		check_error($r, 400, 'validation_failed', "$label: 400");
		ok has_details_fields($r, $field), "  names $field" or diag $r->{body};
	}
	my $shared = create_org(name => 'Still shared ' . run_tag());
	check_error(put_target({ targetUri => $uri1 }, path => "/orgs/$shared->{id}/dedicated-target"), 409, 'conflict', 'a shared org: 409');

	my $wrong = sensitive('a wrong tenant password', 'Wrong-' . run_tag() . '-pw');
	my $r = put_target({ targetUri => "mysql://$u1:$wrong\@localhost/$DB?socket=$SOCK" });
	check_error($r, 400, 'target_unreachable', 'a wrong password: 400 target_unreachable');
	like j($r)->{error}{details}{reason} // '', qr/denied/i, '  with MariaDB\'s reason' or diag $r->{body};
	unlike $r->{body}, qr/\Q$wrong\E/, '  which does not echo the password';

	my (undef, undef, $ro) = tenant_db_user($DB, grant => 'SELECT, INSERT, UPDATE');
	$r = put_target({ targetUri => $ro });
	check_error($r, 409, 'conflict', 'a user that cannot DELETE: 409');
	like j($r)->{error}{details}{reason} // '', qr/DELETE|denied/i, '  the reason names what it lacks' or diag $r->{body};
	is j($r)->{error}{details}{field}, 'targetUri', '  on targetUri';

	my $empty = "${DB}_empty";
	ok defined mysql("CREATE DATABASE `$empty`", map { "CREATE TABLE `$empty`.$_ LIKE `$DB`.$_" } qw(contacts projects offices tenant_changelog)),
	    'a database with the tenant tables and no rows';
	my (undef, undef, $other) = tenant_db_user($empty);
	$r = put_target({ targetUri => $other });
	check_error($r, 409, 'conflict', 'a database without the org\'s rows: 409');
	like j($r)->{error}{details}{reason} // '', qr/no rows of this org/, '  says so' or diag $r->{body};

	is stored(), $before, 'after every refusal the org row is unchanged';
	is scalar(events()), 0, 'and nothing is audited';
	contact_ok('the org still answers');
}

# ============================================================ accepted through the API
my $R1 = 'first own user ' . run_tag();
{
	# the URI without a database: the org's current one is kept
	my $r = put_target({ targetUri => "mysql://$u1:$p1\@localhost/?socket=$SOCK", reason => $R1 });
	status_is $r, 200, 'PUT with a URI without database: 200';
	is j($r)->{orgId}, $ORG, '  orgId';
	is j($r)->{dbMode}, 'dedicated', '  dbMode';
	like j($r)->{target} // '', qr{^mysql://\Q$u1\E:\*\*\*\@localhost/\Q$DB\E\b}, '  the target, password masked, in the org\'s database';
	unlike $r->{body}, qr/\Q$p1\E/, '  no password in the answer';
	like stored(), qr/"redacted":\s*"mysql:\/\/\Q$u1\E:\*\*\*/, 'the org row holds the new target, sealed';
	unlike stored(), qr/\Q$p1\E/, '  never in the clear';
	my @e = events();
	is scalar(@e), 1, 'one org.dedicated_target_changed';
	my $p = $e[0]{p};
	is_deeply [@$p{qw(host database user)}], ['localhost', $DB, $u1], '  host, database and user of the new target';
	is_deeply [@{ $p->{previous} // {} }{qw(database user)}], [$DB, 'opsd'], '  and of the previous one';
	is $p->{reason}, $R1, '  with the reason';
	is lc($e[0]{org} // ''), org_hex($ORG), '  about the org';
	contact_ok('the org answers through the new user');
	ok scalar(sessions_of($u1)) >= 1, "MariaDB sees opsd connected as $u1";
}

# ============================================================ under load: a second user, then ALTER USER
my ($u2, $p2, $uri2) = tenant_db_user($DB);
my $p3 = sensitive('the second user\'s new password', 'Tdb-altered-' . run_tag());
{
	my $load = load_start($admin, $d, clients => 3);
	ok wait_until(60, sub { load_each_after($load, 0) >= 3 }), 'three clients read and write the org\'s contacts';
	my $t1 = time;
	my ($rc, $out, $err) = opsctl({ env => { NEW_TENANT_URI => $uri2 } }, qw(tenant set-target --org), $ORG,
	    qw(--target-uri-env NEW_TENANT_URI --reason), 'rotate to a second user');
	is $rc, 0, 'opsctl tenant set-target to the second user exits 0' or diag $err;
	my $doc = json_decode($out) // {};
	like $doc->{target} // '', qr{^mysql://\Q$u2\E:\*\*\*\@}, '  prints the target, password masked';
	unlike "$out$err", qr/\Q$p2\E/, '  never the password';
	# a request sent before the change may still be using a connection as the first
	# user: each client has had an answer to a later one before the user goes
	my $stored = time;
	ok wait_until(60, sub { load_each_after($load, $stored) >= 1 }, 0.1),
	    '  every client has had an answer to a request sent after it';
	ok defined mysql("DROP USER '$u1'\@'localhost'"), 'the first user is dropped';
	mysql("KILL CONNECTION $_") for sessions_of($u1);
	my $t2 = time;
	# ALTER USER refuses the old password to a worker that has no connection as the
	# second user yet, until PUT stores the new one: every worker has one first
	ok wait_until(60, sub { sessions_of($u2) >= $WORKERS && load_after($load, $t2) >= 20 }, 0.2),
	    "every worker reaches the database as $u2 (" . scalar(sessions_of($u2)) . ' sessions)';
	ok defined mysql("ALTER USER '$u2'\@'localhost' IDENTIFIED BY '$p3'"), 'ALTER USER gives the second user a new password';
	my $r = put_target({ targetUri => "mysql://$u2:$p3\@localhost/$DB?socket=$SOCK", reason => 'new password' });
	my $t3 = time;
	status_is $r, 200, '  and PUT stores it at once';
	# as long as the clients need (the counts are checked below): they still run
	wait_until(90, sub { load_after($load, $t1) >= 30 && load_after($load, $t2) >= 20 && load_after($load, $t3) >= 10 }, 0.2);
	my $l = load_stop($load);
	is scalar(@{ $l->{failed} }), 0, "no failed request among $l->{total}"
	    or diag join "\n", @{ $l->{failed} }[0 .. ($#{ $l->{failed} } > 9 ? 9 : $#{ $l->{failed} })];
	cmp_ok load_after($l, $t1), '>=', 30, 'requests went on while opsctl changed the target';
	cmp_ok load_after($l, $t2), '>=', 20, '  after the first user was gone';
	cmp_ok load_after($l, $t3), '>=', 10, '  and after the new password';
	ok wait_until(20, sub { !sessions_of($u1) }, 0.2), 'nothing connects as the dropped user';
	ok scalar(sessions_of($u2)) >= 1, 'opsd reaches the database as the second user';
	contact_ok('the org answers afterwards');

	my @e = events();
	is scalar(@e), 3, 'three org.dedicated_target_changed events';
	is_deeply [map { $_->{p}{user} } @e], [$u1, $u2, $u2], '  naming the user of each target';
	is_deeply [map { $_->{p}{previous}{user} } @e], ['opsd', $u1, $u2], '  and of the one before';
	my @actors = map { $_->{actor_label} } audit_rows('org.dedicated_target_changed');
	is $actors[1], 'cli:root', '  the opsctl one by cli:root';
	my $text = audit_text() . stored();
	is scalar(grep { index($text, $_) >= 0 } $p1, $p2, $p3), 0, 'no password in the audit log or the org row';
	my @hits = find_in_logs({ first => $p1, second => $p2, altered => $p3 });
	is scalar(@hits), 0, 'nor in the logs' or diag "@hits";
}

# ============================================================ opsctl refusals
{
	my ($rc, $out, $err) = opsctl(qw(tenant set-target --target-uri-env X));
	is $rc, 2, 'opsctl tenant set-target without --org: exit 2';
	($rc, $out, $err) = opsctl(qw(tenant set-target --org), $ORG, qw(--target-uri-env NO_SUCH_VARIABLE_HERE));
	is $rc, 2, '  an unset --target-uri-env: exit 2';
	like $err, qr/NO_SUCH_VARIABLE_HERE is not set/, '  says so';
	my $wrong = sensitive('another wrong password', 'Nope-' . run_tag());
	($rc, $out, $err) = opsctl({ env => { BAD_URI => "mysql://$u2:$wrong\@localhost/$DB?socket=$SOCK" } },
	    qw(tenant set-target --org), $ORG, qw(--target-uri-env BAD_URI));
	is $rc, 2, '  a wrong password: exit 2';
	like $err, qr/target_unreachable|cannot be reached/, '  the target cannot be reached';
	unlike "$out$err", qr/\Q$wrong\E/, '  without the password';
	($rc, $out, $err) = opsctl({ env => { OPSD_CLI_ROLES => 'root:security_admin', U => $uri2 } },
	    qw(tenant set-target --org), $ORG, qw(--target-uri-env U));
	is $rc, 3, '  root mapped to security_admin: exit 3';
	like $err, qr/lacks migration\.run/, '  lacking migration.run';
	is scalar(events()), 3, 'no event from any of them';
}

# ============================================================ a migration under way
{
	my $s = migration_start($admin, orgId => $ORG, direction => 'dedicated_to_shared', reason => 'back', timeout => 60);
	status_is $s, 202, 'a migration back to the shared database starts';
	my $r = put_target({ targetUri => "mysql://$u2:$p3\@localhost/$DB?socket=$SOCK" });
	check_error($r, 409, 'migration_in_progress', 'PUT while it runs: 409 migration_in_progress');
	status_is migration_abort($admin, orgId => $ORG, reason => 'test over', timeout => 60), 202, 'the migration is aborted';
	my $m = migration_wait($admin, $ORG, qr/^aborted$/, 60);
	is $m->{status}, 'aborted', '  aborted';
	status_is put_target({ targetUri => "mysql://$u2:$p3\@localhost/$DB?socket=$SOCK", reason => 'after abort' }), 200,
	    'PUT works again afterwards';
	contact_ok('and the org answers');
}

finish();
