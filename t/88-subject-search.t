#!/usr/bin/perl
# Runbook 2 step 1, "identify entity records" (README "Runbook 2"): POST
# /compliance/subjects/search finds a data subject's records by email, name
# and phone across every org: users (control database), contacts, projects
# and offices of an org in the shared database and of an org moved to a
# dedicated database by a real migration (which still copies and verifies
# with the generated search columns). Email matches whatever the case and
# surrounding spaces, names by prefix whatever the case and runs of spaces,
# phones by their digits. Each match says where it lives and its flags:
# legal hold (the record's and its org's), archived, PII stripped; a
# stripped record is no longer found by its old email or name, only by its
# tombstone. Paging with limit 1 walks every match once, across the
# databases. Bad input is a 400 naming the field and writes no audit
# event; terms in the URL are refused; roles without compliance.read get
# 403. Each search writes one compliance.subjects_searched naming the
# fields and the count, never a value; no searched value reaches the audit
# log or log/. A dedicated database without the search columns is listed as
# not searched until `opsctl db migrate` brings it up to date. opsctl
# compliance search answers the same (and needs compliance.read). The org moved back to the shared
# database is found there.
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
my $R = run_tag();
my $N = run_num();
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my $PATH = '/compliance/subjects/search';

# ============================================================ helpers
sub search($s, %body) { return http(POST => $PATH, json => \%body, session => $s) }
# The answer's items as "entity:id" => item.
sub by_key($r) { return { map { ("$_->{entity}:" . norm_id($_->{id})) => $_ } items($r) } }
sub key_of($entity, $rec) { return "$entity:" . norm_id($rec->{id}) }
sub searched_count() { return audit_count('compliance.subjects_searched') }
# Moves an org's tenant records with a real migration; the answer of the
# start (dbName) and the final status.
sub move($org, $dir, %b) {
	my $s = migration_start($admin, orgId => $org->{id}, direction => $dir, reason => "subjects $R", %b, timeout => 60);
	status_is $s, 202, "migration $dir of $org->{slug} starts";
	my $d = migration_wait($admin, $org->{id}, qr/^ready_for_cutover$/, 90);
	is $d->{status}, 'ready_for_cutover', "  ready_for_cutover" or diag explain $d;
	is $d->{verification}{ok}, JSON::PP::true, '  verified with the generated search columns' or diag explain $d->{verification};
	status_is migration_finalize($admin, orgId => $org->{id}, timeout => 60), 202, '  finalize 202';
	$d = migration_wait($admin, $org->{id}, qr/^completed$/, 60);
	is $d->{status}, 'completed', '  completed' or diag explain $d;
	return (j($s), $d);
}

# ============================================================ people and records
my %S;
for my $role (qw(compliance compliance_officer security_admin platform_admin)) {
	my $u = create_user(role => $role);
	$S{$role} = login_ok($u, $role);
}
my $comp = $S{compliance};
my $SH = create_org(name => pii('shared org name', "Lindqvist Shipping $R"));
my $DE = create_org(name => pii('dedicated org name', "Okonkwo Farms $R"));
ok $SH->{id} && $DE->{id}, 'two orgs' or BAIL_OUT('no orgs');
my $oa = login_ok(create_user(role => 'org_admin', org => $SH), 'org_admin of the shared org');
my $mem = login_ok(create_user(role => 'member', org => $SH), 'member of the shared org');

