#!/usr/bin/perl
# Tenant records (doc/architecture.md "Data"; README "Runbook 2"): CRUD of contacts,
# projects and offices under /orgs/:orgId/<entity> in two orgs — create
# (201, fields echoed in camelCase, flags false), get, list with limit=1
# cursor paging (every record once, in id order), patch (only the given
# fields change, updatedAt moves), delete (then 404); a member reads but
# cannot write (403); another org's admin gets 404 for the org's routes and
# records; platform_admin reaches both orgs; bad input per entity (nothing
# written); audit tenant.created/updated/deleted with field names and no
# values. Then the legal-hold guard, set through POST /compliance/legal-hold
# (never the DB): a held contact and every record of a held org refuse PATCH
# and DELETE with 409 legal_hold and stay unchanged in MariaDB; after the
# release both are allowed again.
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(encode_utf8);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
my $R = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8;
my $N = sprintf '%04d', int rand 10000;
start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my @FLAGS = qw(legalHold piiStripped archived);

sub count_rows($table, $org) { return db_count("SELECT COUNT(*) FROM `$table` WHERE org_id = UNHEX('" . org_hex($org) . "')") }

# ============================================================ orgs and people
my $A = create_org(name => "Tenant Org A $R");
my $B = create_org(name => "Tenant Org B $R");
ok $A->{id} && $B->{id}, 'two orgs A and B' or BAIL_OUT('cannot create orgs');
my $adminA_s = login_ok(create_user(role => 'org_admin', org => $A), 'org_admin of A');
my $memA_s = login_ok(create_user(role => 'member', org => $A), 'member of A');
my $adminB_s = login_ok(create_user(role => 'org_admin', org => $B), 'org_admin of B');
my $pa_s = login_ok(create_user(role => 'platform_admin'), 'platform_admin');
my $comp_s = login_ok(create_user(role => 'compliance'), 'compliance');

# ============================================================ the records each test writes
# Every string written is distinctive (the run's random tag), so it can be
# searched for in the audit table; "ü" checks UTF-8 end to end.
my %FIELDS = (
	contacts => [qw(name email phone address notes)],
	projects => [qw(name clientName description budget status)],
	offices => [qw(name address phone managerName)],
);
my %DATA = (
	contacts => {
		A => [
			{ name => "Zelda Quist $R", email => "zelda.$R\@client.example", phone => "+44 20 7946 $N",
			  address => "12 Harbour Row $R, Leith", notes => "Prefers calls after three, Grüße $R" },
			{ name => "Yannick Orr $R" },
			{ email => "orr.$R\@partner.example", phone => "+33 1 4020 $N" },
		],
		B => [{ name => "Bertha Bell $R", email => "bertha.$R\@bee.example", address => "7 Hive Lane $R" }],
		pa => { name => "Platform Made $R", notes => "created by staff $R" },
		patch => { phone => "+44 131 496 $N", notes => "Moved to email only $R" },
	},
	projects => {
		A => [
			{ name => "Apollo Rollout $R", clientName => "Xavier Client $R", description => "Phase one for Xavier, ü $R",
			  budget => 125000.5, status => 'active' },
			{ name => "Borealis $R" },
			{ name => "Cygnus $R", budget => 0, status => 'on_hold', clientName => "Cyrus Buyer $R" },
		],
		B => [{ name => "Bee Project $R", clientName => "Beatrix Payer $R", budget => 10, status => 'planned' }],
		pa => { name => "Staff Project $R", description => "staff description $R", status => 'completed' },
		patch => { status => 'completed', budget => 99.99 },
	},
	offices => {
		A => [
			{ name => "HQ $R", address => "1 Market St $R, San Francisco", phone => "+1 415 555 $N",
			  managerName => "Wanda Manager $R" },
			{ name => "Depot $R" },
			{ name => "Annex $R", managerName => "Victor Boss $R" },
		],
		B => [{ name => "Bee Office $R", phone => "+49 30 901820 $N", managerName => "Bruno Chef $R" }],
		pa => { name => "Staff Office $R", address => "99 Staff Road $R" },
		patch => { managerName => "Ursula Lead $R" },
	},
);
# strings no audit row may carry (status values are not personal data)
my %NEEDLES;
for my $e (keys %DATA) {
	my @recs = (@{ $DATA{$e}{A} }, @{ $DATA{$e}{B} }, $DATA{$e}{pa}, $DATA{$e}{patch});
	for my $rec (@recs) {
		for my $f (keys %$rec) {
			next if $f eq 'status' || $f eq 'budget';
			$NEEDLES{"$e.$f: $rec->{$f}"} = $rec->{$f};
		}
	}
}

