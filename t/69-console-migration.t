#!/usr/bin/perl
# The console's Migration screen (README "Runbook 3", "In the console") in
# chromium: t/browser/migration.mjs drives it as the superadmin (the one
# role with migration.run) and as a platform_admin (no menu entry, no
# controls). Org A (8,000 contacts, a project, an office; 50 other orgs
# first, so that it is on the orgs list's second page): a chunk size of 0
# and a target URI without a host are shown next to their fields; a dry
# run to completed; then a real run with a target URI holding a password
# and a database name, WHILE a forked child of this test PATCHes A's
# contacts through the API (retrying 503 org_migrating during the
# freeze): live progress, the rehearsal of the cut-over, Finalize with a
# typed reason, completed. Org B (20,000 contacts): a run left by leaving
# the screen (the polling stops), then aborted with a reason. Then, through
# the API and the database: A is dedicated, its rows are all in the
# dedicated database and none in the shared one, every edit's last value is
# there (edits were made during the copy), B is still shared with its rows
# and its target dropped, the dry run's target is gone, and the audit log
# holds the migration events with the reasons typed in the browser, by the
# superadmin. The target's password is in no log.
#
# Needs node, chromium and t/browser's packages (OpsdTest::Browser).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(_exit WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

browser_ready();
my $T0 = time;
my $R = run_tag();
start_stack(env => { OPSD_WORKERS => 4 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');
my $platform = create_user(role => 'platform_admin');

# 50 orgs first: A and B are on the orgs list's second page
my $fill = 0;
$fill += create_org(name => "Console filler $_ $R", slug => "cfill-$_-$R", quiet => 1)->{id} ? 1 : 0 for 1 .. 50;
is $fill, 50, '50 other orgs';
my $A = create_org(name => "Console Mig A $R", slug => "cmig-a-$R");
my $B = create_org(name => "Console Mig B $R", slug => "cmig-b-$R");
ok $A->{id} && $B->{id}, 'orgs A and B' or BAIL_OUT('no orgs');
is bulk_insert_contacts($A, 8000, tag => "a$R"), 8000, 'A: 8,000 contacts';
status_is tenant_create($admin, $A, 'projects', { name => "Project A $R", status => 'active' }), 201, 'A: a project';
status_is tenant_create($admin, $A, 'offices', { name => "Office A $R", address => '1 Main St' }), 201, 'A: an office';
is bulk_insert_contacts($B, 20000, tag => "b$R"), 20000, 'B: 20,000 contacts';
my $B_before = org_snapshot_in('opsd', $B);

my $DB_A = "org_console_$R";   # the stack's MariaDB user may create org_* databases
my $URI = parse_env_file(var_dir() . '/opsd.env')->{OPSD_DEDICATED_DB_URI} // '';
my $PW = slurp(var_dir() . '/db-password') // '';
chomp $PW;
ok length($PW) >= 8 && index($URI, $PW) >= 0, 'the target URI holds the MariaDB password';

# ---- the editor: PATCHes A's contacts through the API until told to stop
sub uuid_of($h) { return join '-', unpack('A8 A4 A4 A4 A12', $h) }
my @ids = @{ org_row_ids('contacts', $A) }[0 .. 1999];   # few enough edits that none is edited twice
my $editor = create_user(role => 'org_admin', org => $A);
my $es = login($editor->{email}, $editor->{password});
ok $es->{cookie}, 'an org_admin of A logs in (the editor)';
my $tmp = stack()->{tmp};
my ($stop, $edits_file) = ("$tmp/editor.stop", "$tmp/editor.json");
my $MAIN = $$;
my $kid = fork // die "fork: $!";
if ($kid == 0) {
	my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 30, keep_alive => 1,
	    agent => 'opsd-editor');
	my (@edits, @frozen);
	my $n = 0;
	until (-e $stop) {
		my $id = $ids[$n % @ids];
		my $notes = "console edit $n $R";
		my $t0 = time;
		my $r = http(PATCH => "/orgs/$A->{id}/contacts/" . uuid_of($id), json => { notes => $notes }, session => $es, agent => $ua);
		my $code = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH' ? $r->{json}{error}{code} // '' : '';
		if ($r->{status} == 503 && $code eq 'org_migrating') {
			push @frozen, [$t0, $r->{headers}{'retry-after'}];
			sleep 0.2;
			next;   # the same edit again: it was not made
		}
		push @edits, [$t0, time, $id, $notes, $r->{status}];
		$n++;
		sleep 0.05;
	}
	open my $fh, '>', $edits_file or _exit(3);
	print {$fh} json_encode({ edits => \@edits, frozen => \@frozen });
	close $fh;
	_exit(0);
}
END { kill 'KILL', $kid if $$ == $MAIN && $kid && !-e $edits_file }

my $screens = browser_run('migration.mjs', TIMEOUT => 300,
	CONSOLE_SUPER_EMAIL => admin_email(), CONSOLE_SUPER_PASSWORD => admin_password(),
	CONSOLE_PLATFORM_EMAIL => $platform->{email}, CONSOLE_PLATFORM_PASSWORD => $platform->{password},
	CONSOLE_ORG_A => $A->{name}, CONSOLE_ORG_B => $B->{name}, CONSOLE_DB_A => $DB_A,
	CONSOLE_TARGET_URI => $URI, CONSOLE_TARGET_PASSWORD => $PW, CONSOLE_REASON => $R);
note sprintf 'the browser run ended at %.0f s', time - $T0;

# ---- stop the editor: what it believes
open my $sf, '>', $stop or die;
close $sf;
ok wait_until(30, sub { waitpid($kid, WNOHANG) == $kid }, 0.05), 'the editor stops';
my $ed = json_decode(slurp($edits_file) // '') // {};
my @edits = @{ $ed->{edits} // [] };
cmp_ok scalar(@edits), '>=', 50, scalar(@edits) . ' edits made through the API during the browser run';
my @bad = grep { $_->[4] != 200 } @edits;
is scalar(@bad), 0, 'every edit answered 200 (503 org_migrating retried)' or diag json_encode([@bad[0 .. min(4, $#bad)]]);
note scalar(@{ $ed->{frozen} // [] }) . ' edits met the cut-over\'s freeze and were retried';
ok !grep({ ($_->[1] // '') !~ /^\d+$/ } @{ $ed->{frozen} // [] }), '  each 503 org_migrating with Retry-After';
my %belief;
$belief{ $_->[2] } = $_->[3] for grep { $_->[4] == 200 } @edits;
sub min($x, $y) { return $x < $y ? $x : $y }

# ---- the migrations, as the API knows them
my $hist = j(migration_history($admin, $A->{id}));
my @ha = @{ $hist->{items} // [] };
is_deeply [map { [$_->{status}, $_->{dryRun} ? 1 : 0] } @ha], [['completed', 0], ['completed', 1]],
    'A: a real run and a dry run, both completed' or diag json_encode(\@ha);
my ($run, $dry) = @ha;
is $run->{dbName}, $DB_A, '  the run went into the database named in the browser';
like $run->{target} // '', qr{^mysql://[^:]+:\*\*\*@}, '  its target stored with the password hidden';
is $run->{reason}, "console run $R", '  with the reason typed';
is $run->{chunkSize}, 2, '  and chunk size 2';
ok defined $run->{freezeMs}, "  freezeMs $run->{freezeMs}";
is $dry->{reason}, "console dry run $R", '  the dry run\'s reason';
ok !db_exists($dry->{dbName} // 'none'), "  the dry run's target ($dry->{dbName}) is gone";
my $org = j(http(GET => "/orgs/$A->{id}", session => $admin));
is $org->{dbMode}, 'dedicated', 'A: GET /orgs/:id says dedicated';

# the copy window of the real run (MariaDB's clock, as ages)
my ($w) = db_rows('SELECT TIMESTAMPDIFF(MICROSECOND, copy_started_at, NOW(3)) AS s, TIMESTAMPDIFF(MICROSECOND, copy_finished_at, NOW(3)) AS f'
    . " FROM migrations WHERE id = UNHEX('" . norm_id($run->{id}) . "')");
my $now = time;
my ($c0, $c1) = ($now - ($w->{s} // 0) / 1e6, $now - ($w->{f} // 0) / 1e6);
my @during = grep { $_->[0] >= $c0 && $_->[1] <= $c1 } @edits;
note sprintf 'the copy lasted %.1f s', $c1 - $c0;
cmp_ok scalar(@during), '>', 0, scalar(@during) . ' edits were made while the rows were being copied';

# ---- both ends
is org_count_in($DB_A, 'contacts', $A), 8000, "A: the 8,000 contacts are in $DB_A";
is org_count_in($DB_A, 'projects', $A), 1, '  its project';
is org_count_in($DB_A, 'offices', $A), 1, '  its office';
is_deeply [map { org_count_in('opsd', $_, $A) } qw(contacts projects offices)], [0, 0, 0], '  none left in the shared database';
my $target = org_rows_in($DB_A, 'contacts', $A) // {};
my @wrong = grep { ($target->{$_} // '') !~ /\t\Q$belief{$_}\E\t/ } sort keys %belief;
is scalar(@wrong), 0, 'every edited contact holds its last edit in the dedicated database (' . scalar(keys %belief) . ' contacts)'
    or diag join "\n", map { "$_: want $belief{$_}; " . ($target->{$_} // 'missing') } @wrong[0 .. min(4, $#wrong)];
my @mid = grep { my $e = $_; !grep { $_->[2] eq $e->[2] && $_->[0] > $c1 } @edits } @during;
cmp_ok scalar(@mid), '>', 0, scalar(@mid) . ' of them were last edited during the copy: those edits are there';
my $served = tenant_get($admin, $A, 'contacts', uuid_of($edits[-1][2]));
is j($served)->{notes}, $belief{ $edits[-1][2] }, 'A: the API serves the last edit from the dedicated database';

my $hb = j(migration_history($admin, $B->{id}));
my ($bm) = @{ $hb->{items} // [] };
is $bm->{status}, 'aborted', 'B: its run aborted';
is $bm->{abortReason}, "console abort $R", '  with the reason typed in the confirmation';
ok !db_exists($bm->{dbName} // 'none'), "  its target ($bm->{dbName}) dropped";
is j(http(GET => "/orgs/$B->{id}", session => $admin))->{dbMode}, 'shared', 'B: still shared';
is_deeply org_snapshot_in('opsd', $B), $B_before, '  its rows untouched, every column';

# ---- the audit log: the runbook's events, by the superadmin
my $super = uuid_hex($admin->{user}{id});
my %by = (A => norm_id($A->{id}), B => norm_id($B->{id}));
sub events($org, $mig) {
	return [map { $_->{action} } grep { $_->{org} eq $org && $_->{target_id} eq $mig->{id} && $_->{action} ne 'migration.progress' }
	    audit_payloads('migration.%')];
}
is_deeply events($by{A}, $dry), [qw(migration.started migration.dry_run_completed)], 'A, dry run: started, dry_run_completed'
    or diag json_encode(events($by{A}, $dry));
my $ev = events($by{A}, $run);
is_deeply [grep { !/^migration\.finalize_re/ } @$ev], [qw(migration.started migration.ready_for_cutover migration.finalized)],
    'A, run: started, ready_for_cutover, finalized' or diag json_encode($ev);
my @req = grep { $_->{target_id} eq $run->{id} } audit_payloads('migration.finalize_requested');
is_deeply [map { $_->{p} } @req], [{ status => 'ready_for_cutover', dryRun => JSON::PP::true },
    { status => 'ready_for_cutover', reason => "console finalize $R" }],
    '  finalize_requested: the rehearsal, then the cut-over with the reason typed' or diag json_encode(\@req);
is scalar(grep { $_->{target_id} eq $run->{id} } audit_payloads('migration.finalize_rehearsed')), 1, '  one finalize_rehearsed';
is_deeply events($by{B}, $bm), [qw(migration.started migration.abort_requested migration.aborted)],
    'B: started, abort_requested, aborted' or diag json_encode(events($by{B}, $bm));
my ($ab) = grep { $_->{target_id} eq $bm->{id} } audit_payloads('migration.abort_requested');
is $ab->{p}{reason}, "console abort $R", '  abort_requested holds the reason';
my @actors = map { $_->{a} } db_rows("SELECT LOWER(HEX(actor_id)) AS a FROM audit_events WHERE action IN"
    . " ('migration.started', 'migration.finalize_requested', 'migration.abort_requested')"
    . " AND org_id IN (UNHEX('$by{A}'), UNHEX('$by{B}'))");
is_deeply [sort { $a cmp $b } keys %{ { map { $_ => 1 } @actors } }], [lc $super], '  every request by the superadmin';
ok !find_in_logs({ 'the target password' => $PW }), 'the target\'s password is in no log';

ok -s "$screens/migration-1280x800.png" && -s "$screens/migration-390x844.png", 'screenshots written at both sizes';
note sprintf 'done in %.0f s', time - $T0;
finish();
