#!/usr/bin/perl
# Runbook 2's batches as sets (README "Runbook 2"): strip-PII and
# batch-archive judge a chunk with a few statements of at most 500 ids each.
# A strip of 1,000 ids (more than one statement) mixing held records (on
# both sides of the 500th id), already stripped ones, an unknown id, a
# repeated id and a record of a held org: every id gets the result the
# one-record-at-a-time path gave, the tombstones are sha256(id) as the
# entity table says, held rows are untouched, one audited event per org with
# every id. A failure of the UPDATE in the second statement (a trigger)
# leaves nothing of the call written and no event; once it is gone the same
# call succeeds. By age over 1,150 rows (three chunks): a hold placed between
# the dry run and the run is skipped and counted legal_hold; each chunk
# writes one compliance.archived event with its ids and counts, together
# naming exactly the rows archived; a re-run archives nothing. A failure in
# the second chunk leaves the first chunk archived with its event, nothing of
# the second, and a 5xx; an org with no rows answers zero counts with one
# event. Archive by ids over 600 ids mixing held and archived rows.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use Test::More;
use OpsdTest;

my $R = run_tag();
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};
my $comp_u = create_user(role => 'compliance');
my $comp = login($comp_u->{email}, $comp_u->{password});
ok $comp->{cookie}, 'a compliance user logs in';

my @KEYS = (keys => [qw(archived already_archived legal_hold not_found)]);
my $TRIGGER = 'opsd.t91_sets_refuse';

# The ids of an org's contacts, in id order (lower-case hyphenated UUIDs).
sub org_ids($org, $where = '1') {
	my $out = mysql('SELECT ' . uuid_sql('id') . ' FROM contacts WHERE org_id = UNHEX(\'' . org_hex($org)
	    . "') AND $where ORDER BY id") // '';
	return grep { length } split /\n/, $out;
}

# A trigger that makes every UPDATE of one contact that sets $col fail (the
# client's DELIMITER: the trigger's body has a semicolon of its own).
sub refuse_update_of($id, $col) {
	my $hex = uuid_hex($id);
	return defined mysql("DELIMITER //\nCREATE TRIGGER $TRIGGER BEFORE UPDATE ON opsd.contacts FOR EACH ROW"
	    . " IF NEW.id = UNHEX('$hex') AND NEW.$col IS NOT NULL AND OLD.$col IS NULL THEN"
	    . " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 't91 sets: refused'; END IF//\nDELIMITER ;\nSELECT 1");
}

sub tombstone($id) {
	return 'redacted+' . substr(sha256_hex(pack('H*', norm_id($id))), 0, 16) . '@redacted.invalid';
}

my $A = create_org(name => "Sets A $R");
my $B = create_org(name => "Sets B $R");
is bulk_insert_contacts($A, 1000, tag => "a$R"), 1000, '1,000 contacts in org A';
is bulk_insert_contacts($B, 2, tag => "b$R"), 2, '2 contacts in org B';
my @a = org_ids($A);
my @b = org_ids($B);

