#!/usr/bin/perl
# Email transport security (README "Configuration", "Runbook 5";
# doc/architecture.md "Pitfalls of the platform") against real SMTP peers on loopback (t/lib/smtp_peer.py): STARTTLS required but not offered,
# wrong SMTP_PASS, an untrusted certificate (no SMTP_CA_FILE) and a
# certificate for another host name all fail with a clear last_error and
# deliver nothing (and never send the credentials); SMTP_SECURE=none with a
# plain loopback peer delivers; `opsctl email test --wait` queues through
# the outbox like POST /email/test (audited email.test_requested, actor
# cli:root) and reports what the jobs process met: sent, suppressed, failed
# at auth, and "not sent yet" at starttls, tls or connect; --check-config refuses
# SMTP_SECURE=none with a remote server; SMTP_PASS never appears in a log.
# One stack, restarted with other SMTP settings (restart_stack).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $RAND = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8;
my $USER = 'opsd-mailer';
my $PASS = "Smtp-pw-$RAND-Kx4";
my $WRONG = "Wrong-pw-$RAND-Qy7";

my $ca = make_test_ca();
my $other = make_test_ca(undef, cn => 'other.test', names => ['DNS:other.test']);   # trusted CA, wrong name
my $tls = start_smtp_peer(tls => $ca, auth => "$USER:$PASS");             # the right relay
my $plain_auth = start_smtp_peer(no_starttls => 1, auth => "$USER:$PASS"); # no STARTTLS, AUTH in the clear
my $named = start_smtp_peer(tls => $other, auth => "$USER:$PASS");         # certificate for other.test
my $plain = start_smtp_peer(no_starttls => 1);                             # plain, no AUTH
my %PEERS = (tls => $tls, plain_auth => $plain_auth, named => $named, plain => $plain);

start_stack(env => { OPSD_WORKERS => 2, %{ smtp_env($plain_auth, $ca) } });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in';

sub nevents($peer, $ev, %o) {
	my @e = $peer->events(event => $ev);
	@e = grep { $_->{t} ge $o{since} } @e if $o{since};
	return scalar @e;
}
sub now_stamp() {
	my $t = time;
	my @g = gmtime $t;
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', $g[5] + 1900, $g[4] + 1, @g[3, 2, 1, 0], ($t * 1000) % 1000);
}

my @OPSCTL_OUT;   # every opsctl output, checked for the password at the end
# `opsctl email test --to TO --wait` against the running stack (its
# opsd.env): the message goes through the outbox and the jobs process.
sub email_test_cli($to, @more) {
	my ($rc, $out, $err) = opsctl({ timeout => 120 }, 'email', 'test', (defined $to ? ('--to', $to) : ()),
	    @more);
	push @OPSCTL_OUT, "$out\n$err";
	return ($rc, "$out$err");
}
sub queued_id($out) { return $out =~ /^queued: \S+ \(outbox ([0-9a-f-]{36})\)$/m ? $1 : undef }

