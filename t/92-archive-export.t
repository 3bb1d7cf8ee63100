#!/usr/bin/perl
# Batch-archive and exports (README "Runbook 2"; doc/architecture.md "The audit log").
# Batch-archive by ids (archived, already_archived on a repeat, legal_hold
# for a held contact and for a contact of a held org, not_found; dryRun
# counts with every table unchanged); by olderThan + orgId (created_at set
# back through MariaDB: only the old rows of that org are archived, the held
# one is skipped; a held org's old rows are all legal_hold); 1,100 old rows
# archived in chunks with one held row among them; bad input is 400 with
# nothing written; platform_admin, member and org_admin get 403; audit
# compliance.archived {entity, counts, dryRun}. The subject export (DSR
# access) of a contact and of a stripped one, 400/404, audit
# compliance.exported {entity, count: 1}. The org export of contacts with
# tricky values (comma, quote, CR, LF, UTF-8, leading spaces) in JSON and
# CSV: the CSV is parsed here strictly per RFC 4180 and compared field by
# field with the JSON export, which is compared with the CRUD API; redacted
# values in both for a stripped contact; headers; bad format 400; unknown
# org 404; 1,200 contacts made with INSERT ... SELECT come out exactly once
# in both formats. No PII string the test wrote appears in audit_events or
# log/.
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
my $N = run_num();
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my $TOMB = qr/^redacted\+[0-9a-f]{16}\@redacted\.invalid$/;
my $RED = '[redacted]';
my @COUNT_KEYS = qw(archived already_archived legal_hold not_found);
# a batch-archive answer always has these four counts: counts_are checks each
my @ARCHIVE_COUNTS = (keys => \@COUNT_KEYS);
my @CONTACT_FIELDS = qw(name email phone address notes);
# pii() keeps every value; the searches below leave out the ones under 6
# characters (too common: an address that is one quote)
my %SEARCHABLE = (min_length => 6);

# the org export's orgId: in the payload, or the event's own org column
sub event_org($e) { return defined $e->{p}{orgId} ? norm_id($e->{p}{orgId}) : norm_id($e->{org}) }
# a row without the columns an archive may change
sub sans_archive($row) {
	return undef unless $row;
	my %r = %$row;
	delete @r{qw(archived_at archived_reason updated_at)};
	return \%r;
}

# ============================================================ people and orgs
my %U;
my %S;
my %ORG;
$ORG{$_} = create_org(name => pii("org $_ name", "Archive Org $_ $R")) for qw(A B C D E F L);
ok !grep({ !$ORG{$_}{id} } keys %ORG), 'orgs A (by ids), B (held), C (olderThan), D (other), E (export), F (chunks), L (large)'
    or BAIL_OUT('cannot create orgs');
my ($A, $B, $C, $D, $E, $F, $L) = @ORG{qw(A B C D E F L)};
for my $spec (['orgadmin', 'org_admin', $A], ['member', 'member', $A], ['pa', 'platform_admin'], ['comp', 'compliance'],
    ['coff', 'compliance_officer'], ['sec', 'security_admin']) {
	my ($l, $role, $org) = @$spec;
	$U{$l} = create_user(role => $role, ($org ? (org => $org) : ()));
	pii("$l email", $U{$l}{email});
	pii("$l name", $U{$l}{name});
	$S{$l} = login($U{$l}{email}, $U{$l}{password});
	ok $S{$l}{cookie}, "$role logs in" or diag $S{$l}{res}{body};
}
$S{admin} = $admin;
my $comp = $S{comp};

# ============================================================ 1. batch-archive by ids
my $REASON = "Retention review $N $R";
my %CA = map { $_ => contact($admin, $A, $_) } qw(a1 a2 a3 ah a4 a5 pcoff psec padmin);
my $b1 = contact($admin, $B, 'b1');
my $bold = contact($admin, $B, 'bold');   # made before B is held (archived by olderThan in part 2)
{
	my $h = legal_hold($comp, entity => 'contacts', ids => [$CA{ah}{id}], hold => 1, reason => "Hold for archive test $R");
	is_deeply results($h), want_results($CA{ah}{id} => 'held'), 'contact ah of A is put on legal hold' or diag $h->{body};
	my $hb = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 1, reason => "Org hold for archive test $R");
	is_deeply results($hb), want_results($B->{id} => 'held'), 'org B is put on legal hold' or diag $hb->{body};
}
my $unknown = uuid7_like();
my @batch = ($CA{a1}{id}, $CA{a2}{id}, $CA{ah}{id}, $b1->{id}, $unknown);
my %want_first = ($CA{a1}{id} => 'archived', $CA{a2}{id} => 'archived', $CA{ah}{id} => 'legal_hold', $b1->{id} => 'legal_hold',
    $unknown => 'not_found');
my %before = map { $_ => db_row('contacts', $_) } grep { $_ ne $unknown } @batch;

# ---- dry run first: the counts of what would happen, nothing changes
{
	my @T = qw(contacts orgs);
	my $snap = table_snapshot(@T);
	ok @{ $snap->{contacts} } >= 10, '(the snapshot has the contacts)';
	my $r = batch_archive($comp, entity => 'contacts', ids => \@batch, reason => $REASON, dryRun => 1);
	status_is $r, 200, 'POST /compliance/batch-archive {contacts, 5 ids, dryRun: true} 200';
	is j($r)->{dryRun}, JSON::PP::true, '  dryRun: true';
	counts_are($r, { archived => 2, legal_hold => 2, not_found => 1 }, '  counts {archived: 2, already_archived: 0, legal_hold: 2, not_found: 1}', @ARCHIVE_COUNTS);
	is_deeply results($r), want_results(%want_first), '  results: a1, a2 archived; ah, b1 legal_hold; unknown not_found' or diag $r->{body};
	is_deeply table_snapshot(@T), $snap, '  table_snapshot(contacts, orgs) before = after: nothing changed';
	is j(compliance_record($comp, 'contacts', $CA{a1}{id}))->{archived}, JSON::PP::false, '  a1 is not archived (records)';
}