# ============================================================ 1. strip 1,000 ids: two statements, mixed results
my @held = @a[0, 499, 500, 997];
my @pre = @a[250, 750];
my $unknown = uuid7_like();
{
	my $h = legal_hold($comp, entity => 'contacts', ids => \@held, hold => 1, reason => "Sets hold $R");
	counts_are($h, { held => 4 }, 'four contacts of A held (the 1st, 500th, 501st and 998th in id order)');
	my $hb = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 1, reason => "Sets org hold $R");
	counts_are($hb, { held => 1 }, 'org B held');
	my $p = strip_pii($comp, entity => 'contacts', ids => \@pre, reason => "Sets first $R");
	counts_are($p, { stripped => 2 }, 'two contacts of A stripped beforehand');
}
my %row = map { ($_ => db_row('contacts', $_)) } @held, @pre, @b;
# 1,000 ids: 997 of A's (one of them twice), an unknown id and B's first contact
my @ids = (@a[0 .. 997], $unknown, $b[0]);
splice @ids, 600, 1, $a[10];   # a[600] is left out, a[10] comes twice
is scalar(@ids), 1000, '(the call has 1,000 ids)';
my $before_fail = table_snapshot('contacts');
{
	my $a_events = audit_count('compliance.pii_stripped', "org_id = UNHEX('" . org_hex($A) . "')");
	ok refuse_update_of($a[700], 'pii_stripped_at'), 'an UPDATE stripping one contact (the 700th id) is refused by a trigger';
	my $r = strip_pii($comp, entity => 'contacts', ids => \@ids, reason => "Sets $R");
	status_is $r, 200, 'the strip of 1,000 ids: 200 (a batch is atomic per org, B\'s part is applied)';
	my $res = results($r);
	is_deeply [sort keys %{ { map { (($res->{ norm_id($_) } // 'none') => 1) } @ids[0 .. 997] } }], ['unavailable'],
	    '  every id of org A: unavailable (its part failed in its second statement)' or diag $r->{body};
	is_deeply [@$res{ norm_id($b[0]), norm_id($unknown) }], ['legal_hold', 'not_found'], '  B\'s contact legal_hold, the unknown id not_found';
	is_deeply table_snapshot('contacts'), $before_fail, '  nothing of A is written (its first 500 rolled back too)';
	is audit_count('compliance.pii_stripped', "org_id = UNHEX('" . org_hex($A) . "')"), $a_events,
	    '  and no compliance.pii_stripped event about A';
	ok defined mysql("DROP TRIGGER $TRIGGER"), 'the trigger dropped';
}
my $events0 = audit_count('compliance.pii_stripped');
{
	my $r = strip_pii($comp, entity => 'contacts', ids => \@ids, reason => "Sets $R");
	status_is $r, 200, 'the same strip of 1,000 ids 200';
	my %want = map { ($_ => 'stripped') } @ids;
	$want{$_} = 'legal_hold' for @held, $b[0];
	$want{$_} = 'already_stripped' for @pre;
	$want{$unknown} = 'not_found';
	$want{ $a[10] } = 'already_stripped';   # results() keeps an id's last result
	is_deeply results($r), want_results(%want), '  each id: stripped, legal_hold, already_stripped or not_found' or diag $r->{body};
	my @res = @{ j($r)->{results} // [] };
	is_deeply [map { $_->{result} } @res[10, 600]], ['stripped', 'already_stripped'],
	    '  the repeated id: stripped, then already_stripped' or diag explain [@res[10, 600]];
	counts_are($r, { stripped => 991, already_stripped => 3, legal_hold => 5, not_found => 1 },
	    '  counts {stripped: 991, already_stripped: 3, legal_hold: 5, not_found: 1}');
	is_deeply db_row('contacts', $_), $row{$_}, '  held contact untouched' for @held, $b[0];
	is_deeply db_row('contacts', $_), $row{$_}, '  contact stripped before untouched' for @pre;
	my @bad = grep { my $x = db_row('contacts', $_);
		($x->{email} // '') ne tombstone($_) || ($x->{name} // '') ne '[redacted]' || defined $x->{phone} || defined $x->{notes}
		    || defined $x->{address} || ($x->{pii_stripped_reason} // '') ne "Sets $R" } @a[1, 10, 498, 501, 700, 996];
	ok !@bad, '  stripped rows (both statements): tombstone email of sha256(id), name [redacted], the rest NULL' or diag "@bad";
	is db_count('SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX(\'' . org_hex($A) . "') AND pii_stripped_reason = 'Sets $R'"),
	    991, '  991 rows of A carry the reason';
	ok !defined db_row('contacts', $a[600])->{pii_stripped_at}, '  the contact left out is not stripped';
	my @ev = audit_payloads('compliance.pii_stripped');
	splice @ev, 0, $events0;
	is scalar(@ev), 3, '  three events: the unknown id, org A, org B' or diag explain \@ev;
	my ($ea) = grep { ($_->{org} // '') eq org_hex($A) } @ev;
	is scalar(@{ ($ea // {})->{p}{ids} // [] }), 998, '  org A\'s event names its 998 ids';
	is_deeply(($ea // {})->{p}{counts}, { stripped => 991, already_stripped => 3, legal_hold => 4 }, '  with its counts');
	my $again = strip_pii($comp, entity => 'contacts', ids => \@ids, reason => "Sets again $R");
	counts_are($again, { already_stripped => 994, legal_hold => 5, not_found => 1 }, 'the same call again: already_stripped');
}

# ============================================================ 2. by age: three chunks, a hold between dry run and run
my $C = create_org(name => "Sets C $R");
is bulk_insert_contacts($C, 1150, tag => "c$R", days_ago => 400), 1150, '1,150 old contacts in org C';
is bulk_insert_contacts($C, 5, tag => "cn$R", days_ago => 0), 1155, '5 new ones';
my @c = org_ids($C, 'created_at < UTC_TIMESTAMP() - INTERVAL 300 DAY');
my $cutoff = rfc3339_at(time - 30 * 86400);
{
	my $ev0 = audit_count('compliance.archived');
	my $d = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => "Sets age $R", dryRun => 1);
	counts_are($d, { archived => 1150 }, 'dry run over C: archived 1150', @KEYS);
	is audit_count('compliance.archived'), $ev0 + 1, '  one compliance.archived event for the dry run';
	my $h = legal_hold($comp, entity => 'contacts', ids => [$c[700]], hold => 1, reason => "Late hold $R");
	counts_are($h, { held => 1 }, 'then one old contact (in the second chunk) is held');
	my $held_row = db_row('contacts', $c[700]);
	my $r = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => "Sets age $R");
	status_is $r, 200, 'the run 200';
	counts_are($r, { archived => 1149, legal_hold => 1 }, '  counts {archived: 1149, legal_hold: 1}', @KEYS);
	is_deeply db_row('contacts', $c[700]), $held_row, '  the contact held meanwhile is untouched';
	my @ev = grep { ($_->{org} // '') eq org_hex($C) && !$_->{p}{dryRun} } audit_payloads('compliance.archived');
	is scalar(@ev), 3, '  three compliance.archived events: one per chunk of 500' or diag explain \@ev;
	my (%named, %sum);
	for my $e (@ev) {
		$named{ norm_id($_) }++ for @{ $e->{p}{ids} // [] };
		$sum{$_} += $e->{p}{counts}{$_} for keys %{ $e->{p}{counts} // {} };
	}
	is_deeply [map { scalar @{ $_->{p}{ids} // [] } } @ev], [500, 500, 150], '  naming 500, 500 and 150 ids';
	is_deeply [sort keys %named], [sort map { norm_id($_) } @c], '  together every old contact, once each';
	is_deeply [@sum{qw(archived legal_hold)}], [1149, 1], '  their counts add up to the answer\'s';
	my @archived = org_ids($C, 'archived_at IS NOT NULL');
	is_deeply [sort map { norm_id($_) } @archived], [sort map { norm_id($_) } grep { $_ ne $c[700] } @c],
	    '  the archived rows are exactly the old ones but the held one';
	my $again = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $C->{id}, reason => "Sets age $R");
	counts_are($again, { legal_hold => 1 }, 'a re-run: nothing archived, the held one counted', @KEYS);
}

# ============================================================ 3. by age: the second chunk fails
my $D = create_org(name => "Sets D $R");
is bulk_insert_contacts($D, 1100, tag => "d$R", days_ago => 400), 1100, '1,100 old contacts in org D';
my @d = org_ids($D);
{
	my $ev0 = audit_count('compliance.archived');
	ok refuse_update_of($d[700], 'archived_at'), 'archiving the 701st contact of D is refused by a trigger';
	my $r = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $D->{id}, reason => "Sets fail $R");
	check_error($r, [500, 503], undef, 'batch-archive over D fails in its second chunk');
	my @archived = org_ids($D, 'archived_at IS NOT NULL');
	is_deeply \@archived, [@d[0 .. 499]], '  the first chunk (500 rows) is archived, nothing of the second';
	my @ev = audit_payloads('compliance.archived');
	splice @ev, 0, $ev0;
	is scalar(@ev), 1, '  one compliance.archived event: the first chunk\'s' or diag explain \@ev;
	is_deeply [map { norm_id($_) } @{ ($ev[0] // {})->{p}{ids} // [] }], [map { norm_id($_) } @d[0 .. 499]],
	    '  naming exactly the rows archived';
	ok defined mysql("DROP TRIGGER $TRIGGER"), 'the trigger dropped';
	my $x = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $D->{id}, reason => "Sets fail $R");
	counts_are($x, { archived => 600 }, 'the same call again archives the other 600', @KEYS);
}

# ============================================================ 4. an org with no rows
my $E = create_org(name => "Sets E $R");
{
	my $ev0 = audit_count('compliance.archived');
	for my $dry (1, 0) {
		my $r = batch_archive($comp, entity => 'contacts', olderThan => $cutoff, orgId => $E->{id}, reason => "Empty $R", dryRun => $dry);
		status_is $r, 200, 'batch-archive over an org with no contacts' . ($dry ? ' (dry run)' : '') . ' 200';
		counts_are($r, {}, '  every count 0', @KEYS);
	}
	my @ev = audit_payloads('compliance.archived');
	splice @ev, 0, $ev0;
	is scalar(@ev), 2, '  one compliance.archived event each';
	is_deeply [map { $_->{org} } @ev], [(org_hex($E)) x 2], '  about org E';
	is_deeply [map { $_->{p}{counts}{archived} } @ev], [0, 0], '  archived 0';
}

# ============================================================ 5. archive by ids: 600 ids, held and archived among them
{
	my $F = create_org(name => "Sets F $R");
	is bulk_insert_contacts($F, 600, tag => "f$R"), 600, '600 contacts in org F';
	my @f = org_ids($F);
	counts_are(legal_hold($comp, entity => 'contacts', ids => [@f[3, 550]], hold => 1, reason => "F hold $R"), { held => 2 },
	    'two of them held');
	counts_are(batch_archive($comp, entity => 'contacts', ids => [@f[100, 599]], reason => "F first $R"), { archived => 2 },
	    'two archived beforehand', @KEYS);
	my $d = batch_archive($comp, entity => 'contacts', ids => \@f, reason => "F $R", dryRun => 1);
	counts_are($d, { archived => 596, already_archived => 2, legal_hold => 2 }, 'a dry run over the 600', @KEYS);
	my $r = batch_archive($comp, entity => 'contacts', ids => \@f, reason => "F $R");
	my %want = map { ($_ => 'archived') } @f;
	$want{$_} = 'legal_hold' for @f[3, 550];
	$want{$_} = 'already_archived' for @f[100, 599];
	is_deeply results($r), want_results(%want), 'the run: the same results per id' or diag $r->{body};
	is db_count('SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX(\'' . org_hex($F) . "') AND archived_reason = 'F $R'"), 596,
	    '  596 rows archived with the reason';
	ok !defined db_row('contacts', $f[$_])->{archived_at}, "  held contact $_ not archived" for 3, 550;
}

my ($vr, $v) = audit_verify();
ok $v->{ok}, 'the audit chain verifies' or diag $vr->{body};
finish();