# ============================================================ STARTTLS required, peer without STARTTLS
{
	my $since = now_stamp();
	my $to = "tls-required-$RAND\@allowed.test";
	my $r = email_test_post($to, relogin => 1);
	is $r->{status}, 202, 'POST /email/test (the relay offers no STARTTLS) 202' or diag $r->{body};
	my $id = $r->{json}{id};
	my $row = wait_outbox_row($id, 20, sub ($r) { $r->{attempts} >= 2 || $r->{status} =~ /^(?:sent|failed)$/ });
	like $row->{status} // '', qr/^(?:queued|sending|failed)$/, 'not sent (queued, retried)' or outbox_diag($id, $plain_auth);
	cmp_ok $row->{attempts} // 0, '>=', 1, 'at least one attempt made';
	like $row->{last_error} // '', qr/starttls/i, 'last_error mentions STARTTLS' or outbox_diag($id, $plain_auth);
	like $row->{last_error} // '', qr/^starttls:/, 'last_error starts "starttls:"';
	ok nevents($plain_auth, 'ehlo', since => $since), 'opsd did reach the peer (EHLO seen): STARTTLS, not connect, failed';
	is nevents($plain_auth, 'auth', since => $since), 0, 'the credentials were never sent in the clear (no AUTH)'
	    or outbox_diag($id, $plain_auth);
	is nevents($plain_auth, 'mail', since => $since), 0, 'no MAIL FROM in the clear';
	is scalar($plain_auth->messages), 0, 'the peer received nothing';

	my ($rc, $out) = email_test_cli("cli-$to", '--wait', '--timeout', 30);
	is $rc, 1, 'opsctl email test --wait (no STARTTLS offered) exits 1' or diag $out;
	like $out, qr/^queued: cli-\Q$to\E \(outbox [0-9a-f-]{36}\)$/m, 'it first says the message is queued';
	like $out, qr/^not sent yet: attempt failed at starttls: .*; next attempt at /m,
	    'then "not sent yet: attempt failed at starttls: …; next attempt at …"';
	my $id2 = queued_id($out);
	my @req = audit_rows('email.test_requested', target_id => $id2 // 'none');
	is scalar(@req), 1, 'email.test_requested is audited for it';
	is $req[0]{actor_label}, 'cli:root', 'with actor cli:root' if @req;
	is scalar($plain_auth->messages), 0, 'the peer still received nothing';
}

# ============================================================ opsctl email test, the right relay
restart_stack(env => { SMTP_PORT => $tls->port });
{
	my ($rc, $out) = email_test_cli('allowed@example.test', '--wait');
	is $rc, 0, 'opsctl email test --to allowed@example.test --wait exits 0' or diag $out;
	like $out, qr/^sent: allowed\@example\.test via localhost:${\ $tls->port } \(starttls, auth\)$/m,
	    'it prints "sent: … via HOST:PORT (starttls, auth)"';
	my $id = queued_id($out);
	is +(outbox_row($id // 'none') // {})->{status}, 'sent', 'the outbox row is sent';
	my @m = $tls->wait_messages(1, 10, to => 'allowed@example.test');
	is scalar(@m), 1, 'the peer received it (through the outbox and the jobs process)' or diag $tls->state_text;
	ok $m[0]{tls} && ($m[0]{auth_user} // '') eq $USER, 'over TLS with AUTH' if @m;
	is $m[0]{mail_from}, 'opsd@example.test', 'from SMTP_FROM' if @m;
	ok $m[0]{crlf_only} && ($m[0]{headers}{'message-id'} // '') =~ /^<[^@<>\s]+@[^@<>\s]+>$/ && $m[0]{headers}{date},
	    'a well-formed message (CRLF, Message-ID, Date)' if @m;
	ok @m && ($m[0]{body} // '') =~ /opsctl email test by\s+cli:root/, 'its body says who queued it' if @m;
	my @sent = audit_rows('email.sent', target_id => $id // 'none');
	is scalar(@sent), 1, 'the attempt is audited (email.sent)';

	my $nobody = "nobody-$RAND\@example.test";
	($rc, $out) = email_test_cli($nobody, '--wait');
	is $rc, 1, 'opsctl email test to a non-allowlisted address exits 1' or diag $out;
	like $out, qr/^suppressed: \Q$nobody\E is not in TEST_EMAIL_ALLOWLIST \(test mode\)$/m,
	    'it prints "suppressed: ADDR is not in TEST_EMAIL_ALLOWLIST (test mode)"';
	my ($sup) = grep { ($_->{actor_label} // '') eq 'cli:root' } audit_rows('email.suppressed');
	ok $sup, 'email.suppressed is audited with actor cli:root';
	ok !$tls->messages_to($nobody), 'and nothing reached the peer';

	my $n0 = $tls->count;
	$tls->stop;
	($rc, $out) = email_test_cli('allowed@example.test', '--wait', '--timeout', 30);
	is $rc, 1, 'opsctl email test --wait with the relay down exits 1' or diag $out;
	like $out, qr/^not sent yet: attempt failed at connect: /m, 'it prints "not sent yet: attempt failed at connect: …"';
	my $later = queued_id($out);
	$tls->start;
	ok $tls->running, 'the relay is back';
	my $row = wait_outbox_row($later // 'none', 30, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', 'and the queued message is sent on a later attempt' or outbox_diag($later, $tls);

	my $q0 = outbox_count();
	($rc, $out) = email_test_cli(undef);
	is $rc, 2, 'opsctl email test without --to exits 2';
	($rc, $out) = email_test_cli('no-at-sign');
	is $rc, 2, 'opsctl email test --to no-at-sign exits 2';
	($rc, $out) = email_test_cli('allowed@example.test', '--timeout', 5);
	is $rc, 2, '--timeout without --wait exits 2';
	($rc, $out) = email_test_cli('allowed@example.test', '--wait', '--timeout', 0);
	is $rc, 2, '--timeout 0 exits 2';
	is outbox_count(), $q0, 'nothing queued by the bad calls';
	is $tls->count, $n0 + 1, 'nothing more delivered';
}

# ============================================================ wrong SMTP_PASS: failed at once
restart_stack(env => { SMTP_PORT => $tls->port, SMTP_PASS => $WRONG });
{
	my $since = now_stamp();
	my $to = "wrong-pass-$RAND\@allowed.test";
	my $r = email_test_post($to, relogin => 1);
	is $r->{status}, 202, 'POST /email/test with a wrong SMTP_PASS 202' or diag $r->{body};
	my $id = $r->{json}{id};
	my $row = wait_outbox_row($id, 20, sub ($r) { $r->{status} =~ /^(?:sent|failed)$/ });
	is $row->{status}, 'failed', 'AUTH refused (535): failed' or outbox_diag($id, $tls);
	is $row->{attempts}, 1, 'after one attempt';
	like $row->{last_error} // '', qr/^auth:/, 'last_error starts "auth:"';
	like $row->{last_error} // '', qr/^auth: 535\b/, 'last_error "auth: 535 …"';
	is $row->{last_smtp_status}, 535, 'last_smtp_status 535';
	unlike $row->{last_error} // '', qr/\Q$WRONG\E/, 'last_error does not show the password';
	ok nevents($tls, 'auth', since => $since), 'the peer saw the AUTH attempt';
	ok !grep({ $_->{ok} } grep { $_->{t} ge $since } $tls->events(event => 'auth')), 'and refused it';
	ok !$tls->messages_to($to), 'the peer got nothing';
	sleep 3;
	is +(outbox_row($id) // {})->{attempts}, 1, 'not retried three seconds later';

	my ($rc, $out) = email_test_cli("cli-$to", '--wait');
	is $rc, 1, 'opsctl email test --wait with a wrong SMTP_PASS exits 1' or diag $out;
	like $out, qr/^failed at auth: 535\b/m, 'it prints "failed at auth: 535 …"';
	unlike $out, qr/\Q$WRONG\E/, 'without the password';
}

# ============================================================ untrusted certificate: nothing sent
restart_stack(env => { SMTP_PASS => $PASS, SMTP_CA_FILE => undef });
{
	my $since = now_stamp();
	my $to = "no-ca-$RAND\@allowed.test";
	my $r = email_test_post($to, relogin => 1);
	is $r->{status}, 202, 'POST /email/test without SMTP_CA_FILE 202' or diag $r->{body};
	my $id = $r->{json}{id};
	my $row = wait_outbox_row($id, 20, sub ($r) { $r->{attempts} >= 1 && defined $r->{last_error} });
	isnt $row->{status} // '', 'sent', 'not sent' or outbox_diag($id, $tls);
	like $row->{last_error} // '', qr/^(?:tls|starttls):/, 'last_error starts "tls:" or "starttls:"' or outbox_diag($id, $tls);
	like $row->{last_error} // '', qr/certific/i, 'last_error mentions the certificate';
	sleep 2;
	ok !$tls->messages_to($to), 'the peer got nothing';
	is nevents($tls, 'auth', since => $since), 0, 'the credentials were never sent to the unverified server';
	is nevents($tls, 'mail', since => $since), 0, 'no MAIL FROM reached it';
	isnt +(outbox_row($id) // {})->{status}, 'sent', 'still not sent';

	my ($rc, $out) = email_test_cli("cli-$to", '--wait', '--timeout', 30);
	is $rc, 1, 'opsctl email test --wait without SMTP_CA_FILE exits 1' or diag $out;
	like $out, qr/^not sent yet: attempt failed at (?:starttls|tls): .*certific/mi,
	    'it prints "not sent yet: attempt failed at starttls|tls: …certificate…"';
	ok !$tls->messages_to("cli-$to"), 'the peer got nothing';
}

# ============================================================ SMTP_SECURE=none with a plain loopback relay
restart_stack(env => { SMTP_CA_FILE => $ca->{ca}, SMTP_SECURE => 'none', SMTP_PORT => $plain->port,
    SMTP_USER => undef, SMTP_PASS => undef });
{
	my $to = "plain-$RAND\@allowed.test";
	my $r = email_test_post($to, relogin => 1);
	is $r->{status}, 202, 'POST /email/test with SMTP_SECURE=none 202' or diag $r->{body};
	my $id = $r->{json}{id};
	my @m = $plain->wait_messages(1, 15, to => $to);
	is scalar(@m), 1, 'SMTP_SECURE=none: delivered to the plain loopback relay' or outbox_diag($id, $plain);
	ok @m && !$m[0]{tls}, 'without TLS';
	my $row = wait_outbox_row($id, 10, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', 'status sent';
	is $row->{attempts}, 1, 'attempts 1';
	sleep 2;
	is scalar($plain->messages_to($to)), 1, 'exactly once';

	my ($rc, $out) = email_test_cli("cli-$to", '--wait');
	is $rc, 0, 'opsctl email test --wait with SMTP_SECURE=none exits 0' or diag $out;
	like $out, qr/^sent: cli-\Q$to\E via localhost:${\ $plain->port } \(no tls, no auth\)$/m,
	    'it prints "sent: … (no tls, no auth)"';
	is scalar($plain->messages_to("cli-$to")), 1, 'the plain peer received it';
}

# ============================================================ --check-config: SMTP_SECURE=none only on loopback
{
	my %base = (PATH => $ENV{PATH}, %{ parse_env_file(var_dir() . '/opsd.env') // {} });
	delete $base{OPSD_ENV_FILE};
	my $check = sub (%over) {
		my %env = (%base, %over);
		delete $env{$_} for grep { !defined $env{$_} } keys %env;
		return run_cmd(cmd => [opsd_bin(), '--check-config'], env => \%env, tag => 'check-config', timeout => 30);
	};
	my $r = $check->();
	is $r->{rc}, 0, '--check-config accepts SMTP_SECURE=none with SMTP_SERVER=localhost' or diag "$r->{out}$r->{err}";
	$r = $check->(SMTP_SERVER => 'smtp.example.test', SMTP_PASS => $PASS, SMTP_USER => $USER);
	isnt $r->{rc}, 0, '--check-config refuses SMTP_SECURE=none with a remote SMTP_SERVER';
	like "$r->{out}$r->{err}", qr/\bSMTP_SECURE\b|\bSMTP_SERVER\b/, 'naming SMTP_SECURE or SMTP_SERVER';
	unlike "$r->{out}$r->{err}", qr/\Q$PASS\E/, 'without printing SMTP_PASS';
	for my $v (qw(OPSD_SMTP_RETRY_BASE_S OPSD_SMTP_MAX_ATTEMPTS)) {
		$r = $check->($v => 'abc');
		isnt $r->{rc}, 0, "--check-config refuses $v=abc";
		like "$r->{out}$r->{err}", qr/\b$v\b/, "naming $v";
	}
}

# ============================================================ the password never in a log
{
	my @hits = find_in_logs({ SMTP_PASS => $PASS, 'the wrong SMTP_PASS' => $WRONG });
	ok !@hits, 'SMTP_PASS (right or wrong) appears in no file under log/' or diag join("\n", @hits);
	my @out = grep { index($_, $PASS) >= 0 || index($_, $WRONG) >= 0 } @OPSCTL_OUT;
	ok !@out, 'nor in any opsctl output' or diag join("\n---\n", @out);
	my $audit = mysql('SELECT CONCAT_WS(\' \', action, payload) FROM audit_events') // '';
	ok index($audit, $PASS) < 0 && index($audit, $WRONG) < 0, 'nor in audit_events';
}

finish();