# ---- the real run
my $t_arch = time;
{
	my $r = batch_archive($comp, entity => 'contacts', ids => \@batch, reason => $REASON);
	status_is $r, 200, 'POST /compliance/batch-archive {contacts, the same 5 ids} 200';
	is j($r)->{dryRun}, JSON::PP::false, '  dryRun: false (the default)';
	counts_are($r, { archived => 2, legal_hold => 2, not_found => 1 }, '  counts {archived: 2, legal_hold: 2, not_found: 1}', @ARCHIVE_COUNTS);
	is_deeply results($r), want_results(%want_first), '  results per id' or diag $r->{body};
	is scalar(@{ j($r)->{results} // [] }), 5, '  five results';
	for my $k (qw(a1 a2)) {
		my $id = $CA{$k}{id};
		my $row = db_row('contacts', $id);
		ok defined $row->{archived_at}, "  MariaDB: $k has archived_at" or diag json_encode($row);
		is $row->{archived_reason}, $REASON, "  MariaDB: $k archived_reason";
		is_deeply sans_archive($row), sans_archive($before{$id}), "  MariaDB: the other columns of $k unchanged";
		my $rec = j(compliance_record($comp, 'contacts', $id));
		is $rec->{archived}, JSON::PP::true, "  GET /compliance/records/contacts/$k: archived true";
		near_now($rec->{archivedAt}, "  $k archivedAt");
		is $rec->{archivedReason}, $REASON, "  $k archivedReason";
		my $g = tenant_get($admin, $A, 'contacts', $id);
		status_is $g, 200, "  GET /orgs/A/contacts/$k 200";
		is j($g)->{archived}, JSON::PP::true, "  GET /orgs/A/contacts/$k: archived true";
		is j($g)->{name}, $CA{$k}{given}{name}, "  and its values are still there";
	}
	is_deeply db_row('contacts', $CA{ah}{id}), $before{ $CA{ah}{id} }, '  MariaDB: the held contact ah is untouched';
	is_deeply db_row('contacts', $b1->{id}), $before{ $b1->{id} }, '  MariaDB: b1 of the held org B is untouched';
	is j(tenant_get($admin, $A, 'contacts', $CA{ah}{id}))->{archived}, JSON::PP::false, '  GET ah: archived false';
	is j(compliance_record($comp, 'contacts', $b1->{id}))->{archived}, JSON::PP::false, '  records b1: archived false';
}

# ---- a repeat: already_archived, and the row keeps its first archive
{
	my $a1_row = db_row('contacts', $CA{a1}{id});
	my $r = batch_archive($comp, entity => 'contacts', ids => [$CA{a1}{id}, $CA{a3}{id}], reason => "$REASON again");
	status_is $r, 200, 'batch-archive {a1 (archived), a3} 200';
	is_deeply results($r), want_results($CA{a1}{id} => 'already_archived', $CA{a3}{id} => 'archived'),
	    '  a1 already_archived, a3 archived' or diag $r->{body};
	counts_are($r, { archived => 1, already_archived => 1 }, '  counts {archived: 1, already_archived: 1}', @ARCHIVE_COUNTS);
	is_deeply db_row('contacts', $CA{a1}{id}), $a1_row, '  MariaDB: a1 untouched (same archived_at and reason)';
	is db_row('contacts', $CA{a3}{id})->{archived_reason}, "$REASON again", '  a3 archived with the new reason';
	my $d = batch_archive($comp, entity => 'contacts', ids => [$CA{a1}{id}, $CA{a3}{id}], reason => $REASON, dryRun => 1);
	counts_are($d, { already_archived => 2 }, 'a dry run over both now: counts {already_archived: 2}', @ARCHIVE_COUNTS);
}

# ============================================================ 2. olderThan with orgId
my $cutoff = rfc3339_at(time - 30 * 86400);
my $REASON_C = "Older than 30 days $R";
my %CC = map { $_ => contact($admin, $C, $_) } qw(cold1 cold2 coldheld cnew1 cnew2 cedge);
my $dold = contact($admin, $D, 'dold');
{
	my $h = legal_hold($comp, entity => 'contacts', ids => [$CC{coldheld}{id}], hold => 1, reason => "Hold old $R");
	is_deeply results($h), want_results($CC{coldheld}{id} => 'held'), 'coldheld of C is put on legal hold' or diag $h->{body};
	my %days = (cold1 => 400, cold2 => 100, coldheld => 200, cedge => 10);
	for my $k (sort keys %days) {
		ok set_created_at('contacts', $CC{$k}{id}, $days{$k}), "created_at of $k set $days{$k} days back (mysql UPDATE)";
	}
	ok set_created_at('contacts', $dold->{id}, 400), 'created_at of dold (org D) set 400 days back';
	ok set_created_at('contacts', $bold->{id}, 400), 'created_at of bold (held org B) set 400 days back';
	my $e = rfc3339_epoch(j(tenant_get($admin, $C, 'contacts', $CC{cold1}{id}))->{createdAt});
	ok defined $e && abs(time - 400 * 86400 - $e) < 3600, '(GET shows cold1 createdAt 400 days back: the UPDATE is in UTC)'
	    or diag 'createdAt epoch ' . ($e // 'undef');
}
my %crow = map { $_ => db_row('contacts', $CC{$_}{id}) } keys %CC;
my $drow = db_row('contacts', $dold->{id});
my $brow = db_row('contacts', $bold->{id});
{
	my @T = qw(contacts orgs);
	my $snap = table_snapshot(@T);
	my $r = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => $REASON_C, dryRun => 1);
	status_is $r, 200, "batch-archive {contacts, olderThan: $cutoff, orgId: C, dryRun: true} 200";
	is j($r)->{dryRun}, JSON::PP::true, '  dryRun: true';
	counts_are($r, { archived => 2, legal_hold => 1 }, '  counts {archived: 2, legal_hold: 1} (cold1, cold2; coldheld)', @ARCHIVE_COUNTS);
	is_deeply table_snapshot(@T), $snap, '  table_snapshot(contacts, orgs) before = after: nothing changed';

	my $x = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => $REASON_C);
	status_is $x, 200, 'the same without dryRun 200';
	is j($x)->{dryRun}, JSON::PP::false, '  dryRun: false';
	counts_are($x, { archived => 2, legal_hold => 1 }, '  counts {archived: 2, legal_hold: 1}', @ARCHIVE_COUNTS);
	for my $k (qw(cold1 cold2)) {
		my $row = db_row('contacts', $CC{$k}{id});
		ok defined $row->{archived_at} && ($row->{archived_reason} // '') eq $REASON_C, "  $k (older than the cut-off) archived with the reason"
		    or diag json_encode($row);
		is_deeply sans_archive($row), sans_archive($crow{$k}), "  $k: other columns unchanged";
		is j(tenant_get($admin, $C, 'contacts', $CC{$k}{id}))->{archived}, JSON::PP::true, "  GET $k: archived true";
	}
	for my $k (qw(coldheld cnew1 cnew2 cedge)) {
		is_deeply db_row('contacts', $CC{$k}{id}), $crow{$k}, "  $k untouched" . ($k eq 'coldheld' ? ' (held)' : $k eq 'cedge'
		    ? ' (10 days old: newer than the cut-off)' : ' (new)');
	}
	is_deeply db_row('contacts', $dold->{id}), $drow, '  dold of org D (as old, other org) untouched';
	is_deeply db_row('contacts', $bold->{id}), $brow, '  bold of org B untouched';

	my $snap2 = table_snapshot(@T);
	my $again = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => $REASON_C);
	status_is $again, 200, 'the same olderThan run again 200';
	my $ac = j($again)->{counts} // {};
	ok(($ac->{archived} // -1) == 0 && ($ac->{legal_hold} // -1) == 1, '  counts: archived 0, legal_hold 1') or diag $again->{body};
	is_deeply table_snapshot(@T), $snap2, '  and nothing changed';

	my $hb = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $B->{id}, reason => $REASON_C);
	status_is $hb, 200, 'batch-archive olderThan with orgId: B (a held org) 200';
	counts_are($hb, { legal_hold => 1 }, '  counts {legal_hold: 1} (bold; b1 is new)', @ARCHIVE_COUNTS);
	is_deeply db_row('contacts', $bold->{id}), $brow, '  bold untouched';
}

# ============================================================ 3. olderThan over 1,100 rows (chunks of 500) with one held row
{
	my $fheld = contact($admin, $F, 'fheld');
	my $fnew = contact($admin, $F, 'fnew');
	my $h = legal_hold($comp, entity => 'contacts', ids => [$fheld->{id}], hold => 1, reason => "Hold in bulk $R");
	is_deeply results($h), want_results($fheld->{id} => 'held'), 'fheld of F is put on legal hold' or diag $h->{body};
	ok set_created_at('contacts', $fheld->{id}, 1000), 'fheld (held) set 1000 days back';
	my $n = bulk_insert_contacts($F, 1100, tag => "f$R", days_ago => 1095);
	is $n, 1102, '1,100 old contacts inserted into F by INSERT ... SELECT (1,102 in F)';
	my $fh = org_hex($F);
	my $held_row = db_row('contacts', $fheld->{id});
	my $snap = table_snapshot('contacts');
	my $d = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $F->{id}, reason => "Bulk $R", dryRun => 1);
	status_is $d, 200, 'dry run over F 200';
	counts_are($d, { archived => 1100, legal_hold => 1 }, '  counts {archived: 1100, legal_hold: 1}', @ARCHIVE_COUNTS);
	is_deeply table_snapshot('contacts'), $snap, '  nothing changed (table_snapshot)';
	my $t0 = time;
	my $r = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $F->{id}, reason => "Bulk $R");
	status_is $r, 200, sprintf('batch-archive olderThan over F 200 (%.1f s)', time - $t0);
	counts_are($r, { archived => 1100, legal_hold => 1 }, '  counts {archived: 1100, legal_hold: 1}', @ARCHIVE_COUNTS);
	is db_count("SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX('$fh') AND archived_at IS NOT NULL AND archived_reason = 'Bulk $R'"),
	    1100, '  MariaDB: 1,100 rows of F archived with the reason';
	is_deeply db_row('contacts', $fheld->{id}), $held_row, '  the held row is untouched';
	ok !defined db_row('contacts', $fnew->{id})->{archived_at}, '  the new row is not archived';
}

