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

# The OpsdMigrationFailed rule of conf/prometheus/alerts.yml: its expr (one
# line) and its for.
sub alert_rule($name) {
	my ($expr, $for, $in);
	for (split /\n/, slurp(repo_root() . '/conf/prometheus/alerts.yml') // '') {
		if (/^\s*-\s*alert:\s*(\S+)/) { last if $in; $in = $1 eq $name; next }
		next unless $in;
		$expr = $1 if /^\s*expr:\s*(\S.*?)\s*$/;
		$for = $1 if /^\s*for:\s*(\S+)/;
	}
	return ($expr, $for);
}

# Runs `promtool test rules` on a test file written from the
# opsd_migrations_total lines /metrics showed before and after the
# failure: every status as a series, with the job and instance Prometheus
# adds (conf/prometheus/prometheus.yml), the change at minute 5. The
# alert's expression (its `for` is 0m: a result is a firing alert) must
# give nothing before, exactly the failed series after, and nothing once
# the 10-minute window has passed.
sub promtool_migration_failed($before, $after) {
	my $promtool = (grep { -x "$_/promtool" } split /:/, $ENV{PATH} // '')[0];
	SKIP: {
		skip 'promtool is not installed (Debian package prometheus; script/test installs it)', 3 unless $promtool;
		my ($expr, $for) = alert_rule('OpsdMigrationFailed');
		ok $expr && $expr !~ /^[|>]/, "alerts.yml: OpsdMigrationFailed has a one-line expr ($expr)" or return;
		is $for, '0m', '  and fires without waiting (for: 0m)';
		my $inst = '127.0.0.1:' . https_port();
		my $series = join '', map {
			"      - series: 'opsd_migrations_total{job=\"opsd\",instance=\"$inst\",status=\"$_\"}'\n"
			    . "        values: \"" . ($before->{$_} // 0) . 'x4 ' . $after->{$_} . "x10\"\n"
		} sort keys %$after;
		(my $q = "count by (job, instance, status) ($expr)") =~ s/'/''/g;
		my $yml = "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n$series    promql_expr_test:\n"
		    . "      - expr: '$q'\n        eval_time: 4m\n        exp_samples: []\n"
		    . "      - expr: '$q'\n        eval_time: 6m\n        exp_samples:\n"
		    . "          - labels: '{instance=\"$inst\", job=\"opsd\", status=\"failed\"}'\n            value: 1\n"
		    . "      - expr: '$q'\n        eval_time: 16m\n        exp_samples: []\n";
		my $file = stack()->{tmp} . '/migration-failed-test.yml';
		open my $fh, '>', $file or die "$file: $!";
		print {$fh} $yml;
		close $fh;
		my $r = run_cmd(cmd => ["$promtool/promtool", 'test', 'rules', $file], tag => 'promtool-migration-failed');
		is $r->{rc}, 0, 'promtool: OpsdMigrationFailed fires on the failed series /metrics showed, only then and only for it'
		    or diag "$r->{out}$r->{err}\n$yml";
	}
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

note 'total ' . elapsed();
finish();
