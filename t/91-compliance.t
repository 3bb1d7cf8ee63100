#!/usr/bin/perl
# Runbook 2 (README "Runbook 2"; doc/architecture.md "The audit log"): records of each entity are
# created (contacts, projects, offices, a user of the org, the org itself);
# one contact is put on legal hold; strip-PII over both contacts reports
# stripped and legal_hold; /compliance/records shows piiStripped (time,
# reason) and legalHold (reason, caseRef); the stripped contact reads back
# redacted and the held one unchanged; stripping again is already_stripped;
# a stripped user is disabled, loses its session and token at once and gets
# a tombstone email; projects, offices and the org are redacted per the
# entity table; a held org protects its records from strip; bad input is
# 400 with nothing written; permissions (platform_admin, member, org_admin
# 403; compliance, compliance_officer, security_admin, superadmin allowed);
# audit compliance.legal_hold_set / legal_hold_released / pii_stripped with
# ids and counts; and no PII string the test wrote appears anywhere in
# audit_events or log/.
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

# pii() registers every PII string this test writes: none may reach
# audit_events or log/ (checked at the end)

# ============================================================ 1. records of each entity
my $A = create_org(name => pii('org A name', "Northwind Lumber $R Holdings"));
my $B = create_org(name => pii('org B name', "Bravo Fisheries $R Cooperative"));
ok $A->{id} && $B->{id}, 'orgs A and B' or BAIL_OUT('cannot create orgs');

my %U;   # role label => user
my %S;   # role label => session
for my $spec (['orgadmin', 'org_admin', $A], ['member', 'member', $A], ['pa', 'platform_admin'], ['comp', 'compliance'],
    ['coff', 'compliance_officer'], ['sec', 'security_admin']) {
	my ($l, $role, $org) = @$spec;
	$U{$l} = create_user(role => $role, ($org ? (org => $org) : ()));
	pii("$l email", $U{$l}{email});
	pii("$l name", $U{$l}{name});
	$S{$l} = login($U{$l}{email}, $U{$l}{password});
	ok $S{$l}{cookie}, "$role logs in" or diag $S{$l}{res}{body};
}
# the data subject: a user of org A
my $subj = create_user(role => 'member', org => $A, name => pii('subject name', "Ulrike Vance $R"),
    email => pii('subject email', "ulrike.vance.$R\@people.example"));
ok $subj->{id}, 'the data subject: a member of A' or diag $subj->{res}{body};
my $subj_s = login($subj->{email}, $subj->{password});
ok $subj_s->{cookie}, 'the subject logs in' or diag $subj_s->{res}{body};
my $tok = http(POST => '/auth/tokens', session => $subj_s, json => { name => 'subject token', scopes => ['tenant.read'] });
status_is $tok, 201, 'the subject makes an API token';
my $subj_token = j($tok)->{token};
status_is me($subj_s), 200, 'the subject\'s session works (GET /auth/me)';
status_is http(GET => "/orgs/$A->{id}/contacts", bearer => $subj_token), 200, 'and its token works';

my $comp = $S{comp};
my $oa = $S{orgadmin};
my %C = map { $_ => contact($oa, $A, $_) } qw(alpha bravo charlie delta echo foxtrot golf hotel);
my ($c1, $c2, $c3, $c4) = @C{qw(alpha bravo charlie delta)};   # strip, hold, strip (2nd tombstone), bad-input target
my $p1r = tenant_create($oa, $A, 'projects', { name => "Orion Build $R", clientName => pii('client', "Xenia Client $R"),
    description => pii('description', "Refit for the Xenia boathouse, ü $R"), budget => 4200.75, status => 'active' });
status_is $p1r, 201, 'a project in A';
my $p1 = j($p1r);
my $o1r = tenant_create($oa, $A, 'offices', { name => "Leith Office $R", address => pii('office address', "5 Quay Row $R, Leith"),
    phone => pii('office phone', "+44 131 555 $N"), managerName => pii('manager', "Magnus Manager $R") });
