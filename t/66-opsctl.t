#!/usr/bin/perl
# opsctl on the host (README "opsctl on the host", opsctl(8)). First, without
# a stack: every command `opsctl help` lists has its heading in
# man/opsctl.8, and the man page documents no command help does not list.
# Then runbooks 1, 2 and 4 performed with opsctl as root (the default
# principal cli:root, superadmin): legal publish and report, compliance
# hold/strip/archive/export with the results visible through the API, the
# same JSON as the API's answers and audit events whose actor is cli:root;
# sessions flush and blocklist add/list/remove. The permission model: a
# principal without the command's permission (OPSD_CLI_ROLES mapping root
# to a narrower role, root mapped to nothing, and nobody run through
# setpriv) exits 3 with "opsctl: cli:<user> lacks <perm>" and writes
# nothing; the grant rule of user create; OPSD_CLI_ROLES bad values (exit 2,
# and opsd --check-config refuses them); bad input to the new commands
# writes nothing. Email commands are in t/70 and t/71 (they need an SMTP
# peer).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use OpsdTest;

# ================================================================ help vs man page
{
	my $r = run_cmd(cmd => [opsctl_bin(), 'help'], tag => 'opsctl-help', timeout => 30);
	is $r->{rc}, 0, 'opsctl help exits 0';
	my ($list) = $r->{out} =~ /^commands:\n(.*?)\n\n/ms;
	my @help = map { /^  (\S+(?: \S+)*?)(?: {2,}|$)/ ? $1 : () } split /\n/, $list // '';
	cmp_ok scalar(@help), '>=', 25, 'opsctl help lists the commands (' . scalar(@help) . ')';
	my $man = slurp(repo_root() . '/man/opsctl.8') // '';
	my ($commands) = $man =~ /^\.SH COMMANDS\n(.*?)^\.SH /ms;
	ok $commands, 'man/opsctl.8 has a COMMANDS section';
	# A command's heading there: ".TP" then ".B <words>", the words before
	# the first option; troff escapes (\-, \fI...) undone.
	my %man;
	while (($commands // '') =~ /^\.TP\n\.B ([^\n]+)/mg) {
		(my $h = $1) =~ s/\\f[BIRP]//g;
		$h =~ s/\\-/-/g;
		my @w = split ' ', $h;
		my @name = (shift @w);
		push @name, shift @w while @w && $w[0] !~ /^[-\[(]/;
		$man{"@name"} = 1;
	}
	my @missing = grep { !$man{$_} } @help;
	ok @help && !@missing, 'man/opsctl.8 has a heading for every command of opsctl help'
	    or diag "missing in man/opsctl.8: @missing";
	my %help = map { $_ => 1 } @help;
	my @stale = grep { !$help{$_} } sort keys %man;
	ok !@stale, 'and documents no command that opsctl help does not list' or diag "not in help: @stale";
	like $man, qr/^\.SH EXIT STATUS\n(?:.*\n)*?^3\n/m, 'the man page documents exit status 3';
	like $man, qr/^\.B OPSD_CLI_ROLES\n/m, 'and OPSD_CLI_ROLES';
	like $r->{out}, qr/3 permission missing/, 'opsctl help states exit status 3';
}

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in';

# opsctl's JSON output, decoded ({} when it is not JSON)
sub out_json($out) { my $v = json_decode($out // ''); return ref $v ? $v : {} }
sub actor_of($action, $target = undef) {
	my @e = audit_rows($action, defined $target ? (target_id => $target) : ());
	return @e ? $e[-1]{actor_label} : undef;
}
my $TMP = stack()->{tmp};

# opsd_audit_events_total by action, as /metrics shows it now.
sub audit_counters() {
	my $m = http(GET => '/metrics');
	return { map { /^opsd_audit_events_total\{action="([^"]+)"\} (\d+)$/ ? ($1 => $2) : () } split /\n/, $m->{body} // '' };
}
my $counters0 = audit_counters();
ok exists $counters0->{'legal.updated'}, '/metrics has opsd_audit_events_total{action="legal.updated"} before opsctl acts';

# ================================================================ runbook 1
{
	my $file = "$TMP/terms-t66.md";
	open my $fh, '>', $file or die "$file: $!";
	print {$fh} "# Terms\n\nThese terms were published from the host.\n";
	close $fh;
	my ($rc, $out, $err) = opsctl('legal', 'publish', '--type', 'terms', '--version', '2026-t66', '--file', $file);
	is $rc, 0, 'opsctl legal publish exits 0' or diag "$out$err";
	like $out, qr/^published terms 2026-t66 \(current\)$/m, 'it says what it published';
	my $doc = legal_get('terms');
	is j($doc)->{version}, '2026-t66', 'GET /legal/terms shows the new version';
	is actor_of('legal.updated'), 'cli:root', 'legal.updated is audited with actor cli:root';

	my $api = http(GET => '/legal/acceptance/report?type=terms', session => $admin);
	status_is($api, 200, 'GET /legal/acceptance/report?type=terms');
	($rc, $out, $err) = opsctl('legal', 'report', '--type', 'terms');
	is $rc, 0, 'opsctl legal report --type terms exits 0' or diag $err;
	is_deeply out_json($out), j($api), 'it prints what GET /legal/acceptance/report answers';
	# two more users, so that the pending list has a second page
	create_user(role => 'platform_admin') for 1 .. 2;
	($rc, $out) = opsctl('legal', 'report', '--type', 'terms', '--version', '2026-t66', '--limit', '1');
	is $rc, 0, 'legal report --version --limit 1 exits 0';
	my $rep = out_json($out);
	is $rep->{version}, '2026-t66', 'for the version asked';
	ok @{ $rep->{pendingUsers}{items} // [] } <= 1, 'one pending user a page';
	ok defined $rep->{pendingUsers}{nextCursor}, 'with a nextCursor (three users pending)';
	($rc, $out) = opsctl('legal', 'report', '--type', 'terms', '--version', '2026-t66', '--limit', '1',
	    '--cursor', $rep->{pendingUsers}{nextCursor} // 'none');
	is $rc, 0, 'the next page with --cursor';
	my $next = out_json($out)->{pendingUsers}{items} // [];
	is scalar(@$next), 1, '  holds the next pending user';
	isnt $next->[0]{id} // '', $rep->{pendingUsers}{items}[0]{id} // '', '  another one';
	for my $bad (['--type', 'nosuchtype'], ['--type', 'terms', '--version', 'nope'], ['--type', 'Bad Type'],
	    ['--type', 'terms', '--limit', '0'], ['--type', 'terms', '--cursor', 'xyz'], []) {
		($rc, $out, $err) = opsctl('legal', 'report', @$bad);
		ok $rc == 1 || $rc == 2, "legal report @$bad refused (exit $rc)";
		like $err, qr/^opsctl: /m, '  with one opsctl: line';
	}
}

# ================================================================ runbook 2
my $org = create_org();
ok $org->{id}, 'an org';
my @c = map { contact($admin, $org->{id}, "t66c$_") } 1 .. 4;
my @ids = map { $_->{id} } @c;
{
	my ($rc, $out, $err) = opsctl('compliance', 'hold', '--entity', 'contacts', '--ids', $ids[0],
	    '--reason', 'litigation', '--case-ref', 'LIT-66');
	is $rc, 0, 'opsctl compliance hold exits 0' or diag "$out$err";
	is_deeply results({ json => out_json($out) }), want_results($ids[0] => 'held'), 'it prints the result per id';
	is_deeply out_json($out)->{counts}, { held => 1 }, 'and the counts';
	my $rec = j(compliance_record($admin, 'contacts', $ids[0]));
	ok $rec->{legalHold}, 'GET /compliance/records shows the hold';
	is $rec->{legalHoldCaseRef}, 'LIT-66', 'with the case reference';
	is actor_of('compliance.legal_hold_set'), 'cli:root', 'compliance.legal_hold_set, actor cli:root';

	($rc, $out, $err) = opsctl('compliance', 'strip', '--entity', 'contacts', '--ids', "$ids[0],$ids[1]",
	    '--reason', 'DSR t66');
	is $rc, 0, 'opsctl compliance strip exits 0' or diag "$out$err";
	is_deeply results({ json => out_json($out) }), want_results($ids[0] => 'legal_hold', $ids[1] => 'stripped'),
	    'the held record is refused, the other stripped';
	my $got = j(tenant_get($admin, $org->{id}, 'contacts', $ids[1]));
	is $got->{name}, '[redacted]', 'the API shows the stripped name redacted';
	isnt $got->{email}, $c[1]{given}{email}, 'and not the old email';
	is actor_of('compliance.pii_stripped'), 'cli:root', 'compliance.pii_stripped, actor cli:root';

	# the same call through the API and opsctl answer the same JSON
	my $api = strip_pii($admin, entity => 'contacts', ids => [$ids[1]], reason => 'DSR t66 again');
	($rc, $out) = opsctl('compliance', 'strip', '--entity', 'contacts', '--ids', $ids[1], '--reason', 'DSR t66 again');
	is_deeply out_json($out), j($api), 'strip again: opsctl prints what the API answers (already_stripped)';

	($rc, $out) = opsctl('compliance', 'hold', '--entity', 'contacts', '--ids', $ids[0], '--reason', 'settled', '--release');
	is $rc, 0, 'compliance hold --release exits 0';
	is_deeply results({ json => out_json($out) }), want_results($ids[0] => 'released'), 'released';
	is actor_of('compliance.legal_hold_released'), 'cli:root', 'compliance.legal_hold_released, actor cli:root';
	ok !j(compliance_record($admin, 'contacts', $ids[0]))->{legalHold}, 'the API shows it released';

	# archive: a dry run by age changes nothing, then by ids
	my $before = table_snapshot('contacts');
	($rc, $out, $err) = opsctl('compliance', 'archive', '--entity', 'contacts', '--older-than', '2099-01-01T00:00:00Z',
	    '--org', $org->{id}, '--reason', 'retention', '--dry-run');
	is $rc, 0, 'compliance archive --older-than --org --dry-run exits 0' or diag "$out$err";
	my $dry = out_json($out);
	ok $dry->{dryRun}, 'dryRun true';
	cmp_ok $dry->{counts}{archived} // 0, '>=', 4, 'it would archive the org\'s contacts';
	is_deeply table_snapshot('contacts'), $before, 'and archived nothing';
	($rc, $out) = opsctl('compliance', 'archive', '--entity', 'contacts', '--ids', $ids[2], '--reason', 'retention');
	is $rc, 0, 'compliance archive --ids exits 0';
	is_deeply results({ json => out_json($out) }), want_results($ids[2] => 'archived'), 'archived';
	ok j(compliance_record($admin, 'contacts', $ids[2]))->{archived}, 'the API shows it archived';
	is actor_of('compliance.archived'), 'cli:root', 'compliance.archived, actor cli:root';

	# export: the subject's record, audited
	my $n0 = audit_count('compliance.exported');
	($rc, $out, $err) = opsctl('compliance', 'export', '--entity', 'contacts', '--id', $ids[1]);
	is $rc, 0, 'compliance export exits 0' or diag "$out$err";
	my $x = out_json($out);
	my $ax = j(compliance_export($admin, 'contacts', $ids[1]));
	delete $_->{exportedAt} for $x, $ax;
	is_deeply $x, $ax, 'opsctl compliance export prints what GET /compliance/export answers';
	is $x->{record}{name}, '[redacted]', 'the stripped record, redacted';
	is audit_count('compliance.exported'), $n0 + 2, 'each export is audited';
	my @ex = grep { ($_->{actor_label} // '') eq 'cli:root' } audit_rows('compliance.exported', target_id => $ids[1]);
	is scalar(@ex), 1, 'one of them with actor cli:root';
	($rc, $out, $err) = opsctl('compliance', 'export', '--entity', 'contacts', '--id', uuid7_like());
	is $rc, 1, 'export of an unknown id exits 1';
	like $err, qr/^opsctl: no such record$/m, '"no such record"';

	($rc, $out) = opsctl('compliance', 'hold', '--entity', 'contacts', '--ids', uuid7_like(), '--reason', 'r');
	is $rc, 0, 'a hold on an unknown id runs';
	is_deeply [values %{ results({ json => out_json($out) }) }], ['not_found'], 'and says not_found';

	# bad input: usage errors, nothing written
	my $audit0 = audit_count();
	my $snap = table_snapshot('contacts', 'users', 'orgs');
	my @many = map { uuid7_like() } 1 .. 1001;
	for my $bad (
	    ['strip', '--ids', $ids[3], '--reason', 'r'],
	    ['strip', '--entity', 'nosuch', '--ids', $ids[3], '--reason', 'r'],
	    ['strip', '--entity', 'contacts', '--reason', 'r'],
	    ['strip', '--entity', 'contacts', '--ids', "$ids[3],not-an-id", '--reason', 'r'],
	    ['strip', '--entity', 'contacts', '--ids', "$ids[3],", '--reason', 'r'],
	    ['strip', '--entity', 'contacts', '--ids', join(',', @many), '--reason', 'r'],
	    ['strip', '--entity', 'contacts', '--ids', $ids[3]],
	    ['strip', '--entity', 'contacts', '--ids', $ids[3], '--reason', '   '],
	    ['strip', '--entity', 'contacts', '--ids', $ids[3], '--reason', 'x' x 501],
	    ['strip', '--entity', 'contacts', '--ids', $ids[3], '--reason', 'r', '--dry-run'],
	    ['hold', '--entity', 'contacts', '--ids', $ids[3], '--reason', 'r', '--case-ref', 'c' x 101],
	    ['archive', '--entity', 'contacts', '--ids', $ids[3], '--older-than', '2099-01-01T00:00:00Z', '--reason', 'r'],
	    ['archive', '--entity', 'contacts', '--reason', 'r'],
	    ['archive', '--entity', 'contacts', '--ids', $ids[3], '--org', $org->{id}, '--reason', 'r'],
	    ['archive', '--entity', 'orgs', '--older-than', '2099-01-01T00:00:00Z', '--org', $org->{id}, '--reason', 'r'],
	    ['archive', '--entity', 'contacts', '--older-than', 'yesterday', '--reason', 'r'],
	    ['archive', '--entity', 'contacts', '--older-than', '2099-01-01T00:00:00Z', '--org', 'nope', '--reason', 'r'],
	    ['export', '--entity', 'contacts', '--id', 'nope'],
	    ['export', '--entity', 'contacts'],
	    ['export', '--entity', 'nosuch', '--id', $ids[3]],
	    ) {
		my ($sub, @args) = @$bad;
		my ($rc2, $out2, $err2) = opsctl('compliance', $sub, @args);
		my $shown = join ' ', map { length > 40 ? substr($_, 0, 20) . '…' : $_ } @args;
		is $rc2, 2, "compliance $sub $shown: exit 2";
		like $err2, qr/^opsctl: /m, '  with an opsctl: line' or diag $err2;
	}
	is audit_count(), $audit0, 'bad input wrote no audit event';
	is_deeply table_snapshot('contacts', 'users', 'orgs'), $snap, 'and changed no record';
}

# ================================================================ runbook 4
{
	my $u = create_user(role => 'member', org => $org);
	my $s = login_ok($u, 'a member');
	is me($s)->{status}, 200, 'the member is signed in';
	my ($rc, $out, $err) = opsctl('sessions', 'flush', '--user', $u->{id});
	is $rc, 0, 'opsctl sessions flush --user exits 0' or diag "$out$err";
	like $out, qr/^flushed 1 sessions \(user\)$/m, 'one session flushed';
	is me($s)->{status}, 401, 'the member\'s session is gone';
	is actor_of('security.sessions_flushed'), 'cli:root', 'security.sessions_flushed, actor cli:root';

	($rc, $out, $err) = opsctl('blocklist', 'add', '--cidr', '203.0.113.0/24', '--reason', 'credential stuffing t66');
	is $rc, 0, 'opsctl blocklist add exits 0' or diag "$out$err";
	my ($bid) = $out =~ /\(id ([0-9a-f-]{36})\)/;
	ok $bid, 'it prints the entry id';
	my $list = http(GET => '/security/blocklist', session => $admin);
	ok grep({ $_->{cidr} eq '203.0.113.0/24' } items($list)), 'GET /security/blocklist shows it';
	is actor_of('security.blocklist_added'), 'cli:root', 'security.blocklist_added, actor cli:root';
	($rc, $out) = opsctl('blocklist', 'list', '--json');
	ok grep({ $_->{cidr} eq '203.0.113.0/24' } @{ json_decode($out) // [] }), 'opsctl blocklist list --json shows it';
	($rc, $out) = opsctl('blocklist', 'remove', '--id', $bid);
	is $rc, 0, 'opsctl blocklist remove exits 0';
	is actor_of('security.blocklist_removed'), 'cli:root', 'security.blocklist_removed, actor cli:root';
}

# ================================================================ runbook 6 sees opsctl
# The events opsctl wrote above move opsd_audit_events_total on /metrics
# (it is counted in the database, whoever writes), and the alert rules fire
# on the values /metrics showed.
{
	my $c1 = audit_counters();
	for my $action (qw(legal.updated compliance.legal_hold_set security.sessions_flushed security.blocklist_added)) {
		cmp_ok $c1->{$action} // 0, '>', $counters0->{$action} // 0, "/metrics: opsd_audit_events_total{action=\"$action\"} moved";
	}
	my %series = map { ("opsd_audit_events_total{action=\"$_\"}" => [$counters0->{$_} // 0, $c1->{$_}]) } keys %$c1;
	my @moved = grep { $c1->{$_} > ($counters0->{$_} // 0) } sort keys %$c1;
	my %fires = (
		OpsdLegalDocumentPublished => qr/^legal\.updated$/,
		OpsdLegalHoldChanged => qr/^compliance\.legal_hold_(?:set|released)$/,
		OpsdSecurityAction => qr/^security\.(?:sessions_flushed|blocklist_added|blocklist_removed)$/,
	);
	for my $alert (sort keys %fires) {
		promtool_fires($alert, by => ['action'], series => \%series,
		    fire => [map { { action => $_ } } grep { $_ =~ $fires{$alert} } @moved]);
	}
}

# ================================================================ permissions
my $n_flush = audit_count('security.sessions_flushed');
my $n_docs = db_count('SELECT COUNT(*) FROM legal_documents');
my $n_users = db_count('SELECT COUNT(*) FROM users');
my $n_block = audit_count('security.blocklist_added');
sub nothing_written($what) {
	is audit_count('security.sessions_flushed'), $n_flush, "$what: no flush audited";
	is db_count('SELECT COUNT(*) FROM legal_documents'), $n_docs, "$what: no document published";
	is db_count('SELECT COUNT(*) FROM users'), $n_users, "$what: no user created";
	is audit_count('security.blocklist_added'), $n_block, "$what: nothing blocked";
}
my $docfile = "$TMP/privacy-denied.md";
{ open my $fh, '>', $docfile or die; print {$fh} "Privacy.\n"; close $fh }

# root mapped to compliance: compliance commands run, the others are refused
{
	my %e = (env => { OPSD_CLI_ROLES => 'root:compliance, alice:security_admin' });
	my ($rc, $out, $err) = opsctl(\%e, 'sessions', 'flush', '--all');
	is $rc, 3, 'root as compliance: sessions flush --all exits 3';
	like $err, qr/^opsctl: cli:root lacks security\.sessions_flush$/m, '"opsctl: cli:root lacks security.sessions_flush"';
	is me($admin)->{status}, 200, 'the superadmin\'s session still works';
	($rc, $out, $err) = opsctl(\%e, 'legal', 'publish', '--type', 'privacy', '--version', 'denied-1', '--file', $docfile);
	is $rc, 3, 'root as compliance: legal publish exits 3';
	like $err, qr/lacks legal\.publish/, 'lacks legal.publish';
	($rc, $out, $err) = opsctl({ %e, stdin => "Pw-denied-0123456789\n" }, 'user', 'create', '--email',
	    'denied@example.test', '--role', 'member', '--org', $org->{id}, '--password-stdin');
	is $rc, 3, 'root as compliance: user create exits 3';
	like $err, qr/lacks users\.manage/, 'lacks users.manage';
	nothing_written('refused as compliance');
	($rc, $out, $err) = opsctl(\%e, 'compliance', 'hold', '--entity', 'contacts', '--ids', $ids[3], '--reason', 'mapped');
	is $rc, 0, 'root as compliance: compliance hold runs' or diag $err;
	is actor_of('compliance.legal_hold_set'), 'cli:root', 'and is audited as cli:root';
	($rc, $out) = opsctl(\%e, 'legal', 'report', '--type', 'terms');
	is $rc, 0, 'and legal report (legal.report) runs';
}

# root mapped to platform_admin: may create users, but grant only what it holds
{
	my %e = (env => { OPSD_CLI_ROLES => 'root:platform_admin' });
	my ($rc, $out, $err) = opsctl({ %e, stdin => "Pw-denied-0123456789\n" }, 'user', 'create', '--email',
	    'would-be-super@example.test', '--role', 'superadmin', '--password-stdin');
	is $rc, 3, 'platform_admin: user create --role superadmin exits 3';
	like $err, qr/cli:root cannot grant superadmin/, 'it cannot grant superadmin';
	nothing_written('a grant beyond its own');
	my $email = 't66-member@example.test';
	($rc, $out, $err) = opsctl({ %e, stdin => sensitive('t66 member pw', 'Pw-member-0123456789') . "\n" },
	    'user', 'create', '--email', $email, '--role', 'member', '--org', $org->{id}, '--password-stdin');
	is $rc, 0, 'platform_admin: user create --role member runs' or diag $err;
	$n_users++;
	# setting a password is acting as the account: the grant rule holds too
	my $n_pw = audit_count('auth.password_changed');
	($rc, $out, $err) = opsctl({ %e, stdin => "Pw-takeover-0123456789\n" }, 'user', 'set-password', '--email', admin_email());
	is $rc, 3, 'platform_admin: user set-password of the superadmin exits 3';
	like $err, qr/holds roles you cannot grant/, '  "this user holds roles you cannot grant"';
	is audit_count('auth.password_changed'), $n_pw, '  no password changed';
	is me($admin)->{status}, 200, '  the superadmin\'s session still works';
	($rc, $out, $err) = opsctl({ %e, stdin => sensitive('t66 member new pw', 'Pw-member-new-0123456789') . "\n" },
	    'user', 'set-password', '--email', $email);
	is $rc, 0, 'platform_admin: user set-password of the member it created runs' or diag $err;
}

# root mapped to security_admin: audit purge only past the configured retention
{
	my %e = (env => { OPSD_CLI_ROLES => 'root:security_admin' });
	my $n_events = audit_count();
	my ($rc, $out, $err) = opsctl(\%e, 'audit', 'purge', '--days', '0');
	is $rc, 3, 'security_admin: audit purge --days 0 exits 3';
	like $err, qr/a shorter --days needs superadmin/, '  a shorter retention needs superadmin';
	cmp_ok audit_count(), '>=', $n_events, '  nothing deleted';
	($rc, $out, $err) = opsctl(\%e, 'audit', 'purge', '--days', '0', '--dry-run');
	is $rc, 0, '  a dry run is allowed' or diag $err;
	($rc, $out, $err) = opsctl(\%e, 'audit', 'purge');
	is $rc, 0, '  and the configured retention' or diag $err;
}

# root not named by the mapping: no role at all; commands without a permission still run
{
	my %e = (env => { OPSD_CLI_ROLES => 'alice:superadmin' });
	my ($rc, $out, $err) = opsctl(\%e, 'legal', 'report', '--type', 'terms');
	is $rc, 3, 'root not in OPSD_CLI_ROLES: legal report exits 3';
	like $err, qr/^opsctl: cli:root lacks legal\.report$/m, 'lacks legal.report';
	($rc, $out) = opsctl(\%e, 'db', 'status');
	is $rc, 0, 'db status needs no permission';
	($rc, $out) = opsctl(\%e, 'routes');
	is $rc, 0, 'nor routes';
}

# another OS user: nobody, with an env file it can read and OPSD_CLI_ROLES unset
{
	my $dir = tempdir('opsd-t66-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $copy = "$dir/opsd.env";
	open my $in, '<', var_dir() . '/opsd.env' or die "opsd.env: $!";
	open my $fh, '>', $copy or die "$copy: $!";
	print {$fh} grep { !/^OPSD_CLI_ROLES=/ } <$in>;
	close $fh;
	my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
	chown $uid, $gid, $dir, $copy;
	chmod 0700, $dir;
	chmod 0600, $copy;
	my $as_nobody = sub (@args) {
		return run_cmd(cmd => ['setpriv', "--reuid=$uid", "--regid=$gid", '--clear-groups', opsctl_bin(), @args],
		    env => { PATH => $ENV{PATH}, OPSD_ENV_FILE => $copy }, tag => 'opsctl-nobody', timeout => 60);
	};
	my $r = $as_nobody->('blocklist', 'add', '--cidr', '192.0.2.0/24', '--reason', 'not allowed');
	is $r->{rc}, 3, 'nobody: blocklist add exits 3' or diag "$r->{out}$r->{err}";
	like $r->{err}, qr/^opsctl: cli:nobody lacks security\.blocklist$/m, '"opsctl: cli:nobody lacks security.blocklist"';
	$r = $as_nobody->('sessions', 'flush', '--all');
	is $r->{rc}, 3, 'nobody: sessions flush --all exits 3';
	$r = $as_nobody->('legal', 'publish', '--type', 'privacy', '--version', 'denied-2', '--file', '/dev/null');
	is $r->{rc}, 3, 'nobody: legal publish exits 3';
	nothing_written('refused for nobody');
	is me($admin)->{status}, 200, 'every session is still there';
	$r = $as_nobody->('roles');
	is $r->{rc}, 0, 'nobody: roles (no permission) runs';
}

# OPSD_CLI_ROLES bad values: a configuration error for opsctl and opsd
{
	my %base = (PATH => $ENV{PATH}, %{ parse_env_file(var_dir() . '/opsd.env') // {} });
	delete $base{OPSD_ENV_FILE};
	for my $case (['root', qr/OPSD_CLI_ROLES: each entry must be user:role/],
	    ['root:nosuchrole', qr/OPSD_CLI_ROLES: unknown role "nosuchrole"/],
	    ['root:superadmin,root:member', qr/OPSD_CLI_ROLES: a user is listed twice/],
	    ['root:superadmin;alice:member', qr/OPSD_CLI_ROLES: entries are separated by commas/],
	    ['root:superadmin+', qr/OPSD_CLI_ROLES: .*joined with \+/]) {
		my ($v, $want) = @$case;
		my ($rc, $out, $err) = opsctl({ env => { OPSD_CLI_ROLES => $v } }, 'sessions', 'flush', '--all');
		is $rc, 2, "OPSD_CLI_ROLES=\"$v\": opsctl exits 2";
		like $err, $want, '  naming the problem' or diag $err;
		my $c = run_cmd(cmd => [opsd_bin(), '--check-config'], env => { %base, OPSD_CLI_ROLES => $v },
		    tag => 'check-config', timeout => 30);
		isnt $c->{rc}, 0, "  opsd --check-config refuses it";
		like "$c->{out}$c->{err}", qr/OPSD_CLI_ROLES/, '  naming OPSD_CLI_ROLES';
	}
	nothing_written('bad OPSD_CLI_ROLES');
	my $c = run_cmd(cmd => [opsd_bin(), '--check-config'],
	    env => { %base, OPSD_CLI_ROLES => 'root:superadmin, alice:security_admin+compliance' }, tag => 'check-config', timeout => 30);
	is $c->{rc}, 0, 'opsd --check-config accepts a good OPSD_CLI_ROLES' or diag "$c->{out}$c->{err}";
}

finish();
