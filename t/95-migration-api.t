#!/usr/bin/perl
# Tenant migration, the API and opsctl around the engine (README "Runbook 3",
# runbook 3): the routes are in the table with migration.run; bad input on
# POST /migration/start — unknown org (404), malformed or missing orgId,
# direction missing, unknown or wrong for the org's mode (409 conflict both
# ways), chunkSize 0 / 100001 / "x" / 1.5, malformed and over-long targetUri
# (the URI's password is never in the answer), dbName "1bad" / "a-b" / 65
# characters, reason empty / blanks / 501 characters, unknown fields, a
# target that refuses connections (400 target_unreachable, details.reason)
# — each is answered in the README "API" envelope and records nothing (no
# migrations row, no migration.* audit event, status still 404). Status,
# history, finalize and abort: malformed and unknown ids, missing fields,
# a finalize or abort reason empty / blanks / 501 characters / a number
# (blanks refused at ready_for_cutover too, nothing audited), history's limit and
# cursor; history paged (limit 1, nextCursor, a cursor of GET /migration
# refused), a rehearsal's reason in migration.finalize_requested.
# Legal hold on the org and on one of its records: 409 legal_hold with
# nothing recorded; overrideLegalHold: 202 and audited. A started migration
# (explicit targetUri, the stack's own MariaDB): the status document's
# shape, the target redacted, a second start 409 migration_in_progress,
# finalize before ready 409, abort 202 → aborted within 20 s, abort again
# 409, the target database gone, a new start allowed, history newest first.
# The runbook's literal requests (README "Runbook 3"): start with exactly orgId, direction,
# chunkSize and targetUri (or dbName), no reason: 202, reason null in the
# status and NULL in the row (not ""), no reason in the audit payloads,
# ready_for_cutover; finalize with dryRun there: 200 and the report (its
# members, steps connect/catch_up/verify, expectedFreezeMs their sum, the
# verification), still ready_for_cutover and shared, the report in the
# status, migration.finalize_requested {dryRun} and
# migration.finalize_rehearsed audited, opsctl migration finalize
# --dry-run (text and --json); with the jobs process stopped: 202 and the
# status in phase rehearsal, a second one 409, an abort wins; dryRun "yes"
# 400, and the 404/409s of finalize for dryRun too. Abort with only orgId:
# abortReason null. GET /migration across the orgs of this file: newest
# first, as in the table, status filters, paging by limit 2 over several
# orgs, bad status/limit/cursor 400; opsctl migration list (text, --json,
# --status, a bad --status). Every other role gets 403 on every migration route, nobody 401. opsctl
# migration start/status/watch/finalize/abort/history: output and exit
# codes (0; 2 for a refusal or bad usage), --target-uri-env, and watch
# riding out a MariaDB restart. No password of a target anywhere in log/
# or audit_events.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(WNOHANG _exit setsid);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $R = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8;
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my @STATUS_KEYS = qw(id orgId direction status dryRun chunkSize target dbName reason overrideLegalHold
	tables rowsCopied rowsTotal percent rowsPerSecond etaSeconds throttled throttleReason changelog
	verification report freezeMs error createdAt updatedAt finishedAt);
my %UNFINISHED = map { $_ => 1 } qw(pending copying catching_up verifying ready_for_cutover aborting);