my %REC;   # entity => org (A|B) => [record JSON as created]
my %DELETED;   # id => 1

sub same_value($got, $want) {
	return !defined $got if !defined $want;
	return 0 unless defined $got && !ref $got;
	return $want =~ /^-?\d+(?:\.\d+)?$/ && $got =~ /^-?\d+(?:\.\d+)?$/ ? $got == $want : $got eq $want;
}

# A record's JSON has the contract's keys, echoes $given, nulls the rest,
# flags false (unless $flags says otherwise).
sub record_ok($e, $rec, $given, $org, $name) {
	my @miss = grep { !exists $rec->{$_} } (qw(id orgId createdAt updatedAt), @FLAGS, @{ $FIELDS{$e} });
	ok !@miss, "$name: has id, orgId, the fields, legalHold, piiStripped, archived, createdAt, updatedAt"
	    or diag 'missing: ' . join(' ', @miss) . '; got ' . json_encode($rec);
	like $rec->{id} // '', $UUID, "$name: id is a UUID";
	is $rec->{orgId}, $org->{id}, "$name: orgId";
	my @bad;
	for my $f (@{ $FIELDS{$e} }) {
		my $want = exists $given->{$f} ? $given->{$f} : $e eq 'projects' && $f eq 'status' ? 'planned' : undef;
		push @bad, "$f: got " . json_encode($rec->{$f}) . ' want ' . json_encode($want) unless same_value($rec->{$f}, $want);
	}
	ok !@bad, "$name: every field echoed (omitted ones null" . ($e eq 'projects' ? ', status planned by default' : '') . ')'
	    or diag join "\n", @bad;
	is_deeply [map { $rec->{$_} } @FLAGS], [map { JSON::PP::false } @FLAGS], "$name: legalHold, piiStripped, archived false";
	ok defined rfc3339_epoch($rec->{createdAt}) && defined rfc3339_epoch($rec->{updatedAt}), "$name: createdAt, updatedAt RFC 3339"
	    or diag json_encode($rec);
}

# ============================================================ create, get
for my $e (qw(contacts projects offices)) {
	for my $i (0 .. $#{ $DATA{$e}{A} }) {
		my $given = $DATA{$e}{A}[$i];
		my $r = tenant_create($adminA_s, $A, $e, $given);
		status_is $r, 201, "POST /orgs/A/$e #$i as org_admin of A 201";
		record_ok($e, j($r), $given, $A, "$e A#$i");
		push @{ $REC{$e}{A} }, j($r);
		if ($e eq 'projects' && exists $given->{budget}) {
			like $r->{body}, qr/"budget"\s*:\s*\Q$given->{budget}\E(?:\.?0*)?[,}]/, "$e A#$i: budget is a JSON number"
			    or diag $r->{body};
		}
	}
	my $b = tenant_create($adminB_s, $B, $e, $DATA{$e}{B}[0]);
	status_is $b, 201, "POST /orgs/B/$e as org_admin of B 201";
	record_ok($e, j($b), $DATA{$e}{B}[0], $B, "$e B#0");
	push @{ $REC{$e}{B} }, j($b);
	# platform_admin writes in both orgs
	for my $pair ([$A, 'A'], [$B, 'B']) {
		my ($org, $l) = @$pair;
		my $p = tenant_create($pa_s, $org, $e, $DATA{$e}{pa});
		status_is $p, 201, "POST /orgs/$l/$e as platform_admin 201";
		is j($p)->{orgId}, $org->{id}, "  (in org $l)";
		push @{ $REC{$e}{$l} }, j($p) if $p->{status} == 201;
	}

	for my $l (qw(A B)) {
		for my $rec (@{ $REC{$e}{$l} }) {
			my $g = tenant_get($l eq 'A' ? $adminA_s : $adminB_s, $l eq 'A' ? $A : $B, $e, $rec->{id} // 'none');
			status_is $g, 200, "GET /orgs/$l/$e/:id by its org_admin 200";
			is_deeply j($g), $rec, '  the same JSON as the create answer' or diag $g->{body};
		}
	}
}