# ============================================================ 4. bad input: 400, nothing written
{
	my @T = qw(contacts orgs);
	my $snap = table_snapshot(@T);
	my $audits = audit_count('compliance.archived');
	my $ok = $CA{a5}{id};
	my @many = ($ok, map { uuid7_like() } 1 .. 1000);
	my %seen;
	@many = grep { !$seen{$_}++ } @many;
	push @many, uuid7_like() while @many < 1001;
	my @cases = (
		[{ entity => 'contacts', ids => [$ok], olderThan => $cutoff, reason => $REASON }, [[qw(ids olderThan)]], 'both ids and olderThan'],
		[{ entity => 'contacts', reason => $REASON }, [[qw(ids olderThan)]], 'neither ids nor olderThan'],
		[{ entity => 'contacts', olderThan => 'last tuesday', orgId => $A->{id}, reason => $REASON }, ['olderThan'], 'olderThan "last tuesday"'],
		[{ entity => 'contacts', olderThan => '2024-13-01T00:00:00Z', orgId => $A->{id}, reason => $REASON }, ['olderThan'],
		    'olderThan with month 13'],
		[{ entity => 'contacts', olderThan => 1700000000, orgId => $A->{id}, reason => $REASON }, ['olderThan'], 'olderThan a number'],
		[{ entity => 'contacts', ids => \@many, reason => $REASON }, ['ids'], '1001 ids'],
		[{ entity => 'contacts', ids => [$ok, 'not-a-uuid'], reason => $REASON }, ['ids'], 'a valid id and a malformed one'],
		[{ entity => 'contacts', ids => [], reason => $REASON }, [[qw(ids olderThan)]], 'empty ids'],
		[{ entity => 'contacts', ids => $ok, reason => $REASON }, ['ids'], 'ids a string'],
		[{ entity => 'contacts', ids => [$ok] }, ['reason'], 'no reason'],
		[{ entity => 'contacts', ids => [$ok], reason => '' }, ['reason'], 'an empty reason'],
		[{ entity => 'contacts', ids => [$ok], reason => 'r' x 501 }, ['reason'], 'a reason of 501 characters'],
		[{ entity => 'widgets', ids => [$ok], reason => $REASON }, ['entity'], 'an unknown entity'],
		[{ ids => [$ok], reason => $REASON }, ['entity'], 'no entity'],
		[{ entity => 'contacts', ids => [$ok], orgId => $A->{id}, reason => $REASON }, [[qw(orgId ids)]], 'orgId with ids'],
		[{ entity => 'contacts', olderThan => $cutoff, orgId => 'not-a-uuid', reason => $REASON }, ['orgId'], 'a malformed orgId'],
		[{ entity => 'contacts', ids => [$ok], reason => $REASON, dryRun => 'yes' }, ['dryRun'], 'dryRun "yes"'],
		[{ entity => 'contacts', ids => [$ok], reason => $REASON, force => JSON::PP::true }, ['force'], 'an unknown field'],
	);
	for my $c (@cases) {
		my ($body, $fields, $name) = @$c;
		my $r = http(POST => '/compliance/batch-archive', json => $body, session => $comp);
		check_error($r, 400, 'validation_failed', "batch-archive with $name");
		fields_named($r, @$fields);
	}
	is_deeply table_snapshot(@T), $snap, 'after every bad request: contacts and orgs unchanged (table_snapshot)';
	is audit_count('compliance.archived'), $audits, '  no compliance.archived audit event';
	is j(compliance_record($comp, 'contacts', $ok))->{archived}, JSON::PP::false, '  a5 (the valid id in the bad batches) is not archived';
}