# The data subject: Quentin Zubiri, known to both orgs.
my $NAME = pii('subject name', "Quentin Zubiri $R");
my $EMAIL = pii('subject email', "q.zubiri.$R\@subjects.example");
my $PHONE = pii('subject phone', "+34 (600) $N-117");
(my $DIGITS = $PHONE) =~ s/\D//g;
pii('subject phone digits', $DIGITS);
my $user = create_user(role => 'member', org => $SH, name => $NAME, email => $EMAIL);
ok $user->{id}, 'the subject is a user of the shared org';
my $mk = sub ($org, $entity, $label, $fields) {
	pii("$label $_", $fields->{$_}) for grep { defined $fields->{$_} } keys %$fields;
	my $r = tenant_create($admin, $org, $entity, $fields);
	status_is $r, 201, "$label created";
	return j($r);
};
my %rec;
$rec{sh_contact} = $mk->($SH, 'contacts', 'shared contact', { name => "  quentin   Zubiri $R ", email => uc($EMAIL), phone => $PHONE });
$rec{sh_project} = $mk->($SH, 'projects', 'shared project', { name => "Pier $R", clientName => "QUENTIN ZUBIRI $R Consulting" });
$rec{sh_office} = $mk->($SH, 'offices', 'shared office', { name => "Vigo $R", managerName => "Ines Arrieta $R", phone => "0034 600 $N 117" });
$rec{sh_office2} = $mk->($SH, 'offices', 'shared office 2', { name => "Cadiz $R", managerName => "Quentin Zubiri $R", phone => "+34 600 $N 117" });
$rec{sh_other} = $mk->($SH, 'contacts', 'unrelated contact', { name => "Quentina Zubirio $R", email => "other.$R\@subjects.example", phone => "+34 600 $N 118" });
$rec{de_contact} = $mk->($DE, 'contacts', 'dedicated contact', { name => "Q. Zubiri $R", email => $EMAIL });
$rec{de_office} = $mk->($DE, 'offices', 'dedicated office', { name => "Lagos $R", managerName => "quentin zubiri $R", phone => "+234 1 $N 5555" });

# ============================================================ the org moves to its own database
my ($start, $done) = move($DE, 'shared_to_dedicated');
my $DB = $start->{dbName} // 'none';
$rec{de_project} = $mk->($DE, 'projects', 'dedicated project (written after the move)', { name => "Kano $R", clientName => "Quentin Zubiri $R" });
is org_count_in($DB, 'projects', $DE), 1, 'the new project lives in the dedicated database';

# ============================================================ by email
my $n_audit = searched_count();
my %where = (user => 'control', map { ($_ => /^sh_/ ? 'shared' : 'dedicated') } keys %rec);
my %entity_of = (user => 'users', map { ($_ => /contact/ ? 'contacts' : /project/ ? 'projects' : 'offices') } keys %rec);
my %org_of = (user => $SH->{id}, map { ($_ => /^sh_/ ? $SH->{id} : $DE->{id}) } keys %rec);
my %obj = (user => $user, %rec);
sub want(@labels) { return [sort map { key_of($entity_of{$_}, $obj{$_}) } @labels] }

my $email_term = pii('email term', '  ' . uc(substr($EMAIL, 0, 1)) . substr($EMAIL, 1, -7) . uc(substr($EMAIL, -7)) . "\t");
my $r = search($comp, email => $email_term);
status_is $r, 200, 'search by email (other case, spaces around) as compliance 200';
my $got = by_key($r);
is_deeply [sort keys %$got], want(qw(user sh_contact de_contact)), '  the user, the shared contact and the dedicated contact'
    or diag $r->{body};
for my $l (qw(user sh_contact de_contact)) {
	my $it = $got->{ key_of($entity_of{$l}, $obj{$l}) } // {};
	is $it->{database}, $where{$l}, "  $l: database $where{$l}";
	is norm_id($it->{orgId}), norm_id($org_of{$l}), "  $l: orgId";
	like $it->{id} // '', $UUID, "  $l: id is a UUID";
	is_deeply $it->{matched}, [{ term => 'email', field => 'email' }], "  $l: matched email";
	is_deeply [map { $it->{$_} } qw(piiStripped legalHold orgLegalHold archived)], [(JSON::PP::false) x 4], "  $l: no flag";
}
my $dit = $got->{ key_of('contacts', $rec{de_contact}) } // {};
like $dit->{dedicatedDb} // '', qr{^[^/:@]+(?::\d+)?/\Q$DB\E$}, "  the dedicated database is named ($DB), without user or password"
    or diag $r->{body};