# ============================================================ list with limit=1 cursor paging
for my $e (qw(contacts projects offices)) {
	for my $l (qw(A B)) {
		my ($s, $org) = $l eq 'A' ? ($adminA_s, $A) : ($adminB_s, $B);
		my @want = sort map { $_->{id} } @{ $REC{$e}{$l} };
		my $all = tenant_list_all($s, $org, $e, limit => 1);
		ok !@{ $all->{errors} }, "GET /orgs/$l/$e?limit=1 pages all answer 200 ($all->{pages} pages)"
		    or diag join "\n", @{ $all->{errors} };
		cmp_ok $all->{max_page_items}, '<=', 1, '  at most one item per page';
		is_deeply [map { $_->{id} } @{ $all->{items} }], \@want, "  every record of $l once, oldest first by id"
		    or diag json_encode([map { $_->{id} } @{ $all->{items} }]);
		my %by = map { $_->{id} => $_ } @{ $REC{$e}{$l} };
		ok !grep({ !is_deeply_quiet($_, $by{ $_->{id} }) } @{ $all->{items} }), '  items are the full records';
		my $one = tenant_list($s, $org, $e);
		status_is $one, 200, "GET /orgs/$l/$e without limit 200";
		is_deeply [map { $_->{id} } @{ j($one)->{items} // [] }], \@want, '  all records in one page';
		ok exists j($one)->{nextCursor} && !defined j($one)->{nextCursor}, '  nextCursor null' or diag $one->{body};
	}
	check_error(tenant_list($adminA_s, $A, $e, limit => 0), 400, 'validation_failed', "GET /orgs/A/$e?limit=0");
	check_error(tenant_list($adminA_s, $A, $e, limit => 501), 400, 'validation_failed', "GET /orgs/A/$e?limit=501");
	check_error(tenant_list($adminA_s, $A, $e, limit => 1, cursor => 'not!a!cursor'), 400, 'validation_failed', "GET /orgs/A/$e with a garbage cursor");
}
sub is_deeply_quiet($a, $b) { return json_encode($a) eq json_encode($b // {}) }

# ============================================================ patch: only the given fields change, updatedAt moves
for my $e (qw(contacts projects offices)) {
	my $before = $REC{$e}{A}[0];
	my $patch = $DATA{$e}{patch};
	sleep 0.05;
	my $r = tenant_patch($adminA_s, $A, $e, $before->{id}, $patch);
	status_is $r, 200, "PATCH /orgs/A/$e/:id " . json_encode($patch) . ' 200';
	my $after = j($r);
	my @bad;
	for my $k (@{ $FIELDS{$e} }, qw(id orgId createdAt), @FLAGS) {
		my $want = exists $patch->{$k} ? $patch->{$k} : $before->{$k};
		push @bad, "$k: " . json_encode($after->{$k}) . ' want ' . json_encode($want)
		    unless ref $want ? is_deeply_quiet($after->{$k}, $want) : same_value($after->{$k}, $want);
	}
	ok !@bad, '  the patched fields changed, every other field is as before' or diag join "\n", @bad;
	cmp_ok rfc3339_epoch($after->{updatedAt}) // 0, '>', rfc3339_epoch($before->{updatedAt}) // 9e9, '  updatedAt moved'
	    or diag "before $before->{updatedAt} after " . ($after->{updatedAt} // 'undef');
	my $g = tenant_get($memA_s, $A, $e, $before->{id});
	is_deeply j($g), $after, '  GET (as the member) returns the patched record' or diag $g->{body};
	$REC{$e}{A}[0] = $after if $r->{status} == 200;
}

# ============================================================ delete, then 404
for my $e (qw(contacts projects offices)) {
	my $victim = $REC{$e}{A}[1];
	my $r = tenant_delete($adminA_s, $A, $e, $victim->{id});
	status_is $r, 200, "DELETE /orgs/A/$e/:id 200";
	is_deeply j($r), { deleted => JSON::PP::true }, '  {"deleted":true}' or diag $r->{body};
	$DELETED{ $victim->{id} } = 1 if $r->{status} == 200;
	check_error(tenant_get($adminA_s, $A, $e, $victim->{id}), 404, 'not_found', "GET the deleted $e record");
	check_error(tenant_delete($adminA_s, $A, $e, $victim->{id}), 404, 'not_found', "DELETE it again");
	check_error(tenant_patch($adminA_s, $A, $e, $victim->{id}, { name => "Gone $R" }), 404, 'not_found', 'PATCH it');
	my $all = tenant_list_all($adminA_s, $A, $e, limit => 1);
	ok !grep({ $_->{id} eq $victim->{id} } @{ $all->{items} }), '  the list no longer has it';
	is scalar(@{ $all->{items} }), scalar(@{ $REC{$e}{A} }) - 1, '  and has the others';
	splice @{ $REC{$e}{A} }, 1, 1 if $r->{status} == 200;
}

# ============================================================ roles and org scoping
for my $e (qw(contacts projects offices)) {
	my $a0 = $REC{$e}{A}[0];
	my $b0 = $REC{$e}{B}[0];
	my $row = db_row($e, $a0->{id});
	ok $row, "(the $e record of A is in MariaDB)";
	my $nA = count_rows($e, $A);

	# member of A: reads, cannot write
	status_is tenant_list($memA_s, $A, $e), 200, "member of A: GET /orgs/A/$e 200";
	status_is tenant_get($memA_s, $A, $e, $a0->{id}), 200, "member of A: GET /orgs/A/$e/:id 200";
	check_error(tenant_create($memA_s, $A, $e, { name => "Member Made $R" }), 403, 'forbidden', "member of A: POST /orgs/A/$e");
	check_error(tenant_patch($memA_s, $A, $e, $a0->{id}, { name => "Member Edit $R" }), 403, 'forbidden', "member of A: PATCH");
	check_error(tenant_delete($memA_s, $A, $e, $a0->{id}), 403, 'forbidden', "member of A: DELETE");
	check_error(tenant_list($memA_s, $B, $e), 404, 'not_found', "member of A: GET /orgs/B/$e");
	check_error(tenant_get($memA_s, $B, $e, $b0->{id}), 404, 'not_found', "member of A: GET a record of B");

	# compliance: platform staff with tenant.read only
	status_is tenant_get($comp_s, $A, $e, $a0->{id}), 200, "compliance: GET /orgs/A/$e/:id 200";
	status_is tenant_list($comp_s, $B, $e), 200, "compliance: GET /orgs/B/$e 200";
	check_error(tenant_create($comp_s, $A, $e, { name => "Compliance Made $R" }), 403, 'forbidden', "compliance: POST /orgs/A/$e");

	# org_admin of B: org A does not exist for them
	check_error(tenant_list($adminB_s, $A, $e), 404, 'not_found', "org_admin of B: GET /orgs/A/$e");
	check_error(tenant_get($adminB_s, $A, $e, $a0->{id}), 404, 'not_found', "org_admin of B: GET /orgs/A/$e/:id");
	check_error(tenant_create($adminB_s, $A, $e, { name => "Intruder $R" }), 404, 'not_found', "org_admin of B: POST /orgs/A/$e");
	check_error(tenant_patch($adminB_s, $A, $e, $a0->{id}, { name => "Intruder $R" }), 404, 'not_found',
	    "org_admin of B: PATCH /orgs/A/$e/:id");
	check_error(tenant_delete($adminB_s, $A, $e, $a0->{id}), 404, 'not_found', "org_admin of B: DELETE /orgs/A/$e/:id");
	# nor through their own org's path
	check_error(tenant_get($adminB_s, $B, $e, $a0->{id}), 404, 'not_found', "org_admin of B: GET /orgs/B/$e/<A's id>");
	check_error(tenant_patch($adminB_s, $B, $e, $a0->{id}, { name => "Intruder $R" }), 404, 'not_found',
	    "org_admin of B: PATCH /orgs/B/$e/<A's id>");
	check_error(tenant_delete($adminB_s, $B, $e, $a0->{id}), 404, 'not_found', "org_admin of B: DELETE /orgs/B/$e/<A's id>");
	check_error(tenant_get($pa_s, $B, $e, $a0->{id}), 404, 'not_found', "platform_admin: GET /orgs/B/$e/<A's id>");
	is_deeply db_row($e, $a0->{id}), $row, "the $e record of A is unchanged in MariaDB";
	is count_rows($e, $A), $nA, "org A has no new $e row";

	# platform_admin reaches both
	status_is tenant_get($pa_s, $A, $e, $a0->{id}), 200, "platform_admin: GET a record of A 200";
	status_is tenant_get($pa_s, $B, $e, $b0->{id}), 200, "platform_admin: GET a record of B 200";
	my $pp = tenant_patch($pa_s, $B, $e, $b0->{id}, { name => "Renamed By Staff $R" });
	status_is $pp, 200, "platform_admin: PATCH a record of B 200";
	is j($pp)->{name}, "Renamed By Staff $R", '  (renamed)';
	$NEEDLES{"$e renamed"} = "Renamed By Staff $R";
	$REC{$e}{B}[0] = j($pp) if $pp->{status} == 200;
}

# ============================================================ bad input: 400/404, nothing written
{
	my $X = uuid7_like();
	my %bad = (
		contacts => [
			[{ name => "N $R", shoeSize => 42 }, ['shoeSize'], 'an unknown field'],
			[{ name => 'n' x 201 }, ['name'], 'a name of 201 characters'],
			[{ name => 5 }, ['name'], 'a name that is a number'],
			[{ email => 'not-an-email' }, ['email'], 'a malformed email'],
			[{ email => 'two@@at.example' }, ['email'], 'an email with two @'],
			[{ email => ('e' x 250) . '@x.example' }, ['email'], 'an email over 254 characters'],
			[{ phone => '+1 555 0100', notes => 'no name nor email' }, [[qw(name email)]], 'neither name nor email'],
			[{}, [[qw(name email)]], 'an empty object'],
			[{ name => "N $R", phone => '1' x 65 }, ['phone'], 'a phone of 65 characters'],
			[{ name => "N $R", address => 'a' x 501 }, ['address'], 'an address of 501 characters'],
			[{ name => "N $R", notes => 'n' x 10001 }, ['notes'], 'notes of 10001 characters'],
			[{ name => "N $R", legalHold => JSON::PP::true }, ['legalHold'], 'legalHold (not writable)'],
		],
		projects => [
			[{ name => "P $R", color => 'red' }, ['color'], 'an unknown field'],
			[{ name => 'n' x 201 }, ['name'], 'a name of 201 characters'],
			[{ name => '' }, ['name'], 'an empty name'],
			[{ budget => 5 }, ['name'], 'no name'],
			[{ name => "P $R", budget => -1 }, ['budget'], 'a negative budget'],
			[{ name => "P $R", budget => -0.01 }, ['budget'], 'a budget of -0.01'],
			[{ name => "P $R", budget => '100' }, ['budget'], 'a budget that is a string'],
			[{ name => "P $R", status => 'bogus' }, ['status'], 'status "bogus"'],
			[{ name => "P $R", status => 'Active' }, ['status'], 'status "Active" (case matters)'],
			[{ name => "P $R", clientName => 'c' x 201 }, ['clientName'], 'a clientName of 201 characters'],
			[{ name => "P $R", client_name => 'C' }, ['client_name'], 'the snake_case client_name'],
		],
		offices => [
			[{ name => "O $R", floors => 3 }, ['floors'], 'an unknown field'],
			[{ name => 'n' x 201 }, ['name'], 'a name of 201 characters'],
			[{}, ['name'], 'no name'],
			[{ name => "O $R", phone => '1' x 65 }, ['phone'], 'a phone of 65 characters'],
			[{ name => "O $R", managerName => 'm' x 201 }, ['managerName'], 'a managerName of 201 characters'],
			[{ name => "O $R", managerName => ['x'] }, ['managerName'], 'a managerName that is an array'],
		],
	);
	my %bad_patch = (
		contacts => [[{ nickname => 'x' }, ['nickname'], 'an unknown field'], [{ name => 'n' x 201 }, ['name'], 'a name of 201'],
		    [{ email => 'nope' }, ['email'], 'a malformed email']],
		projects => [[{ status => 'bogus' }, ['status'], 'status "bogus"'], [{ budget => -5 }, ['budget'], 'a negative budget'],
		    [{ budget => 'lots' }, ['budget'], 'a budget that is a string'], [{ name => '' }, ['name'], 'an empty name']],
		offices => [[{ name => 'n' x 201 }, ['name'], 'a name of 201'], [{ wing => 'E' }, ['wing'], 'an unknown field']],
	);
	my $audits = audit_count('tenant.%');
	for my $e (qw(contacts projects offices)) {
		my $n = count_rows($e, $A);
		for my $c (@{ $bad{$e} }) {
			my ($body, $fields, $name) = @$c;
			my $r = tenant_create($adminA_s, $A, $e, $body);
			check_error($r, 400, 'validation_failed', "POST /orgs/A/$e with $name");
			fields_named($r, @$fields);
		}
		is count_rows($e, $A), $n, "no $e row was written by the bad creates";
		my $t = $REC{$e}{A}[0];
		my $row = db_row($e, $t->{id});
		for my $c (@{ $bad_patch{$e} }) {
			my ($body, $fields, $name) = @$c;
			my $r = tenant_patch($adminA_s, $A, $e, $t->{id}, $body);
			check_error($r, 400, 'validation_failed', "PATCH /orgs/A/$e/:id with $name");
			fields_named($r, @$fields);
		}
		check_error(tenant_patch($adminA_s, $A, $e, $t->{id}, { name => "Ok $R", bogus => 1 }), 400, 'validation_failed',
		    "PATCH with a valid and an unknown field");
		is_deeply db_row($e, $t->{id}), $row, "the $e record is unchanged after the bad patches (not even the valid field)";

		for my $id ('not-a-uuid', '12345', uc($t->{id}) =~ s/-//gr . 'zz') {
			check_error(tenant_get($adminA_s, $A, $e, $id), 404, 'not_found', "GET /orgs/A/$e/$id (malformed id)");
			check_error(tenant_patch($adminA_s, $A, $e, $id, { name => "X $R" }), 404, 'not_found', "PATCH /orgs/A/$e/$id");
			check_error(tenant_delete($adminA_s, $A, $e, $id), 404, 'not_found', "DELETE /orgs/A/$e/$id");
		}
		check_error(tenant_get($adminA_s, $A, $e, $X), 404, 'not_found', "GET /orgs/A/$e/<unknown id>");
		check_error(tenant_patch($adminA_s, $A, $e, $X, { name => "X $R" }), 404, 'not_found', "PATCH /orgs/A/$e/<unknown id>");
		check_error(tenant_delete($adminA_s, $A, $e, $X), 404, 'not_found', "DELETE /orgs/A/$e/<unknown id>");
		my $unk = { id => uuid7_like() };
		check_error(tenant_list($pa_s, $unk, $e), 404, 'not_found', "platform_admin: GET /orgs/<unknown org>/$e");
		check_error(tenant_create($pa_s, $unk, $e, { name => "Nowhere $R" }), 404, 'not_found', "platform_admin: POST /orgs/<unknown org>/$e");
		check_error(tenant_get($pa_s, $unk, $e, $t->{id}), 404, 'not_found', "platform_admin: GET /orgs/<unknown org>/$e/<A's id>");
		check_error(tenant_list($adminA_s, $unk, $e), 404, 'not_found', "org_admin of A: GET /orgs/<unknown org>/$e");
		my $mal = tenant_list($pa_s, { id => 'not-an-org' }, $e);
		check_error($mal, [400, 404], undef, "platform_admin: GET /orgs/not-an-org/$e");
	}
	is audit_count('tenant.%'), $audits, 'no tenant.* audit event for any refused request';
}

# ============================================================ audit: tenant.created/updated/deleted, names only
{
	my @rows = db_rows("SELECT action, target_type, target_id, LOWER(HEX(org_id)) AS org, payload FROM audit_events"
	    . " WHERE action LIKE 'tenant.%' ORDER BY seq");
	ok @rows, 'audit_events has tenant.* rows (' . scalar(@rows) . ')';
	my %by;   # action => norm id => [rows]
	push @{ $by{ $_->{action} }{ norm_id($_->{target_id}) } }, $_ for @rows;
	my %org_of;
	my @created;
	for my $e (qw(contacts projects offices)) {
		for my $l (qw(A B)) {
			for my $rec (@{ $REC{$e}{$l} }) { push @created, [$e, $rec->{id}, $l eq 'A' ? $A : $B] }
		}
	}
	my @bad;
	for my $c (@created) {
		my ($e, $id, $org) = @$c;
		my ($a) = @{ $by{'tenant.created'}{ norm_id($id) } // [] };
		if (!$a) { push @bad, "no tenant.created for $e $id"; next }
		push @bad, "tenant.created $id: target_type $a->{target_type}" if ($a->{target_type} // '') ne $e;
		push @bad, "tenant.created $id: org " . ($a->{org} // 'NULL') if ($a->{org} // '') ne org_hex($org);
	}
	ok !@bad, 'a tenant.created per record with targetType = entity, targetId = id, orgId = its org' or diag join "\n", @bad;
	is scalar(keys %{ $by{'tenant.created'} // {} }), scalar(@created) + scalar(keys %DELETED),
	    'exactly one tenant.created per created record';
	for my $id (keys %DELETED) {
		ok $by{'tenant.deleted'}{ norm_id($id) }, "tenant.deleted for the deleted record $id";
	}
	for my $e (qw(contacts projects offices)) {
		my $id = $REC{$e}{A}[0]{id};
		my @u = @{ $by{'tenant.updated'}{ norm_id($id) } // [] };
		is scalar(@u), 1, "one tenant.updated for the patched $e record";
		my $u = $u[0] // {};
		is $u->{target_type}, $e, "  targetType $e";
		is $u->{org}, org_hex($A), '  orgId A';
		my %str = map { $_ => 1 } json_strings(json_decode($u->{payload} // '') // {});
		my @patched = sort keys %{ $DATA{$e}{patch} };
		ok !grep({ my $f = $_; !$str{$f} && !$str{ $f =~ s/([A-Z])/_\l$1/gr } } @patched),
		    "  its payload names the changed fields (@patched)" or diag $u->{payload};
		my @unchanged = grep { my $f = $_; !grep { $_ eq $f } @patched } grep { $_ ne 'name' } @{ $FIELDS{$e} };
		ok !grep({ $str{$_} } @unchanged), '  and not the unchanged ones' or diag $u->{payload};
	}
	my @values;
	for my $row (@rows) {
		my $p = json_decode($row->{payload} // '');
		push @values, "$row->{action}: payload is not JSON: $row->{payload}" unless defined $p;
		push @values, map { "$row->{action} $row->{target_id}: '$_'" }
		    grep { !/^[A-Za-z][A-Za-z0-9_.]{0,63}$/ && !/$UUID/ && !/^\d+$/ && !defined rfc3339_epoch($_) } json_strings($p);
	}
	ok !@values, 'every string in a tenant.* payload is a name (identifier), an id, a count or a time, never a value'
	    or diag join "\n", @values;
	my $text = audit_text() // '';
	ok index($text, 'tenant.created') >= 0, '(control: the audit text has the tenant events)';
	my @hits = grep { index($text, encode_utf8($NEEDLES{$_})) >= 0 } sort keys %NEEDLES;
	ok !@hits, 'no value written to a record appears anywhere in audit_events (' . scalar(keys %NEEDLES) . ' strings)'
	    or diag join "\n", @hits;
}

# ============================================================ legal hold on one contact (through the API)
my $held = $REC{contacts}{A}[0];
my $free = $REC{contacts}{A}[1];
{
	my $r = legal_hold($comp_s, entity => 'contacts', ids => [$held->{id}], hold => 1, reason => "Litigation $R",
	    caseRef => "CASE-$N");
	status_is $r, 200, 'POST /compliance/legal-hold on one contact as compliance 200';
	is_deeply [map { [$_->{id}, $_->{result}] } @{ j($r)->{results} // [] }], [[$held->{id}, 'held']], '  result held'
	    or diag $r->{body};
	my $g = tenant_get($adminA_s, $A, 'contacts', $held->{id});
	is j($g)->{legalHold}, JSON::PP::true, 'GET shows legalHold true';
	my $row = db_row('contacts', $held->{id});
	is $row->{legal_hold}, 1, '(legal_hold = 1 in MariaDB)';
	check_error(tenant_patch($adminA_s, $A, 'contacts', $held->{id}, { name => "Changed $R" }), 409, 'legal_hold',
	    'PATCH of the held contact as org_admin');
	check_error(tenant_delete($adminA_s, $A, 'contacts', $held->{id}), 409, 'legal_hold', 'DELETE of the held contact as org_admin');
	check_error(tenant_patch($pa_s, $A, 'contacts', $held->{id}, { notes => "Staff edit $R" }), 409, 'legal_hold',
	    'PATCH of the held contact as platform_admin');
	check_error(tenant_delete($pa_s, $A, 'contacts', $held->{id}), 409, 'legal_hold', 'DELETE of the held contact as platform_admin');
	check_error(tenant_delete($admin, $A, 'contacts', $held->{id}), 409, 'legal_hold', 'DELETE of the held contact as superadmin');
	is_deeply db_row('contacts', $held->{id}), $row, 'the held contact is unchanged in MariaDB';
	my $fp = tenant_patch($adminA_s, $A, 'contacts', $free->{id}, { notes => "Still editable $R" });
	status_is $fp, 200, 'another contact of A (not held) is still patchable';
	$NEEDLES{'free notes'} = "Still editable $R";
}

# ============================================================ legal hold on org B: every record of B refuses
{
	my $r = legal_hold($comp_s, entity => 'orgs', ids => [$B->{id}], hold => 1, reason => "Regulator inquiry $R");
	status_is $r, 200, 'POST /compliance/legal-hold {entity: orgs, ids: [B]} 200';
	is_deeply [map { [$_->{id}, $_->{result}] } @{ j($r)->{results} // [] }], [[$B->{id}, 'held']], '  result held'
	    or diag $r->{body};
	is j(http(GET => "/orgs/$B->{id}", session => $admin))->{legalHold}, JSON::PP::true, 'GET /orgs/B shows legalHold true';
	my $snap = table_snapshot(qw(contacts projects offices));
	ok @{ $snap->{contacts} } >= 4 && @{ $snap->{projects} } >= 4 && @{ $snap->{offices} } >= 4, '(the snapshot has the rows)';
	for my $e (qw(contacts projects offices)) {
		for my $rec (@{ $REC{$e}{B} }) {
			check_error(tenant_patch($adminB_s, $B, $e, $rec->{id}, { name => "Held Edit $R" }), 409, 'legal_hold',
			    "org B held: PATCH /orgs/B/$e/:id as org_admin of B");
			check_error(tenant_delete($adminB_s, $B, $e, $rec->{id}), 409, 'legal_hold', "org B held: DELETE /orgs/B/$e/:id as org_admin of B");
			check_error(tenant_patch($pa_s, $B, $e, $rec->{id}, { name => "Held Edit $R" }), 409, 'legal_hold',
			    "org B held: PATCH as platform_admin");
			check_error(tenant_delete($pa_s, $B, $e, $rec->{id}), 409, 'legal_hold', "org B held: DELETE as platform_admin");
		}
	}
	is_deeply table_snapshot(qw(contacts projects offices)), $snap, 'every record (of B and of A) is unchanged in MariaDB';
	my $pa = tenant_patch($adminA_s, $A, 'projects', $REC{projects}{A}[0]{id}, { status => 'cancelled' });
	status_is $pa, 200, 'org A (not held) is still writable';
}

# ============================================================ release: allowed again
{
	my $r = legal_hold($comp_s, entity => 'contacts', ids => [$held->{id}], hold => 0, reason => "Case closed $R");
	status_is $r, 200, 'release the contact (hold: false) 200';
	is_deeply [map { [$_->{id}, $_->{result}] } @{ j($r)->{results} // [] }], [[$held->{id}, 'released']], '  result released'
	    or diag $r->{body};
	my $o = legal_hold($comp_s, entity => 'orgs', ids => [$B->{id}], hold => 0, reason => "Inquiry closed $R");
	status_is $o, 200, 'release org B 200';
	is_deeply [map { [$_->{id}, $_->{result}] } @{ j($o)->{results} // [] }], [[$B->{id}, 'released']], '  result released'
	    or diag $o->{body};

	my $p = tenant_patch($adminA_s, $A, 'contacts', $held->{id}, { notes => "After release $R" });
	status_is $p, 200, 'PATCH of the released contact 200';
	is j($p)->{notes}, "After release $R", '  (patched)';
	is j($p)->{legalHold}, JSON::PP::false, '  legalHold false';
	my $d = tenant_delete($adminA_s, $A, 'contacts', $held->{id});
	status_is $d, 200, 'DELETE of the released contact 200';
	check_error(tenant_get($adminA_s, $A, 'contacts', $held->{id}), 404, 'not_found', '  then it is gone');
	for my $e (qw(contacts projects offices)) {
		my ($first, $second) = @{ $REC{$e}{B} };
		status_is tenant_patch($adminB_s, $B, $e, $first->{id}, { name => "Released Edit $R" }), 200, "org B released: PATCH $e 200";
		status_is tenant_delete($adminB_s, $B, $e, $second->{id}), 200, "org B released: DELETE $e 200";
	}
}

finish();