status_is $o1r, 201, 'an office in A';
my $o1 = j($o1r);
my $cbr = tenant_create($admin, $B, 'contacts', { name => pii('cb name', "Bruna Held $R"), email => pii('cb email', "bruna.$R\@b.example") });
status_is $cbr, 201, 'a contact in B';
my $cb = j($cbr);

# ============================================================ 2. one contact on legal hold
{
	my $r = legal_hold($comp, entity => 'contacts', ids => [$c2->{id}], hold => 1, reason => "Litigation hold $R",
	    caseRef => "CASE-$N-$R");
	status_is $r, 200, 'POST /compliance/legal-hold {contacts, [bravo], hold: true} as compliance 200';
	is_deeply results($r), want_results($c2->{id} => 'held'), '  result held' or diag $r->{body};
	counts_are($r, { held => 1 }, '  counts {held: 1}');
	my $again = legal_hold($comp, entity => 'contacts', ids => [$c2->{id}], hold => 1, reason => "Litigation hold $R");
	status_is $again, 200, 'holding it again 200';
	is_deeply results($again), want_results($c2->{id} => 'already'), '  result already' or diag $again->{body};
}
my $c2_row = db_row('contacts', $c2->{id});
ok $c2_row && ($c2_row->{email} // '') eq $c2->{given}{email} && ($c2_row->{notes} // '') eq encode_utf8($c2->{given}{notes}),
    '(db_row reads the MariaDB row: email and UTF-8 notes as written)' or diag json_encode($c2_row);
my $c2_json = j(tenant_get($oa, $A, 'contacts', $c2->{id}));
is $c2_json->{legalHold}, JSON::PP::true, 'bravo reads back legalHold true';

# ============================================================ 3. strip-PII over both
my $REASON = "DSR erasure request $N";
my $t_strip = time;
{
	my $r = strip_pii($comp, entity => 'contacts', ids => [$c1->{id}, $c2->{id}], reason => $REASON);
	status_is $r, 200, 'POST /compliance/strip-pii {contacts, [alpha, bravo]} 200';
	is_deeply results($r), want_results($c1->{id} => 'stripped', $c2->{id} => 'legal_hold'),
	    '  alpha stripped, bravo legal_hold' or diag $r->{body};
	is scalar(@{ j($r)->{results} // [] }), 2, '  two results';
	counts_are($r, { stripped => 1, legal_hold => 1 }, '  counts {stripped: 1, legal_hold: 1}');
}

# ============================================================ 4. the records show it
{
	my $r = compliance_record($comp, 'contacts', $c1->{id});
	status_is $r, 200, 'GET /compliance/records/contacts/alpha 200';
	my $d = j($r);
	my @miss = grep { !exists $d->{$_} } qw(entity id orgId piiStripped piiStrippedAt piiStrippedReason legalHold legalHoldAt
	    legalHoldReason legalHoldCaseRef archived archivedAt archivedReason);
	ok !@miss, '  has every field of the contract' or diag "missing @miss: $r->{body}";
	is $d->{entity}, 'contacts', '  entity';
	is $d->{id}, $c1->{id}, '  id';
	is $d->{orgId}, $A->{id}, '  orgId';
	is $d->{piiStripped}, JSON::PP::true, '  piiStripped true';
	near_now($d->{piiStrippedAt}, '  piiStrippedAt');
	is $d->{piiStrippedReason}, $REASON, '  piiStrippedReason';
	is $d->{legalHold}, JSON::PP::false, '  legalHold false';
	is $d->{archived}, JSON::PP::false, '  archived false';

	my $h = compliance_record($comp, 'contacts', $c2->{id});
	status_is $h, 200, 'GET /compliance/records/contacts/bravo 200';
	my $hd = j($h);
	is $hd->{legalHold}, JSON::PP::true, '  legalHold true';
	near_now($hd->{legalHoldAt}, '  legalHoldAt');
	is $hd->{legalHoldReason}, "Litigation hold $R", '  legalHoldReason';
	is $hd->{legalHoldCaseRef}, "CASE-$N-$R", '  legalHoldCaseRef';
	is $hd->{piiStripped}, JSON::PP::false, '  piiStripped false';
	ok exists $hd->{piiStrippedAt} && !defined $hd->{piiStrippedAt}, '  piiStrippedAt null' or diag $h->{body};
}

# ============================================================ 5. the stripped contact reads back redacted; the held one unchanged
my %TOMBSTONE;
{
	my $g = tenant_get($oa, $A, 'contacts', $c1->{id});
	status_is $g, 200, 'GET /orgs/A/contacts/alpha 200';
	my $d = j($g);
	is $d->{name}, $RED, '  name "[redacted]"';
	like $d->{email} // '', $TOMB, '  email is a tombstone redacted+<16 hex>@redacted.invalid';
	$TOMBSTONE{ $c1->{id} } = $d->{email};
	for my $f (qw(phone address notes)) {
		ok exists $d->{$f} && !defined $d->{$f}, "  $f null" or diag "$f: " . json_encode($d->{$f});
	}
	is $d->{piiStripped}, JSON::PP::true, '  piiStripped true';
	is $d->{id}, $c1->{id}, '  same id';
	my $row = db_row('contacts', $c1->{id});
	is $row->{name}, $RED, '  MariaDB: name "[redacted]"';
	like $row->{email} // '', $TOMB, '  MariaDB: email tombstone';
	ok !defined $row->{phone} && !defined $row->{address} && !defined $row->{notes}, '  MariaDB: phone, address, notes NULL';
	ok defined $row->{pii_stripped_at}, '  MariaDB: pii_stripped_at set';

	my $h = tenant_get($oa, $A, 'contacts', $c2->{id});
	is_deeply j($h), $c2_json, 'GET /orgs/A/contacts/bravo: the held contact is unchanged' or diag $h->{body};
	is_deeply db_row('contacts', $c2->{id}), $c2_row, '  and so is its MariaDB row';
	is j($h)->{name}, $c2->{given}{name}, '  (name as written)';
}

# ============================================================ 6. idempotency, not_found, a second tombstone
{
	my $row1 = db_row('contacts', $c1->{id});
	my $unknown = uuid7_like();
	my $r = strip_pii($comp, entity => 'contacts', ids => [$c1->{id}, $c2->{id}, $unknown], reason => $REASON);
	status_is $r, 200, 'strip-pii over alpha, bravo and an unknown id again 200';
	is_deeply results($r), want_results($c1->{id} => 'already_stripped', $c2->{id} => 'legal_hold', $unknown => 'not_found'),
	    '  already_stripped, legal_hold, not_found' or diag $r->{body};
	counts_are($r, { already_stripped => 1, legal_hold => 1, not_found => 1 }, '  counts');
	is_deeply db_row('contacts', $c1->{id}), $row1, '  alpha untouched the second time (same tombstone, same times)';
	is_deeply db_row('contacts', $c2->{id}), $c2_row, '  bravo untouched';

	my $s3 = strip_pii($comp, entity => 'contacts', ids => [$c3->{id}], reason => $REASON);
	is_deeply results($s3), want_results($c3->{id} => 'stripped'), 'strip charlie: stripped' or diag $s3->{body};
	my $e3 = j(tenant_get($oa, $A, 'contacts', $c3->{id}))->{email};
	like $e3 // '', $TOMB, '  charlie has a tombstone email';
	isnt $e3, $TOMBSTONE{ $c1->{id} }, '  different from alpha\'s (unique tombstones)';
	$TOMBSTONE{ $c3->{id} } = $e3;
}

# ============================================================ 7. the held contact refuses update and delete
{
	check_error(tenant_patch($oa, $A, 'contacts', $c2->{id}, { name => "Edited $R" }), 409, 'legal_hold', 'PATCH of the held contact');
	check_error(tenant_delete($oa, $A, 'contacts', $c2->{id}), 409, 'legal_hold', 'DELETE of the held contact');
	is_deeply db_row('contacts', $c2->{id}), $c2_row, 'bravo is unchanged in MariaDB';
}

# ============================================================ 8. strip a user: disabled, sessions and tokens revoked, tombstone email
{
	my $hex = uuid_hex($subj->{id});
	my $r = strip_pii($comp, entity => 'users', ids => [$subj->{id}], reason => $REASON);
	status_is $r, 200, 'POST /compliance/strip-pii {users, [subject]} 200';
	is_deeply results($r), want_results($subj->{id} => 'stripped'), '  stripped' or diag $r->{body};
	check_error(me($subj_s), 401, 'unauthenticated', "the subject's session cookie at once");
	check_error(http(GET => "/orgs/$A->{id}/contacts", bearer => $subj_token), 401, 'unauthenticated', "the subject's API token");
	my $u = http(GET => "/users/$subj->{id}", session => $admin);
	status_is $u, 200, 'GET /users/:id of the subject 200';
	like j($u)->{email} // '', $TOMB, '  email is a tombstone';
	is j($u)->{name}, $RED, '  name "[redacted]"';
	is j($u)->{disabled}, JSON::PP::true, '  disabled';
	is mysql("SELECT COUNT(*) FROM sessions WHERE user_id = UNHEX('$hex')") // '', "0\n", '  no session row left';
	is mysql("SELECT COUNT(*) FROM api_tokens WHERE user_id = UNHEX('$hex') AND revoked_at IS NULL") // '', "0\n",
	    '  no unrevoked API token left';
	my $l = http(POST => '/auth/login', json => { email => $subj->{email}, password => $subj->{password} });
	is $l->{status}, 401, '  the old email and password no longer log in' or diag $l->{body};
	my $rec = compliance_record($comp, 'users', $subj->{id});
	status_is $rec, 200, 'GET /compliance/records/users/:id 200';
	is j($rec)->{piiStripped}, JSON::PP::true, '  piiStripped true';
	near_now(j($rec)->{piiStrippedAt}, '  piiStrippedAt');
	is j($rec)->{piiStrippedReason}, $REASON, '  piiStrippedReason';
	my $again = strip_pii($comp, entity => 'users', ids => [$subj->{id}], reason => $REASON);
	is_deeply results($again), want_results($subj->{id} => 'already_stripped'), 'stripping the user again: already_stripped';
}

# ============================================================ 9. projects, offices, the org itself
{
	my $r = strip_pii($comp, entity => 'projects', ids => [$p1->{id}], reason => $REASON);
	is_deeply results($r), want_results($p1->{id} => 'stripped'), 'strip the project: stripped' or diag $r->{body};
	my $g = j(tenant_get($oa, $A, 'projects', $p1->{id}));
	is $g->{clientName}, $RED, '  clientName "[redacted]"';
	ok exists $g->{description} && !defined $g->{description}, '  description null';
	is $g->{name}, $p1->{name}, '  name kept (not personal data)';
	ok $g->{budget} == 4200.75 && $g->{status} eq 'active', '  budget and status kept' or diag json_encode($g);
	is $g->{piiStripped}, JSON::PP::true, '  piiStripped true';
	is j(compliance_record($comp, 'projects', $p1->{id}))->{piiStripped}, JSON::PP::true, '  records: piiStripped true';

	my $o = strip_pii($comp, entity => 'offices', ids => [$o1->{id}], reason => $REASON);
	is_deeply results($o), want_results($o1->{id} => 'stripped'), 'strip the office: stripped' or diag $o->{body};
	my $og = j(tenant_get($oa, $A, 'offices', $o1->{id}));
	ok exists $og->{address} && !defined $og->{address}, '  address null';
	ok exists $og->{phone} && !defined $og->{phone}, '  phone null';
	is $og->{managerName}, $RED, '  managerName "[redacted]"';
	is $og->{name}, $o1->{name}, '  name kept';
	is j(compliance_record($comp, 'offices', $o1->{id}))->{piiStripped}, JSON::PP::true, '  records: piiStripped true';

	my $s = strip_pii($comp, entity => 'orgs', ids => [$A->{id}], reason => $REASON);
	is_deeply results($s), want_results($A->{id} => 'stripped'), 'strip org A: stripped' or diag $s->{body};
	my $ag = j(http(GET => "/orgs/$A->{id}", session => $admin));
	is $ag->{name}, $RED, '  GET /orgs/A: name "[redacted]"';
	is $ag->{slug}, $A->{slug}, '  slug kept';
	is j(compliance_record($comp, 'orgs', $A->{id}))->{piiStripped}, JSON::PP::true, '  records: piiStripped true';
	status_is tenant_get($oa, $A, 'contacts', $c2->{id}), 200, "  the org's records are still there";
	my $again = strip_pii($comp, entity => 'projects', ids => [$p1->{id}], reason => $REASON);
	is_deeply results($again), want_results($p1->{id} => 'already_stripped'), 'the project again: already_stripped';
}

# ============================================================ 10. a held org: its records refuse strip
{
	my $row = db_row('contacts', $cb->{id});
	my $h = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 1, reason => "Org-wide hold $R");
	is_deeply results($h), want_results($B->{id} => 'held'), 'hold org B: held' or diag $h->{body};
	my $s = strip_pii($comp, entity => 'contacts', ids => [$cb->{id}], reason => $REASON);
	status_is $s, 200, 'strip a contact of the held org 200';
	is_deeply results($s), want_results($cb->{id} => 'legal_hold'), '  legal_hold' or diag $s->{body};
	is_deeply db_row('contacts', $cb->{id}), $row, '  the contact is untouched in MariaDB';
	my $rel = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 0, reason => "Org hold lifted $R");
	is_deeply results($rel), want_results($B->{id} => 'released'), 'release org B: released' or diag $rel->{body};
	counts_are($rel, { released => 1 }, '  counts {released: 1}');
	my $rel2 = legal_hold($comp, entity => 'orgs', ids => [$B->{id}], hold => 0, reason => "Org hold lifted $R");
	is_deeply results($rel2), want_results($B->{id} => 'already'), 'release again: already';
	my $s2 = strip_pii($comp, entity => 'contacts', ids => [$cb->{id}], reason => $REASON);
	is_deeply results($s2), want_results($cb->{id} => 'stripped'), 'now the strip succeeds: stripped' or diag $s2->{body};
	my $nf = legal_hold($comp, entity => 'contacts', ids => [uuid7_like()], hold => 1, reason => "x $R");
	is_deeply [map { $_->{result} } @{ j($nf)->{results} // [] }], ['not_found'], 'legal-hold of an unknown id: not_found';
}

# ============================================================ 11. bad input: 400, nothing written
{
	my @TABLES = qw(contacts projects offices users orgs api_tokens);
	my $snap = table_snapshot(@TABLES);
	ok @{ $snap->{contacts} } >= 9 && @{ $snap->{users} } >= 8 && @{ $snap->{orgs} } >= 2, '(the snapshot has the rows)';
	my $sessions = mysql('SELECT COUNT(*) FROM sessions');
	my $audits = audit_count('compliance.%');
	my $ok = $c4->{id};
	my @many = ($ok, map { uuid7_like() } 1 .. 1000);
	my %seen;
	@many = grep { !$seen{$_}++ } @many;
	push @many, uuid7_like() while @many < 1001;
	my @strip = (
		[{ entity => 'widgets', ids => [$ok], reason => $REASON }, 'entity', 'an unknown entity'],
		[{ entity => 'Contacts', ids => [$ok], reason => $REASON }, 'entity', 'entity "Contacts"'],
		[{ entity => 5, ids => [$ok], reason => $REASON }, 'entity', 'entity a number'],
		[{ ids => [$ok], reason => $REASON }, 'entity', 'no entity'],
		[{ entity => 'contacts', ids => [$ok, 'not-a-uuid'], reason => $REASON }, 'ids', 'a valid id and one that is not a UUID'],
		[{ entity => 'contacts', ids => [$ok, 12345], reason => $REASON }, 'ids', 'an id that is a number'],
		[{ entity => 'contacts', ids => [$ok, uc($ok) =~ s/-//gr . '00'], reason => $REASON }, 'ids', 'an id of 34 hex digits'],
		[{ entity => 'contacts', ids => \@many, reason => $REASON }, 'ids', '1001 ids'],
		[{ entity => 'contacts', ids => [], reason => $REASON }, 'ids', 'empty ids'],
		[{ entity => 'contacts', ids => $ok, reason => $REASON }, 'ids', 'ids a string, not an array'],
		[{ entity => 'contacts', reason => $REASON }, 'ids', 'no ids'],
		[{ entity => 'contacts', ids => [$ok] }, 'reason', 'no reason'],
		[{ entity => 'contacts', ids => [$ok], reason => '' }, 'reason', 'an empty reason'],
		[{ entity => 'contacts', ids => [$ok], reason => 7 }, 'reason', 'reason a number'],
		[{ entity => 'contacts', ids => [$ok], reason => $REASON, force => JSON::PP::true }, 'force', 'an unknown field'],
	);
	for my $c (@strip) {
		my ($body, $field, $name) = @$c;
		my $r = http(POST => '/compliance/strip-pii', json => $body, session => $comp);
		check_error($r, 400, 'validation_failed', "strip-pii with $name");
		fields_named($r, $field);
	}
	my @hold = (
		[{ entity => 'widgets', ids => [$ok], hold => JSON::PP::true, reason => 'r' }, 'entity', 'an unknown entity'],
		[{ entity => 'contacts', ids => [$ok, 'nope'], hold => JSON::PP::true, reason => 'r' }, 'ids', 'a valid id and a malformed one'],
		[{ entity => 'contacts', ids => \@many, hold => JSON::PP::true, reason => 'r' }, 'ids', '1001 ids'],
		[{ entity => 'contacts', ids => [], hold => JSON::PP::true, reason => 'r' }, 'ids', 'empty ids'],
		[{ entity => 'contacts', hold => JSON::PP::true, reason => 'r' }, 'ids', 'no ids'],
		[{ entity => 'contacts', ids => [$ok], reason => 'r' }, 'hold', 'no hold'],
		[{ entity => 'contacts', ids => [$ok], hold => 'yes', reason => 'r' }, 'hold', 'hold "yes"'],
		[{ entity => 'contacts', ids => [$ok], hold => 1, reason => 'r' }, 'hold', 'hold the number 1'],
		[{ entity => 'contacts', ids => [$ok], hold => JSON::PP::true }, 'reason', 'no reason'],
		[{ entity => 'contacts', ids => [$ok], hold => JSON::PP::true, reason => '' }, 'reason', 'an empty reason'],
		[{ entity => 'contacts', ids => [$ok], hold => JSON::PP::true, reason => 'r' x 501 }, 'reason', 'a reason of 501 characters'],
		[{ entity => 'contacts', ids => [$ok], hold => JSON::PP::true, reason => 'r', caseRef => 'c' x 101 }, 'caseRef',
		    'a caseRef of 101 characters'],
		[{ entity => 'contacts', ids => [$ok], hold => JSON::PP::true, reason => 'r', until => '2030-01-01' }, 'until', 'an unknown field'],
	);
	for my $c (@hold) {
		my ($body, $field, $name) = @$c;
		# straight http(): legal_hold() would turn hold => 1 into true
		my $r = http(POST => '/compliance/legal-hold', json => $body, session => $comp);
		check_error($r, 400, 'validation_failed', "legal-hold with $name");
		fields_named($r, $field);
	}
	my $re = compliance_record($comp, 'widgets', $ok);
	check_error($re, 400, 'validation_failed', 'GET /compliance/records/widgets/:id');
	fields_named($re, 'entity');
	check_error(compliance_record($comp, 'contacts', 'not-a-uuid'), 404, 'not_found', 'GET /compliance/records/contacts/<malformed id>');
	check_error(compliance_record($comp, 'contacts', uuid7_like()), 404, 'not_found', 'GET /compliance/records/contacts/<unknown id>');
	check_error(compliance_record($comp, 'users', $ok), 404, 'not_found', 'GET /compliance/records/users/<a contact id>');
	check_error(http(POST => '/compliance/strip-pii', json => { entity => 'contacts', ids => [$ok], reason => $REASON }), 401,
	    'unauthenticated', 'strip-pii without credentials');
	check_error(http(POST => '/compliance/legal-hold', json => { entity => 'contacts', ids => [$ok], hold => JSON::PP::true, reason => 'r' }),
	    401, 'unauthenticated', 'legal-hold without credentials');
	check_error(http(POST => '/compliance/strip-pii', json => { entity => 'contacts', ids => [$ok], reason => $REASON }, session => $comp,
	    csrf => undef), 403, 'csrf_failed', 'strip-pii with the cookie but no CSRF token');

	is_deeply table_snapshot(@TABLES), $snap, 'after every bad request: contacts, projects, offices, users, orgs, api_tokens unchanged';
	is mysql('SELECT COUNT(*) FROM sessions'), $sessions, '  the sessions table has as many rows';
	is audit_count('compliance.%'), $audits, '  no compliance.* audit event';
	my $d = j(compliance_record($comp, 'contacts', $ok));
	is $d->{piiStripped}, JSON::PP::false, '  delta (the valid id in the bad batches) is not stripped' or diag json_encode($d);
	is $d->{legalHold}, JSON::PP::false, '  nor held';
}

# ============================================================ 12. permissions
{
	my $ok = $c4->{id};
	my $snap = table_snapshot(qw(contacts users orgs));
	my $audits = audit_count('compliance.%');
	for my $l (qw(pa member orgadmin)) {
		my $role = $U{$l}{roles}[0];
		check_error(strip_pii($S{$l}, entity => 'contacts', ids => [$ok], reason => $REASON), 403, 'forbidden', "strip-pii as $role");
		check_error(legal_hold($S{$l}, entity => 'contacts', ids => [$ok], hold => 1, reason => "r $R"), 403, 'forbidden',
		    "legal-hold as $role");
		check_error(compliance_record($S{$l}, 'contacts', $ok), 403, 'forbidden', "GET /compliance/records as $role");
	}
	is_deeply table_snapshot(qw(contacts users orgs)), $snap, 'nothing changed by the refused calls';
	is audit_count('compliance.%'), $audits, '  and no compliance.* audit event';

	my %victim = (comp => $C{echo}, coff => $C{foxtrot}, sec => $C{golf}, admin => $C{hotel});
	my %sess = (%S, admin => $admin);
	for my $l (qw(comp coff sec admin)) {
		my $role = $l eq 'admin' ? 'superadmin' : $U{$l}{roles}[0];
		my $v = $victim{$l};
		my $s = strip_pii($sess{$l}, entity => 'contacts', ids => [$v->{id}], reason => "$REASON by $role");
		status_is $s, 200, "strip-pii as $role 200";
		is_deeply results($s), want_results($v->{id} => 'stripped'), '  stripped' or diag $s->{body};
		my $h = legal_hold($sess{$l}, entity => 'contacts', ids => [$ok], hold => 1, reason => "hold by $role");
		status_is $h, 200, "legal-hold as $role 200";
		is_deeply results($h), want_results($ok => 'held'), '  held' or diag $h->{body};
		my $rl = legal_hold($sess{$l}, entity => 'contacts', ids => [$ok], hold => 0, reason => "release by $role");
		is_deeply results($rl), want_results($ok => 'released'), '  released' or diag $rl->{body};
		my $g = compliance_record($sess{$l}, 'contacts', $v->{id});
		status_is $g, 200, "GET /compliance/records as $role 200";
		is j($g)->{piiStrippedReason}, "$REASON by $role", '  with its reason';
	}
}

# ============================================================ 13. audit: compliance events with ids and counts
{
	my @p = audit_payloads('compliance.%');
	my $has_id = sub ($e, $id) { grep { norm_id($_) eq norm_id($id) } @{ $e->{p}{ids} // [] } };
	my ($set) = grep { $_->{action} eq 'compliance.legal_hold_set' && ($_->{p}{entity} // '') eq 'contacts' && $has_id->($_, $c2->{id}) } @p;
	ok $set, 'compliance.legal_hold_set {entity: contacts, ids: [bravo, …]}' or diag json_encode([map { $_->{payload} } @p]);
	ok ref(($set // {})->{p}{counts}) eq 'HASH' && ($set->{p}{counts}{held} // 0) == 1, '  with counts {held: 1}'
	    or diag(($set // {})->{payload});
	my ($orgset) = grep { $_->{action} eq 'compliance.legal_hold_set' && ($_->{p}{entity} // '') eq 'orgs' && $has_id->($_, $B->{id}) } @p;
	ok $orgset, 'compliance.legal_hold_set {entity: orgs, ids: [B]}';
	my ($rel) = grep { $_->{action} eq 'compliance.legal_hold_released' && ($_->{p}{entity} // '') eq 'orgs' && $has_id->($_, $B->{id}) } @p;
	ok $rel, 'compliance.legal_hold_released {entity: orgs, ids: [B]}';
	ok ref(($rel // {})->{p}{counts}) eq 'HASH' && ($rel->{p}{counts}{released} // 0) >= 1, '  with counts {released: 1}'
	    or diag(($rel // {})->{payload});
	my ($st) = grep { $_->{action} eq 'compliance.pii_stripped' && ($_->{p}{entity} // '') eq 'contacts'
	    && $has_id->($_, $c1->{id}) && $has_id->($_, $c2->{id}) } @p;
	ok $st, 'compliance.pii_stripped {entity: contacts, ids: [alpha, bravo]}' or diag json_encode([map { $_->{payload} } @p]);
	my $c = ($st // {})->{p}{counts} // {};
	ok(($c->{stripped} // 0) == 1 && ($c->{legal_hold} // 0) == 1, '  with counts {stripped: 1, legal_hold: 1}')
	    or diag(($st // {})->{payload});
	for my $e (['users', $subj->{id}], ['projects', $p1->{id}], ['offices', $o1->{id}], ['orgs', $A->{id}]) {
		ok((grep { $_->{action} eq 'compliance.pii_stripped' && ($_->{p}{entity} // '') eq $e->[0] && $has_id->($_, $e->[1]) } @p),
		    "compliance.pii_stripped {entity: $e->[0], ids: [...]}");
	}
	my $n_strip = grep { $_->{action} eq 'compliance.pii_stripped' } @p;
	cmp_ok $n_strip, '>=', 11, "one compliance.pii_stripped per strip call ($n_strip)";

	my $audit = audit_text() // '';
	ok length $audit, 'audit_events has rows';
	my $PII = pii_values();
	my @hits = pii_hits($audit);
	ok !@hits, 'no PII string this test wrote appears anywhere in audit_events (' . scalar(keys %$PII) . ' strings:'
	    . ' names, emails, phones, addresses, notes, client names, descriptions, manager names, org names)' or diag join "\n", @hits;
	my @log_hits = pii_in_logs();
	ok !@log_hits, 'nor anywhere in log/' or diag join "\n", @log_hits;
	# positive controls: the searches do find what is there
	ok index($audit, 'compliance.pii_stripped') >= 0, '(control: the audit text has the compliance events)';
	ok scalar(find_in_logs({ 'alpha id' => $c1->{id} })), '(control: log/ has the request paths with the record ids)';

	SKIP: {
		my $dump = db_dump();
		skip 'no mariadb-dump', 1 unless defined $dump;
		my @stripped_tags = qw(alpha charlie echo foxtrot golf hotel);
		my %gone = map { $_ => $PII->{$_} } (grep({ my $k = $_; grep { $k =~ /^\Q$_\E / } @stripped_tags } keys %$PII),
		    'subject name', 'subject email', 'client', 'description', 'office address', 'office phone', 'manager', 'org A name',
		    'cb name', 'cb email');
		my @left = grep { index($dump, encode_utf8($gone{$_})) >= 0 } sort keys %gone;
		ok !@left, 'the stripped values are nowhere in the database any more (' . scalar(keys %gone) . ' strings)'
		    or diag join "\n", @left;
		ok index($dump, encode_utf8($PII->{'bravo email'})) >= 0 && index($dump, encode_utf8($PII->{'bravo notes'})) >= 0,
		    '(control: the held contact\'s values, UTF-8 notes included, are still there)';
	}
}

finish();
