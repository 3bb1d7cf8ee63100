#!/usr/bin/perl
# The runbooks performed through the API by every role their README section
# names, one subtest per runbook. In each, every role in turn is a freshly
# created user signed in with a session cookie and X-CSRF-Token (runbook 5 a
# third time with an API token, as an API client would); the request bodies
# are the README's, with exactly the fields it shows; the acceptance lines are
# checked as written.
#  1. superadmin, platform_admin: POST /legal {type, version, content} and a
#     scheduled version {…, effectiveAt}; LEGAL_ENFORCE=1 in opsd.env and a
#     reload (SIGHUP), as the README says; a member sees both pending, is
#     refused elsewhere with legal_acceptance_required while the legal routes
#     answer, and accepts; GET /legal/privacy (ETag, 304), versions, the
#     report, and legal.updated / legal.accepted read by the publisher.
#  2. compliance, compliance_officer, security_admin, superadmin: a data
#     subject known in a shared org (user, contact, project client) and in an
#     org moved once to a dedicated database (contact, office manager) and a
#     third org; POST /compliance/subjects/search {email} and {name, phone,
#     limit} find every record with where it lives; the org's users and
#     contacts listed, records read, exports of contacts, users and orgs;
#     holds on a record (reason, caseRef) and on a whole org; strip-pii
#     (held ones refused, idempotent, the user loses access); batch-archive
#     olderThan as a dry run and by ids; then the audit log as the operator
#     (compliance.* by actor, pii_stripped, targetId, orgId as CSV), verify
#     (403 for compliance, which lacks audit.verify), both org exports
#     redacted, the old email finding only held records, no PII in any
#     audit event or log; holds released and the rest stripped. Platform
#     admins, org admins and members get 403 and change nothing.
#  3. superadmin only: a dry run {orgId, direction, dryRun, chunkSize,
#     reason} ends completed with its report and nothing left; README's literal
#     {orgId, direction, chunkSize} monitored until ready_for_cutover
#     (rowsCopied seen moving, migration.progress rising); finalize with
#     dryRun at ready_for_cutover switches nothing; finalize moves every row;
#     {orgId, direction, dbName} aborted with {orgId}; a held org refused
#     with 409 legal_hold for {orgId, direction, targetUri} and accepted with
#     overrideLegalHold (audited); GET /migration?status= and the history;
#     the migration.* events of each. Every other role gets 403.
#  4. security_admin, superadmin: a member's stolen password is used from
#     another address (127.0.0.x) for a burst that gets opsd's 429; the
#     source is found with the audit search (ip, actor + security.*, failed
#     logins, the 429's request id, CSV) and the logs; the address is blocked
#     (403 from then on, no more 429s); sessions flushed without and with
#     "tokens": true (401, and API tokens survive only the plain flush),
#     tokens revoked by user, by id and all, the account disabled and enabled,
#     the org held; the audit log lists each containment action with the
#     security admin as actor, and the chain verifies.
#  5. platform_admin, superadmin, a platform_admin's API token: GET
#     /email/settings (server, port, STARTTLS, user, passwordSet and never the
#     password, test mode on, the allowlist), then opsctl email test --wait on
#     the host goes through the outbox to the SMTP peer, audited as
#     email.test_requested by cli:root and email.sent, and logged; test mode
#     and the allowlist as GET /email/settings shows them, and opsctl
#     suppressed outside it; POST /email/test to an allowlisted address
#     reaches the real SMTP peer and GET /email/outbox shows it sent, a
#     non-allowlisted one is suppressed and never reaches the peer, a refused
#     one fails and is retried; email.sent / email.suppressed / email.failed
#     in the audit log and a log line per attempt, the address masked.
#  6. superadmin, platform_admin, security_admin (system.status): /metrics and
#     /status off the host (FastCGI with another REMOTE_ADDR) with their
#     session; every series conf/prometheus/alerts.yml reads is there; the
#     counters move by exactly what an action implies (a request, a burst of
#     429s, a failed login, a flush, a publish and an acceptance, a hold set
#     and released, a refused email, a migration that fails); compliance,
#     compliance_officer, org_admin and member get 403.
# Runbook 7 is t/63-runbook7.t. @RUNBOOKS below says which roles perform
# which steps: a runbook is one entry. OPSD_TEST_RUNBOOKS=2,3 runs only those
# (by hand, while working on one; t/99 wants the whole file).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use POSIX qw(ceil);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $TAG = run_tag();
my $T = JSON::PP::true;
my $BURST = 60;   # opsd's per-user bucket: 60 at once, 10 a second after
my $OFF_HOST = '198.51.100.20';   # runbook 6's Prometheus, elsewhere
my %ADDR = (   # runbook 5 (TEST_EMAIL_ALLOWLIST is allowed@example.test,@allowed.test)
	refused => sensitive('an allowlisted address the SMTP peer refuses', "refused-$TAG\@allowed.test"),
);

my $ca = make_test_ca();
my $SMTP_PASS = sensitive('the SMTP password', "Smtp-$TAG-pw-9Qx");
my $peer = start_smtp_peer(tls => $ca, auth => "opsd-mailer:$SMTP_PASS", refuse_rcpt => $ADDR{refused});
start_stack(env => {
	OPSD_WORKERS => 2,
	%{ smtp_env($peer, $ca) },
	OPSD_RATELIMIT_USER_PER_MIN => 600,
	OPSD_RATELIMIT_BURST => $BURST,
	OPSD_MIGRATION_FAIL_AFTER_S => 3,
});
my $admin = admin_session();
ok $admin->{cookie}, 'the harness superadmin signs in (it creates the users and the orgs)' or BAIL_OUT('no admin');
my %PERMS = %{ contract_roles() };

# ============================================================ operators and calls

