#!/usr/bin/perl
# Tenant migration (README "Runbook 3"): the paths t/96-migration.t leaves
# out, on real MariaDB, with OPSD_MIGRATION_FAIL_AFTER_S=3.
#  1. A migration that ends failed: shared_to_dedicated into a target with
#     its own MariaDB user; at ready_for_cutover the target's contacts table
#     is dropped and the org keeps writing, so every catch-up fails. After
#     3 s of failing steps: status failed with an error naming the table and
#     no password, migration.failed, opsd_migrations_total{status="failed"}
#     +1 (and each status it passed +1) on /metrics, and OpsdMigrationFailed's
#     expression (conf/prometheus/alerts.yml) fires on series built from
#     those very /metrics lines (promtool); capture off, the source rows
#     untouched and served (GET, lists, writes); abort with migrationId
#     drops the target database (migration.aborted, targetCleaned).
#  2. A migration that fails mid-copy: a column of the target's contacts
#     dropped while the copy runs; failed, target dropped by the abort.
#  3. dedicated_to_shared, for an org moved to a dedicated database first:
#     a dry run ends completed with dryRun and its report and switches
#     nothing (no row left in the shared database, the dedicated rows
#     identical, still served from there); an abort at ready_for_cutover and
#     one while the copy runs clean the shared copy and leave the org on its
#     dedicated database with all its rows.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $T0 = time;
my $R = run_tag();
start_stack(env => { OPSD_WORKERS => 4, OPSD_MIGRATION_FAIL_AFTER_S => 3 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');
my $SOCK = var_dir() . '/run/mysqld.sock';
my @TABLES = qw(contacts projects offices);
my $DB_PASSWORD = slurp(var_dir() . '/db-password') // '';
chomp $DB_PASSWORD;

# ============================================================ helpers
sub elapsed() { return sprintf '%.0fs', time - $T0 }
sub mig_start(%b) { return migration_start($admin, reason => "test $R", %b, timeout => 60) }
sub mig_wait($org, $want, $timeout = 60) { return migration_wait($admin, $org->{id}, $want, $timeout) }
sub brief($d) {
	return join ' ', map { "$_=" . (ref $d->{$_} ? json_encode($d->{$_}) : $d->{$_} // 'null') }
	    grep { exists $d->{$_} } qw(status phase dryRun rowsCopied rowsTotal error httpStatus body);
}
sub org_state($org) {
	my ($r) = db_rows("SELECT db_mode, capture_changes, write_frozen_until, dedicated_target IS NOT NULL AS has_target"
	    . " FROM orgs WHERE id = UNHEX('" . org_hex($org) . "')");
	return $r // {};
}
# The engine's events about one migration, in order.
sub mig_events($mig_id) {
	return [map { $_->{action} } grep { ($_->{target_id} // '') eq $mig_id } audit_payloads('migration.%')];
}
sub count_of($list, $action) { return scalar grep { $_ eq $action } @$list }
sub deltas($before, $after) { return { map { $_ => ($after->{$_} // 0) - ($before->{$_} // 0) } keys %$after } }

# An org with $n contacts (straight into MariaDB) and one project and
# office through the API.
sub make_org($label, $n) {
	my $org = create_org(name => "Paths $label $R", slug => "paths-$label-$R");
	ok $org->{id}, "org $label created" or BAIL_OUT("cannot create org $label");
	is bulk_insert_contacts($org, $n, tag => "$label$R"), $n, "  $n contacts" if $n;
	status_is tenant_create($admin, $org, 'projects', { name => "Project $label", status => 'active' }), 201, '  a project';
	status_is tenant_create($admin, $org, 'offices', { name => "Office $label", address => '1 Main St' }), 201, '  an office';
	return $org;
}

# What a user sees through the API: every row of every table of the org
# (all pages) and each row read by id equal to the database's count and a
# sample; $label names the checks.
sub served_ok($org, $db, $label) {
	for my $t (@TABLES) {
		my $all = tenant_list_all($admin, $org, $t, limit => 500);
		is scalar(@{ $all->{items} }), org_count_in($db, $t, $org),
		    "$label: GET /orgs/:id/$t lists every row of $db" or diag json_encode($all->{errors});
	}
	my ($first) = sort keys %{ org_rows_in($db, 'contacts', $org) // {} };
	my $g = tenant_get($admin, $org, 'contacts', join('-', unpack('A8 A4 A4 A4 A12', $first // '')));
	status_is $g, 200, "$label: GET of a contact by id";
}

# OpsdMigrationFailed (conf/prometheus/alerts.yml) on the
# opsd_migrations_total lines /metrics showed before and after the failure,
# every status a series (t/lib/OpsdTest/Prom.pm): nothing before, exactly
# the failed series after, nothing once the 10-minute window has passed.
sub promtool_migration_failed($before, $after) {
	promtool_fires('OpsdMigrationFailed', by => [qw(job instance status)],
	    series => { map { ("opsd_migrations_total{status=\"$_\"}" => [$before->{$_} // 0, $after->{$_}]) } keys %$after },
	    fire => [{ job => 'opsd', instance => '127.0.0.1:' . https_port(), status => 'failed' }]);
}

# ============================================================ 1. failed at ready_for_cutover
note '---- 1. a migration that ends failed: the target\'s contacts table dropped (' . elapsed() . ')';
my $F = make_org('f', 300);
my $fdb = "paths_fail_$R";
my $pw = sensitive('the failing target\'s MariaDB password', "PathsPw${R}z7");
ok defined mysql("CREATE USER 'pathsfail'\@'localhost' IDENTIFIED BY '$pw'", "GRANT ALL ON `$fdb`.* TO 'pathsfail'\@'localhost'"),
    "a MariaDB user with rights on $fdb only";
my $m0 = migration_counts();
is scalar(keys %$m0), 10, '/metrics has opsd_migrations_total for each of the 10 statuses' or diag json_encode($m0);
my $s = mig_start(orgId => $F->{id}, direction => 'shared_to_dedicated', chunkSize => 50, dbName => $fdb,
    targetUri => "mysql://pathsfail:$pw\@localhost/$fdb?socket=$SOCK");
status_is $s, 202, 'failed: start 202';
my $fid = j($s)->{id} // 'none';
my $d = mig_wait($F, qr/^ready_for_cutover$/);
is $d->{status}, 'ready_for_cutover', 'failed: ready_for_cutover' or diag brief($d);
is org_count_in($fdb, 'contacts', $F), 300, "  the target holds the 300 contacts";
ok defined mysql("DROP TABLE `$fdb`.contacts"), "failed: DROP TABLE $fdb.contacts (the target becomes unusable)";
my $t_fail = time;
my $new = tenant_create($admin, $F, 'contacts', { name => "Written after the drop $R", email => "after.drop.$R\@example.test" });
status_is $new, 201, '  the org keeps writing: a new contact 201 (captured for the catch-up)';
my ($some) = sort keys %{ org_rows_in('opsd', 'contacts', $F) };
status_is tenant_patch($admin, $F, 'contacts', join('-', unpack('A8 A4 A4 A4 A12', $some)), { notes => "patched $R" }), 200,
    '  and a PATCH 200';
my $src = org_snapshot_in('opsd', $F);
$d = mig_wait($F, qr/^failed$/, 60);
is $d->{status}, 'failed', sprintf('failed: status failed (%.1fs after the first write)', time - $t_fail) or diag brief($d);
cmp_ok time - $t_fail, '>=', 2.9, '  not before OPSD_MIGRATION_FAIL_AFTER_S (3 s) of failing steps';
like $d->{error} // '', qr/gave up after 3 s of failing steps; last error: catch-up: .*contacts/,
    "  error says why and names the table: $d->{error}";
unlike json_encode($d), qr/\Q$pw\E/, '  no password in the status document';
unlike $d->{error} // '', qr{mysql://}, '  no target URI in the error';
like $d->{target} // '', qr{^mysql://pathsfail:\*\*\*\@}, "  the target is shown redacted ($d->{target})";
ok defined $d->{finishedAt}, '  finishedAt is set';
is $d->{id}, $fid, '  the same migration';
my @fe = grep { ($_->{target_id} // '') eq $fid } audit_payloads('migration.failed');
is scalar(@fe), 1, 'failed: one migration.failed event';
is $fe[0]{p}{error}, $d->{error}, '  its payload has the error';
is $fe[0]{org}, org_hex($F), '  about the org';
is scalar(grep { index($_->{payload} // '', $pw) >= 0 } audit_payloads('migration.%')), 0, '  no migration event holds the password';
my $h = j(migration_history($admin, $F->{id}));
my ($hi) = grep { ($_->{id} // '') eq $fid } @{ $h->{items} // [] };
is $hi->{status}, 'failed', 'failed: GET /migration/history lists it failed' or diag json_encode($h);
my $m1 = migration_counts();
is_deeply deltas($m0, $m1), { pending => 1, copying => 1, catching_up => 1, verifying => 1, ready_for_cutover => 1,
    cutting_over => 0, completed => 0, aborting => 0, aborted => 0, failed => 1 },
    'failed: /metrics counted each status it entered once, failed included' or diag json_encode($m1);
promtool_migration_failed($m0, $m1);
my $o = org_state($F);
is_deeply [$o->{db_mode}, $o->{capture_changes}, $o->{write_frozen_until}, $o->{has_target}], ['shared', 0, undef, 0],
    'failed: the org stays shared, capture off, not frozen, no dedicated target';
is_deeply org_snapshot_in('opsd', $F), $src, 'failed: the source rows are untouched, every column';
served_ok($F, 'opsd', 'failed');
status_is tenant_create($admin, $F, 'contacts', { name => "After the failure $R" }), 201, 'failed: writes work';
$src = org_snapshot_in('opsd', $F);
is scalar(keys %{ $src->{contacts} }), 302, '  (302 contacts in the shared database)';
ok db_exists($fdb), "failed: the target $fdb still holds what was copied";
is org_count_in($fdb, 'offices', $F), 1, '  (its office, for instance)';
ok !find_in_logs({ password => $pw }), 'failed: the password is in no log';

# abort with migrationId: cleans the failed target
check_error(migration_abort($admin, orgId => $F->{id}, migrationId => uuid7_like(), reason => "cleanup $R"), 404, 'not_found',
    'failed: abort naming another migration 404');
my $a = migration_abort($admin, orgId => $F->{id}, migrationId => $fid, reason => "clean the failed target $R");
status_is $a, 202, 'failed: abort with migrationId 202';
like j($a)->{status} // '', qr/^abort(?:ing|ed)$/, '  status aborting';
$d = mig_wait($F, qr/^aborted$/, 30);
is $d->{status}, 'aborted', 'failed → aborted' or diag brief($d);
ok !db_exists($fdb), "  the target database $fdb is dropped";
my ($ab) = grep { ($_->{target_id} // '') eq $fid } audit_payloads('migration.aborted');
is_deeply [$ab->{p}{targetCleaned}, $ab->{p}{targetDropped}], [JSON::PP::true, JSON::PP::true],
    '  migration.aborted: targetCleaned and targetDropped' or diag $ab->{payload};
is $ab->{p}{reason}, "clean the failed target $R", '  with the reason';
my $ev = mig_events($fid);
is_deeply [grep { !/^migration\.progress$/ } @$ev],
    [qw(migration.started migration.ready_for_cutover migration.failed migration.abort_requested migration.aborted)],
    '  its events: started, ready_for_cutover, failed, abort_requested, aborted' or diag "@$ev";
is_deeply deltas($m1, migration_counts()), { map({ $_ => 0 } keys %$m1), aborting => 1, aborted => 1 },
    '  /metrics: aborting and aborted +1, failed unchanged';
is_deeply org_snapshot_in('opsd', $F), $src, 'failed → aborted: the source rows are untouched';
served_ok($F, 'opsd', 'failed → aborted');
check_error(migration_abort($admin, orgId => $F->{id}, migrationId => $fid, reason => "again $R"), 409, 'conflict',
    'failed → aborted: a second abort 409');
ok defined mysql("DROP USER 'pathsfail'\@'localhost'"), 'DROP USER pathsfail';

# ============================================================ 2. failed mid-copy
note '---- 2. a migration that fails mid-copy: a target column dropped (' . elapsed() . ')';
{
	my $C = make_org('c', 3000);
	my $before = org_snapshot_in('opsd', $C);
	my $s2 = mig_start(orgId => $C->{id}, direction => 'shared_to_dedicated', chunkSize => 10);
	status_is $s2, 202, 'mid-copy: start 202 (3,000 contacts, chunkSize 10)';
	my ($id, $db) = (j($s2)->{id} // 'none', j($s2)->{dbName} // 'none');
	ok wait_until(30, sub { (migration_wait($admin, $C->{id}, qr/./, 0)->{rowsCopied} // 0) >= 30 }, 0.01), '  the copy is under way';
	ok defined mysql("ALTER TABLE `$db`.contacts DROP COLUMN notes"), "mid-copy: ALTER TABLE $db.contacts DROP COLUMN notes";
	my $at = migration_wait($admin, $C->{id}, qr/./, 0);
	note "mid-copy: the column went at $at->{status}, $at->{rowsCopied} of $at->{rowsTotal} rows copied";
	my ($one) = sort keys %{ $before->{contacts} };
	status_is tenant_patch($admin, $C, 'contacts', join('-', unpack('A8 A4 A4 A4 A12', $one)), { notes => "mid-copy $R" }), 200,
	    '  a PATCH meanwhile 200';
	$before = org_snapshot_in('opsd', $C);
	my $d2 = mig_wait($C, qr/^failed$/, 60);
	is $d2->{status}, 'failed', 'mid-copy: failed' or diag brief($d2);
	like $d2->{error} // '', qr/gave up after 3 s of failing steps; last error: (?:copy into the target|catch-up|verification of contacts): .*notes/,
	    "  error names the column: $d2->{error}";
	unlike json_encode($d2), qr/\Q$DB_PASSWORD\E/, '  no MariaDB password in the status' if length $DB_PASSWORD;
	cmp_ok $d2->{rowsCopied} // 0, '<', 3002, "  failed with part of the rows copied ($d2->{rowsCopied})"
	    if ($d2->{error} // '') =~ /copy into/;
	is scalar(grep { ($_->{target_id} // '') eq $id } audit_payloads('migration.failed')), 1, '  migration.failed';
	my $o2 = org_state($C);
	is_deeply [$o2->{db_mode}, $o2->{capture_changes}, $o2->{write_frozen_until}], ['shared', 0, undef],
	    'mid-copy: the org stays shared, capture off, not frozen';
	is_deeply org_snapshot_in('opsd', $C), $before, '  the source rows untouched';
	status_is migration_abort($admin, orgId => $C->{id}, migrationId => $id, reason => "cleanup $R", timeout => 60), 202,
	    'mid-copy: abort with migrationId 202';
	is mig_wait($C, qr/^aborted$/, 30)->{status}, 'aborted', '  aborted';
	ok !db_exists($db), "  the target database $db is dropped";
	is_deeply org_snapshot_in('opsd', $C), $before, '  the source rows untouched';
}

# ============================================================ 3. dedicated_to_shared
note '---- 3. dedicated_to_shared: dry run and aborts (' . elapsed() . ')';
my $D = make_org('d', 2000);
$s = mig_start(orgId => $D->{id}, direction => 'shared_to_dedicated', chunkSize => 500);
status_is $s, 202, 'to dedicated first: start 202';
$d = mig_wait($D, qr/^ready_for_cutover$/);
is $d->{status}, 'ready_for_cutover', '  ready_for_cutover' or diag brief($d);
status_is migration_finalize($admin, orgId => $D->{id}, timeout => 60), 202, '  finalize 202';
$d = mig_wait($D, qr/^completed$/);
is $d->{status}, 'completed', '  completed' or diag brief($d);
my $ded = $d->{dbName} // 'none';
is org_state($D)->{db_mode}, 'dedicated', "the org lives in its dedicated database $ded";
is org_count_in('opsd', 'contacts', $D), 0, '  the shared database holds none of its contacts';
my $rows = org_snapshot_in($ded, $D);
is scalar(keys %{ $rows->{contacts} }), 2000, '  the dedicated one all 2,000';

# Afterwards the org is on its dedicated database, with $rows, served from
# there, and the shared database holds nothing of it.
sub still_dedicated($label) {
	my $o = org_state($D);
	is_deeply [$o->{db_mode}, $o->{has_target}, $o->{capture_changes}, $o->{write_frozen_until}], ['dedicated', 1, 0, undef],
	    "$label: the org stays dedicated (its target kept), capture off, not frozen";
	is_deeply org_snapshot_in($ded, $D), $rows, "$label: the dedicated rows are unchanged, every column";
	is org_count_in('opsd', $_, $D), 0, "$label: the shared $_ hold none of the org's rows" for @TABLES;
	served_ok($D, $ded, $label);
	my $w = tenant_create($admin, $D, 'contacts', { name => "After $label $R" });
	status_is $w, 201, "$label: a write works";
	is org_count_in($ded, 'contacts', $D), scalar(keys %{ $rows->{contacts} }) + 1, '  and lands in the dedicated database';
	$rows = org_snapshot_in($ded, $D);
}

note '---- 3a. dry run (' . elapsed() . ')';
{
	my $m = migration_counts();
	my $r = mig_start(orgId => $D->{id}, direction => 'dedicated_to_shared', dryRun => 1, chunkSize => 200);
	status_is $r, 202, 'dry run back: start 202';
	is j($r)->{dryRun}, JSON::PP::true, '  dryRun true';
	my $id = j($r)->{id} // 'none';
	my $dd = mig_wait($D, qr/^completed$/);
	is $dd->{status}, 'completed', 'dry run back: completed' or diag brief($dd);
	is $dd->{dryRun}, JSON::PP::true, '  dryRun true';
	is $dd->{direction}, 'dedicated_to_shared', '  direction dedicated_to_shared';
	is $dd->{error}, undef, '  no error';
	my %by = map { $_->{table} => $_ } @{ $dd->{report}{tables} // [] };
	is_deeply { map { $_ => [$by{$_}{sourceRows}, $by{$_}{targetRows}] } @TABLES },
	    { contacts => [2000, 2000], projects => [1, 1], offices => [1, 1] }, '  report: rows per table on both sides'
	    or diag json_encode($dd->{report});
	is $dd->{report}{rowsCopied}, 2002, '  report: rowsCopied 2002';
	is $dd->{report}{targetCleaned}, JSON::PP::true, '  report: targetCleaned';
	my $ev = mig_events($id);
	is count_of($ev, 'migration.dry_run_completed'), 1, '  audit migration.dry_run_completed';
	is count_of($ev, 'migration.finalized') + count_of($ev, 'migration.failed'), 0, '  no migration.finalized nor failed';
	is migration_counts()->{completed} - $m->{completed}, 1, '  /metrics: completed +1';
	still_dedicated('dry run back');
}

note '---- 3b. abort at ready_for_cutover (' . elapsed() . ')';
{
	my $r = mig_start(orgId => $D->{id}, direction => 'dedicated_to_shared', chunkSize => 200);
	status_is $r, 202, 'abort back at ready: start 202';
	my $id = j($r)->{id} // 'none';
	my $dd = mig_wait($D, qr/^ready_for_cutover$/);
	is $dd->{status}, 'ready_for_cutover', 'abort back at ready: ready_for_cutover' or diag brief($dd);
	is org_count_in('opsd', 'contacts', $D), scalar(keys %{ $rows->{contacts} }), '  the shared database holds the copy';
	status_is tenant_create($admin, $D, 'contacts', { name => "While ready $R" }), 201, '  a write while ready_for_cutover';
	$rows = org_snapshot_in($ded, $D);
	my $a2 = migration_abort($admin, orgId => $D->{id}, reason => "postponed $R", timeout => 60);
	status_is $a2, 202, 'abort back at ready: abort 202';
	$dd = mig_wait($D, qr/^aborted$/, 30);
	is $dd->{status}, 'aborted', 'abort back at ready: aborted' or diag brief($dd);
	my ($ab2) = grep { ($_->{target_id} // '') eq $id } audit_payloads('migration.aborted');
	is_deeply [$ab2->{p}{targetCleaned}, $ab2->{p}{targetDropped}], [JSON::PP::true, JSON::PP::false],
	    '  migration.aborted: targetCleaned, nothing dropped (the shared database stays)' or diag $ab2->{payload};
	still_dedicated('abort back at ready');
}

note '---- 3c. abort while the copy runs (' . elapsed() . ')';
{
	my $r = mig_start(orgId => $D->{id}, direction => 'dedicated_to_shared', chunkSize => 2);
	status_is $r, 202, 'abort back mid-copy: start 202 (chunkSize 2)';
	ok wait_until(30, sub { (migration_wait($admin, $D->{id}, qr/./, 0)->{rowsCopied} // 0) >= 10 }, 0.01),
	    '  the copy is under way';
	my $a3 = migration_abort($admin, orgId => $D->{id}, reason => "mid-copy $R", timeout => 60);
	status_is $a3, 202, 'abort back mid-copy: abort 202';
	my $st = (grep { ($_->{action} // '') eq 'migration.abort_requested' && ($_->{target_id} // '') eq (j($r)->{id} // '') }
	    audit_payloads('migration.abort_requested'))[0]{p}{status} // '?';
	like $st, qr/^(?:pending|copying|catching_up|verifying)$/, "  requested while the migration was in progress ($st)";
	my $dd = mig_wait($D, qr/^aborted$/, 30);
	is $dd->{status}, 'aborted', 'abort back mid-copy: aborted' or diag brief($dd);
	still_dedicated('abort back mid-copy');
}

# ============================================================ 4. each chunk verified as it lands
# The copy compares every chunk on the target before it commits; the
# verifying step then compares the rows changed since and both sides' row
# counts. Stray rows put into the target behind the copy's back (as a copy
# that died before its checkpoint leaves them): one ahead of the copy is
# found when its chunk lands and the chunk is written again; one behind it
# shows in the counts (reported; the cut-over's final verification refuses
# it). A target that alters what it stores (a trigger) fails the migration
# at the first chunk, without the retries.
sub hex_tweak($h) { return substr($h, 0, 31) . (substr($h, 31) eq '0' ? '1' : '0') }
note '---- 4a. stray rows in the target, ahead of the copy and behind it (' . elapsed() . ')';
{
	my $S = make_org('s', 2000);
	my @ids = @{ org_row_ids('contacts', $S) };
	my ($below, $above) = (hex_tweak($ids[0]), hex_tweak($ids[-1]));
	my $r = mig_start(orgId => $S->{id}, direction => 'shared_to_dedicated', chunkSize => 10);
	status_is $r, 202, 'stray rows: start 202 (2,000 contacts, chunkSize 10)';
	my $db = j($r)->{dbName} // 'none';
	my $jobs = jobs_pid();
	ok wait_until(30, sub { (migration_wait($admin, $S->{id}, qr/./, 0)->{rowsCopied} // 0) >= 40 }, 0.005),
	    '  the copy of the contacts is under way';
	ok $jobs && kill('STOP', $jobs), "  the jobs process stopped ($jobs)";
	my $oh = org_hex($S);
	my $ins = sub ($id, $name) {
		return mysql("INSERT INTO `$db`.contacts (id, org_id, name) VALUES (UNHEX('$id'), UNHEX('$oh'), '$name')");
	};
	my $last = lc(mysql("SELECT HEX(MAX(id)) FROM `$db`.contacts WHERE org_id = UNHEX('$oh')") // '');
	chomp $last;
	ok $last gt $below && $last lt $above, "  the copy stands between the two stray ids ($last)";
	ok defined $ins->($below, 'stray behind') && defined $ins->($above, 'stray ahead'),
	    '  two stray rows put into the target, behind the copy and ahead of it';
	kill 'CONT', $jobs;
	my $d = mig_wait($S, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', 'stray rows: ready_for_cutover' or diag brief($d);
	my %v = map { $_->{table} => $_ } @{ $d->{verification}{tables} // [] };
	is db_count("SELECT COUNT(*) FROM `$db`.contacts WHERE id = UNHEX('$above')"), 0,
	    '  the row ahead is gone: its chunk differed as it landed and was written again';
	cmp_ok $v{contacts}{chunksRepaired} // 0, '>=', 1, "  contacts chunksRepaired $v{contacts}{chunksRepaired}";
	is_deeply [$v{contacts}{sourceRows}, $v{contacts}{targetRows}, $v{contacts}{match} ? 1 : 0], [2000, 2001, 0],
	    '  the row behind shows in the counts: 2,000 rows in the source, 2,001 in the target, no match'
	    or diag json_encode($d->{verification});
	ok !$d->{verification}{ok} && ($v{contacts}{chunksMismatched} // 0) >= 1, '  verification ok false, reported (chunksMismatched)';
	ok $v{projects}{match} && $v{offices}{match}, '  the other tables match';
	status_is migration_finalize($admin, orgId => $S->{id}, timeout => 60), 202, 'stray rows: finalize 202';
	ok wait_until(30, sub { my $x = migration_wait($admin, $S->{id}, qr/./, 0);
		($x->{status} // '') eq 'ready_for_cutover' && ($x->{error} // '') =~ /final verification found a difference/ }, 0.1),
	    '  the final verification refuses the cut-over: back to ready_for_cutover, nothing switched';
	is org_state($S)->{db_mode}, 'shared', '  the org stays shared';
	status_is migration_abort($admin, orgId => $S->{id}, timeout => 60), 202, 'stray rows: abort 202';
	is mig_wait($S, qr/^aborted$/, 30)->{status}, 'aborted', '  aborted';
	ok !db_exists($db), "  $db dropped";
}

# A MariaDB session held open as root: the statements run, then 'held' is
# printed; release() ends the session (and its locks).
sub hold_session($sql) {
	state $n = 0;
	my $out = stack()->{tmp} . '/paths-hold-' . ++$n . '.out';
	pipe(my $rd, my $wr) or die "pipe: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $wr;
		open STDIN, '<&', $rd or POSIX::_exit(127);
		open STDOUT, '>', $out or POSIX::_exit(127);
		open STDERR, '>', "$out.err" or POSIX::_exit(127);
		exec 'mariadb', '--no-defaults', "--socket=$SOCK", '-uroot', '-N', '-B', '--unbuffered', 'opsd' or POSIX::_exit(127);
	}
	close $rd;
	$wr->autoflush(1);
	print {$wr} "$sql;\nSELECT 'held';\n";
	my $ok = wait_until(20, sub { (slurp($out) // '') =~ /held/ }, 0.02);
	return { fh => $wr, pid => $pid, ok => $ok };
}
sub release($h) {
	my $fh = delete $h->{fh} or return;
	print {$fh} "UNLOCK TABLES;\nquit\n";
	close $fh;
	wait_until(10, sub { waitpid($h->{pid}, POSIX::WNOHANG()) == $h->{pid} }, 0.02) or kill 'KILL', $h->{pid};
}

note '---- 4b. a target that alters what it stores: failed at the first chunk (' . elapsed() . ')';
{
	my $A = make_org('a', 2000);
	my $before = org_snapshot_in('opsd', $A);
	my $r = mig_start(orgId => $A->{id}, direction => 'shared_to_dedicated', chunkSize => 10);
	status_is $r, 202, 'altering target: start 202';
	my ($id, $db) = (j($r)->{id} // 'none', j($r)->{dbName} // 'none');
	ok wait_until(30, sub { (migration_wait($admin, $A->{id}, qr/./, 0)->{rowsCopied} // 0) >= 40 }, 0.005),
	    '  the copy of the contacts is under way';
	# the source's contacts locked: the copy waits on its next read, with
	# nothing open on the target, where the trigger can then be made
	my $lock = hold_session('LOCK TABLES contacts WRITE');
	ok $lock->{ok}, '  a root session holds the source\'s contacts locked (the copy waits)';
	ok defined mysql("CREATE TRIGGER `$db`.paths_alter BEFORE INSERT ON `$db`.contacts FOR EACH ROW"
	    . " SET NEW.name = CONCAT(NEW.name, ' (altered)')"), '  a trigger on the target alters every contact it stores';
	my $copied = db_count("SELECT COUNT(*) FROM `$db`.contacts");
	release($lock);
	my $d = mig_wait($A, qr/^failed$/, 30);
	is $d->{status}, 'failed', 'altering target: failed' or diag brief($d);
	like $d->{error} // '', qr/^verification of contacts: the chunk after id [0-9a-f]{32} differs on the target after it was written/,
	    "  the error names the table and the chunk: " . ($d->{error} // 'none');
	unlike $d->{error} // '', qr/gave up after/, '  at once, not after retrying for OPSD_MIGRATION_FAIL_AFTER_S';
	is db_count("SELECT COUNT(*) FROM `$db`.contacts WHERE name LIKE '%(altered)'"), 0, '  no altered row was committed';
	is db_count("SELECT COUNT(*) FROM `$db`.contacts"), $copied, "  the target keeps the $copied rows copied before";
	my $o = org_state($A);
	is_deeply [$o->{db_mode}, $o->{capture_changes}], ['shared', 0], '  the org stays shared, capture off';
	is_deeply org_snapshot_in('opsd', $A), $before, '  the source rows untouched';
	is count_of(mig_events($id), 'migration.failed'), 1, '  migration.failed audited';
	status_is migration_abort($admin, orgId => $A->{id}, migrationId => $id, timeout => 60), 202,
	    'altering target: abort naming the failed migration 202';
	is mig_wait($A, qr/^aborted$/, 30)->{status}, 'aborted', '  aborted';
	ok !db_exists($db), "  $db dropped";
}

note 'total ' . elapsed();
finish();
