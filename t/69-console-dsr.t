#!/usr/bin/perl
# Runbook 2 (README "Runbook 2", "In the console") done in the console's
# Compliance screen: t/browser/dsr.mjs drives chromium. A data subject has
# a user and records in a shared org A (two contacts, an office found by
# phone, a project found by name, six more contacts with the subject's
# phone, three of them and the held-to-be contact created 400 days ago) and
# a contact in org B, moved to a dedicated database by a real migration.
# As compliance: an empty search and a two-letter name are refused next to
# their fields; the search by email, name and phone lists the 12 records
# with their org, database and flags; strip PII on one contact (a
# confirmation without reason refused, Escape cancels), hold the other with
# a case reference, its audit events; batch archive of org A's contacts
# older than 200 days (no org and a bad time refused next to their fields),
# a dry run (3 to archive, 1 held) and the run (3). As compliance_officer:
# pages of 10 with "Next records" (the stripped contact no longer found),
# hold and release the office, hold org B, download the subject export
# (JSON: every record listed, with their values) and org A's contacts (CSV
# and JSON; an unknown org refused in words), the held contact's events.
# A next page answered after a new search began is dropped; a double
# click on "Next records" or "Next events" (the office, exported 30 times
# through the API beforehand) asks for the next page once. A cut-off typed
# with an offset is shown as the instant it denotes. A download whose
# session has ended brings the sign-in form; once signed in, the same file
# arrives.
# member and platform_admin see neither the menu entry nor the screen. No
# request URL holds the subject's email, name or phone.
# Then through the API, the database and the audit log: the stripped
# contact is redacted with the typed reason, the held one held with reason
# and case, the office released, org B held; compliance.pii_stripped,
# legal_hold_set, legal_hold_released carry the typed reasons and the
# actors; the archive took exactly the dry run's count (the three old
# contacts, with the typed reason) and both compliance.archived events say
# so; the exports were audited; no PII string reached the audit log or
# log/ (nginx's access log included).
#
# Needs node, chromium and t/browser's packages (OpsdTest::Browser).
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
browser_ready();

start_stack(env => { OPSD_WORKERS => 2 });
my $R = run_tag();
my $N = run_num();
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');

my %U = map { ($_ => create_user(role => $_)) } qw(compliance compliance_officer platform_admin);
my $A = create_org(name => pii('org A name', "Fjordline Freight $R"));
my $B = create_org(name => pii('org B name', "Kestrel Dairy $R"));
ok $A->{id} && $B->{id}, 'orgs A and B' or BAIL_OUT('no orgs');
$U{member} = create_user(role => 'member', org => $A);
ok $U{$_}{id}, "$_ created" for sort keys %U;

# ============================================================ the subject and their records
my $NAME = pii('subject name', "Marit Okafor $R");
my $EMAIL = pii('subject email', lc "marit.okafor.$R\@dsr.example");
my $PHONE = pii('subject phone', "+47 22 $N 4711");
(my $DIGITS = $PHONE) =~ s/\D//g;
pii('subject phone digits', $DIGITS);
my $user = create_user(role => 'member', org => $A, name => $NAME, email => $EMAIL);
ok $user->{id}, 'the subject is a user of org A';

my $mk = sub ($org, $entity, $label, $fields) {
	pii("$label $_", $fields->{$_}) for grep { defined $fields->{$_} } keys %$fields;
	my $r = tenant_create($admin, $org, $entity, $fields);
	status_is $r, 201, "$label created";
	return j($r);
};
my $strip = $mk->($A, 'contacts', 'contact to strip', { name => $NAME, email => $EMAIL, phone => $PHONE,
	address => "7 Bryggen $R, Bergen", notes => "Asked for erasure $R" });
my $hold = $mk->($A, 'contacts', 'contact to hold', { name => "M. Okafor $R", email => $EMAIL });
my $office = $mk->($A, 'offices', 'office', { name => "Bergen $R", phone => $PHONE, managerName => "Ola Nordmann $R" });
my $project = $mk->($A, 'projects', 'project', { name => "Harbour $R", clientName => "$NAME Consulting" });
my @extra = map { $mk->($A, 'contacts', "extra contact $_", { name => "Entry $_ $R", phone => $PHONE }) } 1 .. 6;
my @old = @extra[0 .. 2];
ok set_created_at('contacts', $_->{id}, 400), 'a contact created 400 days ago' for @old, $hold;
my $ded = $mk->($B, 'contacts', 'contact of org B', { name => "Marit O. $R", email => $EMAIL });

# org B moves to its own database (runbook 3), so the search crosses databases
my $ms = migration_start($admin, orgId => $B->{id}, direction => 'shared_to_dedicated', reason => "dsr $R", timeout => 60);
status_is $ms, 202, 'org B starts moving to a dedicated database';
my $d = migration_wait($admin, $B->{id}, qr/^ready_for_cutover$/, 90);
is $d->{status}, 'ready_for_cutover', '  ready for the cut-over' or diag explain $d;
status_is migration_finalize($admin, orgId => $B->{id}, timeout => 60), 202, '  finalize';
$d = migration_wait($admin, $B->{id}, qr/^completed$/, 60);
is $d->{status}, 'completed', '  org B is dedicated' or diag explain $d;