# A fresh user of the role, signed in; "ROLE token": with an API token whose
# scopes are every permission of the role, used instead of the session.
sub operator($who) {
	my ($role, $via) = split ' ', $who;
	my $u = create_user(role => $role);
	sensitive("email of the $role operator", $u->{email});
	my $op = { who => $who, role => $role, user => $u, id => $u->{id}, session => login_ok($u, "a fresh $role") };
	if (($via // '') eq 'token') {
		my $t = http(POST => '/auth/tokens', session => $op->{session},
		    json => { name => "runbooks $role", scopes => $PERMS{$role} });
		status_is $t, 201, "  with an API token holding the ${role}'s permissions";
		$op->{bearer} = j($t)->{token};
	}
	return $op;
}
sub auth_of($op) { return $op->{bearer} ? (bearer => $op->{bearer}) : (session => $op->{session}) }
sub call($op, $method, $path, $json = undef) {
	return http($method => $path, auth_of($op), defined $json ? (json => $json) : ());
}
# Every event of an audit search as $op (all pages); undef when it is refused.
sub audit_all($op, %q) {
	my (@items, $cursor);
	for (1 .. 50) {
		my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } sort keys %q;
		my $r = call($op, GET => "/audit?$qs&limit=500" . (defined $cursor ? '&cursor=' . uri_escape_all($cursor) : ''));
		unless ($r->{status} == 200) { diag "GET /audit?$qs: $r->{status} $r->{body}"; return undef }
		push @items, items($r);
		$cursor = j($r)->{nextCursor} // last;
	}
	return \@items;
}
sub actions_of($events) { my %n; $n{ $_->{action} }++ for @{ $events // [] }; return \%n }
sub fresh_member($org, $label) {
	my $u = create_user(role => 'member', org => $org);
	sensitive("email of $label", $u->{email});
	return $u;
}
sub token_of($s, $name, %o) {
	my $r = http(POST => '/auth/tokens', session => $s, json => { name => $name, scopes => ['tenant.read'] }, %o);
	status_is $r, 201, "  $name: an API token";
	return j($r);
}
sub log_lines(%want) {
	return grep { my $l = $_; !grep { ($l->{$_} // '') ne $want{$_} } keys %want } log_records('opsd.log');
}
# LEGAL_ENFORCE in opsd.env, then SIGHUP to the master (README "Runbook 1"
# step 2): every worker is replaced with the new configuration.
sub set_legal_enforce($on) {
	my $file = var_dir() . '/opsd.env';
	my $text = slurp($file) // '';
	$text =~ s/^LEGAL_ENFORCE=.*\n//mg;
	$text .= "LEGAL_ENFORCE='$on'\n";
	open my $fh, '>', $file or die "$file: $!";
	print {$fh} $text;
	close $fh;
	my @old = worker_pids();
	ok kill('HUP', master_pid()), "LEGAL_ENFORCE=$on in \$OPSD_VAR/opsd.env, then kill -HUP the master";
	ok wait_until(15, sub { my @w = worker_pids(); @w == 2 && !grep { my $p = $_; grep { $_ == $p } @old } @w }, 0.1),
	    '  every worker is replaced by one with the new configuration';
	ok wait_until(5, sub { !grep { pid_alive($_) } @old }, 0.1), '  and the old ones are gone';
}
# The harness superadmin creates every pass's users and orgs: with
# LEGAL_ENFORCE=1 it accepts what runbook 1 published first.
sub admin_accepts_pending() {
	for my $p (@{ j(legal_status($admin))->{pending} // [] }) {
		status_is legal_accept($admin, $p->{type}, $p->{version}), 200, "(the harness superadmin accepts $p->{type} $p->{version})";
	}
}
# A keep-alive agent whose connections leave from another loopback address.
sub agent_from($addr) {
	return HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 10,
	    max_redirect => 0, keep_alive => 1, local_address => $addr, agent => 'opsd-test/1');
}

# ============================================================ runbook 1

sub rb1_setup($op, $ctx) {
	$ctx->{org} = create_org();
	$ctx->{member} = fresh_member($ctx->{org}, 'runbook 1 member');
	$ctx->{ms} = login_ok($ctx->{member}, 'a member (signed in before the publish)');
	$ctx->{v} = '2026-11-' . ($op->{role} =~ tr/_/-/r) . '-' . run_num();
}

sub rb1_publish($op, $ctx) {
	my $v = $ctx->{v};
	my $text = "Privacy policy $v\n\nWhat we collect, why, and for how long.\n";
	my $r = call($op, POST => '/legal', { type => 'privacy', version => $v, content => $text });
	status_is $r, 201, "POST /legal {type, version, content}: privacy $v";
	is j($r)->{current}, $T, '  current at once (no effectiveAt)';
	is j($r)->{contentSha256}, sha256_utf8($text), '  the content\'s SHA-256';
	check_error(call($op, POST => '/legal', { type => 'privacy', version => $v, content => $text }), 409,
	    'duplicate_version', 'the same version again');
	# once with effectiveAt: a scheduled version becomes current by itself
	my $at = ceil(time) + 8;
	$r = call($op, POST => '/legal', { type => 'terms', version => $v, content => "Terms of service $v\n",
	    effectiveAt => rfc3339_at($at) });
	status_is $r, 201, "POST /legal {type, version, content, effectiveAt}: terms $v in 8 s";
	is j($r)->{current}, JSON::PP::false, '  not current before its time';
	isnt j(legal_get('terms'))->{version} // '', $v, '  GET /legal/terms still answers the previous one';
	ok wait_until(20, sub { (j(legal_get('terms'))->{version} // '') eq $v }, 0.2),
	    '  and answers it once its effectiveAt has passed';
	is rfc3339_epoch(j(legal_get('terms'))->{effectiveAt}), $at, '  effective from the time given';
}

my $LEGAL_ENFORCED = 0;
sub rb1_enforce($op, $ctx) {
	if ($LEGAL_ENFORCED) {
		pass 'LEGAL_ENFORCE=1 already (set in the pass before)';
	} else {
		set_legal_enforce(1);
		$LEGAL_ENFORCED = 1;
	}
	is j(legal_status($ctx->{ms}))->{enforced}, $T, 'GET /legal/acceptance/status says enforced';
}

sub rb1_member($op, $ctx) {
	my ($v, $ms, $org) = @$ctx{qw(v ms org)};
	my @want = ("privacy $v", "terms $v");
	my $pending = sub { [sort map { "$_->{type} $_->{version}" } @{ j(legal_status($ms))->{pending} // [] }] };
	is_deeply $pending->(), \@want, 'the member\'s /legal/acceptance/status: both pending';
	my $r = http(GET => "/orgs/$org->{id}/contacts", session => $ms);
	check_error($r, 403, 'legal_acceptance_required', 'the member elsewhere (GET /orgs/:orgId/contacts)');
	is_deeply [sort map { "$_->{type} $_->{version}" } @{ j($r)->{error}{details}{pending} // [] }], \@want,
	    '  details.pending lists both';
	# the legal routes stay reachable
	status_is http(GET => '/legal/privacy', session => $ms), 200, 'the pending member: GET /legal/privacy';
	status_is http(GET => '/legal/terms/versions', session => $ms), 200, '  GET /legal/terms/versions';
	status_is http(GET => '/auth/me', session => $ms), 200, '  GET /auth/me';
	status_is http(GET => '/legal/privacy'), 200, 'anonymous: GET /legal/privacy';
	my $rep = call($op, GET => '/legal/acceptance/report?type=privacy&limit=500');
	status_is $rep, 200, 'the publisher: GET /legal/acceptance/report?type=privacy';
	is j($rep)->{version}, $v, "  about $v";
	ok((grep { $_->{id} eq $ctx->{member}{id} } @{ j($rep)->{pendingUsers}{items} // [] }), '  the member is pending');
	# the member accepts, with the README's body
	status_is legal_accept($ms, 'privacy', $v), 200, "POST /legal/acceptance {type, version}: privacy $v";
	status_is legal_accept($ms, 'terms', $v), 200, "  terms $v";
	is_deeply $pending->(), [], '  nothing pending now';
	status_is http(GET => "/orgs/$org->{id}/contacts", session => $ms), 200, '  and GET /orgs/:orgId/contacts passes';
	$rep = call($op, GET => '/legal/acceptance/report?type=privacy&limit=500');
	ok !(grep { $_->{id} eq $ctx->{member}{id} } @{ j($rep)->{pendingUsers}{items} // [] }),
	    'the report no longer lists the member';
}

my $PREVIOUS_PRIVACY;
sub rb1_acceptance($op, $ctx) {
	my $v = $ctx->{v};
	my $g = http(GET => '/legal/privacy');
	status_is $g, 200, 'GET /legal/privacy';
	is j($g)->{version}, $v, "  returns the new version $v";
	my $etag = $g->{headers}{etag};
	ok $etag, '  with an ETag';
	is http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag // '-' })->{status}, 304,
	    '  If-None-Match of it: 304';
	ok((grep { $_->{version} eq $v } @{ legal_versions('privacy') }), 'GET /legal/privacy/versions lists it');
	if (defined $PREVIOUS_PRIVACY) {
		status_is http(GET => "/legal/privacy/diff?from=$PREVIOUS_PRIVACY&to=$v"), 200,
		    "GET /legal/privacy/diff?from=$PREVIOUS_PRIVACY&to=$v";
	}
	$PREVIOUS_PRIVACY = $v;
	my $mine = call($op, GET => '/legal/acceptance/status');
	ok((grep { $_->{type} eq 'privacy' && $_->{version} eq $v } @{ j($mine)->{pending} // [] }),
	    "GET /legal/acceptance/status: pending for the $op->{who}, who has not accepted it");
	# the audit log, read by the publisher (pending too: the audit log stays reachable)
	my $r = call($op, GET => '/audit?action=legal.updated&limit=500');
	status_is $r, 200, "the $op->{who} reads GET /audit?action=legal.updated";
	like $r->{headers}{'legal-pending'} // '', qr/\bprivacy=\Q$v\E\b/,
	    '  though pending itself (Legal-Pending names its own version)';
	my @up = grep { ($_->{payload}{version} // '') eq $v } items($r);
	is_deeply [sort map { $_->{payload}{type} } @up], [qw(privacy terms)], "  legal.updated for privacy and terms $v";
	is_deeply [map { $_->{actorId} } @up], [($op->{id}) x 2], '  each with the publisher as actor';
	ok !(grep { exists $_->{payload}{content} } @up), '  and no content, its SHA-256 only';
	my $acc = audit_all($op, action => 'legal.accepted', actor => $ctx->{member}{id});
	is_deeply [sort map { "$_->{payload}{type} $_->{payload}{version}" } @{ $acc // [] }], ["privacy $v", "terms $v"],
	    'GET /audit?action=legal.accepted: the member\'s two acceptances';
}

# ============================================================ runbook 2

my $RB2_DE;   # the org on a dedicated database, moved once for every pass
my $RB2_PASS = 0;   # the pass, in the subject's name and the labels of its values
my $RED = '[redacted]';
my $TOMB = qr/^redacted\+[0-9a-f]{16}\@redacted\.invalid$/;
my $DSR = 'DSR 2026-117';
my $OLD = '2024-01-01T00:00:00Z';   # README's olderThan

# Before the passes: an org moved to a dedicated database by a real
# migration (the harness superadmin starts and finalizes it).
sub rb2_once() {
	my $org = create_org();
	status_is tenant_create($admin, $org, 'contacts', { name => "Runbook two seed $TAG" }), 201, 'an org with a contact';
	my $s = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated', reason => 'runbook 2 setup');
	status_is $s, 202, '(the harness superadmin) moves it to a dedicated database';
	is migration_wait($admin, $org->{id}, qr/^ready_for_cutover$/, 60)->{status}, 'ready_for_cutover', '  ready_for_cutover';
	status_is migration_finalize($admin, orgId => $org->{id}, timeout => 60), 202, '  finalize';
	is migration_wait($admin, $org->{id}, qr/^completed$/, 60)->{status}, 'completed', '  completed: its records live in ' . (j($s)->{dbName} // '?');
	$RB2_DE = { %$org, db => j($s)->{dbName} // 'none' };
}

# Each pass: a data subject (Anna Smith P<n>) known as a user and a contact of
# a shared org, a project's client there, a contact and an office manager of
# the dedicated org, and a contact of a third org (the legal matter's);
# plus an old contact of the shared org that retention archives.
sub rb2_setup($op, $ctx) {
	my $p = $ctx->{p} = ++$RB2_PASS;
	my %s = (
		name => pii("runbook 2 pass $p: subject name", "Anna Smith P$p $TAG"),
		email => pii("runbook 2 pass $p: subject email", "anna.smith.p$p.$TAG\@example.com"),
		phone => pii("runbook 2 pass $p: subject phone", "+44 20 7946 " . run_num() . " $p"),
	);
	$ctx->{s} = \%s;
	$ctx->{since} = rfc3339_at(time - 1);
	my %org = (sh => create_org(), de => $RB2_DE, matter => create_org());
	$ctx->{org} = \%org;
	my $user = create_user(role => 'member', org => $org{sh}, name => $s{name}, email => $s{email});
	ok $user->{id}, "the subject is a user of a shared org";
	my $mk = sub ($label, $org, $entity, $fields) {
		pii("runbook 2 pass $p: $label $_", $fields->{$_}) for grep { $_ ne 'name' || $entity eq 'contacts' } keys %$fields;
		my $r = tenant_create($admin, $org{$org}, $entity, $fields);
		status_is $r, 201, "  $label ($entity in the $org org)";
		return [$entity, j($r), $org];
	};
	$ctx->{rec} = {
		user => ['users', $user, 'sh'],
		sh_contact => $mk->('shared contact', sh => contacts => { %s, address => "$p Harbour Road $TAG, Leith", notes => "Client since 2019 ($TAG)" }),
		sh_project => $mk->('shared project', sh => projects => { name => "Harbour P$p $TAG", clientName => "$s{name} Consulting" }),
		de_contact => $mk->('dedicated contact', de => contacts => { name => $s{name}, email => $s{email} }),
		de_office => $mk->('dedicated office', de => offices => { name => "Leeds P$p $TAG", managerName => $s{name}, phone => $s{phone} }),
		matter_contact => $mk->('the matter org\'s contact', matter => contacts => { name => $s{name}, email => $s{email} }),
	};
	my $old = tenant_create($admin, $org{sh}, 'contacts', { name => "Former client P$p $TAG" });
	status_is $old, 201, '  and an old contact of the shared org';
	$ctx->{old} = j($old);
	my $days = int((time - rfc3339_epoch($OLD)) / 86400) + 30;
	ok set_created_at('contacts', $ctx->{old}{id}, $days), "  created $days days ago (before $OLD)";
}

sub rb2_id($ctx, $l) { return $ctx->{rec}{$l}[1]{id} }
sub rb2_key($ctx, $l) { my ($entity, $rec) = @{ $ctx->{rec}{$l} }; return "$entity:" . norm_id($rec->{id}) }
sub rb2_keys($ctx, @l) { return [sort map { rb2_key($ctx, $_) } @l] }
# POST /compliance/subjects/search: the answer and its items as "entity:id" => item.
sub rb2_search($op, $body, $name) {
	my $r = call($op, POST => '/compliance/subjects/search', $body);
	status_is $r, 200, $name;
	is_deeply [pii_hits($r->{body})], [], '  the answer holds no personal data';
	return ($r, { map { ("$_->{entity}:" . norm_id($_->{id})) => $_ } items($r) });
}
sub rb2_record($op, $entity, $id) { return j(call($op, GET => "/compliance/records/$entity/$id")) }
sub rb2_counts($r) { my $c = j($r)->{counts} // {}; return { map { ($_ => $c->{$_}) } grep { $c->{$_} } keys %$c } }

sub rb2_identify($op, $ctx) {
	my ($s, %org) = ($ctx->{s}, %{ $ctx->{org} });
	my ($r, $got) = rb2_search($op, { email => $s->{email} }, 'POST /compliance/subjects/search {"email"}');
	is_deeply [sort keys %$got], rb2_keys($ctx, qw(user sh_contact de_contact matter_contact)),
	    '  finds the user, and the contacts of the shared org, the dedicated org and the third org' or diag $r->{body};
	my %where = (user => 'control', sh_contact => 'shared', de_contact => 'dedicated', matter_contact => 'shared');
	for my $l (sort keys %where) {
		my $it = $got->{ rb2_key($ctx, $l) } // {};
		is_deeply [$it->{database}, norm_id($it->{orgId} // ''), $it->{matched}],
		    [$where{$l}, norm_id($org{ $ctx->{rec}{$l}[2] }{id}), [{ term => 'email', field => 'email' }]],
		    "  $l: database $where{$l}, its org, matched by email";
		is_deeply [@$it{qw(piiStripped legalHold orgLegalHold archived)}], [(JSON::PP::false) x 4], "  $l: no flag";
	}
	like $got->{ rb2_key($ctx, 'de_contact') }{dedicatedDb} // '', qr{^[^/:@]+(?::\d+)?/\Q$RB2_DE->{db}\E$},
	    "  the dedicated contact names its database ($RB2_DE->{db}), no user or password";
	is_deeply j($r)->{unsearched}, [], '  every database searched';
	($r, $got) = rb2_search($op, { name => $s->{name}, phone => $s->{phone}, limit => 100 },
	    'POST /compliance/subjects/search {"name", "phone", "limit": 100}');
	is_deeply [sort keys %$got], rb2_keys($ctx, keys %{ $ctx->{rec} }),
	    '  adds the project (client name) and the office (manager name and phone)' or diag $r->{body};
	is_deeply [sort map { "$_->{term}:$_->{field}" } @{ $got->{ rb2_key($ctx, 'de_office') }{matched} // [] }],
	    ['name:managerName', 'phone:phone'], '  the office by its manager\'s name and its phone';
	# then read, list and export what it found
	my $u = call($op, GET => "/orgs/$org{sh}{id}/users");
	status_is $u, 200, 'GET /orgs/:orgId/users';
	my ($listed) = grep { $_->{id} eq rb2_id($ctx, 'user') } items($u);
	is $listed->{email}, $s->{email}, '  lists the subject with its email';
	for my $o (qw(sh de)) {
		my $c = call($op, GET => "/orgs/$org{$o}{id}/contacts?limit=100");
		status_is $c, 200, "GET /orgs/:orgId/contacts?limit=100 ($o org)";
		ok((grep { $_->{id} eq rb2_id($ctx, "${o}_contact") } items($c)), "  lists the subject's contact");
	}
	my $rec = rb2_record($op, contacts => rb2_id($ctx, 'de_contact'));
	is_deeply [@$rec{qw(piiStripped legalHold archived)}], [(JSON::PP::false) x 3],
	    'GET /compliance/records/contacts/:id (dedicated): piiStripped, legalHold, archived false';
	for my $x (['contacts', rb2_id($ctx, 'sh_contact'), email => $s->{email}], ['users', rb2_id($ctx, 'user'), email => $s->{email}],
	    ['orgs', $org{sh}{id}, name => $org{sh}{name}]) {
		my ($entity, $id, $field, $want) = @$x;
		my $e = call($op, GET => "/compliance/export?entity=$entity&id=$id");
		status_is $e, 200, "GET /compliance/export?entity=$entity&id=…";
		is j($e)->{record}{$field}, $want, "  the record, $field as written";
	}
}

sub rb2_freeze($op, $ctx) {
	my ($de, $matter) = (rb2_id($ctx, 'de_contact'), $ctx->{org}{matter}{id});
	my $body = { entity => 'contacts', ids => [$de], hold => $T, reason => 'litigation', caseRef => 'LIT-42' };
	my $r = call($op, POST => '/compliance/legal-hold', $body);
	status_is $r, 200, 'POST /compliance/legal-hold {entity contacts, ids, hold, reason, caseRef}: the dedicated contact';
	is_deeply results($r), want_results($de => 'held'), '  held';
	is_deeply results(call($op, POST => '/compliance/legal-hold', $body)), want_results($de => 'already'), '  again: already';
	$r = call($op, POST => '/compliance/legal-hold', { entity => 'orgs', ids => [$matter], hold => $T, reason => 'regulator request' });
	status_is $r, 200, 'POST /compliance/legal-hold {entity orgs, ids, hold, reason}: the third org';
	is_deeply results($r), want_results($matter => 'held'), '  held';
	my $rec = rb2_record($op, contacts => $de);
	is_deeply [@$rec{qw(legalHold legalHoldReason legalHoldCaseRef)}], [$T, 'litigation', 'LIT-42'],
	    'GET /compliance/records/contacts/:id: legalHold, its reason and case';
	near_now($rec->{legalHoldAt}, '  legalHoldAt');
	$rec = rb2_record($op, orgs => $matter);
	is_deeply [@$rec{qw(legalHold legalHoldReason)}], [$T, 'regulator request'], 'GET /compliance/records/orgs/:id: legalHold';
	my (undef, $got) = rb2_search($op, { email => $ctx->{s}{email} }, 'the search again');
	is_deeply [map { @{ $got->{ rb2_key($ctx, $_) } // {} }{qw(legalHold orgLegalHold)} } qw(de_contact matter_contact sh_contact)],
	    [$T, JSON::PP::false, JSON::PP::false, $T, JSON::PP::false, JSON::PP::false],
	    '  the dedicated contact: legalHold; the third org\'s: orgLegalHold; the shared one: neither';
}

sub rb2_redact($op, $ctx) {
	my %id = map { ($_ => rb2_id($ctx, $_)) } keys %{ $ctx->{rec} };
	my $r = call($op, POST => '/compliance/strip-pii', { entity => 'contacts', ids => [@id{qw(de_contact sh_contact matter_contact)}], reason => $DSR });
	status_is $r, 200, 'POST /compliance/strip-pii {entity contacts, ids, reason}: the three contacts';
	is_deeply results($r), want_results($id{sh_contact} => 'stripped', $id{de_contact} => 'legal_hold', $id{matter_contact} => 'legal_hold'),
	    '  the shared contact stripped; the held contact and the held org\'s: legal_hold' or diag $r->{body};
	counts_are($r, { stripped => 1, legal_hold => 2 }, '  counts');
	for my $x ([users => 'user'], [projects => 'sh_project'], [offices => 'de_office']) {
		$r = call($op, POST => '/compliance/strip-pii', { entity => $x->[0], ids => [$id{ $x->[1] }], reason => $DSR });
		is_deeply results($r), want_results($id{ $x->[1] } => 'stripped'), "strip-pii {entity $x->[0]}: stripped" or diag $r->{body};
	}
	is login($ctx->{s}{email}, $ctx->{rec}{user}[1]{password})->{status}, 401, '  the stripped user cannot sign in';
	$r = call($op, POST => '/compliance/strip-pii', { entity => 'contacts', ids => [$id{sh_contact}], reason => $DSR });
	is_deeply results($r), want_results($id{sh_contact} => 'already_stripped'), 'strip-pii again: already_stripped';
	my $rec = rb2_record($op, contacts => $id{sh_contact});
	is_deeply [@$rec{qw(piiStripped piiStrippedReason)}], [$T, $DSR], 'GET /compliance/records/contacts/:id: piiStripped and its reason';
	near_now($rec->{piiStrippedAt}, '  piiStrippedAt');
	$rec = rb2_record($op, contacts => $id{de_contact});
	is_deeply [@$rec{qw(piiStripped legalHold)}], [JSON::PP::false, $T], 'the held contact: not stripped, still held';
}

sub rb2_archive($op, $ctx) {
	my ($sh, $old, $mc) = ($ctx->{org}{sh}{id}, $ctx->{old}{id}, rb2_id($ctx, 'matter_contact'));
	my @keys = (keys => [qw(archived already_archived legal_hold not_found)]);
	my $body = { entity => 'contacts', olderThan => $OLD, orgId => $sh, reason => 'retention', dryRun => $T };
	my $r = call($op, POST => '/compliance/batch-archive', $body);
	status_is $r, 200, 'POST /compliance/batch-archive {entity, olderThan, orgId, reason, dryRun: true}';
	is j($r)->{dryRun}, $T, '  dryRun';
	counts_are($r, { archived => 1 }, '  counts: the old contact would be archived', @keys);
	is rb2_record($op, contacts => $old)->{archived}, JSON::PP::false, '  and is not';
	$r = call($op, POST => '/compliance/batch-archive', { entity => 'contacts', ids => [$old, $mc], reason => 'retention' });
	status_is $r, 200, 'POST /compliance/batch-archive {entity, ids, reason}';
	is_deeply results($r), want_results($old => 'archived', $mc => 'legal_hold'), '  the old contact archived, the held one not'
	    or diag $r->{body};
	my $rec = rb2_record($op, contacts => $old);
	is_deeply [@$rec{qw(archived archivedReason)}], [$T, 'retention'], 'GET /compliance/records/contacts/:id: archived, its reason';
	counts_are(call($op, POST => '/compliance/batch-archive', $body), {}, 'the dry run again: nothing left to archive', @keys);
}

# What this pass wrote, as the operator reads it back.
my %RB2_EVENTS = ('compliance.subjects_searched' => 3, 'compliance.exported' => 3, 'compliance.legal_hold_set' => 3,
    'compliance.pii_stripped' => 7, 'compliance.archived' => 4);
sub rb2_confirm($op, $ctx) {
	my ($s, %org) = ($ctx->{s}, %{ $ctx->{org} });
	my $mine = audit_all($op, action => 'compliance.*', actor => $op->{id}, since => $ctx->{since});
	is_deeply actions_of($mine), \%RB2_EVENTS, 'GET /audit?action=compliance.*&actor=<me>&since=…: every step\'s events'
	    or diag explain actions_of($mine);
	is_deeply [pii_hits(json_encode($mine // []))], [], '  no personal data in any of them';
	my $ps = audit_all($op, action => 'compliance.pii_stripped');
	ok((grep { ($_->{actorId} // '') eq $op->{id} } @{ $ps // [] }) == $RB2_EVENTS{'compliance.pii_stripped'},
	    'GET /audit?action=compliance.pii_stripped lists the strips');
	my $q = "action=compliance.*&orgId=$org{sh}{id}&since=$ctx->{since}";
	my $json = audit_all($op, action => 'compliance.*', orgId => $org{sh}{id}, since => $ctx->{since});
	# "every compliance event about one record"
	my $id = rb2_id($ctx, 'sh_contact');
	my @about = grep { my $e = $_; ($e->{targetId} // '') eq $id || grep { norm_id($_) eq norm_id($id) } @{ $e->{payload}{ids} // [] } }
	    @{ $json // [] };
	my $one = audit_all($op, action => 'compliance.*', targetId => $id);
	ok((grep { $_->{action} eq 'compliance.exported' } @{ $one // [] }), 'GET /audit?action=compliance.*&targetId=<the shared contact>: its export');
	my $about = audit_all($op, action => 'compliance.*', about => $id);
	ok @about > 1, '  the shared contact is the subject of batch events too (' . join(', ', map { $_->{action} } @about) . ')';
	is_deeply [sort map { $_->{id} } @{ $about // [] }], [sort map { $_->{id} } @about],
	    'GET /audit?action=compliance.*&about=<the shared contact>: every compliance event about it, batch events included';
	my $csv = call($op, GET => "/audit?$q&format=csv");
	status_is $csv, 200, 'GET /audit?action=compliance.*&orgId=…&since=…&format=csv (for the case file)';
	is scalar(@{ parse_csv($csv->{body})->{records} }), scalar(@{ $json // [] }), '  a row per event (' . scalar(@{ $json // [] }) . ')';
	my $v = call($op, GET => '/audit/verify');
	if (grep { $_ eq 'audit.verify' } @{ $PERMS{ $op->{role} } }) {
		is j($v)->{ok}, $T, 'GET /audit/verify: ok';
	} else {
		check_error($v, 403, 'forbidden', "GET /audit/verify: the $op->{role} lacks audit.verify (the officer verifies)");
	}
	# exports show the redacted values
	my $ej = call($op, GET => "/export/contacts?orgId=$org{sh}{id}&format=json");
	status_is $ej, 200, 'GET /export/contacts?orgId=…&format=json';
	my ($row) = grep { $_->{id} eq $id } @{ j($ej)->{items} // [] };
	ok $row && $row->{name} eq $RED && $row->{email} =~ $TOMB && !defined $row->{phone} && !defined $row->{address}
	    && $row->{piiStripped}, '  the subject: name [redacted], email redacted+…@redacted.invalid, the rest null' or diag explain $row;
	my $ec = call($op, GET => "/export/contacts?orgId=$org{sh}{id}&format=csv");
	status_is $ec, 200, 'GET /export/contacts?orgId=…&format=csv';
	($row) = grep { $_->{id} eq $id } @{ parse_csv($ec->{body})->{records} };
	ok $row && $row->{name} eq $RED && $row->{email} =~ $TOMB && $row->{phone} eq '', '  the same in CSV' or diag explain $row;
	is_deeply [pii_hits($ej->{body} . $ec->{body}, labels => qr/^runbook 2 pass $ctx->{p}: (?:subject|shared contact)/)], [],
	    '  none of the subject\'s values in either';
	my (undef, $got) = rb2_search($op, { email => $s->{email} }, 'the search by the old email');
	is_deeply [sort keys %$got], rb2_keys($ctx, qw(de_contact matter_contact)), '  finds only the held records';
	is_deeply [pii_hits(audit_text() // '')], [], 'audit_events: none of the values written holds in any event';
	is_deeply [pii_in_logs(min_length => 6)], [], 'log/: none either';
}

# The matter ends: the holds are released and the rest is stripped.
sub rb2_release($op, $ctx) {
	my ($de, $mc, $matter) = (rb2_id($ctx, 'de_contact'), rb2_id($ctx, 'matter_contact'), $ctx->{org}{matter}{id});
	my $r = call($op, POST => '/compliance/legal-hold', { entity => 'contacts', ids => [$de], hold => JSON::PP::false, reason => 'case closed' });
	is_deeply results($r), want_results($de => 'released'), 'POST /compliance/legal-hold {hold: false}: released' or diag $r->{body};
	$r = call($op, POST => '/compliance/legal-hold', { entity => 'orgs', ids => [$matter], hold => JSON::PP::false, reason => 'case closed' });
	is_deeply results($r), want_results($matter => 'released'), '  the third org too' or diag $r->{body};
	$r = call($op, POST => '/compliance/strip-pii', { entity => 'contacts', ids => [$de, $mc], reason => $DSR });
	is_deeply results($r), want_results($de => 'stripped', $mc => 'stripped'), 'strip-pii: both stripped now' or diag $r->{body};
	my ($res, $got) = rb2_search($op, { email => $ctx->{s}{email} }, 'the search by the old email');
	is_deeply [sort keys %$got], [], '  finds nothing';
	my $ej = call($op, GET => "/export/contacts?orgId=$RB2_DE->{id}&format=json");
	my ($row) = grep { $_->{id} eq $de } @{ j($ej)->{items} // [] };
	ok $row && $row->{name} eq $RED && $row->{email} =~ $TOMB, 'GET /export/contacts of the dedicated org: redacted' or diag explain $row;
	my $n = actions_of(audit_all($op, action => 'compliance.legal_hold_released', actor => $op->{id}, since => $ctx->{since}));
	is $n->{'compliance.legal_hold_released'}, 2, 'GET /audit?action=compliance.legal_hold_released: the two releases';
}

sub rb2_refused($role) {
	state $org = create_org();
	state $c = j(tenant_create($admin, $org, 'contacts', { name => "Runbook two bystander $TAG" }));
	my $s = login_ok(create_user(role => $role, ($role =~ /^(?:org_admin|member)$/ ? (org => $org) : ())), "a fresh $role");
	my $before = db_row('contacts', $c->{id});
	for my $x (
		[POST => '/compliance/subjects/search', { email => "nobody.$TAG\@example.com" }, 'compliance.read'],
		[GET => "/compliance/records/contacts/$c->{id}", undef, 'compliance.read'],
		[GET => "/compliance/export?entity=contacts&id=$c->{id}", undef, 'compliance.export'],
		[GET => "/export/contacts?orgId=$org->{id}&format=csv", undef, 'compliance.export'],
		[POST => '/compliance/legal-hold', { entity => 'contacts', ids => [$c->{id}], hold => $T, reason => 'litigation' }, 'compliance.legal_hold'],
		[POST => '/compliance/strip-pii', { entity => 'contacts', ids => [$c->{id}], reason => $DSR }, 'compliance.strip_pii'],
		[POST => '/compliance/batch-archive', { entity => 'contacts', ids => [$c->{id}], reason => 'retention' }, 'compliance.archive'],
	) {
		my ($m, $path, $body, $perm) = @$x;
		my $r = http($m => $path, session => $s, defined $body ? (json => $body) : ());
		check_error($r, 403, 'forbidden', "$m " . ($path =~ s/\?.*//r) . " as $role");
		is j($r)->{error}{details}{permission}, $perm, "  details.permission $perm";
	}
	is_deeply db_row('contacts', $c->{id}), $before, '  the record is unchanged';
}

# ============================================================ runbook 3

# The org moved: a copy of 12,000 contacts in chunks of 10 takes about a
# second here, long enough for GET /migration/status to show it on the way.
my $RB3_ROWS = 12000;
my $RB3_CHUNK = 10;
sub rb3_status($op, $org) { return j(call($op, GET => "/migration/status/$org->{id}")) }
# Polls GET /migration/status/:orgId as the operator until the status
# matches $want or ends: (the last document, every document seen). Every
# 0.15 s: under the operator's rate limit (10 a second after the burst), as
# a dashboard would be.
sub rb3_watch($op, $org, $want, $timeout) {
	my ($d, @seen);
	my $end = time + $timeout;
	while (1) {
		push @seen, $d = rb3_status($op, $org);
		last if ($d->{status} // '') =~ $want || ($d->{status} // '') =~ /^(?:completed|aborted|failed)$/ || time > $end;
		sleep 0.15;
	}
	return ($d, \@seen);
}
sub rb3_db_mode($org) { return mysql("SELECT db_mode FROM orgs WHERE id = UNHEX('" . org_hex($org) . "')") =~ s/\s+//gr }

sub rb3_setup($op, $ctx) {
	$ctx->{since} = rfc3339_at(time - 1);
	my %rows = (a => $RB3_ROWS, b => 500);
	for my $k (qw(a b)) {
		my $org = $ctx->{$k} = create_org();
		is bulk_insert_contacts($org, $rows{$k}, tag => "rbthree$k$TAG"), $rows{$k}, "org $k: $rows{$k} contacts";
	}
	status_is tenant_create($admin, $ctx->{a}, 'projects', { name => "Runbook three $TAG" }), 201, 'org a: a project';
	status_is tenant_create($admin, $ctx->{a}, 'offices', { name => "Runbook three $TAG" }), 201, '  and an office';
	$ctx->{held} = create_org();
	status_is tenant_create($admin, $ctx->{held}, 'contacts', { name => "Runbook three held $TAG" }), 201, 'org held: a contact';
	$ctx->{uri} = sensitive('OPSD_DEDICATED_DB_URI (the database password in it)',
	    parse_env_file(var_dir() . '/opsd.env')->{OPSD_DEDICATED_DB_URI});
}

sub rb3_dry_run($op, $ctx) {
	my $org = $ctx->{a};
	my $r = call($op, POST => '/migration/start', { orgId => $org->{id}, direction => 'shared_to_dedicated', dryRun => $T,
	    chunkSize => 5000, reason => 'rehearsal' });
	status_is $r, 202, 'POST /migration/start {orgId, direction, dryRun: true, chunkSize, reason}';
	is_deeply [@{ j($r) }{qw(status dryRun)}], ['pending', $T], '  status pending, dryRun';
	$ctx->{dry} = j($r)->{id};
	my ($d) = rb3_watch($op, $org, qr/^completed$/, 60);
	is_deeply [@$d{qw(status dryRun)}], ['completed', $T], 'GET /migration/status/:orgId: completed, dryRun true' or diag explain $d;
	my %rows = map { ($_->{table} => $_->{targetRows}) } @{ $d->{report}{tables} // [] };
	is_deeply \%rows, { contacts => $RB3_ROWS, projects => 1, offices => 1 }, '  its report: the rows of each table, copied';
	ok !db_exists(j($r)->{dbName} // 'none'), '  what it created on the target is gone';
	is rb3_db_mode($org), 'shared', '  the org is still on the shared database';
}

sub rb3_start($op, $ctx) {
	my $org = $ctx->{a};
	my $r = call($op, POST => '/migration/start', { orgId => $org->{id}, direction => 'shared_to_dedicated', chunkSize => $RB3_CHUNK });
	status_is $r, 202, 'POST /migration/start {orgId, direction, chunkSize} (no reason)';
	is_deeply [@{ j($r) }{qw(chunkSize dryRun reason)}], [$RB3_CHUNK, JSON::PP::false, undef], "  chunkSize $RB3_CHUNK, no dry run, reason null";
	@$ctx{qw(mig db)} = @{ j($r) }{qw(id dbName)};
	my ($d, $seen) = rb3_watch($op, $org, qr/^ready_for_cutover$/, 90);
	is $d->{status}, 'ready_for_cutover', 'GET /migration/status/:orgId until ready_for_cutover' or diag explain $d;
	is $d->{verification}{ok}, $T, '  verification ok';
	my @copied = map { $_->{rowsCopied} // 0 } @$seen;
	my %between = map { ($_->{rowsCopied} => sprintf('%s %.0f%%', $_->{status}, $_->{percent})) }
	    grep { $_->{rowsCopied} && $_->{rowsCopied} < $RB3_ROWS } @$seen;
	my @between = map { $between{$_} } sort { $a <=> $b } keys %between;
	ok @between >= 2, '  the progress moved: ' . scalar(@between) . ' readings on the way, ' . join(' … ', @between[0, -1]);
	ok !(grep { $copied[$_] < $copied[$_ - 1] } 1 .. $#copied), '  rowsCopied never went back';
	is $d->{rowsCopied}, $RB3_ROWS + 2, "  every row copied ($d->{rowsCopied})";
	my @p = map { $_->{payload}{percent} } reverse @{ audit_all($op, action => 'migration.progress', targetId => $ctx->{mig}) // [] };
	# audited at the end of a copy step (up to a second each), once per 10 % reached
	ok @p && $p[-1] == 100 && !(grep { int($p[$_] / 10) <= int($p[$_ - 1] / 10) } 1 .. $#p),
	    "GET /audit?action=migration.progress&targetId=<it>: the percent rising to 100 (@p)";
	my $l = call($op, GET => '/migration?status=ready_for_cutover');
	status_is $l, 200, 'GET /migration?status=ready_for_cutover';
	ok((grep { $_->{id} eq $ctx->{mig} } items($l)), '  lists it');
}

sub rb3_rehearse($op, $ctx) {
	my $org = $ctx->{a};
	my $r = http(POST => '/migration/finalize', auth_of($op), json => { orgId => $org->{id}, dryRun => $T }, timeout => 40);
	status_is $r, 200, 'POST /migration/finalize {orgId, dryRun: true} at ready_for_cutover: the report';
	my $rep = j($r);
	is_deeply [@$rep{qw(ok switched status)}], [$T, JSON::PP::false, 'ready_for_cutover'], '  ok, switched false, still ready_for_cutover';
	is_deeply [map { $_->{step} } @{ $rep->{steps} // [] }], [qw(connect catch_up verify)], '  the target connected, caught up, verified';
	like $rep->{expectedFreezeMs} // '', qr/^\d+$/, "  expectedFreezeMs $rep->{expectedFreezeMs}";
	is rb3_status($op, $org)->{status}, 'ready_for_cutover', 'GET /migration/status/:orgId: still ready_for_cutover';
	is rb3_db_mode($org), 'shared', '  nothing switched';
	status_is tenant_create($admin, $org, 'contacts', { name => "Runbook three late $TAG" }), 201, '  the org writes on';
	is org_count_in('opsd', 'contacts', $org), $RB3_ROWS + 1, '  to the shared database';
}

sub rb3_finalize($op, $ctx) {
	my $org = $ctx->{a};
	my $r = call($op, POST => '/migration/finalize', { orgId => $org->{id} });
	status_is $r, 202, 'POST /migration/finalize {orgId}';
	my ($d) = rb3_watch($op, $org, qr/^completed$/, 60);
	is $d->{status}, 'completed', 'GET /migration/status/:orgId: completed' or diag explain $d;
	like $d->{freezeMs} // '', qr/^\d+$/, "  freezeMs $d->{freezeMs}";
	is rb3_db_mode($org), 'dedicated', '  the org is on its dedicated database';
	is org_count_in($ctx->{db}, 'contacts', $org), $RB3_ROWS + 1, "  $ctx->{db} holds every contact, the late one too";
	is org_count_in('opsd', 'contacts', $org), 0, '  the shared database none';
	is scalar(items(call($op, GET => "/orgs/$org->{id}/contacts?limit=100"))), 100, 'GET /orgs/:orgId/contacts reads them';
}

sub rb3_abort($op, $ctx) {
	my $b = $ctx->{b};
	my $db = 'org_rb3_' . lc $TAG;
	my $r = call($op, POST => '/migration/start', { orgId => $b->{id}, direction => 'shared_to_dedicated', dbName => $db });
	status_is $r, 202, 'POST /migration/start {orgId, direction, dbName}: another org';
	is j($r)->{dbName}, $db, "  into $db";
	$ctx->{aborted} = [j($r)->{id}];
	$r = call($op, POST => '/migration/abort', { orgId => $b->{id} });
	status_is $r, 202, 'POST /migration/abort {orgId}';
	like j($r)->{status} // '', qr/^(?:aborting|aborted)$/, '  aborting';
	my ($d) = rb3_watch($op, $b, qr/^aborted$/, 60);
	is_deeply [@$d{qw(status abortReason)}], ['aborted', undef], 'GET /migration/status/:orgId: aborted, abortReason null';
	ok !db_exists($db), '  the target cleaned';
	is org_count_in('opsd', 'contacts', $b), 500, '  the source untouched';
}

sub rb3_legal_hold($op, $ctx) {
	my $h = $ctx->{held};
	status_is call($op, POST => '/compliance/legal-hold', { entity => 'orgs', ids => [$h->{id}], hold => $T, reason => 'regulator request' }),
	    200, 'an org on legal hold';
	my $body = { orgId => $h->{id}, direction => 'shared_to_dedicated', targetUri => $ctx->{uri} };
	check_error(call($op, POST => '/migration/start', $body), 409, 'legal_hold', 'POST /migration/start {orgId, direction, targetUri}');
	check_error(call($op, GET => "/migration/status/$h->{id}"), 404, 'not_found', '  nothing started');
	my $r = call($op, POST => '/migration/start', { %$body, overrideLegalHold => $T });
	status_is $r, 202, '  with "overrideLegalHold": true';
	is j($r)->{overrideLegalHold}, $T, '  the status says so';
	push @{ $ctx->{aborted} }, j($r)->{id};
	my ($ev) = @{ audit_all($op, action => 'migration.legal_hold_override', orgId => $h->{id}) // [] };
	is $ev->{actorId}, $op->{id}, 'GET /audit?action=migration.legal_hold_override: by the operator';
	status_is call($op, POST => '/migration/abort', { orgId => $h->{id} }), 202, 'POST /migration/abort {orgId}';
	is((rb3_watch($op, $h, qr/^aborted$/, 60))[0]{status}, 'aborted', '  aborted');
}

sub rb3_lists($op, $ctx) {
	my %of = map { my $r = call($op, GET => "/migration?status=$_&limit=100"); status_is $r, 200, "GET /migration?status=$_";
	    ($_ => { map { ($_->{id} => 1) } items($r) }) } qw(completed aborted ready_for_cutover);
	ok $of{completed}{ $ctx->{dry} } && $of{completed}{ $ctx->{mig} }, 'completed: the dry run and the migration';
	ok !(grep { !$of{aborted}{$_} } @{ $ctx->{aborted} }), 'aborted: the two aborted ones';
	ok !$of{ready_for_cutover}{ $ctx->{mig} }, 'ready_for_cutover: no longer the finalized one';
	my $h = call($op, GET => "/migration/history?orgId=$ctx->{a}{id}");
	is_deeply [map { $_->{id} } items($h)], [$ctx->{mig}, $ctx->{dry}], 'GET /migration/history?orgId=…: both, newest first';
}

sub rb3_acceptance($op, $ctx) {
	my $ev = audit_all($op, action => 'migration.*', since => $ctx->{since});
	my %by;
	$by{ norm_id($_->{orgId} // '') }{ $_->{action} =~ s/^migration\.//r }++ for @{ $ev // [] };
	my %want = (
		a => { started => 2, dry_run_completed => 1, ready_for_cutover => 1, finalize_requested => 2, finalize_rehearsed => 1,
		    finalized => 1 },
		b => { started => 1, abort_requested => 1, aborted => 1 },
		held => { legal_hold_override => 1, started => 1, abort_requested => 1, aborted => 1 },
	);
	my %what = (a => 'the moved org (dry run, start, progress, rehearsal, finalize)', b => 'the aborted one',
	    held => 'the held one (override, start, abort)');
	for my $k (qw(a b held)) {
		my $got = $by{ norm_id($ctx->{$k}{id}) } // {};
		my $progress = delete $got->{progress} // 0;
		ok $progress >= 2, "GET /audit?action=migration.*&since=…: migration.progress for the moved org ($progress events)" if $k eq 'a';
		is_deeply $got, $want{$k}, "  and for $what{$k}: " . join(', ', map { "$_ $want{$k}{$_}" } sort keys %{ $want{$k} })
		    or diag explain $got;
	}
	my @mine = grep { $_->{action} =~ /^migration\.(?:started|finalize_requested|abort_requested|legal_hold_override)$/ } @{ $ev // [] };
	ok @mine == 9 && !(grep { ($_->{actorId} // '') ne $op->{id} } @mine), '  the requests (start, finalize, abort, override) by the operator';
	is_deeply [grep { index(json_encode($_), $ctx->{uri}) >= 0 } @{ $ev // [] }], [], '  no target password in any';
}

sub rb3_refused($role) {
	state $org = create_org();
	my $s = login_ok(create_user(role => $role, ($role =~ /^(?:org_admin|member)$/ ? (org => $org) : ())), "a fresh $role");
	for my $x (
		[POST => '/migration/start', { orgId => $org->{id}, direction => 'shared_to_dedicated', chunkSize => 1000 }],
		[GET => "/migration/status/$org->{id}"],
		[GET => '/migration?status=ready_for_cutover'],
		[GET => "/migration/history?orgId=$org->{id}"],
		[POST => '/migration/finalize', { orgId => $org->{id}, dryRun => $T }],
		[POST => '/migration/abort', { orgId => $org->{id} }],
	) {
		my ($m, $path, $body) = @$x;
		my $r = http($m => $path, session => $s, defined $body ? (json => $body) : ());
		check_error($r, 403, 'forbidden', "$m " . ($path =~ s/\?.*//r) . " as $role");
		is j($r)->{error}{details}{permission}, 'migration.run', '  details.permission migration.run';
	}
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($org) . "')"), 0, '  no migration recorded';
}

# ============================================================ runbook 4

my $ATTACKER = 1;   # 127.0.0.2, .3, …: one attacking address per pass
sub rb4_setup($op, $ctx) {
	my $addr = $ctx->{addr} = '127.0.0.' . ++$ATTACKER;
	$ctx->{agent} = agent_from($addr);
	$ctx->{since} = rfc3339_at(time - 1);
	$ctx->{org} = create_org();
	$ctx->{m} = fresh_member($ctx->{org}, 'the compromised member');
	$ctx->{c} = fresh_member($ctx->{org}, 'a colleague in the same org');
	$ctx->{b} = fresh_member(create_org(), 'a bystander in another org');
	# the attacker tries passwords, then uses the stolen one, from its address
	for my $n (1, 2) {
		my $bad = login($ctx->{m}{email}, "Guess-$TAG-$n", agent => $ctx->{agent});
		is $bad->{status}, 401, "from $addr: a wrong password for the member ($n)";
	}
	$ctx->{ms} = login($ctx->{m}{email}, $ctx->{m}{password}, agent => $ctx->{agent});
	ok $ctx->{ms}{cookie}, "from $addr: the stolen password signs in";
	$ctx->{mt} = token_of($ctx->{ms}, 'the member\'s token', agent => $ctx->{agent});
	$ctx->{cs} = login_ok($ctx->{c}, 'the colleague');
	$ctx->{ct} = token_of($ctx->{cs}, 'the colleague\'s token');
	$ctx->{bs} = login_ok($ctx->{b}, 'the bystander');
	$ctx->{bt} = token_of($ctx->{bs}, 'the bystander\'s token');
}

# Requests until at least 10 were refused (the bucket holds $BURST and
# refills 10 a second, so how many that takes depends on the machine's
# speed), at most 20 times the bucket. The answers, in order.
sub burst($request) {
	my @r;
	while (@r < 20 * $BURST) {
		push @r, $request->();
		last if @r >= 2 * $BURST && (grep { $_->{status} == 429 } @r) >= 10;
	}
	return @r;
}

sub rb4_burst($op, $ctx) {
	my @r = burst(sub { http(GET => '/auth/me', session => $ctx->{ms}, agent => $ctx->{agent}) });
	my @lim = grep { $_->{status} == 429 } @r;
	ok @lim >= 10, "a burst of " . scalar(@r) . " requests by the member from $ctx->{addr}: " . scalar(@lim) . ' get 429';
	check_error($lim[0] // {}, 429, 'rate_limited', '  the first refusal');
	is j($lim[0] // {})->{error}{details}{layer}, 'opsd', '  details.layer opsd';
	like $lim[0]{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '  Retry-After';
	is $lim[0]{headers}{'ratelimit-remaining'}, 0, '  RateLimit-Remaining 0';
	$ctx->{rid429} = $lim[0]{headers}{'x-request-id'};
	$ctx->{n429} = scalar @lim;
	status_is http(GET => '/auth/me', session => $ctx->{bs}), 200, 'another user passes meanwhile';
}

sub rb4_identify($op, $ctx) {
	my ($addr, $mid) = ($ctx->{addr}, $ctx->{m}{id});
	# the logs (README: the lines that show it)
	ok wait_until(3, sub { log_lines(event => 'rate_limited', source => 'user', sourceId => $mid) }),
	    'log/opsd.log: a rate_limited line with source user and the member\'s id';
	my @req = log_lines(event => 'request', remoteAddr => $addr, status => 429);
	is scalar(@req), $ctx->{n429}, "  and a request line with remoteAddr $addr and status 429 for each refusal";
	my @acc = grep { /"remote_addr":"\Q$addr\E"/ && /"status":429\b/ } split /\n/, logs('nginx-access.log');
	is scalar(@acc), $ctx->{n429}, 'log/nginx-access.log: "status":429 for each, from that address';
	# the audit search
	my $rl = audit_all($op, action => 'security.rate_limited', since => $ctx->{since});
	my ($ev) = grep { ($_->{targetId} // '') eq $mid } @{ $rl // [] };
	ok $ev, 'GET /audit?action=security.rate_limited: an event about the member';
	is_deeply [@{ $ev // {} }{qw(actorId ip targetType)}], [$mid, $addr, 'user'], '  by the member, from the address';
	my $by_ip = audit_all($op, ip => $addr, since => $ctx->{since});
	ok $by_ip && !(grep { $_->{ip} ne $addr } @$by_ip), "GET /audit?ip=$addr&since=…: only events from that address";
	my %n = %{ actions_of($by_ip) };
	is_deeply [@n{qw(auth.login_failed auth.login_succeeded auth.token_created security.rate_limited)}], [2, 1, 1, 1],
	    '  two failed logins, the sign-in, a token and the rate limit' or diag explain \%n;
	my ($in) = grep { $_->{action} eq 'auth.login_succeeded' } @{ $by_ip // [] };
	is $in->{actorId}, $mid, '  the sign-in names the user';
	my $u = call($op, GET => "/users/$mid");
	status_is $u, 200, 'GET /users/:id: who it is';
	is j($u)->{email}, $ctx->{m}{email}, '  the member';
	my $sec = audit_all($op, actor => $mid, action => 'security.*');
	is_deeply actions_of($sec), { 'security.rate_limited' => 1 }, "GET /audit?actor=<the member>&action=security.*";
	my $fails = audit_all($op, action => 'auth.login_failed', since => $ctx->{since});
	is scalar(grep { $_->{ip} eq $addr } @{ $fails // [] }), 2, 'GET /audit?action=auth.login_failed&since=…: two from the address';
	my $one = audit_all($op, requestId => $ctx->{rid429} // 'none');
	is_deeply [map { $_->{action} } @{ $one // [] }], ['security.rate_limited'], 'GET /audit?requestId=<the first 429\'s X-Request-Id>';
	my $csv = call($op, GET => '/audit?ip=' . uri_escape_all($addr) . "&since=$ctx->{since}&format=csv");
	status_is $csv, 200, 'GET /audit?ip=…&since=…&format=csv (for the incident report)';
	like $csv->{headers}{'content-type'} // '', qr{^text/csv}, '  text/csv';
	is scalar(@{ parse_csv($csv->{body})->{records} }), scalar(@{ $by_ip // [] }), '  a row per event under its header';
}

sub rb4_block($op, $ctx) {
	my $addr = $ctx->{addr};
	my $r = call($op, POST => '/security/blocklist', { cidr => $addr, reason => 'credential stuffing',
	    expiresAt => rfc3339_at(time + 86400) });
	status_is $r, 201, "POST /security/blocklist {cidr, reason, expiresAt}: $addr";
	$ctx->{block} = j($r)->{id};
	# opsd refuses it at once ("blocked"), nginx within seconds ("forbidden", its own 403)
	my @a = map { my $x = http(GET => '/auth/me', session => $ctx->{ms}, agent => $ctx->{agent});
	    "$x->{status} " . (j($x)->{error}{code} // '-') } 1 .. 20;
	is_deeply [grep { !/^403 (?:blocked|forbidden)$/ } @a], [],
	    "the address gets 403 at once, 20 times out of 20: no more 429" or diag "@a";
	like $a[0], qr/^403 blocked$/, '  the first from opsd itself';
	ok wait_until(10, sub { http(GET => '/console/', agent => $ctx->{agent})->{status} == 403 }, 0.1),
	    '  and within seconds from nginx (/console/, which opsd never sees)';
	my $login = http(POST => '/auth/login', agent => $ctx->{agent}, json => { email => $ctx->{m}{email}, password => $ctx->{m}{password} });
	check_error($login, 403, 'forbidden', '  signing in from it: nginx refuses it');
	ok((grep { ($_->{id} // '') eq ($ctx->{block} // '') } items(call($op, GET => '/security/blocklist'))),
	    'GET /security/blocklist lists the entry');
	status_is http(GET => '/auth/me', session => $ctx->{bs}), 200, 'other addresses pass';
}

sub rb4_contain($op, $ctx) {
	my ($mid, $org) = ($ctx->{m}{id}, $ctx->{org});
	# a plain flush: the member's sessions end, its API token does not
	my $r = call($op, POST => '/security/sessions/flush', { scope => 'user', id => $mid });
	status_is $r, 200, 'POST /security/sessions/flush {scope user, id}';
	ok((j($r)->{flushed} // 0) >= 1, '  flushed its session');
	check_error(me($ctx->{ms}), 401, 'unauthenticated', 'the member\'s flushed session');
	status_is http(GET => '/auth/me', bearer => $ctx->{mt}{token}), 200, '  its API token survives a plain flush';
	$r = call($op, POST => '/security/tokens/revoke', { userId => $mid, reason => 'INC-42' });
	status_is $r, 200, 'POST /security/tokens/revoke {userId, reason}';
	is_deeply [@{ j($r) }{qw(scope revoked)}], ['user', 1], '  scope user, revoked 1';
	is http(GET => '/auth/me', bearer => $ctx->{mt}{token})->{status}, 401, '  the member\'s token: 401';
	# one leaked token
	$r = call($op, POST => '/security/tokens/revoke', { tokenId => $ctx->{bt}{id} });
	status_is $r, 200, 'POST /security/tokens/revoke {tokenId}';
	is j($r)->{revoked}, 1, '  revoked 1';
	is http(GET => '/auth/me', bearer => $ctx->{bt}{token})->{status}, 401, '  that token: 401';
	status_is me($ctx->{bs}), 200, '  its owner\'s session goes on';
	# the org: sessions and API tokens in one go
	$r = call($op, POST => '/security/sessions/flush', { scope => 'org', id => $org->{id}, tokens => $T });
	status_is $r, 200, 'POST /security/sessions/flush {scope org, id, tokens: true}';
	ok((j($r)->{flushed} // 0) >= 1 && (j($r)->{tokensRevoked} // 0) >= 1, '  flushed and tokensRevoked');
	check_error(me($ctx->{cs}), 401, 'unauthenticated', 'the colleague\'s flushed session');
	is http(GET => '/auth/me', bearer => $ctx->{ct}{token})->{status}, 401, '  and token: 401';
	status_is me($ctx->{bs}), 200, 'the bystander in another org is untouched';
	# the account
	$r = call($op, POST => "/security/users/$mid/disable", { reason => 'INC-42 phished' });
	status_is $r, 200, 'POST /security/users/:id/disable {reason}';
	is j($r)->{changed}, $T, '  changed';
	is login($ctx->{m}{email}, $ctx->{m}{password})->{status}, 401, '  the member cannot sign in';
	# the affected org, frozen
	$r = call($op, POST => '/compliance/legal-hold', { entity => 'orgs', ids => [$org->{id}], hold => $T, reason => 'INC-42' });
	status_is $r, 200, 'POST /compliance/legal-hold {entity orgs, ids, hold, reason}';
	is_deeply [map { $_->{result} } @{ j($r)->{results} // [] }], ['held'], '  held';
}

sub rb4_review($op, $ctx) {
	my $mine = audit_all($op, actor => $op->{id}, since => $ctx->{since});
	my $n = actions_of($mine);
	is_deeply [@$n{qw(security.blocklist_added security.sessions_flushed security.tokens_revoked user.disabled
	    compliance.legal_hold_set)}], [1, 2, 2, 1, 1],
	    'GET /audit?actor=<the security admin>: the block, two flushes, two revocations, the disable, the hold'
	    or diag explain $n;
	ok !(grep { ($_->{actorId} // '') ne $op->{id} } @$mine), '  each with the security admin as actor';
	my %by = map { ($_->{action} => $_) } @{ $mine // [] };
	is $by{'user.disabled'}{targetId}, $ctx->{m}{id}, '  user.disabled names the member';
	is_deeply [@{ $by{'compliance.legal_hold_set'} // {} }{qw(targetType)}, $by{'compliance.legal_hold_set'}{payload}{ids}],
	    ['orgs', [$ctx->{org}{id}]], '  compliance.legal_hold_set names the org';
	my ($with) = grep { $_->{action} eq 'security.sessions_flushed' && $_->{payload}{tokens} } @$mine;
	ok $with && ($with->{payload}{tokensRevoked} // 0) >= 1, '  the org flush says tokens: true with tokensRevoked';
	my $text = json_encode($mine // []);
	ok !(grep { index($text, $_) >= 0 } map { $ctx->{$_}{token} } qw(mt ct bt)), '  no token value in any event';
	my $all = audit_all($op, action => 'security.*', since => $ctx->{since});
	ok scalar(grep { ($_->{actorId} // '') eq $op->{id} } @{ $all // [] }) >= 5, 'GET /audit?action=security.*&since=… shows them too';
	my $v = call($op, GET => '/audit/verify');
	is_deeply [@{ j($v) }{qw(ok)}], [$T], 'GET /audit/verify: ok';
}

sub rb4_after($op, $ctx) {
	my $mid = $ctx->{m}{id};
	my $r = call($op, POST => "/security/users/$mid/enable", {});
	status_is $r, 200, 'after the incident: POST /security/users/:id/enable {}';
	my $s = login($ctx->{m}{email}, $ctx->{m}{password});
	ok $s->{cookie}, '  the member signs in again';
	status_is call($op, DELETE => "/security/blocklist/$ctx->{block}"), 200, 'DELETE /security/blocklist/:id lifts the block';
	ok wait_until(10, sub { http(GET => '/auth/me', agent => $ctx->{agent})->{status} == 401 }, 0.1),
	    "  $ctx->{addr} reaches opsd again within seconds (401 without a session), through nginx too";
	my $t = token_of($s, 'a new token of the member');
	$r = call($op, POST => '/security/tokens/revoke', { all => $T, reason => 'INC-42' });
	status_is $r, 200, 'POST /security/tokens/revoke {all: true, reason}';
	is j($r)->{scope}, 'all', '  scope all';
	ok((j($r)->{revoked} // 0) >= 1, '  revoked every token');
	is http(GET => '/auth/me', bearer => $t->{token})->{status}, 401, '  the new token too';
	my $n = actions_of(audit_all($op, actor => $op->{id}, since => $ctx->{since}));
	is_deeply [@$n{qw(user.enabled security.blocklist_removed security.tokens_revoked)}], [1, 1, 3],
	    'the audit log has user.enabled, security.blocklist_removed and the third revocation';
}

# ============================================================ runbook 5

my $MAILS = 0;
sub mail_to($label, $domain) { return sensitive("runbook 5: $label", sprintf('ops-%s-%d@%s', $TAG, ++$MAILS, $domain)) }
sub mask($addr) { return substr($addr, 0, 1) . '***' . substr($addr, index($addr, '@')) }
sub rb5_verify($op, $ctx) {
	# the settings the outbox uses, as JSON (README "Runbook 5" step 1)
	my $r = call($op, GET => '/email/settings');
	status_is $r, 200, 'GET /email/settings';
	my $st = j($r);
	is_deeply [@$st{qw(server port secure user from caFile)}], ['localhost', $peer->port, 'starttls', 'opsd-mailer',
	    'opsd@example.test', $ca->{ca}], '  server, port, secure, user, from and caFile as opsd.env sets them';
	is $st->{passwordSet}, $T, '  passwordSet true';
	is $st->{testMode}, $T, '  testMode true';
	ok((grep { $_ eq '@allowed.test' } @{ $st->{allowlist} // [] }), '  the allowlist holds @allowed.test');
	ok !exists $st->{password} && index($r->{body}, $SMTP_PASS) < 0, '  never the password';
	# a test message from the host, through the outbox, followed until sent
	my $to = mail_to('opsctl email test --wait, allowlisted', 'allowed.test');
	my ($rc, $out, $err) = opsctl('email', 'test', '--to', $to, '--wait');
	is $rc, 0, 'opsctl email test --to <allowlisted> --wait: exit 0' or diag "$out$err";
	my ($id) = $out =~ /^queued: \Q$to\E \(outbox ([0-9a-f-]{36})\)$/m;
	ok $id, '  queued, with its outbox id' or diag $out;
	$id //= 'none';
	like $out, qr/^sent: \Q$to\E via localhost:${\ $peer->port } \(starttls, auth\)$/m, '  then sent, over STARTTLS with AUTH';
	my @m = $peer->wait_messages(1, 20, to => $to);
	is scalar(@m), 1, '  the SMTP peer received it';
	ok $m[0]{tls}, '  over STARTTLS';
	is $m[0]{auth_user}, 'opsd-mailer', '  signed in as SMTP_USER';
	is $m[0]{mail_from}, 'opsd@example.test', '  from SMTP_FROM';
	# acceptance: "audit/logs show send attempts", this one included
	my $ev = [];
	wait_until(8, sub { $ev = audit_all($op, action => 'email.*', targetId => $id) // []; grep { $_->{action} eq 'email.sent' } @$ev }, 0.3);
	my %by = map { ($_->{action} => $_) } @$ev;
	is_deeply [sort keys %by], [qw(email.sent email.test_requested)], "GET /audit?action=email.*&targetId=<its id>: the request and the attempt";
	is $by{'email.test_requested'}{actorLabel}, 'cli:root', '  email.test_requested by cli:root';
	is_deeply $by{'email.test_requested'}{payload}, { status => 'queued' }, '  {"status":"queued"}, never the address';
	my ($cli) = grep { ($_->{targetId} // '') eq $id } @{ audit_all($op, actor => 'cli:root', action => 'email.test_requested') // [] };
	ok $cli, '  GET /audit?actor=cli:root finds it';
	ok !(grep { index(lc json_encode($_), lc $to) >= 0 } @$ev), '  no event holds the address';
	my @l;
	ok wait_until(3, sub { @l = log_lines(event => 'email.sent', outboxId => $id) }, 0.1), 'log/opsd.log: an email.sent line for it';
	is $l[0]{to}, mask($to), '  the address masked' if @l;
}

sub rb5_test_mode($op, $ctx) {
	my $st = j(call($op, GET => '/email/settings'));
	is $st->{testMode}, $T, 'GET /email/settings: testMode true (a test stack)';
	is_deeply $st->{allowlist}, ['allowed@example.test', '@allowed.test'], '  allowlist: TEST_EMAIL_ALLOWLIST entry by entry';
	my $to = mail_to('opsctl email test, not allowlisted', 'example.com');
	my ($rc, $out) = opsctl('email', 'test', '--to', $to);
	is $rc, 1, 'opsctl email test --to <not allowlisted>: exit 1';
	like $out, qr/^suppressed: /m, '  suppressed';
	$ctx->{opsctl_suppressed} = $to;
}

sub rb5_outbox($op, $ctx) {
	my %to = (ok => mail_to("allowlisted, $op->{who}", 'allowed.test'), no => mail_to("not allowlisted, $op->{who}", 'example.com'));
	$ctx->{since} = rfc3339_at(time - 1);
	my %id;
	for my $k (qw(ok no refused)) {
		my $r = call($op, POST => '/email/test', { to => $to{$k} // $ADDR{refused} });
		status_is $r, 202, "POST /email/test {to}: the $k address";
		is j($r)->{status}, $k eq 'no' ? 'suppressed' : 'queued', '  ' . ($k eq 'no' ? 'suppressed' : 'queued');
		$id{$k} = j($r)->{id} // 'none';
	}
	my @m = $peer->wait_messages(1, 20, to => $to{ok});
	is scalar(@m), 1, 'the allowlisted message reaches the SMTP peer';
	my $listed = sub ($status, $id) {
		my $found;
		wait_until(20, sub { ($found) = grep { $_->{id} eq $id } items(call($op, GET => "/email/outbox?status=$status")); $found }, 0.3);
		return $found;
	};
	ok $listed->('sent', $id{ok}), 'GET /email/outbox?status=sent shows it sent';
	my $sup = $listed->('suppressed', $id{no});
	ok $sup && $sup->{attempts} == 0, 'GET /email/outbox?status=suppressed shows the other, never attempted';
	my $f = $listed->('failed', $id{refused});
	ok $f, 'GET /email/outbox?status=failed shows the refused one';
	like $f->{lastError} // '', qr/\b550\b|rcpt/i, '  lastError says which step';
	my $r = call($op, POST => "/email/outbox/$id{refused}/retry");
	status_is $r, 200, 'POST /email/outbox/:id/retry (no body)';
	is j($r)->{status}, 'queued', '  queued again';
	ok $listed->('failed', $id{refused}), '  tried again, failed again';
	$ctx->{to} = \%to;
	$ctx->{id} = \%id;
}

sub rb5_acceptance($op, $ctx) {
	my %id = %{ $ctx->{id} };
	my $ev = audit_all($op, action => 'email.*', since => $ctx->{since});
	my %of = map { my $a = $_; ($a => [map { $_->{targetId} } grep { $_->{action} eq $a } @{ $ev // [] }]) }
	    qw(email.sent email.suppressed email.failed);
	ok((grep { $_ eq $id{ok} } @{ $of{'email.sent'} }), 'GET /audit?action=email.*: email.sent for the allowlisted message');
	ok((grep { $_ eq $id{no} } @{ $of{'email.suppressed'} }), '  email.suppressed for the other');
	is scalar(grep { $_ eq $id{refused} } @{ $of{'email.failed'} }), 2, '  email.failed for each attempt at the refused one';
	for my $k (qw(ok no refused)) {
		my $e = { ok => 'email.sent', no => 'email.suppressed', refused => 'email.failed' }->{$k};
		my @l = log_lines(event => $e, outboxId => $id{$k});
		ok @l >= 1, "log/opsd.log: an $e line for the $k message";
		is $l[0]{to}, mask($ctx->{to}{$k} // $ADDR{refused}), '  the address masked' if @l;
	}
	# no real sends in test stacks
	is scalar($peer->messages_to($ctx->{to}{no})), 0, 'the SMTP peer never saw the non-allowlisted address';
	is scalar($peer->messages_to($ctx->{opsctl_suppressed})), 0, '  nor the one opsctl was asked for';
	is_deeply [map { $_->{rcpt} } grep { ($_->{rcpt} // '') =~ /\@example\.com$/ } $peer->events(event => 'rcpt')], [],
	    '  not even as a recipient';
}

# ============================================================ runbook 6

sub scrape($op, $path = '/metrics') {
	return fcgi_http(GET => $path, remote_addr => $OFF_HOST,
	    $op->{bearer} ? (bearer => $op->{bearer}) : (cookie => $op->{session}{cookie}));
}
# "name{a="x",b="y"}" => value, labels sorted.
sub samples($text) {
	my %s;
	for (split /\n/, $text // '') {
		next if /^#/ || !/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;
		my ($name, $l, $v) = ($1, $2 // '', $3);
		my %l = $l =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		$s{ series($name, %l) } = $v;
	}
	return \%s;
}
sub series($name, %l) { return $name . (%l ? '{' . join(',', map { qq{$_="$l{$_}"} } sort keys %l) . '}' : '') }
sub labels_of($series) { return { $series =~ /(\w+)="((?:[^"\\]|\\.)*)"/g } }

sub rb6_off_host($op, $ctx) {
	check_error(fcgi_http(GET => '/metrics', remote_addr => $OFF_HOST), 401, 'unauthenticated',
	    "GET /metrics from $OFF_HOST without credentials");
	my $m = scrape($op);
	status_is $m, 200, "GET /metrics from $OFF_HOST with the $op->{who}'s session";
	like $m->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4}, '  Prometheus text format';
	my $s = scrape($op, '/status?full');
	status_is $s, 200, 'GET /status?full';
	ok ref j($s)->{processes} eq 'ARRAY', '  lists the workers';
}

# Every opsd_* series conf/prometheus/alerts.yml reads, with its exact (=)
# and regex (=~) matchers; job and instance are Prometheus' own labels.
# README "Runbook 6": the families with a fixed label set have every series
# at 0 before its first event, so every matcher must find one there.
my %FIXED = map { $_ => 1 } qw(opsd_emails_total opsd_migrations_total opsd_rate_limited_total opsd_audit_events_total);
sub alert_selectors() {
	my $text = slurp(repo_root() . '/conf/prometheus/alerts.yml') // '';
	my (@sel, %seen);
	for my $expr ($text =~ /^\s*expr:\s*(\|[^\n]*\n(?:\s{10,}[^\n]*\n)+|[^\n]+)/mg) {
		while ($expr =~ /\b(opsd_\w+)(?:\{([^}]*)\})?/g) {
			my ($name, $m) = ($1, $2 // '');
			my @m;
			while ($m =~ /(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g) {
				my ($l, $how, $v) = ($1, $2, $3);
				$v =~ s/\\(.)/$1/g;   # a PromQL string: "security\\." is the regex security\.
				push @m, [$l, $how, $v] if ($how eq '=' || $how eq '=~') && $l ne 'job' && $l ne 'instance';
			}
			# only the families with a fixed label set are there before their first event
			@m = grep { $_->[1] eq '=' || $FIXED{$name} } @m;
			my $key = $name . join '', map { "$_->[0]$_->[1]\"$_->[2]\"" } @m;
			push @sel, [$name, \@m] unless $seen{$key}++;
		}
	}
	return @sel;
}

sub rb6_alert_series($op, $ctx) {
	my $s = samples(scrape($op)->{body});
	my @sel = alert_selectors();
	ok @sel >= 15, scalar(@sel) . ' selectors of opsd series in conf/prometheus/alerts.yml';
	for my $sel (@sel) {
		my ($name, $m) = @$sel;
		my @have = grep {
			my $l = labels_of($_);
			!grep { my ($k, $how, $v) = @$_; !defined $l->{$k} || ($how eq '=' ? $l->{$k} ne $v : $l->{$k} !~ /^(?:$v)$/) } @$m
		} grep { /^\Q$name\E(?:\{|$)/ } keys %$s;
		ok @have, "/metrics has $name" . (@$m ? '{' . join(',', map { "$_->[0]$_->[1]\"$_->[2]\"" } @$m) . '}' : '')
		    . ' (' . scalar(@have) . ' series)';
	}
}

sub rb6_org() { state $org = create_org(); return $org }
sub rb6_wait_migration($org, $want, $timeout) {
	my $d = {};
	wait_until($timeout, sub { $d = j(migration_status($admin, $org->{id})); ($d->{status} // '') =~ $want || ($d->{status} // '') =~ /^(?:completed|aborted|failed)$/ }, 0.25);
	return $d;
}

# The actions runbook 6's alerts watch for, each with the series it must move
# and by how much; done by the harness superadmin or other users.
my @ACTIONS = (
	['a request' => sub ($op) {
		status_is call($op, GET => '/auth/me'), 200, 'GET /auth/me';
		return { series('opsd_http_requests_total', route => 'auth_me', status => '200') => 1 };
	}],
	['a burst of one user (OpsdRateLimitedSpike)' => sub ($op) {
		my $u = create_user(role => 'member', org => rb6_org());
		my $s = login_ok($u, 'a member');
		my $n = grep { $_->{status} == 429 } burst(sub { http(GET => '/auth/tokens', session => $s) });
		ok $n >= 10, "  a burst: $n answers 429";
		return { series('opsd_rate_limited_total', layer => 'opsd', route => 'tokens_list') => $n,
		    series('opsd_audit_events_total', action => 'security.rate_limited') => 1 };
	}],
	['a failed login (OpsdLoginFailures)' => sub ($op) {
		is login('nobody-' . $TAG . '@example.test', "Wrong-$TAG-pw")->{status}, 401, 'a wrong password';
		return { series('opsd_audit_events_total', action => 'auth.login_failed') => 1 };
	}],
	['a flush (OpsdSecurityAction)' => sub ($op) {
		my $u = create_user(role => 'member', org => rb6_org());
		status_is http(POST => '/security/sessions/flush', session => $admin, json => { scope => 'user', id => $u->{id} }), 200, 'a flush';
		return { series('opsd_audit_events_total', action => 'security.sessions_flushed') => 1 };
	}],
	['a publish and an acceptance (OpsdLegalDocumentPublished)' => sub ($op) {
		my $v = "rb6-$op->{role}-" . run_num();
		status_is legal_publish($admin, type => 'privacy', version => $v, content => "Privacy $v\n"), 201, "privacy $v published";
		status_is legal_accept($admin, 'privacy', $v), 200, '  and accepted';
		return { map { series('opsd_audit_events_total', action => $_) => 1 } qw(legal.updated legal.accepted) };
	}],
	['a hold set and released (OpsdLegalHoldChanged)' => sub ($op) {
		my $org = create_org();
		for my $hold (1, 0) {
			status_is http(POST => '/compliance/legal-hold', session => $admin, json => { entity => 'orgs', ids => [$org->{id}],
			    hold => $hold ? $T : JSON::PP::false, reason => 'runbook 6' }), 200, $hold ? 'a hold' : '  released';
		}
		return { map { series('opsd_audit_events_total', action => $_) => 1 } qw(compliance.legal_hold_set compliance.legal_hold_released) };
	}],
	['a refused email (OpsdEmailSendFailures)' => sub ($op) {
		my $r = email_test_post($ADDR{refused});
		status_is $r, 202, 'POST /email/test to an address the SMTP peer refuses';
		my $row = wait_outbox_row(j($r)->{id}, 20, sub ($x) { $x->{status} eq 'failed' });
		is $row->{status}, 'failed', '  failed';
		return { series('opsd_emails_total', outcome => 'failed') => 1 };
	}],
	['a migration that fails (OpsdMigrationFailed)' => sub ($op) {
		my $org = create_org();
		status_is tenant_create($admin, $org, 'contacts', { name => "Runbook six $TAG" }), 201, 'an org with a contact';
		my $s = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated', reason => 'runbook 6');
		status_is $s, 202, 'a migration starts';
		my ($mig, $db) = (j($s)->{id} // 'none', j($s)->{dbName} // 'none');
		is rb6_wait_migration($org, qr/^ready_for_cutover$/, 60)->{status}, 'ready_for_cutover', '  ready_for_cutover';
		ok defined mysql("DROP TABLE `$db`.contacts"), '  its target loses the contacts table';
		status_is tenant_create($admin, $org, 'contacts', { name => "Runbook six later $TAG" }), 201, '  the org writes on';
		is rb6_wait_migration($org, qr/^failed$/, 60)->{status}, 'failed', '  the migration fails';
		status_is migration_abort($admin, orgId => $org->{id}, migrationId => $mig, reason => 'runbook 6 cleanup'), 202,
		    '  (abort naming it cleans the target)';
		is rb6_wait_migration($org, qr/^aborted$/, 30)->{status}, 'aborted', '  aborted';
		return { series('opsd_migrations_total', status => 'failed') => 1 };
	}],
);

sub rb6_counters($op, $ctx) {
	my $m0 = samples(scrape($op)->{body});
	my %want;
	for my $a (@ACTIONS) {
		my ($name, $code) = @$a;
		note "action: $name";
		my $w = $code->($op);
		$want{$_} += $w->{$_} for keys %$w;
	}
	my $m1 = samples(scrape($op)->{body});
	for my $k (sort keys %want) {
		ok exists $m0->{$k}, "$k is on /metrics before the action";
		is(($m1->{$k} // 0) - ($m0->{$k} // 0), $want{$k}, "  and moves by $want{$k}");
	}
}

sub rb6_refused($role) {
	my $u = create_user(role => $role, ($role =~ /^(?:org_admin|member)$/ ? (org => rb6_org()) : ()));
	my $s = login_ok($u, "a fresh $role");
	for my $path ('/metrics', '/status') {
		my $r = fcgi_http(GET => $path, remote_addr => $OFF_HOST, cookie => $s->{cookie});
		check_error($r, 403, 'forbidden', "GET $path from $OFF_HOST as $role");
		is j($r)->{error}{details}{permission}, 'system.status', '  details.permission system.status';
	}
}

# ============================================================ the runbooks

# n, title, the roles that perform it (README "Runbook n"), setup of each
# pass, the steps in order, and what follows the passes.
my @RUNBOOKS = (
	{ n => 1, title => 'legal documents, update and enforcement', roles => [qw(superadmin platform_admin)],
	  setup => \&rb1_setup,
	  steps => [
		['1. publish the new version' => \&rb1_publish],
		['2. require acceptance: LEGAL_ENFORCE=1 and a reload' => \&rb1_enforce],
		['a pending member is held, the legal routes answer, the member accepts' => \&rb1_member],
		['acceptance' => \&rb1_acceptance],
	  ],
	  # later runbooks' fresh users have accepted nothing
	  after => sub { set_legal_enforce(0) } },
	{ n => 2, title => 'compliance and data-subject requests', roles => [qw(compliance compliance_officer security_admin superadmin)],
	  once => \&rb2_once, setup => \&rb2_setup,
	  steps => [
		['1. identify the records: subject search in every database, lists, records, exports' => \&rb2_identify],
		['2. freeze: a record and a whole org on legal hold' => \&rb2_freeze],
		['3. redact: strip-pii, held records refused' => \&rb2_redact],
		['4. archive: olderThan as a dry run, then by ids' => \&rb2_archive],
		['5. confirm: audit events, the chain, exports redacted, no PII anywhere' => \&rb2_confirm],
		['the matter closes: holds released, the rest stripped' => \&rb2_release],
	  ],
	  refused => [qw(platform_admin org_admin member)], refused_step => \&rb2_refused },
	{ n => 3, title => 'tenant migration', roles => ['superadmin'],
	  setup => \&rb3_setup,
	  steps => [
		['1. rehearse: a dry run ends completed' => \&rb3_dry_run],
		['2. start with the runbook\'s fields, monitor until ready_for_cutover' => \&rb3_start],
		['3. dry-run before cutover: the cut-over rehearsed, nothing switched' => \&rb3_rehearse],
		['4. finalize' => \&rb3_finalize],
		['5. abort another migration' => \&rb3_abort],
		['legal hold respected unless overridden' => \&rb3_legal_hold],
		['GET /migration?status=… and the history list them' => \&rb3_lists],
		['acceptance: the audit events of each' => \&rb3_acceptance],
	  ],
	  refused => [qw(platform_admin security_admin compliance compliance_officer org_admin member)], refused_step => \&rb3_refused },
	{ n => 4, title => 'incident response', roles => [qw(security_admin superadmin)],
	  setup => \&rb4_setup,
	  steps => [
		['1. see it: a burst gets 429' => \&rb4_burst],
		['1. identify the source (IP, user): audit search and logs' => \&rb4_identify],
		['3. block the address' => \&rb4_block],
		['4. contain the accounts and hold the org' => \&rb4_contain],
		['acceptance: the audit log shows the containment actions' => \&rb4_review],
		['after the incident: enable, unblock, revoke every token' => \&rb4_after],
	  ] },
	{ n => 5, title => 'email delivery', roles => ['platform_admin', 'superadmin', 'platform_admin token'],
	  steps => [
		['1. verify the SMTP settings: GET /email/settings, opsctl email test --wait' => \&rb5_verify],
		['2. test mode is on outside production' => \&rb5_test_mode],
		['3. the allowlist and the outbox' => \&rb5_outbox],
		['acceptance: sent, attempts in audit and logs, nothing real' => \&rb5_acceptance],
	  ] },
	{ n => 6, title => 'monitoring and alerts', roles => [qw(superadmin platform_admin security_admin)],
	  steps => [
		['/metrics and /status off the host need system.status' => \&rb6_off_host],
		['every series the alerts read is on /metrics' => \&rb6_alert_series],
		['the counters move after the matching action' => \&rb6_counters],
	  ],
	  refused => [qw(compliance compliance_officer org_admin member)], refused_step => \&rb6_refused },
);

my %ONLY = map { $_ => 1 } split /,/, $ENV{OPSD_TEST_RUNBOOKS} // '';
for my $rb (grep { !%ONLY || $ONLY{ $_->{n} } } @RUNBOOKS) {
	subtest "Runbook $rb->{n}: $rb->{title}" => sub {
		subtest 'before the passes' => sub { $rb->{once}->() } if $rb->{once};
		for my $who (@{ $rb->{roles} }) {
			subtest "performed by $who" => sub {
				admin_accepts_pending();
				my $op = operator($who);
				my $ctx = {};
				$rb->{setup}->($op, $ctx) if $rb->{setup};
				for my $step (@{ $rb->{steps} }) {
					my ($name, $code) = @$step;
					subtest $name => sub { $code->($op, $ctx) };
				}
			};
		}
		for my $role (@{ $rb->{refused} // [] }) {
			subtest "refused to $role" => sub { $rb->{refused_step}->($role) };
		}
		$rb->{after}->() if $rb->{after};
	};
	note sprintf 'runbook %d done after %.0f s', $rb->{n}, time - $^T;
}

finish();