# ============================================================ 5. permissions
{
	my @T = qw(contacts orgs);
	my $snap = table_snapshot(@T);
	my $audits = audit_count('compliance.archived');
	for my $l (qw(pa member orgadmin)) {
		my $role = $U{$l}{roles}[0];
		check_error(batch_archive($S{$l}, entity => 'contacts', ids => [$CA{a4}{id}], reason => $REASON), 403, 'forbidden',
		    "batch-archive as $role");
		check_error(batch_archive($S{$l}, entity => 'contacts', olderThan => $cutoff, orgId => $A->{id}, reason => $REASON, dryRun => 1),
		    403, 'forbidden', "batch-archive olderThan dryRun as $role");
	}
	is_deeply table_snapshot(@T), $snap, 'nothing changed by the refused calls';
	is audit_count('compliance.archived'), $audits, '  and no compliance.archived event';
	for my $c (['coff', 'pcoff'], ['sec', 'psec'], ['admin', 'padmin']) {
		my ($l, $k) = @$c;
		my $role = $l eq 'admin' ? 'superadmin' : $U{$l}{roles}[0];
		my $r = batch_archive($S{$l}, entity => 'contacts', ids => [$CA{$k}{id}], reason => "$REASON by $role");
		status_is $r, 200, "batch-archive as $role 200";
		is_deeply results($r), want_results($CA{$k}{id} => 'archived'), '  archived' or diag $r->{body};
	}
}