my %REASON = (
	strip => "DSR erasure $R-117",
	hold => "Litigation hold $R",
	archive => "Retention sweep $R",
	office_hold => "Office hold $R",
	office_release => "Office released $R",
	org_hold => "Regulator request $R",
);
my $CASE = "LIT-$N";
my $older = rfc3339_at(time - 200 * 86400);
my $records = 12;   # the user, 2 contacts, the office, the project, 6 more contacts, org B's contact

my $dry_before = scalar audit_payloads('compliance.archived');
# more events about the office than a page of the Events panel (25): 30
# exports of it through the API, so that the browser can page them
is scalar(grep { http(GET => "/compliance/export?entity=offices&id=$office->{id}", session => $admin)->{status} == 200 } 1 .. 30), 30,
    'the office exported 30 times through the API';
browser_run('dsr.mjs', TIMEOUT => 300,
	CONSOLE_COMP_EMAIL => $U{compliance}{email}, CONSOLE_COMP_PASSWORD => $U{compliance}{password},
	CONSOLE_OFFICER_EMAIL => $U{compliance_officer}{email}, CONSOLE_OFFICER_PASSWORD => $U{compliance_officer}{password},
	CONSOLE_MEMBER_EMAIL => $U{member}{email}, CONSOLE_MEMBER_PASSWORD => $U{member}{password},
	CONSOLE_PA_EMAIL => $U{platform_admin}{email}, CONSOLE_PA_PASSWORD => $U{platform_admin}{password},
	CONSOLE_SUBJECT_EMAIL => $EMAIL, CONSOLE_SUBJECT_NAME => $NAME, CONSOLE_SUBJECT_PHONE => $PHONE,
	CONSOLE_STRIP_ID => $strip->{id}, CONSOLE_HOLD_ID => $hold->{id}, CONSOLE_OFFICE_ID => $office->{id},
	CONSOLE_DEDICATED_ID => $ded->{id}, CONSOLE_USER_ID => $user->{id},
	CONSOLE_OLD_IDS => join(',', map { $_->{id} } @old),
	CONSOLE_ORG_A => $A->{id}, CONSOLE_ORG_B => $B->{id}, CONSOLE_RECORDS => $records, CONSOLE_OLDER_THAN => $older,
	CONSOLE_STRIP_REASON => $REASON{strip}, CONSOLE_HOLD_REASON => $REASON{hold}, CONSOLE_CASE_REF => $CASE,
	CONSOLE_ARCHIVE_REASON => $REASON{archive}, CONSOLE_OFFICE_HOLD_REASON => $REASON{office_hold},
	CONSOLE_OFFICE_RELEASE_REASON => $REASON{office_release}, CONSOLE_ORG_HOLD_REASON => $REASON{org_hold});

# ============================================================ what the page claimed, through the API
my $s = login_ok($U{compliance_officer}, 'the compliance_officer, through the API,');
my $rec = sub ($entity, $id) { my $r = compliance_record($s, $entity, $id); status_is $r, 200, "GET /compliance/records/$entity 200"; j($r) };

my $sr = $rec->('contacts', $strip->{id});
is $sr->{piiStripped}, JSON::PP::true, 'the stripped contact is piiStripped';
is $sr->{piiStrippedReason}, $REASON{strip}, '  with the reason typed';
my $sc = j(tenant_get($admin, $A, 'contacts', $strip->{id}));
like $sc->{email} // '', qr/^redacted\+[0-9a-f]{16}\@redacted\.invalid$/, '  its email is a tombstone';
is $sc->{name}, '[redacted]', '  its name [redacted]';
ok !defined $sc->{phone} && !defined $sc->{address} && !defined $sc->{notes}, '  phone, address and notes gone';
is_deeply [pii_hits(json_encode($sc), labels => qr/^contact to strip/)], [], '  none of its PII is left';

my $hr = $rec->('contacts', $hold->{id});
is $hr->{legalHold}, JSON::PP::true, 'the held contact is held';
is $hr->{legalHoldReason}, $REASON{hold}, '  with the reason typed';
is $hr->{legalHoldCaseRef}, $CASE, '  and the case reference';
is $hr->{archived}, JSON::PP::false, '  and not archived (the archive skipped it)';
is $hr->{piiStripped}, JSON::PP::false, '  and not stripped';
is j(tenant_get($admin, $A, 'contacts', $hold->{id}))->{email}, $EMAIL, '  its email is unchanged';