ok !exists $got->{ key_of('users', $user) }{dedicatedDb}, '  dedicatedDb only for dedicated records';
is j($r)->{nextCursor}, undef, '  one page: nextCursor null';
is_deeply j($r)->{unsearched}, [], '  every database searched';
is_deeply [pii_hits($r->{body})], [], '  the answer echoes no personal data';
is searched_count(), $n_audit + 1, '  one compliance.subjects_searched event';
{
	my ($ev) = reverse audit_rows('compliance.subjects_searched');
	my $p = audit_payload($ev // {});
	is_deeply $p, { fields => ['email'], results => 3, more => JSON::PP::false, continued => JSON::PP::false, unsearched => 0 },
	    '  its payload: the field searched and the count, no value' or diag explain $ev;
	is $ev->{request_id}, $r->{headers}{'x-request-id'}, '  the request id';
	like $ev->{actor_label} // '', qr/compliance/, '  the actor';
}

# ============================================================ by name and by phone
$r = search($comp, name => pii('name term', "  QUENTIN\tzubiri  $R "));
status_is $r, 200, 'search by name (other case, other spaces) 200';
$got = by_key($r);
is_deeply [sort keys %$got], want(qw(user sh_contact sh_project sh_office2 de_office de_project)),
    '  users, contacts, projects (client name, prefix) and offices (manager name) in both databases' or diag $r->{body};
is_deeply $got->{ key_of('projects', $rec{sh_project}) }{matched}, [{ term => 'name', field => 'clientName' }], '  matched clientName';
is_deeply $got->{ key_of('offices', $rec{de_office}) }{matched}, [{ term => 'name', field => 'managerName' }], '  matched managerName';

$r = search($comp, name => pii('name prefix term', "quentin zubi"));
is scalar(grep { /^contacts:/ } keys %{ by_key($r) }), 1, 'a shorter prefix finds the contact, never the similar "Quentina"' or diag $r->{body};

$r = search($comp, phone => pii('phone term', "34-600-$N-117"));
status_is $r, 200, 'search by phone (other separators) 200';
is_deeply [sort keys %{ by_key($r) }], want(qw(sh_contact sh_office2)), '  the digits match contacts and offices; 0034… is another spelling'
    or diag $r->{body};

$r = search($comp, email => $EMAIL, phone => $DIGITS, name => "Q. Zubiri $R");
$got = by_key($r);
is_deeply [sort keys %$got], want(qw(user sh_contact sh_office2 de_contact)), 'terms combined: a record matching any of them'
    or diag $r->{body};
is_deeply [sort map { "$_->{term}:$_->{field}" } @{ $got->{ key_of('contacts', $rec{sh_contact}) }{matched} }], ['email:email', 'phone:phone'],
    '  each match says which terms matched which fields';
is_deeply [sort map { "$_->{term}:$_->{field}" } @{ $got->{ key_of('contacts', $rec{de_contact}) }{matched} }], ['email:email', 'name:name'],
    '  (the dedicated contact by email and name)';
is_deeply audit_payload((reverse audit_rows('compliance.subjects_searched'))[0] // {})->{fields}, [qw(email name phone)],
    '  the event names the three fields';

# ============================================================ flags
{
	my $ar = batch_archive($comp, entity => 'offices', ids => [$rec{sh_office2}{id}], reason => "retention $R");
	is_deeply results($ar), want_results($rec{sh_office2}{id} => 'archived'), 'a shared office archived' or diag $ar->{body};
}
status_is legal_hold($comp, entity => 'contacts', ids => [$rec{de_contact}{id}], hold => 1, reason => "case $R"), 200,
    'the dedicated contact on legal hold';
status_is legal_hold($comp, entity => 'orgs', ids => [$SH->{id}], hold => 1, reason => "case $R"), 200, 'the shared org on legal hold';
$got = by_key(search($comp, email => $EMAIL, phone => $DIGITS));
is $got->{ key_of('contacts', $rec{de_contact}) }{legalHold}, JSON::PP::true, 'legalHold true on the held dedicated contact';
is $got->{ key_of('contacts', $rec{de_contact}) }{orgLegalHold}, JSON::PP::false, '  its org is not held';
is $got->{ key_of('contacts', $rec{sh_contact}) }{orgLegalHold}, JSON::PP::true, 'orgLegalHold true on a record of the held org';
is $got->{ key_of('contacts', $rec{sh_contact}) }{legalHold}, JSON::PP::false, '  the record itself is not held';
is $got->{ key_of('users', $user) }{orgLegalHold}, JSON::PP::true, '  and on its user';
is $got->{ key_of('offices', $rec{sh_office2}) }{archived}, JSON::PP::true, 'archived true on the archived office';
status_is legal_hold($comp, entity => 'orgs', ids => [$SH->{id}], hold => 0, reason => "released $R"), 200, 'the shared org released';

# ============================================================ strip: the old values are gone
status_is strip_pii($comp, entity => 'contacts', ids => [$rec{sh_contact}{id}], reason => "DSR $R"), 200, 'the shared contact stripped';
status_is strip_pii($comp, entity => 'users', ids => [$user->{id}], reason => "DSR $R"), 200, 'the user stripped';
$got = by_key(search($comp, email => $EMAIL));
is_deeply [sort keys %$got], want(qw(de_contact)), 'the old email finds only the dedicated contact (held, not stripped)' or diag explain $got;
$got = by_key(search($comp, name => $NAME));
ok !$got->{ key_of('contacts', $rec{sh_contact}) } && !$got->{ key_of('users', $user) }, 'the old name finds neither stripped record';
$got = by_key(search($comp, phone => $PHONE));
ok !$got->{ key_of('contacts', $rec{sh_contact}) }, 'nor does the old phone';
for my $t (['contacts', $rec{sh_contact}], ['users', $user]) {
	my $tomb = db_row($t->[0], $t->[1]{id})->{email} // '';
	like $tomb, qr/^redacted\+[0-9a-f]{16}\@redacted\.invalid$/, "$t->[0]: the email is a tombstone";
	my $it = by_key(search($comp, email => $tomb))->{ key_of($t->[0], $t->[1]) } // {};
	is $it->{piiStripped}, JSON::PP::true, "  searched by its tombstone: piiStripped true";
}

# ============================================================ paging
{
	my $term = "Quentin Zubiri $R";
	my $all = search($comp, name => $term, limit => 100);
	my @want = map { key_of($_->{entity}, $_) } items($all);
	cmp_ok scalar(@want), '>=', 4, 'a name search with several matches (' . scalar(@want) . ')';
	is j($all)->{nextCursor}, undef, '  limit 100: one page';
	my (@seen, $cursor);
	my $pages = 0;
	my $n0 = searched_count();
	while (1) {
		my $p = search($comp, name => $term, limit => 1, ($cursor ? (cursor => $cursor) : ()));
		status_is $p, 200, "  page " . ($pages + 1) or last;
		push @seen, map { key_of($_->{entity}, $_) } items($p);
		$pages++;
		$cursor = j($p)->{nextCursor} // last;
		last if $pages > 20;
	}
	is_deeply \@seen, \@want, '  limit 1: every match once, in the same order, across the control, shared and dedicated databases';
	is $pages, scalar(@want), '  one page per match, the last with nextCursor null';
	is searched_count(), $n0 + $pages, '  one event per page';
	my ($last) = reverse audit_payloads('compliance.subjects_searched');
	is $last->{p}{continued}, JSON::PP::true, '  a continued page says so';
	my $first = search($comp, name => $term, limit => 1);
	my $c = j($first)->{nextCursor};
	my $other = search($comp, email => $EMAIL, cursor => $c);
	status_is $other, 200, '  a cursor used with other terms just continues from its position';
}

# ============================================================ bad input: 400, nothing audited
{
	my $n0 = searched_count();
	my $audit_cursor = j(http(GET => '/audit?limit=1', session => $admin))->{nextCursor};
	my @bad = (
		[{}, [qw(email name phone)], 'no term'],
		[{ email => undef, name => undef }, [qw(email name phone)], 'only nulls'],
		[{ limit => 5 }, [qw(email name phone)], 'a limit and no term'],
		[{ email => 'not-an-email' }, ['email'], 'an email without @'],
		[{ email => 'a b@example.com' }, ['email'], 'an email with a space'],
		[{ email => '' }, ['email'], 'an empty email'],
		[{ email => 'x' x 250 . '@e.io' }, ['email'], 'an email over 254 characters'],
		[{ email => 42 }, ['email'], 'an email that is a number'],
		[{ name => 'Qu' }, ['name'], 'a name of two characters'],
		[{ name => '  Q  ' }, ['name'], 'a name of one character and spaces'],
		[{ name => "Quen\x{1}tin" }, ['name'], 'a name with a control character'],
		[{ name => 'Q' x 201 }, ['name'], 'a name over 200 characters'],
		[{ phone => '12345' }, ['phone'], 'a phone of five digits'],
		[{ phone => 'call 555 0101' }, ['phone'], 'a phone with letters'],
		[{ phone => '1' x 21 }, ['phone'], 'a phone of 21 digits'],
		[{ email => $EMAIL, limit => 0 }, ['limit'], 'limit 0'],
		[{ email => $EMAIL, limit => 101 }, ['limit'], 'limit 101'],
		[{ email => $EMAIL, limit => '5' }, ['limit'], 'limit as a string'],
		[{ email => $EMAIL, cursor => 'garbage' }, ['cursor'], 'a malformed cursor'],
		[{ email => $EMAIL, cursor => $audit_cursor // 'x' }, ['cursor'], "another list's cursor"],
		[{ email => $EMAIL, terms => ['x'] }, ['terms'], 'an unknown field'],
	);
	for my $b (@bad) {
		my ($body, $fields, $what) = @$b;
		my $res = http(POST => $PATH, json => $body, session => $comp);
		check_error($res, 400, 'validation_failed', "bad input ($what)");
		fields_named($res, @$fields);
	}
	my $url = http(POST => "$PATH?email=url-probe%40example.test", json => { name => 'Nobody Here' }, session => $comp);
	check_error($url, 400, 'bad_request', 'a query string (terms in the URL)');
	like j($url)->{error}{message} // '', qr/body/, '  the message says terms go in the body';
	check_error(http(GET => $PATH, session => $comp), 405, 'method_not_allowed', 'GET');
	check_error(http(POST => $PATH, body => 'email=x', headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }, session => $comp),
	    415, 'unsupported_media_type', 'a form body');
	check_error(http(POST => $PATH, body => '{"email":', headers => { 'Content-Type' => 'application/json' }, session => $comp),
	    400, 'invalid_json', 'broken JSON');
	is searched_count(), $n0, 'no rejected request was audited';
}

# ============================================================ roles
for my $role (qw(compliance_officer security_admin)) {
	status_is search($S{$role}, email => $EMAIL), 200, "$role may search";
}
status_is search($admin, email => $EMAIL), 200, 'superadmin may search';
for my $c (['platform_admin', $S{platform_admin}], ['org_admin', $oa], ['member', $mem]) {
	my $n0 = searched_count();
	my $res = search($c->[1], email => $EMAIL);
	check_error($res, 403, 'forbidden', "$c->[0] cannot search");
	is j($res)->{error}{details}{permission}, 'compliance.read', '  it lacks compliance.read';
	is searched_count(), $n0, '  nothing audited';
}
check_error(http(POST => $PATH, json => { email => $EMAIL }), 401, 'unauthenticated', 'no credentials');

# ============================================================ opsctl
{
	my $n0 = searched_count();
	my ($rc, $out, $err) = opsctl('compliance', 'search', '--email', $EMAIL, '--phone', $DIGITS);
	is $rc, 0, 'opsctl compliance search --email --phone exits 0' or diag $err;
	for my $l (qw(de_contact sh_office2)) {
		like $out, qr/^\S+\s+\Q$obj{$l}{id}\E\s.*\b$where{$l}\b/m, "  prints the $l with where it lives";
	}
	like $out, qr/legalHold/, '  and the flags';
	is_deeply [pii_hits($out . $err)], [], '  and no personal data';
	($rc, $out, $err) = opsctl({ stdin => "$NAME\n" }, 'compliance', 'search', '--name', '-', '--json');
	is $rc, 0, 'opsctl compliance search --name - (the term on stdin) --json exits 0' or diag $err;
	my $doc = json_decode($out) // {};
	my $api = search($comp, name => $NAME);
	is_deeply [map { key_of($_->{entity}, $_) } @{ $doc->{items} // [] }], [map { key_of($_->{entity}, $_) } items($api)],
	    '  the same records as the API' or diag $out;
	is searched_count(), $n0 + 3, '  each run audited (and the API search)';
	my ($ev) = grep { $_->{actor_label} =~ /^cli:/ } reverse audit_rows('compliance.subjects_searched');
	like $ev->{actor_label} // '', qr/^cli:\w+/, '  as cli:<user>';
	is_deeply audit_payload($ev // {})->{fields}, ['name'], '  naming the field';
	($rc, $out, $err) = opsctl('compliance', 'search');
	is $rc, 2, 'opsctl compliance search without a term exits 2';
	like $err, qr/--email, --name or --phone/, '  and says what is needed';
	($rc, $out, $err) = opsctl('compliance', 'search', '--email', 'nope');
	is $rc, 2, '--email nope exits 2';
	like $err, qr/--email: must be an email address/, '  naming the option';
	($rc, $out, $err) = opsctl('compliance', 'search', '--name', 'Quentin', '--limit', '500');
	is $rc, 2, '--limit 500 exits 2';
	($rc, $out, $err) = opsctl({ env => { OPSD_CLI_ROLES => 'root:platform_admin' } }, 'compliance', 'search', '--email', $EMAIL);
	is $rc, 3, 'as a platform_admin (OPSD_CLI_ROLES) opsctl compliance search exits 3';
	like $err, qr/lacks compliance\.read/, '  it lacks compliance.read';
	is $out, '', '  and prints nothing';
	is searched_count(), $n0 + 3, '  refused runs are not audited';
}

# ============================================================ a dedicated database behind on the schema
{
	my @drops = (
		"ALTER TABLE `$DB`.contacts DROP COLUMN name_key, DROP COLUMN email_hash, DROP COLUMN phone_hash",
		"ALTER TABLE `$DB`.projects DROP COLUMN client_name_key",
		"ALTER TABLE `$DB`.offices DROP COLUMN phone_hash, DROP COLUMN manager_name_key",
		"DELETE FROM `$DB`.schema_migrations WHERE set_name = 'tenant' AND name = '0004_subject_search.sql'",
	);
	ok defined mysql(@drops), 'the dedicated database is made as one created before the search columns';
	my $res = search($comp, email => $EMAIL);
	status_is $res, 200, 'a search still answers';
	is_deeply [sort keys %{ by_key($res) }], [], '  without the dedicated records' or diag $res->{body};
	my $u = j($res)->{unsearched} // [];
	is scalar(@$u), 1, '  and lists the dedicated database as not searched' or diag $res->{body};
	is norm_id($u->[0]{orgId}), norm_id($DE->{id}), '  by its org';
	like $u->[0]{dedicatedDb} // '', qr{/\Q$DB\E$}, '  and its name';
	is audit_payload((reverse audit_rows('compliance.subjects_searched'))[0] // {})->{unsearched}, 1, '  the event counts it';
	my ($rc, $out, $err) = opsctl('compliance', 'search', '--email', $EMAIL);
	is $rc, 1, 'opsctl compliance search exits 1 when a database was not searched';
	like $err, qr/not searched: the dedicated database \S*\Q$DB\E of org/, '  and says which';
	($rc, $out, $err) = opsctl('db', 'migrate');
	is $rc, 0, 'opsctl db migrate exits 0' or diag $err;
	like $out, qr{^applied tenant/0004_subject_search\.sql to the dedicated database of org \Q$DE->{slug}\E$}m,
	    '  and brings the dedicated database up to date' or diag $out;
	$res = search($comp, email => $EMAIL);
	is_deeply [sort keys %{ by_key($res) }], want(qw(de_contact)), 'the dedicated contact is found again' or diag $res->{body};
	is_deeply j($res)->{unsearched}, [], '  every database searched';
	($rc, $out, $err) = opsctl('db', 'migrate');
	like $out, qr/^schema is current$/m, 'a second db migrate has nothing to do';
}

# ============================================================ back to the shared database
{
	move($DE, 'dedicated_to_shared', overrideLegalHold => 1);
	my $res = search($comp, name => "Quentin Zubiri $R", limit => 100);
	my $got = by_key($res);
	my $it = $got->{ key_of('offices', $rec{de_office}) } // {};
	is $it->{database}, 'shared', 'after moving back the records are found in the shared database' or diag $res->{body};
	ok !exists $it->{dedicatedDb}, '  without dedicatedDb';
	is scalar(items($res)), scalar(keys %$got), '  none is reported twice';
	is scalar(grep { $_->{database} eq 'dedicated' } values %$got), 0, '  nor in the old database';
	my $c = by_key(search($comp, email => $EMAIL))->{ key_of('contacts', $rec{de_contact}) } // {};
	is $c->{database}, 'shared', '  the contact too';
	is $c->{legalHold}, JSON::PP::true, '  with the hold that travelled with it';
}

# ============================================================ no searched value in the audit log or the logs
{
	my @hits = pii_hits(audit_text() // '');
	ok !@hits, 'no searched or written value in audit_events' or diag "@hits";
	my @log_hits = pii_in_logs(min_length => 6);
	ok !@log_hits, 'none in log/' or diag join "\n", @log_hits;
}

finish();