# ============================================================ 6. subject export (GET /compliance/export)
{
	my $x1 = contact($admin, $A, 'x1', notes => "Line one\nline \"two\", ü $R");
	my $x2 = contact($admin, $A, 'x2');
	my $s = strip_pii($comp, entity => 'contacts', ids => [$x2->{id}], reason => "DSR erasure $R");
	is_deeply results($s), want_results($x2->{id} => 'stripped'), 'x2 is stripped' or diag $s->{body};
	my $audits = audit_count('compliance.exported');

	my $r = compliance_export($comp, 'contacts', $x1->{id});
	status_is $r, 200, 'GET /compliance/export?entity=contacts&id=x1 200';
	like $r->{headers}{'content-type'} // '', qr{^application/json}i, '  JSON';
	my $d = j($r);
	is $d->{entity}, 'contacts', '  entity';
	is $d->{id}, $x1->{id}, '  id';
	near_now($d->{exportedAt}, '  exportedAt');
	my $api = j(tenant_get($admin, $A, 'contacts', $x1->{id}));
	is_deeply $d->{record}, $api, '  record is the record as GET /orgs/A/contacts/x1 shows it' or diag $r->{body};
	is $d->{record}{$_}, $x1->{given}{$_}, "  record.$_ as written" for @CONTACT_FIELDS;

	my $r2 = compliance_export($comp, 'contacts', $x2->{id});
	status_is $r2, 200, 'GET /compliance/export of the stripped x2 200';
	my $rec = j($r2)->{record} // {};
	is $rec->{name}, $RED, '  record.name "[redacted]"';
	like $rec->{email} // '', $TOMB, '  record.email a tombstone';
	ok exists $rec->{$_} && !defined $rec->{$_}, "  record.$_ null" for qw(phone address notes);
	is $rec->{piiStripped}, JSON::PP::true, '  record.piiStripped true';
	is_deeply $rec, j(tenant_get($admin, $A, 'contacts', $x2->{id})), '  the same as the CRUD API shows';
	my @leaks = grep { index($r2->{body}, encode_utf8($x2->{given}{$_})) >= 0 } @CONTACT_FIELDS;
	ok !@leaks, '  none of the stripped values is in the body' or diag "@leaks";
	is audit_count('compliance.exported'), $audits + 2, 'two exports: two compliance.exported events';
	my @ev = grep { $_->{seq} } audit_payloads('compliance.exported');
	my @mine = @ev[-2 .. -1];
	ok !(grep { ($_->{p}{entity} // '') ne 'contacts' || ($_->{p}{count} // -1) != 1 } @mine),
	    '  both {entity: contacts, count: 1}' or diag json_encode([map { $_->{payload} } @mine]);

	# no event, no export: while the audit log refuses inserts (a trigger,
	# as root), the subject's record does not leave
	ok defined mysql("CREATE TRIGGER opsd.t92_refuse_audit BEFORE INSERT ON opsd.audit_events FOR EACH ROW"
	    . " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 't92: audit refused'"), 'the audit log refuses inserts (a trigger)';
	my $refused = compliance_export($comp, 'contacts', $x1->{id});
	check_error($refused, 500, 'internal_error', 'GET /compliance/export while compliance.exported cannot be written (the database answers, the write failed)');
	unlike $refused->{body}, qr/\Q$x1->{given}{email}\E/, '  and no personal data in the answer';
	ok defined mysql('DROP TRIGGER opsd.t92_refuse_audit'), 'the trigger dropped';
	status_is compliance_export($comp, 'contacts', $x1->{id}), 200, '  then the export answers again';

	$audits = audit_count('compliance.exported');
	check_error(compliance_export($comp, 'contacts', uuid7_like()), 404, 'not_found', 'GET /compliance/export of an unknown id');
	my $bad = compliance_export($comp, 'widgets', $x1->{id});
	check_error($bad, 400, 'validation_failed', 'GET /compliance/export?entity=widgets');
	fields_named($bad, 'entity');
	check_error(compliance_export($comp, 'contacts', 'not-a-uuid'), [400, 404], undef, 'GET /compliance/export with a malformed id');
	for my $l (qw(pa member orgadmin)) {
		check_error(compliance_export($S{$l}, 'contacts', $x1->{id}), 403, 'forbidden', "GET /compliance/export as $U{$l}{roles}[0]");
	}
	check_error(compliance_export(undef, 'contacts', $x1->{id}), 401, 'unauthenticated', 'GET /compliance/export without credentials');
	is audit_count('compliance.exported'), $audits, '  the refused and failed requests: no compliance.exported event';
	for my $l (qw(coff sec admin)) {
		status_is compliance_export($S{$l}, 'contacts', $x1->{id}), 200,
		    'GET /compliance/export as ' . ($l eq 'admin' ? 'superadmin' : $U{$l}{roles}[0]) . ' 200';
	}
}

# ============================================================ 7. org export: tricky values, JSON and CSV
my @CSV_HEAD = qw(id orgId);
my @CSV_TAIL = qw(legalHold piiStripped archived createdAt updatedAt);

# mismatches between a JSON record and a CSV record (hash by header)
sub csv_vs_json($csv, $json) {
	my @bad;
	for my $k (sort keys %$json) {
		my $v = $json->{$k};
		my $c = $csv->{$k};
		if (!defined $c) { push @bad, "$k: no CSV column"; next }
		my $same = !defined $v ? $c eq ''
		    : JSON::PP::is_bool($v) ? ($v ? $c =~ /^(?:true|1)$/ : $c =~ /^(?:false|0)$/)
		    : ref $v ? 0
		    : $c eq "$v" || ($v =~ /^-?\d+(?:\.\d+)?$/ && $c =~ /^-?\d+(?:\.\d+)?$/ && $c == $v);
		push @bad, "$k: JSON " . json_encode($v) . ' CSV ' . json_encode($c) unless $same;
	}
	push @bad, map { "$_: CSV only" } grep { !exists $json->{$_} } sort keys %$csv;
	return @bad;
}
# checks an export's CSV against its JSON items: header, every row once, field by field
sub check_csv($res, $items, $name) {
	my $p = parse_csv($res->{body});
	ok !@{ $p->{errors} }, "$name: parses as RFC 4180 (CRLF, quoting)" or diag join("\n", @{ $p->{errors} });
	ok !$p->{bom}, "$name: no byte order mark";
	ok $p->{trailing_crlf}, "$name: the last line ends in CRLF too";
	my @h = @{ $p->{header} };
	my @mid = @h > 7 ? @h[2 .. $#h - 5] : ();
	ok @h >= 7 && "@h[0, 1]" eq "@CSV_HEAD" && "@h[-5 .. -1]" eq "@CSV_TAIL", "$name: header id,orgId,<fields>,"
	    . join(',', @CSV_TAIL) or diag "header: @h";
	is_deeply [sort @mid], [sort @CONTACT_FIELDS], "$name: <fields> are the contact fields in camelCase" or diag "header: @h";
	note "$name header: " . join(',', @h);
	my %by_id;
	my $dups = 0;
	for my $rec (@{ $p->{records} }) { $dups++ if $by_id{ $rec->{id} // '' }++ }
	is scalar(@{ $p->{rows} }), scalar(@$items), "$name: " . scalar(@$items) . ' data rows';
	is $dups, 0, "$name: no id twice";
	my %json = map { ($_->{id} => $_) } @$items;
	is_deeply [sort keys %by_id], [sort keys %json], "$name: the same ids as the JSON export";
	my @bad;
	for my $rec (@{ $p->{records} }) {
		my $jrec = $json{ $rec->{id} // '' } or next;
		my @m = csv_vs_json($rec, $jrec);
		push @bad, "$rec->{id}: @m" if @m;
	}
	ok !@bad, "$name: every row equals its JSON record field by field (null = empty, booleans true/false)"
	    or diag join("\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
	return $p;
}
sub export_items($res) {
	my $d = ref $res->{json} eq 'HASH' ? $res->{json} : json_decode($res->{body} // '');
	return ref $d eq 'HASH' && ref $d->{items} eq 'ARRAY' ? $d->{items} : [];
}

my %CE = (
	comma => contact($admin, $E, 'comma', name => "Smith, Jane $R", phone => "+1 (555) 010-$N, ext. 7",
	    address => "1 Main St, Apt 2, Springfield $R"),
	quote => contact($admin, $E, 'quote', name => "Dwayne \"The Rock\" Q$R", address => '"', notes => "He said \"hi\", then \"\"left\"\" $R"),
	lf => contact($admin, $E, 'lf', notes => "line one\nline two $R\n", address => "Flat 3\r\nHigh Street $R"),
	cr => contact($admin, $E, 'cr', notes => "carriage\rreturn only $R", phone => "+49 30 $N"),
	utf8 => contact($admin, $E, 'utf8', name => "Zoë Ærøskøbing 東京 $R", notes => "emoji 😀, ü ß Ω; tab\there $R",
	    address => "  padded both sides $R  "),
	min => contact($admin, $E, 'min', name => "Mini $R", email => undef, phone => undef, address => undef, notes => undef),
	strip => contact($admin, $E, 'strip'),
	held => contact($admin, $E, 'held', name => "Held, \"Harriet\" $R"),
);
{
	my $s = strip_pii($comp, entity => 'contacts', ids => [$CE{strip}{id}], reason => "DSR $R");
	is_deeply results($s), want_results($CE{strip}{id} => 'stripped'), 'E: contact strip is stripped' or diag $s->{body};
	my $h = legal_hold($comp, entity => 'contacts', ids => [$CE{held}{id}], hold => 1, reason => "hold $R");
	is_deeply results($h), want_results($CE{held}{id} => 'held'), 'E: contact held is held' or diag $h->{body};
}
{
	my $audits = audit_count('compliance.exported');
	my %api = map { ($_->{id} => j(tenant_get($admin, $E, 'contacts', $_->{id}))) } values %CE;
	my $list = tenant_list_all($admin, $E, 'contacts', limit => 500);
	is_deeply [sort map { $_->{id} } @{ $list->{items} }], [sort keys %api], '(the CRUD list of E has the 8 contacts)'
	    or diag join "\n", @{ $list->{errors} };

	my $r = org_export($comp, 'contacts', orgId => $E->{id}, format => 'json');
	status_is $r, 200, 'GET /export/contacts?orgId=E&format=json 200';
	like $r->{headers}{'content-type'} // '', qr{^application/json\b}i, '  Content-Type application/json';
	like $r->{headers}{'content-disposition'} // '', qr/^\s*attachment\b/i, '  Content-Disposition: attachment'
	    or diag 'Content-Disposition: ' . ($r->{headers}{'content-disposition'} // 'none');
	my $doc = json_decode($r->{body} // '');
	is_deeply [sort keys %{ ref $doc eq 'HASH' ? $doc : {} }], ['items'], '  the body is {"items": [...]}' or diag substr($r->{body}, 0, 300);
	my $items = export_items($r);
	is scalar(@$items), 8, '  8 items';
	my %seen;
	is scalar(grep { $seen{ $_->{id} // '' }++ } @$items), 0, '  no id twice';
	my @diff = grep { !exists $api{ $_->{id} // '' } || json_encode($_) ne json_encode($api{ $_->{id} }) } @$items;
	ok !@diff && keys %seen == 8, '  every item equals the record GET /orgs/E/contacts/:id returns'
	    or diag join "\n", map { json_encode($_) . "\n  api: " . json_encode($api{ $_->{id} // '' }) } @diff;
	my %ji = map { ($_->{id} => $_) } @$items;
	my $st = $ji{ $CE{strip}{id} } // {};
	ok(($st->{name} // '') eq $RED && ($st->{email} // '') =~ $TOMB && !defined $st->{phone} && !defined $st->{notes}
	    && !defined $st->{address} && $st->{piiStripped}, '  the stripped contact: name [redacted], email tombstone, others null')
	    or diag json_encode($st);
	is $ji{ $CE{held}{id} }{legalHold}, JSON::PP::true, '  the held contact: legalHold true';
	is $ji{ $CE{$_}{id} }{name}, $CE{$_}{given}{name}, "  $_: name as written" for qw(comma quote utf8);
	is $ji{ $CE{lf}{id} }{notes}, $CE{lf}{given}{notes}, '  lf: notes with LF as written';
	is $ji{ $CE{lf}{id} }{address}, $CE{lf}{given}{address}, '  lf: address with CRLF as written';
	is $ji{ $CE{cr}{id} }{notes}, $CE{cr}{given}{notes}, '  cr: notes with a lone CR as written';
	is $ji{ $CE{utf8}{id} }{address}, $CE{utf8}{given}{address}, '  utf8: leading and trailing spaces kept';

	my $def = org_export($comp, 'contacts', orgId => $E->{id});
	status_is $def, 200, 'GET /export/contacts?orgId=E (no format) 200';
	like $def->{headers}{'content-type'} // '', qr{^application/json\b}i, '  JSON by default';
	is_deeply [sort map { json_encode($_) } @{ export_items($def) }], [sort map { json_encode($_) } @$items], '  the same items';

	my $c = org_export($comp, 'contacts', orgId => $E->{id}, format => 'csv');
	status_is $c, 200, 'GET /export/contacts?orgId=E&format=csv 200';
	like $c->{headers}{'content-type'} // '', qr{^text/csv;\s*charset=utf-8\s*$}i, '  Content-Type: text/csv; charset=utf-8'
	    or diag 'Content-Type: ' . ($c->{headers}{'content-type'} // 'none');
	like $c->{headers}{'content-disposition'} // '', qr/^\s*attachment\b/i, '  Content-Disposition: attachment'
	    or diag 'Content-Disposition: ' . ($c->{headers}{'content-disposition'} // 'none');
	my $p = check_csv($c, $items, '  CSV of E');
	my $raw = $c->{body} // '';
	ok index($raw, encode_utf8(qq{"Dwayne ""The Rock"" Q$R"})) >= 0, '  raw: "Dwayne ""The Rock"" Q…" quoted, inner quotes doubled';
	ok index($raw, encode_utf8(qq{"Smith, Jane $R"})) >= 0, '  raw: "Smith, Jane …" quoted (comma)';
	ok index($raw, encode_utf8(qq{"line one\nline two $R\n"})) >= 0, '  raw: the LF notes quoted, LF kept inside';
	ok index($raw, encode_utf8(qq{"carriage\rreturn only $R"})) >= 0, '  raw: the lone-CR notes quoted, CR kept inside';
	ok index($raw, encode_utf8(qq{,""""})) >= 0 || index($raw, encode_utf8(qq{""""\r\n})) >= 0 || index($raw, encode_utf8(qq{"""",})) >= 0,
	    '  raw: the address that is one quote comes out as """"';
	ok index($raw, encode_utf8("Zoë Ærøskøbing 東京 $R")) >= 0 && index($raw, encode_utf8('😀')) >= 0, '  raw: UTF-8 as is (not escaped)';
	my ($srow) = grep { ($_->{id} // '') eq $CE{strip}{id} } @{ $p->{records} };
	ok $srow && $srow->{name} eq $RED && $srow->{email} =~ $TOMB && $srow->{phone} eq '' && $srow->{notes} eq '' && $srow->{address} eq '',
	    '  CSV: the stripped contact is redacted ([redacted], tombstone, empty)' or diag json_encode($srow);
	my @leaks = grep { index($raw . ($r->{body} // ''), encode_utf8($CE{strip}{given}{$_})) >= 0 } @CONTACT_FIELDS;
	ok !@leaks, '  none of the stripped values is in either export' or diag "@leaks";
	my ($q) = grep { ($_->{id} // '') eq $CE{quote}{id} } @{ $p->{records} };
	is $q->{notes}, $CE{quote}{given}{notes}, '  CSV: the quote contact\'s notes round-trip';

	my @ev = audit_payloads('compliance.exported');
	is scalar(@ev), $audits + 3, 'three org exports: three compliance.exported events';
	my @mine = grep { event_org($_) eq norm_id($E->{id}) } @ev;
	my %fmt = map { ($_->{p}{format} // '?') => 1 } @mine;
	ok @mine == 3 && !(grep { ($_->{p}{entity} // '') ne 'contacts' || ($_->{p}{count} // -1) != 8 } @mine) && $fmt{json} && $fmt{csv},
	    '  {entity: contacts, orgId: E (payload or the event\'s org), count: 8, format: json|csv}'
	    or diag json_encode([map { { org => $_->{org}, payload => $_->{payload} } } grep { defined } @ev[-3 .. -1]]);

	$audits = audit_count('compliance.exported');
	my $bf = org_export($comp, 'contacts', orgId => $E->{id}, format => 'xml');
	check_error($bf, 400, 'validation_failed', 'GET /export/contacts?format=xml');
	fields_named($bf, 'format');
	check_error(org_export($comp, 'contacts', orgId => uuid7_like(), format => 'json'), 404, 'not_found', 'GET /export/contacts of an unknown org');
	check_error(org_export($comp, 'contacts', orgId => uuid7_like(), format => 'csv'), 404, 'not_found', '  and as CSV');
	check_error(org_export($comp, 'contacts', format => 'json'), 400, 'validation_failed', 'GET /export/contacts without orgId');
	check_error(org_export($comp, 'widgets', orgId => $E->{id}), [400, 404], undef, 'GET /export/widgets');
	check_error(org_export($S{orgadmin}, 'contacts', orgId => $E->{id}), [403, 404], undef, 'GET /export/contacts?orgId=E as org_admin of A (foreign org)');
	check_error(org_export($S{pa}, 'contacts', orgId => $E->{id}), 403, 'forbidden', 'GET /export/contacts as platform_admin');
	check_error(org_export($S{member}, 'contacts', orgId => $A->{id}), 403, 'forbidden', 'GET /export/contacts?orgId=A as a member of A');
	check_error(org_export(undef, 'contacts', orgId => $E->{id}), 401, 'unauthenticated', 'GET /export/contacts without credentials');
	is audit_count('compliance.exported'), $audits, '  the refused and failed exports: no compliance.exported event';
}

# ============================================================ 8. a larger export: 1,200 + 3 contacts
{
	my $l1 = contact($admin, $L, 'l1', name => "Large, \"One\" $R", notes => "multi\r\nline ü $R");
	my $l2 = contact($admin, $L, 'l2');
	my $l3 = contact($admin, $L, 'l3');
	strip_pii($comp, entity => 'contacts', ids => [$l2->{id}], reason => "DSR $R");
	my $t0 = time;
	my $n = bulk_insert_contacts($L, 1200, tag => "l$R");
	is $n, 1203, sprintf('1,200 contacts inserted into L by INSERT ... SELECT (%.1f s; 1,203 in L)', time - $t0);
	my @db = sort @{ org_row_ids('contacts', $L) };
	is scalar(@db), 1203, '(MariaDB: 1,203 ids in L)';
	my $list = tenant_list_all($admin, $L, 'contacts', limit => 500);
	is scalar(@{ $list->{items} }), 1203, '(the CRUD list has 1,203 items)' or diag join "\n", @{ $list->{errors} };
	my %api = map { ($_->{id} => $_) } @{ $list->{items} };

	$t0 = time;
	my $r = org_export($comp, 'contacts', orgId => $L->{id}, format => 'json');
	status_is $r, 200, sprintf('GET /export/contacts?orgId=L&format=json 200 (%.1f s, %d bytes)', time - $t0, length($r->{body} // ''));
	my $items = export_items($r);
	is scalar(@$items), 1203, '  1,203 items';
	my %seen;
	my @dups = grep { $seen{ $_->{id} // '' }++ } @$items;
	is scalar(@dups), 0, '  no id twice' or diag scalar(@dups) . ' repeated, e.g. ' . ($dups[0]{id} // '');
	is_deeply [sort map { norm_id($_->{id}) } @$items], \@db, '  exactly the ids MariaDB has for L';
	my @diff = grep { !$api{ $_->{id} // '' } || json_encode($_) ne json_encode($api{ $_->{id} }) } @$items;
	ok !@diff, '  every item equals the CRUD API\'s record' or diag scalar(@diff) . " differ, e.g.\n" . json_encode($diff[0])
	    . "\n  api: " . json_encode($api{ $diff[0]{id} // '' } // {});
	my %ji = map { ($_->{id} => $_) } @$items;
	is $ji{ $l2->{id} }{name}, $RED, '  the stripped l2 is redacted';
	is $ji{ $l1->{id} }{notes}, $l1->{given}{notes}, '  l1 notes (CRLF, ü) as written';
	my ($bulk) = grep { ($_->{name} // '') =~ /^Bulk Contact 15, "Jr\." l$R$/ } @$items;
	ok $bulk && ($bulk->{notes} // '') eq 'Ünicode note 15' && ($bulk->{address} // '') eq "15 Long Road\r\nTownsville",
	    '  a bulk row reads back with its UTF-8 note and CRLF address' or diag json_encode($bulk);

	$t0 = time;
	my $c = org_export($comp, 'contacts', orgId => $L->{id}, format => 'csv');
	status_is $c, 200, sprintf('GET /export/contacts?orgId=L&format=csv 200 (%.1f s, %d bytes)', time - $t0, length($c->{body} // ''));
	my $p = check_csv($c, $items, '  CSV of L');
	is_deeply [sort map { norm_id($_->{id}) } @{ $p->{records} }], \@db, '  CSV: exactly the ids MariaDB has for L';

	my @ev = grep { event_org($_) eq norm_id($L->{id}) } audit_payloads('compliance.exported');
	my %fmt = map { ($_->{p}{format} // '?') => $_->{p}{count} } @ev;
	ok @ev == 2 && ($fmt{json} // -1) == 1203 && ($fmt{csv} // -1) == 1203, 'audit compliance.exported for L: count 1203, json and csv'
	    or diag json_encode([map { $_->{payload} } @ev]);
}

# ============================================================ 9. audit compliance.archived, no PII anywhere
{
	my @ev = audit_payloads('compliance.archived');
	ok @ev >= 7, 'compliance.archived events (' . scalar(@ev) . '; at least one per archiving run)';
	my @shape = grep { ($_->{p}{entity} // '') ne 'contacts' || ref $_->{p}{counts} ne 'HASH' || !JSON::PP::is_bool($_->{p}{dryRun}) } @ev;
	ok !@shape, '  each has entity, counts {...} and a boolean dryRun' or diag json_encode([map { $_->{payload} } @shape]);
	# One call may write one event per org it touched (each in that org's
	# transaction): the counts of a call are summed over its request id.
	my (%call, @order);
	for my $e (@ev) {
		my $k = $e->{request_id} // "seq$e->{seq}";
		push @order, $k unless $call{$k};
		my $c = $call{$k} //= { p => { dryRun => $e->{p}{dryRun}, counts => {} } };
		$c->{p}{counts}{$_} += $e->{p}{counts}{$_} // 0 for @COUNT_KEYS;
	}
	my @calls = map { $call{$_} } @order;
	my $has = sub (%w) {
		my $dry = delete $w{dryRun};
		return grep {
			my $c = $_->{p}{counts};
			!!$_->{p}{dryRun} == !!$dry && !grep { ($c->{$_} // 0) != ($w{$_} // 0) } @COUNT_KEYS
		} @calls;
	};
	ok scalar($has->(archived => 2, legal_hold => 2, not_found => 1, dryRun => 0)),
	    '  the ids run: {counts {archived: 2, legal_hold: 2, not_found: 1}, dryRun: false}';
	ok scalar($has->(archived => 1, already_archived => 1, dryRun => 0)), '  the repeat: {archived: 1, already_archived: 1}';
	ok scalar($has->(archived => 2, legal_hold => 1, dryRun => 0)), '  the olderThan run on C: {archived: 2, legal_hold: 1}';
	ok scalar($has->(archived => 1100, legal_hold => 1, dryRun => 0)), '  the olderThan run on F: {archived: 1100, legal_hold: 1}';
	note scalar(grep { $_->{p}{dryRun} } @ev) . ' dry runs were audited (dryRun: true)';

	my $audit = audit_text() // '';
	ok length $audit, 'audit_events has rows';
	my @hits = pii_hits($audit, %SEARCHABLE);
	ok !@hits, 'no PII string this test wrote appears anywhere in audit_events (' . scalar(keys %{ pii_values(%SEARCHABLE) })
	    . ' strings)'
	    or diag join "\n", @hits;
	my @log_hits = pii_in_logs(%SEARCHABLE);
	ok !@log_hits, 'nor anywhere in log/' or diag join "\n", @log_hits;
	ok index($audit, 'compliance.archived') >= 0 && index($audit, 'compliance.exported') >= 0,
	    '(control: the audit text has the compliance.archived and compliance.exported events)';
	ok scalar(find_in_logs({ path => '/export/contacts' })), '(control: log/ has the export requests)';
}

finish();