my $or = $rec->('offices', $office->{id});
is $or->{legalHold}, JSON::PP::false, 'the office was held and released';
is j(http(GET => "/orgs/$B->{id}", session => $s))->{legalHold}, JSON::PP::true, 'org B is held';
is j(http(GET => "/orgs/$A->{id}", session => $s))->{legalHold}, JSON::PP::false, 'org A is not';

# ============================================================ the audit log
my $actor = sub ($u) { uuid_hex($u->{id}) };
my @ps = grep { grep { norm_id($_) eq norm_id($strip->{id}) } @{ $_->{p}{ids} // [] } } audit_payloads('compliance.pii_stripped');
is scalar(@ps), 1, 'one compliance.pii_stripped names the stripped contact' or diag explain \@ps;
is $ps[0]{p}{reason}, $REASON{strip}, '  with the reason typed' if @ps;
is_deeply $ps[0]{p}{counts}, { stripped => 1 }, '  counts: stripped 1' if @ps;

my %by_reason;
for my $action (qw(compliance.legal_hold_set compliance.legal_hold_released)) {
	push @{ $by_reason{ audit_payload($_)->{reason} // '' } }, { %$_, action => $action } for audit_rows($action);
}
my @want = (
	[$REASON{hold}, 'compliance.legal_hold_set', $hold->{id}, $U{compliance}],
	[$REASON{office_hold}, 'compliance.legal_hold_set', $office->{id}, $U{compliance_officer}],
	[$REASON{office_release}, 'compliance.legal_hold_released', $office->{id}, $U{compliance_officer}],
	[$REASON{org_hold}, 'compliance.legal_hold_set', $B->{id}, $U{compliance_officer}],
);
for my $w (@want) {
	my ($reason, $action, $id, $who) = @$w;
	my @e = @{ $by_reason{$reason} // [] };
	is scalar(@e), 1, "one event with the reason \"$reason\"" or diag explain \%by_reason;
	next unless @e;
	is $e[0]{action}, $action, "  $action";
	is_deeply [map { norm_id($_) } @{ audit_payload($e[0])->{ids} // [] }], [norm_id($id)], '  about the record';
	is $e[0]{actor_hex}, $actor->($who), "  by the $who->{roles}[0]";
}

my @arch = (audit_payloads('compliance.archived'))[$dry_before .. $dry_before + 1];
is scalar(grep { defined } @arch), 2, 'two compliance.archived events: the dry run and the run'
    or diag explain [audit_payloads('compliance.archived')];
if (@arch == 2 && $arch[1]) {
	my ($dry, $real) = map { $_->{p} } @arch;
	is $dry->{dryRun}, JSON::PP::true, '  the first is the dry run';
	is $real->{dryRun}, JSON::PP::false, '  the second is the run';
	is $dry->{counts}{archived}, 3, '  the dry run counted 3 to archive';
	is $dry->{counts}{legal_hold}, 1, '  and 1 held';
	is_deeply $real->{counts}, $dry->{counts}, '  the run did exactly what the dry run counted';
	is $_->{org}, norm_id($A->{id}), '  for org A' for @arch;
}
my @arch_rows = db_rows('SELECT LOWER(HEX(id)) AS id, archived_reason FROM contacts WHERE org_id = UNHEX(\''
    . uuid_hex($A->{id}) . '\') AND archived_at IS NOT NULL ORDER BY id');
is_deeply [map { $_->{id} } @arch_rows], [sort map { norm_id($_->{id}) } @old], 'the archived contacts are exactly the three old ones'
    or diag explain \@arch_rows;
is_deeply [map { $_->{archived_reason} } @arch_rows], [($REASON{archive}) x 3], '  archived with the reason typed';

my @ex = audit_payloads('compliance.exported');
my @sub_ex = grep { ($_->{target_id} // '') ne '' } @ex;
ok scalar(grep { norm_id($_->{target_id}) eq norm_id($hold->{id}) } @sub_ex) >= 1, 'the subject export is audited per record (the held contact)'
    or diag explain \@ex;
is scalar(grep { norm_id($_->{target_id}) eq norm_id($strip->{id}) } @sub_ex), 0, '  the stripped contact, no longer listed, was not exported';
ok scalar(grep { ($_->{org} // '') eq norm_id($A->{id}) && !($_->{target_id} // '') && ($_->{p}{format} // '') eq 'csv' } @ex) >= 1,
    'the CSV org export of org A is audited' or diag explain \@ex;

my @srch = audit_payloads('compliance.subjects_searched');
ok scalar(grep { join(',', @{ $_->{p}{fields} // [] }) eq 'email,name,phone' } @srch) >= 3,
    'the searches by email, name and phone are audited (both roles, the second page)' or diag explain \@srch;
is_deeply [pii_hits(audit_text(), min_length => 6)], [], 'no PII string the test wrote is in the audit log';
is_deeply [pii_in_logs(min_length => 6)], [], 'nor under log/ (nginx access log included)';
my ($vr, $v) = audit_verify();
is $v->{ok}, JSON::PP::true, 'the audit chain verifies';

finish();