# The password of the stack's own dedicated URI (script/server's opsd user),
# and the ones this test puts into target URIs: none may ever come back.
my $DB_PW = do { open my $fh, '<', var_dir() . '/db-password' or die "db-password: $!"; my $l = <$fh>; chomp $l; $l };
my $DEDICATED_URI = parse_env_file(var_dir() . '/opsd.env')->{OPSD_DEDICATED_DB_URI};
ok length($DB_PW) >= 8, 'the stack has a database password';
ok $DEDICATED_URI && index($DEDICATED_URI, $DB_PW) >= 0, 'opsd.env has OPSD_DEDICATED_DB_URI with it'
    or diag "OPSD_DEDICATED_DB_URI: " . ($DEDICATED_URI // 'unset');
my %SECRET = (db_password => $DB_PW);
sub secret($label) { return sensitive("secret $label", $SECRET{$label} //= "Pw$label" . uc($R) . 'x9') }

sub no_secret_in($text, $name) {
	my @hits = grep { index($text // '', $SECRET{$_}) >= 0 } sort keys %SECRET;
	ok !@hits, "$name: no password in it" or diag "found: @hits";
}
sub mig_rows($org) { return db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($org) . "')") }
sub mig_audits($org, $action = 'migration.%') {
	my $id = ref $org ? $org->{id} : $org;
	return db_count("SELECT COUNT(*) FROM audit_events WHERE action LIKE '$action' AND (org_id = UNHEX('"
	    . org_hex($org) . "') OR payload LIKE '%$id%')");
}

sub wait_status($org, $want, $secs = 20) {
	my $last = '';
	my $ok = wait_until($secs, sub {
		my $r = migration_status($admin, $org);
		$last = j($r)->{status} // "HTTP $r->{status}";
		return $last eq $want;
	}, 0.25);
	ok $ok, "  the migration reaches $want within $secs s" or diag "last status: $last";
	return $ok;
}
sub check_doc($doc, $name, %want) {
	my @miss = grep { !exists $doc->{$_} } @STATUS_KEYS;
	ok !@miss, "$name: the status document has every member" or diag "missing: @miss";
	like $doc->{id} // '', $UUID, "$name: id is a UUID";
	for my $k (sort keys %want) {
		is_deeply $doc->{$k}, $want{$k}, "$name: $k";
	}
	ok JSON::PP::is_bool($doc->{dryRun}) && JSON::PP::is_bool($doc->{throttled})
	    && JSON::PP::is_bool($doc->{overrideLegalHold}), "$name: dryRun, throttled, overrideLegalHold are booleans";
	ok ref $doc->{tables} eq 'ARRAY', "$name: tables is an array";
	my @bad = grep { ref ne 'HASH' || !exists $_->{table} || !exists $_->{rowsCopied} || !exists $_->{rowsTotal}
	    || !exists $_->{done} } @{ ref $doc->{tables} eq 'ARRAY' ? $doc->{tables} : [] };
	ok !@bad, "$name: each table has table, rowsCopied, rowsTotal, done";
	ok defined $doc->{percent} && $doc->{percent} =~ /^[0-9.]+$/ && $doc->{percent} <= 100,
	    "$name: percent is 0..100" or diag "percent: " . ($doc->{percent} // 'null');
	ok ref $doc->{changelog} eq 'HASH' && exists $doc->{changelog}{applied} && exists $doc->{changelog}{pending},
	    "$name: changelog {applied, pending}";
	like $doc->{target} // '', qr{^mysql://}, "$name: the target is shown";
	unlike $doc->{target} // '', qr{//[^/@]*:(?!\*\*\*@)[^/@]*@}, "$name: with no password (at most ***)";
	no_secret_in(json_encode($doc), $name);
}

# ============================================================ the route table
{
	my ($rc, $out, $err) = opsctl('routes');
	my %by = map { ("$_->{method} $_->{pattern}" => $_) } @{ json_decode($out) // [] };
	for my $k ('POST /migration/start', 'GET /migration/status/:orgId', 'POST /migration/finalize',
	    'POST /migration/abort', 'GET /migration/history', 'GET /migration') {
		is +($by{$k} // {})->{permission}, 'migration.run', "$k needs migration.run";
	}
	my $roles = json_decode((opsctl('roles'))[1]) // {};
	is_deeply [sort grep { grep { $_ eq 'migration.run' } @{ $roles->{$_} } } keys %$roles], ['superadmin'],
	    'only superadmin holds migration.run';
}

# ============================================================ orgs
sub new_org($tag) { return create_org(name => "Migration $tag $R", slug => "m95$tag$R") }
my %O = map { ($_ => new_org($_)) } qw(bad held rec over run cli watch dedi lit);
ok !grep({ !$O{$_}{id} } keys %O), 'orgs for each part' or BAIL_OUT('cannot create orgs');
my $A = $O{bad}{id};

# ============================================================ bad input, nothing recorded
my @BAD = (
	# [name, body changes (undef deletes), status, code, fields]
	['unknown org', { orgId => uuid7_like() }, 404, 'not_found'],
	['malformed orgId', { orgId => 'not-a-uuid' }, 400, 'validation_failed', 'orgId'],
	['missing orgId', { orgId => undef }, 400, 'validation_failed', 'orgId'],
	['numeric orgId', { orgId => 7 }, 400, 'validation_failed', 'orgId'],
	['missing direction', { direction => undef }, 400, 'validation_failed', 'direction'],
	['unknown direction', { direction => 'sideways' }, 400, 'validation_failed', 'direction'],
	['dedicated_to_shared for a shared org', { direction => 'dedicated_to_shared' }, 409, 'conflict'],
	['chunkSize 0', { chunkSize => 0 }, 400, 'validation_failed', 'chunkSize'],
	['chunkSize 100001', { chunkSize => 100001 }, 400, 'validation_failed', 'chunkSize'],
	['chunkSize -1', { chunkSize => -1 }, 400, 'validation_failed', 'chunkSize'],
	['chunkSize "x"', { chunkSize => 'x' }, 400, 'validation_failed', 'chunkSize'],
	['chunkSize 1.5', { chunkSize => 1.5 }, 400, 'validation_failed', 'chunkSize'],
	['targetUri without a host', { targetUri => 'mysql://u:' . secret('nohost') . '@/x' }, 400,
	    'validation_failed', 'targetUri'],
	['targetUri of another scheme', { targetUri => 'postgres://u:' . secret('scheme') . '@127.0.0.1/x' }, 400,
	    'validation_failed', 'targetUri'],
	['targetUri that is no URI', { targetUri => 'just words ' . secret('words') }, 400, 'validation_failed',
	    'targetUri'],
	['targetUri with a bad port', { targetUri => 'mysql://u:' . secret('port') . '@127.0.0.1:99999/x' }, 400,
	    'validation_failed', 'targetUri'],
	['targetUri empty', { targetUri => '' }, 400, 'validation_failed', 'targetUri'],
	['targetUri of 1001 characters', { targetUri => 'mysql://u:' . secret('long') . '@h/' . ('x' x 1000) }, 400,
	    'validation_failed', 'targetUri'],
	['targetUri a number', { targetUri => 42 }, 400, 'validation_failed', 'targetUri'],
	['dbName "1bad"', { dbName => '1bad' }, 400, 'validation_failed', 'dbName'],
	['dbName "a-b"', { dbName => 'a-b' }, 400, 'validation_failed', 'dbName'],
	['dbName of 65 characters', { dbName => 'x' x 65 }, 400, 'validation_failed', 'dbName'],
	['dbName with a backtick', { dbName => 'org_a`; DROP DATABASE opsd; --' }, 400, 'validation_failed', 'dbName'],
	['dbName empty', { dbName => '' }, 400, 'validation_failed', 'dbName'],
	['empty reason', { reason => '' }, 400, 'validation_failed', 'reason'],
	['a reason of blanks only', { reason => " \t " }, 400, 'validation_failed', 'reason'],
	['reason of 501 characters', { reason => 'r' x 501 }, 400, 'validation_failed', 'reason'],
	['dryRun "yes"', { dryRun => 'yes' }, 400, 'validation_failed', 'dryRun'],
	['overrideLegalHold 1 (a number)', { overrideLegalHold => 7 }, 400, 'validation_failed', 'overrideLegalHold'],
	['an unknown field', { speed => 'ludicrous' }, 400, 'validation_failed', 'speed'],
);
for my $c (@BAD) {
	my ($name, $change, $st, $code, @fields) = @$c;
	my %b = (orgId => $A, direction => 'shared_to_dedicated', reason => "bad input $R", dbName => "org_bad_$R");
	for my $k (keys %$change) {
		if (defined $change->{$k}) { $b{$k} = $change->{$k} } else { delete $b{$k} }
	}
	my $r = migration_start($admin, %b);
	check_error($r, $st, $code, "start, $name");
	fields_named($r, @fields) if @fields;
	no_secret_in($r->{body}, "start, $name");
}
{
	my $r = http(POST => '/migration/start', body => '{"orgId":', headers => { 'Content-Type' => 'application/json' },
	    session => $admin);
	check_error($r, 400, 'invalid_json', 'start, a truncated body');
	$r = http(POST => '/migration/start', body => '[]', headers => { 'Content-Type' => 'application/json' },
	    session => $admin);
	check_error($r, 400, undef, 'start, an array body');
}
# A shared_to_dedicated start for an org already dedicated.
{
	ok defined mysql("UPDATE orgs SET db_mode = 'dedicated' WHERE id = UNHEX('" . org_hex($O{dedi}) . "')"),
	    'an org marked dedicated';
	my $r = migration_start($admin, orgId => $O{dedi}{id}, direction => 'shared_to_dedicated', reason => 'wrong way');
	check_error($r, 409, 'conflict', 'start, shared_to_dedicated for a dedicated org');
	is mig_rows($O{dedi}), 0, '  no migrations row';
	mysql("UPDATE orgs SET db_mode = 'shared' WHERE id = UNHEX('" . org_hex($O{dedi}) . "')");
}
# A target that refuses connections.
{
	my $uri = 'mysql://u:' . secret('refused') . '@127.0.0.1:1/x';
	my $t0 = time;
	my $r = migration_start($admin, orgId => $A, direction => 'shared_to_dedicated', reason => 'unreachable',
	    targetUri => $uri, dbName => "org_unreach_$R");
	check_error($r, 400, 'target_unreachable', 'start, a target that refuses connections');
	my $d = ref j($r)->{error} eq 'HASH' ? j($r)->{error}{details} : undef;
	ok ref $d eq 'HASH' && defined $d->{reason} && length $d->{reason}, '  details.reason says why'
	    or diag $r->{body};
	no_secret_in($r->{body}, 'the unreachable answer');
	unlike $r->{body}, qr/127\.0\.0\.1:1\/x|u:Pw/, '  the URI is not echoed';
	ok time - $t0 < 15, sprintf('  answered in %.1f s', time - $t0);
}
is mig_rows($A), 0, 'after every bad start: no migrations row for the org';
is mig_audits($A), 0, '  and no migration.* audit event';
check_error(migration_status($admin, $A), 404, 'not_found', 'status of an org that never migrated');
{
	my $r = migration_history($admin, $A);
	status_is $r, 200, 'history of an org that never migrated: 200';
	is_deeply j($r)->{items}, [], '  items is empty';
}

# ============================================================ status, history, finalize, abort: bad input
check_error(migration_status($admin, 'not-a-uuid'), 404, 'not_found', 'status, malformed orgId');
check_error(migration_status($admin, uuid7_like()), 404, 'not_found', 'status, unknown org');
check_error(http(GET => '/migration/status/', session => $admin), 404, undef, 'status without an orgId');
for my $c (['missing orgId', undef], ['empty orgId', ''], ['malformed orgId', 'zzz'], ['half a UUID', substr($A, 0, 18)]) {
	my $r = migration_history($admin, $c->[1]);
	check_error($r, 400, 'validation_failed', "history, $c->[0]");
	fields_named($r, 'orgId');
}
check_error(migration_history($admin, uuid7_like()), 404, 'not_found', 'history, unknown org');
for my $c (['limit 0', 'limit=0', 'limit'], ['limit 501', 'limit=501', 'limit'], ['limit "x"', 'limit=x', 'limit'],
    ['a cursor that is no cursor', 'cursor=zzz', 'cursor']) {
	my $r = http(GET => "/migration/history?orgId=$A&$c->[1]", session => $admin);
	check_error($r, 400, 'validation_failed', "history, $c->[0]");
	fields_named($r, $c->[2]);
}
for my $c (
	['finalize, missing orgId', \&migration_finalize, {}, 400, 'orgId'],
	['finalize, malformed orgId', \&migration_finalize, { orgId => 'x' }, 400, 'orgId'],
	['finalize, an unknown field', \&migration_finalize, { orgId => $A, now => JSON::PP::true }, 400, 'now'],
	['finalize, unknown org', \&migration_finalize, { orgId => uuid7_like() }, 404],
	['finalize, an org without a migration', \&migration_finalize, { orgId => $A }, 404],
	['finalize, dryRun "yes"', \&migration_finalize, { orgId => $A, dryRun => 'yes' }, 400, 'dryRun'],
	['finalize, dryRun null', \&migration_finalize, { orgId => $A, dryRun => undef }, 400, 'dryRun'],
	['finalize dryRun, unknown org', \&migration_finalize, { orgId => uuid7_like(), dryRun => 1 }, 404],
	['finalize dryRun, an org without a migration', \&migration_finalize, { orgId => $A, dryRun => 1 }, 404],
	['finalize, empty reason', \&migration_finalize, { orgId => $A, reason => '' }, 400, 'reason'],
	['finalize, a reason of blanks only', \&migration_finalize, { orgId => $A, reason => '   ' }, 400, 'reason'],
	['finalize dryRun, a reason of blanks only', \&migration_finalize, { orgId => $A, dryRun => 1, reason => "\n " }, 400, 'reason'],
	['finalize, reason of 501 characters', \&migration_finalize, { orgId => $A, reason => 'r' x 501 }, 400, 'reason'],
	['finalize dryRun, reason a number', \&migration_finalize, { orgId => $A, dryRun => 1, reason => 42 }, 400, 'reason'],
	['finalize, reason null, an org without a migration', \&migration_finalize, { orgId => $A, reason => undef }, 404],
	['abort, missing orgId', \&migration_abort, { reason => 'r' }, 400, 'orgId'],
	['abort without a reason, an org without a migration', \&migration_abort, { orgId => $A }, 404],
	['abort, empty reason', \&migration_abort, { orgId => $A, reason => '' }, 400, 'reason'],
	['abort, a reason of blanks only', \&migration_abort, { orgId => $A, reason => '   ' }, 400, 'reason'],
	['abort, reason of 501 characters', \&migration_abort, { orgId => $A, reason => 'r' x 501 }, 400, 'reason'],
	['abort, unknown org', \&migration_abort, { orgId => uuid7_like(), reason => 'r' }, 404],
	['abort, an org without a migration', \&migration_abort, { orgId => $A, reason => 'r' }, 404],
) {
	my ($name, $fn, $body, $st, @fields) = @$c;
	my $r = $fn->($admin, %$body);
	check_error($r, $st, $st == 400 ? 'validation_failed' : 'not_found', $name);
	fields_named($r, @fields) if @fields;
}
is mig_rows($A), 0, 'still no migrations row for the org';

# ============================================================ legal hold
{
	my $held = $O{held}{id};
	my $r = legal_hold($admin, entity => 'orgs', ids => [$held], hold => 1, reason => "hold $R");
	status_is $r, 200, 'the org is put on legal hold';
	$r = migration_start($admin, orgId => $held, direction => 'shared_to_dedicated', reason => 'held', dbName => "org_held_$R");
	check_error($r, 409, 'legal_hold', 'start of a held org');
	is mig_rows($held), 0, '  no migrations row';

	# a held record of an otherwise free org
	my $rec = $O{rec}{id};
	my $c = tenant_create($admin, $O{rec}, 'contacts', { name => "Held Contact $R", email => "held.$R\@example.test" });
	status_is $c, 201, 'a contact in another org';
	$r = legal_hold($admin, entity => 'contacts', ids => [j($c)->{id} // uuid7_like()], hold => 1, reason => "hold $R");
	status_is $r, 200, '  put on legal hold';
	$r = migration_start($admin, orgId => $rec, direction => 'shared_to_dedicated', reason => 'held record', dbName => "org_rec_$R");
	check_error($r, 409, 'legal_hold', 'start of an org with a held record');
	is mig_rows($rec), 0, '  no migrations row';
	is mig_audits($rec), 0, '  no migration.* audit event';

	# the override
	my $over = $O{over}{id};
	$r = legal_hold($admin, entity => 'orgs', ids => [$over], hold => 1, reason => "hold $R");
	status_is $r, 200, 'a third org on legal hold';
	$r = migration_start($admin, orgId => $over, direction => 'shared_to_dedicated', reason => "override $R",
	    overrideLegalHold => 1, chunkSize => 1, dbName => "org_over_$R");
	status_is $r, 202, 'start with overrideLegalHold: 202';
	check_doc(j($r), 'the overriding start', orgId => $over, overrideLegalHold => JSON::PP::true,
	    direction => 'shared_to_dedicated', chunkSize => 1, dbName => "org_over_$R", reason => "override $R");
	is mig_rows($over), 1, '  one migrations row';
	ok mig_audits($over, 'migration.legal_hold_override') >= 1, '  audited as migration.legal_hold_override';
	ok mig_audits($over, 'migration.started') >= 1, '  and migration.started';
	$r = migration_abort($admin, orgId => $over, reason => 'test over');
	status_is $r, 202, '  abort: 202';
	like j($r)->{status} // '', qr/^(?:aborting|aborted)$/, '  aborting or aborted';
	wait_status($over, 'aborted');
}

# ============================================================ a running migration
my $RUN = $O{run}{id};
{
	my $n = bulk_insert_contacts($RUN, 20000, tag => "run$R");
	is $n, 20000, '20,000 contacts in the org to migrate (a copy in chunks of 1 takes a while)';
	my $body = { orgId => $RUN, direction => 'shared_to_dedicated', chunkSize => 1, targetUri => $DEDICATED_URI,
	    dbName => "org_run1_$R", reason => "first $R" };
	my $r = migration_start($admin, %$body);
	status_is $r, 202, 'start with an explicit targetUri (the stack\'s MariaDB): 202';
	my $doc = j($r);
	check_doc($doc, 'the started migration', orgId => $RUN, direction => 'shared_to_dedicated', chunkSize => 1,
	    dryRun => JSON::PP::false, overrideLegalHold => JSON::PP::false, dbName => "org_run1_$R",
	    reason => "first $R");
	ok $UNFINISHED{ $doc->{status} // '' }, "  status $doc->{status} is an unfinished one";
	my $id = $doc->{id};
	no_secret_in($r->{body}, 'the 202 answer');
	is mig_rows($RUN), 1, '  one migrations row';
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($RUN) . "') AND (target_sealed LIKE "
	    . "'%$DB_PW%' OR target_redacted LIKE '%$DB_PW%')"), 0, '  the stored target holds no clear password';
	ok mig_audits($RUN, 'migration.started') >= 1, '  audited as migration.started';

	$r = migration_start($admin, %$body);
	check_error($r, 409, 'migration_in_progress', 'the same start again while it runs');
	$r = migration_start($admin, %$body, dbName => "org_run2_$R", reason => 'second');
	check_error($r, 409, 'migration_in_progress', 'a second start (another dbName) while one runs');
	$r = migration_start($admin, orgId => $RUN, direction => 'dedicated_to_shared', reason => 'other way');
	check_error($r, [409], ['migration_in_progress', 'conflict'], 'a start the other way while one runs');
	is mig_rows($RUN), 1, '  still one migrations row';

	my $st = j(migration_status($admin, $RUN))->{status} // '';
	if ($st ne 'ready_for_cutover') {
		$r = migration_finalize($admin, orgId => $RUN);
		check_error($r, 409, 'conflict', "finalize before ready ($st)");
		isnt j(migration_status($admin, $RUN))->{status} // '', 'cutting_over', '  not cutting_over';
		$r = migration_finalize($admin, orgId => $RUN, dryRun => 1);
		check_error($r, 409, 'conflict', "finalize with dryRun before ready ($st)");
		is mig_audits($RUN, 'migration.finalize_%'), 0, '  nothing audited';
	} else {
		fail 'the copy of 20,000 rows in chunks of 1 was ready at once: finalize-before-ready not testable';
	}

	$r = migration_status($admin, uc $RUN);
	status_is $r, 200, 'GET /migration/status/:orgId (upper-case id) 200';
	check_doc(j($r), 'the status', id => $id, orgId => $RUN);

	$r = migration_history($admin, $RUN);
	status_is $r, 200, 'GET /migration/history 200';
	my $items = j($r)->{items};
	is ref $items eq 'ARRAY' ? scalar @$items : -1, 1, '  one item';
	check_doc($items->[0] // {}, 'the history item', id => $id);

	# An operator retrying the very same start once rows are in the target:
	# still "one is running", not a complaint about the target.
	my $copied = wait_until(15, sub { (j(migration_status($admin, $RUN))->{rowsCopied} // 0) > 0 }, 0.25);
	ok $copied, 'the copy has begun';
	$r = migration_start($admin, %$body);
	check_error($r, 409, 'migration_in_progress', 'the same start again once rows were copied');

	$r = migration_abort($admin, orgId => $RUN, reason => "stop $R");
	status_is $r, 202, 'abort: 202';
	like j($r)->{status} // '', qr/^(?:aborting|aborted)$/, '  aborting or aborted';
	wait_status($RUN, 'aborted');
	ok mig_audits($RUN, 'migration.aborted') >= 1, '  audited as migration.aborted';
	is db_count("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'org_run1_$R'"), 0,
	    '  the target database is gone';
	is db_count("SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX('" . org_hex($RUN) . "')"), 20000,
	    '  the source rows are all there';
	check_error(migration_abort($admin, orgId => $RUN, reason => 'again'), 409, 'conflict', 'abort of an aborted migration');
	check_error(migration_finalize($admin, orgId => $RUN), 409, 'conflict', 'finalize of an aborted migration');
	check_error(migration_finalize($admin, orgId => $RUN, dryRun => 1), 409, 'conflict',
	    'finalize with dryRun of an aborted migration');

	$r = migration_start($admin, orgId => $RUN, direction => 'shared_to_dedicated', chunkSize => 1, dbName => "org_run3_$R",
	    reason => "third $R");
	status_is $r, 202, 'a new start after the abort (default target: OPSD_DEDICATED_DB_URI): 202';
	my $id2 = j($r)->{id} // '';
	isnt $id2, $id, '  a new migration id';
	$r = migration_history($admin, $RUN);
	is_deeply [map { $_->{id} } @{ j($r)->{items} // [] }], [$id2, $id], '  history: newest first';
	is j($r)->{items}[1]{status}, 'aborted', '  the first one aborted';
	is j($r)->{nextCursor}, undef, '  on one page (nextCursor null)';
	$r = http(GET => "/migration/history?orgId=$RUN&limit=1", session => $admin);
	status_is $r, 200, 'history with limit=1: 200';
	is_deeply [map { $_->{id} } items($r)], [$id2], '  the newest';
	ok my $next = j($r)->{nextCursor}, '  and a nextCursor';
	$r = http(GET => "/migration/history?orgId=$RUN&limit=1&cursor=" . uri_escape_all($next // ''), session => $admin);
	status_is $r, 200, '  the next page: 200';
	is_deeply [map { $_->{id} } items($r)], [$id], '  the older one';
	is j($r)->{nextCursor}, undef, '  the last page';
	my $other = j(migration_list($admin, limit => 1))->{nextCursor};
	$r = http(GET => "/migration/history?orgId=$RUN&cursor=" . uri_escape_all($other // ''), session => $admin);
	check_error($r, 400, 'validation_failed', 'history with a cursor of GET /migration');
	fields_named($r, 'cursor');
	check_error(migration_abort($admin, orgId => $RUN, reason => 'by id', migrationId => $id), 409, 'conflict',
	    'abort by migrationId of the older, aborted migration: 409');
	check_error(migration_abort($admin, orgId => $RUN, reason => 'by id', migrationId => '01a22d9b-0000-7000-8000-000000000000'),
	    404, 'not_found', 'abort by an unknown migrationId: 404');
	check_error(migration_abort($admin, orgId => $RUN, reason => 'by id', migrationId => 'nope'), 400, 'validation_failed',
	    'abort with a malformed migrationId: 400');
	status_is migration_abort($admin, orgId => $RUN, reason => 'done', migrationId => $id2), 202, '  the new one aborted by its id';
	wait_status($RUN, 'aborted');
}

# ============================================================ the runbook's literal requests: no reason
{
	my $L = $O{lit}{id};
	my $hex = org_hex($L);
	is bulk_insert_contacts($L, 300, tag => "lit$R"), 300, 'an org with 300 contacts for the literal requests';
	my $r = migration_start($admin, orgId => $L, direction => 'shared_to_dedicated', chunkSize => 100,
	    targetUri => $DEDICATED_URI);
	status_is $r, 202, 'start with exactly orgId, direction, chunkSize and targetUri (no reason): 202';
	check_doc(j($r), 'the literal start', orgId => $L, direction => 'shared_to_dedicated', chunkSize => 100,
	    reason => undef, dryRun => JSON::PP::false);
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('$hex') AND reason IS NULL"), 1,
	    '  the reason is stored as NULL, not as an empty string';
	my @ev = grep { $_->{org} eq norm_id($L) } audit_payloads('migration.started');
	is scalar(@ev), 1, '  audited as migration.started';
	ok !exists(($ev[0] // {})->{p}{reason}), '  with no reason in its payload' or diag $ev[0]{payload};
	wait_status($L, 'ready_for_cutover', 60);
	$r = migration_status($admin, $L);
	is j($r)->{reason}, undef, '  the status shows reason null';
	ok exists j($r)->{reason}, '  (the member is there)';
	my $id = j($r)->{id};

	# a reason of blanks only is refused at ready_for_cutover too, and nothing recorded
	for my $c (['finalize', \&migration_finalize, {}], ['finalize dryRun', \&migration_finalize, { dryRun => 1 }],
	    ['abort', \&migration_abort, {}]) {
		my $b = $c->[1]->($admin, orgId => $L, %{ $c->[2] }, reason => '   ', timeout => 40);
		check_error($b, 400, 'validation_failed', "$c->[0] with a reason of blanks at ready_for_cutover");
		fields_named($b, 'reason');
	}
	is j(migration_status($admin, $L))->{status}, 'ready_for_cutover', '  still ready_for_cutover';
	is scalar(grep { $_->{org} eq norm_id($L) } map { audit_payloads($_) } qw(migration.finalize_requested
	    migration.abort_requested)), 0, '  no finalize_requested or abort_requested audited';

	# the cut-over rehearsed
	my $f = migration_finalize($admin, orgId => $L, dryRun => 1, timeout => 40);
	status_is $f, 200, 'finalize {"orgId", "dryRun": true} at ready_for_cutover: 200 with the report';
	my $rep = j($f);
	is_deeply [sort keys %$rep], [sort qw(migrationId orgId direction dryRun rehearsal switched ok startedAt finishedAt
	    durationMs steps changesReplayed verification expectedFreezeMs error status)], '  the report has its members';
	is_deeply [@$rep{qw(migrationId orgId direction status)}], [$id, $L, 'shared_to_dedicated', 'ready_for_cutover'],
	    '  of this migration, still ready_for_cutover';
	ok $rep->{dryRun} && $rep->{rehearsal} && JSON::PP::is_bool($rep->{switched}) && !$rep->{switched},
	    '  dryRun, rehearsal, switched false';
	ok $rep->{ok} && !defined $rep->{error}, '  ok, no error' or diag $f->{body};
	is_deeply [map { $_->{step} } @{ $rep->{steps} // [] }], [qw(connect catch_up verify)], '  steps connect, catch_up, verify';
	ok !grep({ !$_->{ok} || ($_->{ms} // '') !~ /^\d+$/ } @{ $rep->{steps} // [] }), '  each ok, with its ms';
	my %st = map { $_->{step} => $_ } @{ $rep->{steps} // [] };
	like $rep->{expectedFreezeMs} // '', qr/^\d+$/, "  expectedFreezeMs ($rep->{expectedFreezeMs})";
	is $rep->{expectedFreezeMs}, ($st{catch_up}{ms} // 0) + ($st{verify}{ms} // 0), '  the catch-up and verification times';
	like $st{catch_up}{changesReplayed} // '', qr/^\d+$/, '  changesReplayed in the catch-up step';
	cmp_ok $st{verify}{chunks} // 0, '>=', 3, "  every chunk verified ($st{verify}{chunks})";
	is $st{verify}{chunksMismatched}, 0, '  none mismatched';
	my $v = $rep->{verification} // {};
	ok $v->{ok} && $v->{rehearsal} && JSON::PP::is_bool($v->{final}) && !$v->{final}, '  verification ok, a rehearsal, not final';
	is_deeply { map { $_->{table} => $_->{sourceRows} } @{ $v->{tables} // [] } }, { contacts => 300, offices => 0, projects => 0 },
	    '  rows per table';
	near_now($rep->{finishedAt}, '  finishedAt');
	$r = migration_status($admin, $L);
	is_deeply [j($r)->{status}, j($r)->{phase}], ['ready_for_cutover', undef], '  the status: still ready_for_cutover, no phase';
	is_deeply j($r)->{report}, { map { $_ eq 'status' ? () : ($_ => $rep->{$_}) } keys %$rep }, '  and the report as answered';
	my ($orow) = db_rows("SELECT db_mode, dedicated_target IS NULL AS no_target, write_frozen_until FROM orgs WHERE id = UNHEX('$hex')");
	is_deeply $orow, { db_mode => 'shared', no_target => 1, write_frozen_until => undef }, '  the org stays shared, not frozen';
	my @req = grep { $_->{org} eq norm_id($L) } audit_payloads('migration.finalize_requested');
	is scalar(@req), 1, '  audited as migration.finalize_requested';
	is_deeply(($req[0] // {})->{p}, { status => 'ready_for_cutover', dryRun => JSON::PP::true }, '  with dryRun true');
	my @reh = grep { $_->{org} eq norm_id($L) } audit_payloads('migration.finalize_rehearsed');
	is scalar(@reh), 1, '  and migration.finalize_rehearsed';
	is_deeply [@{ ($reh[0] // {})->{p} // {} }{qw(ok expectedFreezeMs)}], [JSON::PP::true, $rep->{expectedFreezeMs}],
	    '  with ok and expectedFreezeMs';
	is mig_audits($L, 'migration.finalized'), 0, '  and no migration.finalized';

	my ($rc, $out, $err) = opsctl({ timeout => 60 }, 'migration', 'finalize', '--org', $L, '--dry-run');
	is $rc, 0, 'opsctl migration finalize --dry-run exits 0' or diag $err;
	like $out, qr/^rehearsal: ok$/m, '  rehearsal: ok';
	like $out, qr/^status: ready_for_cutover \(nothing switched\)$/m, '  nothing switched';
	like $out, qr/^step connect: ok, \d+ ms\n^step catch_up: ok, \d+ ms, \d+ changes replayed\n^step verify: ok, \d+ ms, \d+ chunks, 0 mismatched$/m,
	    '  the steps' or diag $out;
	like $out, qr/^expectedFreezeMs: \d+$/m, '  expectedFreezeMs';
	($rc, $out, $err) = opsctl('migration', 'finalize', '--org', $L, '--dry-run', '--reason', '   ');
	is $rc, 2, 'opsctl migration finalize --reason of blanks exits 2' or diag $err;
	($rc, $out, $err) = opsctl({ timeout => 60 }, 'migration', 'finalize', '--org', $L, '--dry-run', '--json',
	    '--reason', 'CHG-7 rehearsal from the host');
	is $rc, 0, 'opsctl migration finalize --dry-run --json exits 0' or diag $err;
	ok scalar(grep { $_->{org} eq norm_id($L) && ($_->{p}{reason} // '') eq 'CHG-7 rehearsal from the host' }
	    audit_payloads('migration.finalize_requested')), '  its --reason is in migration.finalize_requested';
	my $jrep = json_decode($out) // {};
	ok $jrep->{rehearsal} && !$jrep->{switched} && $jrep->{migrationId} eq $id, '  the report as JSON';
	is j(migration_status($admin, $L))->{status}, 'ready_for_cutover', '  still ready_for_cutover';
	is scalar(grep { $_->{org} eq norm_id($L) } audit_payloads('migration.finalize_rehearsed')), 3, '  three rehearsals audited';

	# a rehearsal the engine has not done yet (the jobs process stopped):
	# 202 once the request's wait is over, a second one 409, an abort wins
	my $jobs = jobs_pid();
	ok $jobs && kill('STOP', $jobs), 'the jobs process is stopped';
	my ($f1, $f2, $a1);
	eval {
		my $t0 = time;
		$f1 = migration_finalize($admin, orgId => $L, dryRun => 1, reason => "rehearse $R", timeout => 40);
		note sprintf 'the rehearsal request waited %.1f s', time - $t0;
		$f2 = migration_finalize($admin, orgId => $L, dryRun => 1);
		$a1 = migration_abort($admin, orgId => $L);
		1;
	} or diag "while the jobs process was stopped: $@";
	kill 'CONT', $jobs if $jobs;
	status_is $f1, 202, 'finalize dryRun while the engine is stopped: 202 when the wait is over';
	is_deeply [j($f1)->{status}, j($f1)->{phase}, j($f1)->{report}], ['ready_for_cutover', 'rehearsal', undef],
	    '  the status document: ready_for_cutover, phase rehearsal, no report yet';
	check_error($f2, 409, 'conflict', 'a second rehearsal while one is pending');
	my @fr = grep { $_->{org} eq norm_id($L) } audit_payloads('migration.finalize_requested');
	is_deeply(($fr[-1] // {})->{p}, { status => 'ready_for_cutover', dryRun => JSON::PP::true, reason => "rehearse $R" },
	    '  the rehearsal asked with a reason: migration.finalize_requested holds it') or diag json_encode(\@fr);
	status_is $a1, 202, 'abort with exactly orgId (no reason) during the rehearsal: 202';
	wait_status($L, 'aborted');
	is scalar(grep { $_->{org} eq norm_id($L) } audit_payloads('migration.finalize_rehearsed')), 3,
	    '  the abort won: no fourth rehearsal audited';
	$r = migration_status($admin, $L);
	is j($r)->{abortReason}, undef, '  abortReason null';
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('$hex') AND abort_reason IS NULL"), 1,
	    '  abort_reason NULL in the row';
	for my $action ('migration.abort_requested', 'migration.aborted') {
		my @a = grep { $_->{org} eq norm_id($L) } audit_payloads($action);
		is scalar(@a), 1, "  audited as $action";
		ok !exists(($a[0] // {})->{p}{reason}), '  with no reason in its payload' or diag $a[0]{payload};
	}

	$r = migration_start($admin, orgId => $L, direction => 'shared_to_dedicated', chunkSize => 100, dbName => "org_lit_$R");
	status_is $r, 202, 'start with exactly orgId, direction, chunkSize and dbName (no reason): 202';
	is j($r)->{dbName}, "org_lit_$R", '  into that database';
	$r = migration_abort($admin, orgId => $L, reason => undef);
	status_is $r, 202, 'abort with "reason": null: 202 (null is no reason)';
	wait_status($L, 'aborted');
	$r = migration_history($admin, $L);
	is_deeply [map { [$_->{reason}, $_->{abortReason}] } @{ j($r)->{items} // [] }], [[undef, undef], [undef, undef]],
	    '  history: both migrations without a reason';
	check_error(migration_start($admin, orgId => $L, direction => 'shared_to_dedicated', reason => ''), 400,
	    'validation_failed', 'an empty reason is still refused');
	is mig_rows($L), 2, '  nothing recorded';
}

# ============================================================ authorization
{
	my (%sess, @bad);
	for my $role (grep { $_ ne 'superadmin' } sort keys %{ contract_roles() }) {
		my $u = create_user(role => $role, ($role =~ /^(?:org_admin|member)$/ ? (org => $O{run}) : ()));
		my $s = login($u->{email}, $u->{password});
		ok $s->{cookie}, "a $role signs in" or next;
		$sess{$role} = $s;
	}
	my @calls = (
		['POST /migration/start', sub ($s) { migration_start($s, orgId => $RUN, direction => 'shared_to_dedicated', reason => 'x') }],
		['GET /migration/status/:orgId', sub ($s) { migration_status($s, $RUN) }],
		['POST /migration/finalize', sub ($s) { migration_finalize($s, orgId => $RUN) }],
		['POST /migration/abort', sub ($s) { migration_abort($s, orgId => $RUN, reason => 'x') }],
		['GET /migration/history', sub ($s) { migration_history($s, $RUN) }],
		['GET /migration', sub ($s) { migration_list($s) }],
	);
	for my $role (sort keys %sess) {
		for my $c (@calls) {
			my $r = $c->[1]->($sess{$role});
			my $code = j($r)->{error} && j($r)->{error}{code};
			push @bad, "$role $c->[0]: $r->{status} " . ($code // '') unless $r->{status} == 403 && ($code // '') eq 'forbidden';
		}
	}
	ok !@bad, 'every non-superadmin role: 403 forbidden on every migration route (' . scalar(keys %sess) . ' roles)'
	    or diag join "\n", @bad;
	my @anon = grep { $_->[1]->({})->{status} != 401 } @calls;
	ok !@anon, 'nobody: 401 on every migration route' or diag join ', ', map { $_->[0] } @anon;
	is mig_rows($RUN), 2, 'the refused calls recorded nothing';
}

# ============================================================ opsctl
my $CLI = $O{cli}{id};
{
	is bulk_insert_contacts($CLI, 20000, tag => "cli$R"), 20000, 'an org with 20,000 contacts for opsctl';
	my ($rc, $out, $err) = opsctl('migration', 'status', '--org', $A);
	is $rc, 2, 'opsctl migration status of an org without a migration exits 2';
	like $err, qr/not_found/, '  and says not_found' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'status', '--org', 'nope');
	is $rc, 2, 'opsctl migration status --org nope exits 2';
	($rc, $out, $err) = opsctl('migration', 'status');
	is $rc, 2, 'opsctl migration status without --org exits 2';
	like $err, qr/--org/, '  and names --org';
	($rc, $out, $err) = opsctl('migration', 'start', '--org', $CLI, '--direction', 'shared_to_dedicated', '--reason', 'r',
	    '--dryrun');
	is $rc, 2, 'a misspelt option (--dryrun) exits 2';
	for my $c (
		['--chunk-size 0', ['--chunk-size', '0'], qr/--chunk-size/],
		['--chunk-size 100001', ['--chunk-size', '100001'], qr/--chunk-size/],
		['--chunk-size x', ['--chunk-size', 'x'], qr/--chunk-size/],
		['--direction sideways', ['--direction', 'sideways'], qr/--direction/],
		['--db-name 1bad', ['--db-name', '1bad'], qr/--db-name/],
		['--target-uri-env of an unset variable', ['--target-uri-env', "OPSD95_UNSET_$R"], qr/OPSD95_UNSET/],
	) {
		my ($name, $extra, $re) = @$c;
		my %o = (qw(--org), $CLI, qw(--direction shared_to_dedicated --reason), "cli $R", @$extra);
		($rc, $out, $err) = opsctl('migration', 'start', %o);
		is $rc, 2, "opsctl migration start $name exits 2";
		like $err, $re, '  and names the option' or diag $err;
	}
	($rc, $out, $err) = opsctl('migration', 'start', '--org', $A, '--direction', 'dedicated_to_shared', '--reason', 'r');
	is $rc, 2, 'opsctl migration start in the wrong direction exits 2';
	like $err, qr/conflict/, '  conflict' or diag $err;
	my $uri = 'mysql://u:' . secret('cli') . '@127.0.0.1:1/x';
	($rc, $out, $err) = opsctl({ env => { "OPSD95_TARGET_$R" => $uri } }, 'migration', 'start', '--org', $CLI,
	    '--direction', 'shared_to_dedicated', '--reason', 'r', '--target-uri-env', "OPSD95_TARGET_$R");
	is $rc, 2, 'opsctl migration start --target-uri-env to a refusing target exits 2';
	like $err, qr/target_unreachable/, '  target_unreachable' or diag $err;
	no_secret_in("$out$err", 'its output');
	is mig_rows($CLI), 0, 'the refused CLI starts recorded nothing';

	($rc, $out, $err) = opsctl('migration', 'start', '--org', $CLI, '--direction', 'shared_to_dedicated', '--reason',
	    "cli $R", '--chunk-size', '1', '--db-name', "org_cli_$R");
	is $rc, 0, 'opsctl migration start exits 0' or diag $err;
	my ($id) = $out =~ /^id: (\S+)$/m;
	like $id // '', $UUID, '  prints the migration id';
	like $out, qr/^status: (?:pending|copying|catching_up|verifying|ready_for_cutover)$/m, '  and its status';
	ok mig_audits($CLI, 'migration.started') >= 1, '  audited';
	is db_count("SELECT COUNT(*) FROM audit_events WHERE action = 'migration.started' AND actor_label LIKE 'cli:%'"
	    . " AND (org_id = UNHEX('" . org_hex($CLI) . "') OR payload LIKE '%$CLI%')"), 1, '  by cli:<user>';

	($rc, $out, $err) = opsctl('migration', 'status', '--org', $CLI);
	is $rc, 0, 'opsctl migration status exits 0' or diag $err;
	like $out, qr/^status: \w+$/m, '  status line';
	like $out, qr/^percent: [0-9.]+$/m, '  percent line';
	like $out, qr/^rows\/s: /m, '  rows/s line';
	like $out, qr/^eta: /m, '  eta line';
	like $out, qr/^throttled: (?:yes|no)/m, '  throttled line';
	like $out, qr/^verification: /m, '  verification line';
	like $out, qr/^id: \Q$id\E$/m, '  the id' if $id;
	no_secret_in($out, 'the status output');

	($rc, $out, $err) = opsctl('migration', 'status', '--org', uc $CLI, '--json');
	is $rc, 0, 'opsctl migration status --json exits 0' or diag $err;
	my $doc = json_decode($out);
	is ref $doc eq 'HASH' ? $doc->{id} : undef, $id, '  the status document of the migration';

	($rc, $out, $err) = opsctl('migration', 'start', '--org', $CLI, '--direction', 'shared_to_dedicated', '--reason', 'again');
	is $rc, 2, 'a second opsctl migration start exits 2';
	like $err, qr/migration_in_progress/, '  migration_in_progress' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'finalize', '--org', $CLI);
	is $rc, 2, 'opsctl migration finalize before ready exits 2';
	like $err, qr/conflict/, '  conflict' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'finalize', '--org', $CLI, '--dry-run');
	is $rc, 2, 'opsctl migration finalize --dry-run before ready exits 2';
	like $err, qr/conflict/, '  conflict' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'history', '--org', $CLI);
	is $rc, 0, 'opsctl migration history exits 0';
	is_deeply [map { $_->{id} } @{ (json_decode($out) // {})->{items} // [] }], [$id], '  one item, the migration';
	($rc, $out, $err) = opsctl('migration', 'abort', '--org', $CLI, '--reason', '');
	is $rc, 2, 'opsctl migration abort --reason "" exits 2';
	like $err, qr/--reason/, '  and names --reason' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'abort', '--org', $CLI, '--reason', '  ');
	is $rc, 2, 'opsctl migration abort --reason "  " (blanks) exits 2';
	like $err, qr/--reason/, '  and names --reason' or diag $err;
	($rc, $out, $err) = opsctl('migration', 'abort', '--org', $CLI);
	is $rc, 0, 'opsctl migration abort without --reason exits 0' or diag $err;
	like $out, qr/^status: (?:aborting|aborted)$/m, '  aborting or aborted';
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($CLI) . "') AND abort_reason IS NULL"),
	    1, '  no reason recorded';

	($rc, $out, $err) = opsctl({ timeout => 40 }, 'migration', 'watch', '--org', $CLI, '--interval-ms', '200');
	is $rc, 0, 'opsctl migration watch exits 0 once aborted' or diag $err;
	my @lines = grep { length } split /\n/, $out;
	ok @lines >= 1, '  prints lines';
	ok !grep({ /[\r\e]/ } @lines), '  plain lines (stdout is not a terminal)';
	like $lines[-1] // '', qr/^\[[#.]+\]\s+[0-9.]+%  \S+ rows\/s  ETA \S+  aborted/, '  the last one is the bar, aborted'
	    or diag $out;
	($rc, $out, $err) = opsctl('migration', 'abort', '--org', $CLI, '--reason', 'again');
	is $rc, 2, 'opsctl migration abort of an aborted migration exits 2';
}

# ============================================================ watch across a MariaDB restart
{
	my $W = $O{watch}{id};
	is bulk_insert_contacts($W, 20000, tag => "watch$R"), 20000, 'an org with 20,000 contacts to watch';
	my $r = migration_start($admin, orgId => $W, direction => 'shared_to_dedicated', chunkSize => 1, dbName => "org_watch_$R",
	    reason => "watch $R");
	status_is $r, 202, 'a migration to watch';
	my $tmp = stack()->{tmp};
	# the build's opsctl (OPSD_BUILD), named before the child clears OPSD_*
	my @cmd = (opsctl_bin(), 'migration', 'watch', '--org', $W, '--interval-ms', '200');
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		setsid();
		%ENV = (%ENV, OPSD_ENV_FILE => var_dir() . '/opsd.env');
		delete $ENV{$_} for grep { /^(?:OPSD_(?!ENV_FILE)|SMTP_|SESSION_)/ } keys %ENV;
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', "$tmp/watch.out";
		open STDERR, '>', "$tmp/watch.err";
		exec { $cmd[0] } @cmd or _exit(127);
	}
	sleep 1.5;
	stop_mysql();
	sleep 3;
	ok pid_alive($pid), 'watch keeps going while MariaDB is down';
	start_mysql();
	ok wait_until(60, sub { http(GET => '/readyz')->{status} == 200 }, 0.5), 'MariaDB is back, opsd ready';
	my $a;
	wait_until(30, sub { $a = migration_abort($admin, orgId => $W, reason => 'watched'); $a->{status} != 503 }, 0.5);
	status_is $a, 202, 'abort of the watched migration';
	my $rc;
	wait_until(40, sub { my $w = waitpid($pid, WNOHANG); $rc = $? >> 8 if $w == $pid; $w == $pid }, 0.2);
	unless (defined $rc) { kill 'KILL', -$pid; waitpid($pid, 0) }
	is $rc, 0, 'watch exits 0 once the migration is aborted';
	my $out = do { local (@ARGV, $/) = ("$tmp/watch.out"); <> } // '';
	like $out, qr/reconnecting/, '  it said it was reconnecting';
	like $out, qr/aborted\s*\z/, '  and ended on aborted' or diag $out;
}

# ============================================================ no password anywhere
{
	my @hits = find_in_logs(\%SECRET);
	ok !@hits, 'no target password in any file under log/' or diag join "\n", @hits;
	my $a = mysql('SELECT payload FROM audit_events WHERE action LIKE \'migration.%\'') // '';
	ok length $a, 'migration audit payloads exist';
	no_secret_in($a, 'the migration.* audit payloads');
	my $m = mysql('SELECT target_redacted, IFNULL(error, \'\') FROM migrations') // '';
	no_secret_in($m, 'migrations.target_redacted and error');
}

# ============================================================ target names: long slugs, databases of others
{
	my $slug = substr("l$R" . ('x' x 80), 0, 63);
	my $L = create_org(name => "Long slug $R", slug => $slug);
	ok $L->{id}, 'an org with a 63-character slug' or diag $L->{res}{body};
	my $r = migration_start($admin, orgId => $L->{id}, direction => 'shared_to_dedicated', dryRun => 1, reason => "long $R");
	status_is $r, 202, '  a dry run with the default database name: 202';
	my $db = j($r)->{dbName} // '';
	ok length($db) <= 64 && $db =~ /^org_[a-z0-9_]+$/, "  dbName org_… of at most 64 characters ($db)";
	wait_status($L->{id}, 'completed', 60);
	check_error(migration_finalize($admin, orgId => $L->{id}, dryRun => 1), 409, 'conflict',
	    '  finalize with dryRun of a completed dry run: 409');

	my $P = new_org('own');
	for my $n (1 .. 3) {
		status_is http(POST => "/orgs/$P->{id}/contacts", session => $admin, json => { name => "P$n $R" }), 201, "  org P contact $n";
	}
	my $pdb = "org_p_$R";
	$r = migration_start($admin, orgId => $P->{id}, direction => 'shared_to_dedicated', dbName => $pdb, reason => "own $R");
	status_is $r, 202, "org P moves into its own database $pdb";
	wait_status($P->{id}, 'ready_for_cutover', 60);
	status_is migration_finalize($admin, orgId => $P->{id}), 202, '  finalize';
	wait_status($P->{id}, 'completed', 60);

	my $Q = new_org('other');
	my $e = migration_start($admin, orgId => $Q->{id}, direction => 'shared_to_dedicated', dbName => $pdb, reason => "squat $R");
	check_error($e, 409, 'conflict', "another org into P's database: 409");
	like(($e->{json}{error}{details}{reason} // ''), qr/in use by other orgs|another org/, '  the reason says whose database it is');
	$e = migration_start($admin, orgId => $Q->{id}, direction => 'shared_to_dedicated', dbName => 'opsd', reason => "shared $R");
	check_error($e, 409, 'conflict', 'the shared database as a dedicated target: 409');
	check_error(migration_status($admin, $Q->{id}), 404, 'not_found', '  nothing recorded for Q');
}

# ============================================================ GET /migration: every org's migrations
{
	my $hexes = mysql('SELECT LOWER(HEX(id)) FROM migrations ORDER BY id DESC') // '';
	my @all = grep { length } split /\n/, $hexes;
	cmp_ok scalar(@all), '>=', 8, 'migrations of several orgs in the table (' . scalar(@all) . ')';
	my $by_status = sub ($st) {
		return [grep { length } split /\n/, mysql("SELECT LOWER(HEX(id)) FROM migrations WHERE status = '$st' ORDER BY id DESC") // ''];
	};
	my $r = migration_list($admin);
	status_is $r, 200, 'GET /migration: 200';
	is_deeply [map { norm_id($_->{id}) } @{ j($r)->{items} // [] }], \@all, '  every migration, newest first';
	ok exists j($r)->{nextCursor} && !defined j($r)->{nextCursor}, '  one page: nextCursor null';
	check_doc(j($r)->{items}[0] // {}, 'GET /migration, the first item');
	my %orgs = map { $_->{orgId} => 1 } @{ j($r)->{items} // [] };
	cmp_ok scalar(keys %orgs), '>=', 5, '  of ' . scalar(keys %orgs) . ' orgs';
	$r = migration_list($admin, status => '');
	is_deeply [map { norm_id($_->{id}) } @{ j($r)->{items} // [] }], \@all, '?status= (empty): no filter';

	for my $st ('completed', 'aborted', 'ready_for_cutover') {
		$r = migration_list($admin, status => $st);
		status_is $r, 200, "?status=$st: 200";
		is_deeply [map { norm_id($_->{id}) } @{ j($r)->{items} // [] }], $by_status->($st), "  the $st ones";
	}
	my $completed = j(migration_list($admin, status => 'completed'))->{items} // [];
	cmp_ok scalar(keys %{ { map { $_->{orgId} => 1 } @$completed } }), '>=', 2, '  completed ones of two orgs';

	my (@ids, %org, $cursor, $pages, $big);
	do {
		$r = migration_list($admin, status => 'aborted', limit => 2, (defined $cursor ? (cursor => $cursor) : ()));
		status_is $r, 200, '  ?status=aborted&limit=2' . (defined $cursor ? '&cursor=…' : '') unless $r->{status} == 200;
		my $items = j($r)->{items} // [];
		$big++ if @$items > 2;
		push @ids, map { norm_id($_->{id}) } @$items;
		$org{$_->{orgId}}++ for @$items;
		$cursor = j($r)->{nextCursor};
		$pages++;
	} while (defined $cursor && $pages < 50 && $r->{status} == 200);
	is_deeply \@ids, $by_status->('aborted'), "?status=aborted&limit=2, page by page ($pages pages): every aborted one once, in order";
	ok !$big, '  no page over 2';
	cmp_ok scalar(keys %org), '>=', 3, '  across ' . scalar(keys %org) . ' orgs';
	{
		my $first = migration_list($admin, limit => 1);
		my $next = migration_list($admin, limit => 1, cursor => j($first)->{nextCursor} // '');
		is norm_id(j($next)->{items}[0]{id} // ''), $all[1], 'limit=1 then its cursor: the second newest';
	}

	for my $c (
		['status=bogus', { status => 'bogus' }, 'status'],
		['status=READY_FOR_CUTOVER', { status => 'READY_FOR_CUTOVER' }, 'status'],
		['status=ready', { status => 'ready' }, 'status'],
		['limit=0', { limit => 0 }, 'limit'],
		['limit=501', { limit => 501 }, 'limit'],
		['limit=x', { limit => 'x' }, 'limit'],
		['a forged cursor', { cursor => 'not-a-cursor!' }, 'cursor'],
	) {
		my $b = migration_list($admin, %{ $c->[1] });
		check_error($b, 400, 'validation_failed', "GET /migration?$c->[0]");
		fields_named($b, $c->[2]);
	}
	my $a = http(GET => '/audit?limit=1', session => $admin);
	my $other = j($a)->{nextCursor};
	ok defined $other, 'a cursor of GET /audit';
	check_error(migration_list($admin, cursor => $other // 'x'), 400, 'validation_failed', '  refused by GET /migration');
	like j(migration_list($admin, status => 'bogus'))->{error}{details}{fields}{status} // '', qr/ready_for_cutover/,
	    '  a bad status names the statuses' or diag migration_list($admin, status => 'bogus')->{body};

	my ($rc, $out, $err) = opsctl('migration', 'list');
	is $rc, 0, 'opsctl migration list exits 0' or diag $err;
	my @lines = grep { /^[0-9a-f]{8}-/ } split /\n/, $out;
	is_deeply [map { norm_id((split ' ', $_)[0]) } @lines], \@all, '  one line per migration, newest first';
	like $out, qr/^ID\s+ORG\s+DIRECTION\s+STATUS\s+CREATED$/m, '  under a header';
	like $out, qr/^${\ scalar @all} migrations$/m, '  and a count';
	($rc, $out, $err) = opsctl('migration', 'list', '--status', 'completed', '--json');
	is $rc, 0, 'opsctl migration list --status completed --json exits 0' or diag $err;
	is_deeply [map { norm_id($_->{id}) } @{ (json_decode($out) // {})->{items} // [] }], $by_status->('completed'),
	    '  the completed ones, as status documents';
	($rc, $out, $err) = opsctl('migration', 'list', '--status', 'bogus');
	is $rc, 2, 'opsctl migration list --status bogus exits 2';
	like $err, qr/--status must be one of: pending, copying/, '  and names the statuses' or diag $err;
}

finish();
