#!/usr/bin/perl
# Email (README "Runbook 5") against a real SMTP peer on loopback
# (t/lib/smtp_peer.py, Debian's python3-aiosmtpd) that requires STARTTLS with
# a throwaway CA and AUTH: an allowlisted POST /email/test arrives once with
# well-formed RFC 5322 headers and a decodable body (checked on the peer's
# side), @domain allowlisting, suppression in test mode, the peer down and
# back (nothing lost, nothing twice), 550 failed at once, 451 retried with
# backoff up to OPSD_SMTP_MAX_ATTEMPTS, POST /email/outbox/:id/retry, bad
# input (nothing queued), GET /email/outbox (status filter, paging,
# permissions), audit events, metrics, and no recipient, body or SMTP
# password unmasked in log/ or audit payloads. From the host: opsctl email
# outbox list (the API's JSON, paging) and retry (audited as cli:root),
# email settings (never the password) and email test --wait through the
# outbox, delivered to the peer and audited.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use OpsdTest;

my $RAND = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8;
my $SMTP_USER = 'opsd-mailer';
my $SMTP_PASS = "Smtp-pw-$RAND-Zq8";
my %ADDR = (
	exact => 'allowed@example.test',
	exact_uc => "Upper-$RAND\@ALLOWED.Test",   # the @domain entry, other case
	domain => "dom-$RAND\@allowed.test",
	down => "down-$RAND\@allowed.test",
	suppressed => "nobody-$RAND\@example.test",
	lookalike => "x-$RAND\@evil-allowed.test",
	suffix => "allowed\@example.test.evil-$RAND.test",
	rejected => 'rejected@allowed.test',
	later => 'later@allowed.test',
);

my $ca = make_test_ca();
my $peer = start_smtp_peer(tls => $ca, auth => "$SMTP_USER:$SMTP_PASS",
    refuse_rcpt => $ADDR{rejected}, tempfail_rcpt => $ADDR{later});
start_stack(env => { OPSD_WORKERS => 2, %{ smtp_env($peer, $ca) } });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in';

sub rcpt_events($addr) { return grep { lc($_->{rcpt} // '') eq lc $addr } $peer->events(event => 'rcpt') }
sub outbox(%q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } sort keys %q;
	return http(GET => '/email/outbox' . ($qs ? "?$qs" : ''), session => $admin);
}
sub explain_lines($raw) { return join "\n", map { s/\r/\\r/gr } grep { defined } (split /\n/, $raw // '')[0 .. 15] }
my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

# ============================================================ queue several at once
my %POST;   # label => response
my $t_post = time;
for my $k (qw(exact domain exact_uc suppressed lookalike suffix rejected later)) {
	$POST{$k} = email_test_post($ADDR{$k});
}
my %ID = map { $_ => (ref $POST{$_}{json} eq 'HASH' ? $POST{$_}{json}{id} : undef) } keys %POST;
for my $k (qw(exact domain exact_uc rejected later)) {
	my $r = $POST{$k};
	is $r->{status}, 202, "POST /email/test to $k address ($ADDR{$k}) 202" or diag $r->{body};
	is $r->{json}{status}, 'queued', "$k: status queued" or diag $r->{body};
	like $r->{json}{id} // '', $UUID, "$k: id is a UUID";
	is $r->{json}{to}, $ADDR{$k}, "$k: to echoed";
}
for my $k (qw(suppressed lookalike suffix)) {
	my $r = $POST{$k};
	is $r->{status}, 202, "POST /email/test to a non-allowlisted address ($k: $ADDR{$k}) 202" or diag $r->{body};
	is $r->{json}{status}, 'suppressed', "$k: status suppressed (test mode)" or diag $r->{body};
	like $r->{json}{id} // '', $UUID, "$k: id is a UUID";
}

# ============================================================ the allowlisted message arrives intact
{
	my @m = $peer->wait_messages(1, 15, to => $ADDR{exact});
	my $t = time - $t_post;
	is scalar(@m), 1, sprintf('the allowlisted message reached the peer (%.1f s after the POST, limit 15 s)', $t)
	    or outbox_diag($ID{exact}, $peer);
	my $row = wait_outbox_row($ID{exact}, 10, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', 'its outbox row becomes sent' or outbox_diag($ID{exact}, $peer);
	is $row->{attempts}, 1, 'attempts 1';
	is $row->{last_smtp_status}, 250, 'last_smtp_status 250';
	ok defined $row->{sent_at}, 'sent_at set';
	is $row->{kind}, 'test', "kind 'test'";
	is $row->{subject}, 'opsd test message', 'subject stored';

	my $m = $m[0] // { headers => {} };
	my $h = $m->{headers} // {};
	ok $m->{tls}, 'on the peer: TLS was active (STARTTLS)';
	like $m->{tls_version} // '', qr/^TLSv1\.[23]$/, 'TLS 1.2 or 1.3';
	is $m->{auth_user}, $SMTP_USER, 'on the peer: AUTH as SMTP_USER';
	is $m->{mail_from}, 'opsd@example.test', 'envelope MAIL FROM is SMTP_FROM';
	is_deeply $m->{rcpt_tos}, [$ADDR{exact}], 'envelope RCPT TO is exactly the recipient';
	for my $k (qw(date message-id from to subject mime-version content-type)) {
		is $m->{header_count}{$k} // 0, 1, "exactly one $k header";
	}
	my $date = $h->{date} // '';
	my $mon = qr/Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec/;
	my $ok = like $date, qr/^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} $mon \d{4} \d\d:\d\d(?::\d\d)? [+-]\d{4}$/,
	    'Date is RFC 5322 date-time';
	if ($ok && $date =~ /(\d{1,2}) ($mon) (\d{4}) (\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)$/) {
		my %mn; @mn{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
		my $epoch = timegm($6 // 0, $5, $4, $1, $mn{$2}, $3) - ($7 eq '-' ? -1 : 1) * ($8 * 3600 + $9 * 60);
		cmp_ok abs($epoch - $t_post), '<', 600, 'Date is now (within 10 minutes)';
	}
	like $h->{'message-id'} // '', qr/^<[^<>@\s]+@[^<>@\s]+>$/, 'Message-ID is <id@domain>';
	like $h->{from} // '', qr/(?:^|<)opsd\@example\.test>?$/, 'From is SMTP_FROM';
	like $h->{to} // '', qr/(?:^|<)\Q$ADDR{exact}\E>?$/i, 'To is the recipient';
	is $h->{subject}, 'opsd test message', 'Subject "opsd test message"';
	is $h->{'mime-version'}, '1.0', 'MIME-Version 1.0';
	like $h->{'content-type'} // '', qr{^text/plain;\s*charset="?UTF-8"?$}i, 'Content-Type text/plain; charset=UTF-8';
	ok $m->{crlf_only}, 'every line of the message ends in CRLF (no bare LF)'
	    or diag explain_lines($m->{raw});
	ok !$m->{bare_cr}, 'no bare CR';
	cmp_ok $m->{max_line} // 0, '<=', 998, 'no line longer than 998 octets (RFC 5322 2.1.1)';
	ok !$m->{bad_header_lines}, 'every header line is a field or a continuation'
	    or diag join("\n", @{ $m->{bad_header_lines} });
	ok defined $m->{body} && length $m->{body}, 'the body decodes (transfer encoding and UTF-8)'
	    or diag $m->{body_decode_error} // '', "\n", $m->{raw} // '';
	my $rid = $POST{exact}{headers}{'x-request-id'};
	ok $rid && index($m->{body} // '', $rid) >= 0, 'the body names the request id of the POST'
	    or diag "request id $rid; body:\n" . ($m->{body} // '');

	my @a = audit_rows('email.sent', target_id => $ID{exact});
	is scalar(@a), 1, 'audit: one email.sent with target_id = the outbox id' or outbox_diag($ID{exact}, $peer);
	is $a[0]{target_type}, 'email', "audit email.sent target_type 'email'" if @a;
}

# ============================================================ @domain and case-insensitive allowlist
for my $k (qw(domain exact_uc)) {
	my @m = $peer->wait_messages(1, 15, to => $ADDR{$k});
	is scalar(@m), 1, "the $k address ($ADDR{$k}) reaches the peer" or outbox_diag($ID{$k}, $peer);
	my $row = wait_outbox_row($ID{$k}, 10, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', "$k: outbox row sent";
	is $row->{attempts}, 1, "$k: attempts 1";
}

# ============================================================ 451: retried with backoff
{
	my $row = wait_outbox_row($ID{later}, 20, sub ($r) { $r->{attempts} >= 2 });
	cmp_ok $row->{attempts} // 0, '>=', 2, '451 on RCPT: attempts grow (≥ 2)' or outbox_diag($ID{later}, $peer);
	like $row->{status} // '', qr/^(?:queued|sending)$/, '451: still queued' or outbox_diag($ID{later}, $peer);
	like $row->{last_error} // '', qr/^rcpt: 451\b/, '451: last_error starts "rcpt: 451"';
	is $row->{last_smtp_status}, 451, '451: last_smtp_status 451';
	# backoff: next_attempt_at = the attempt's time + base·2^(attempts-1), base 1 s
	my $q = wait_outbox_row($ID{later}, 5, sub ($r) { $r->{status} eq 'queued' });
	my $b = mysql("SELECT attempts, TIMESTAMPDIFF(MICROSECOND, updated_at, next_attempt_at) / 1e6 FROM email_outbox"
	    . " WHERE id = UNHEX('" . ($ID{later} =~ s/-//gr) . "') AND status = 'queued'") // '';
	if ($b =~ /^(\d+)\t([\d.-]+)/) {
		my ($n, $d) = ($1, $2);
		my $want = 2**($n - 1);
		ok $d > $want - 0.6 && $d < $want + 1.5, sprintf('451: next attempt %.2f s after attempt %d (base 1 s · 2^%d = %d s)',
		    $d, $n, $n - 1, $want) or outbox_diag($ID{later}, $peer);
	} else {
		diag "could not read the backoff of the 451 item: $b";
	}
	my @a = grep { audit_payload($_)->{willRetry} } audit_rows('email.failed', target_id => $ID{later});
	ok scalar(@a), 'audit: email.failed with willRetry true for the 451 item' or outbox_diag($ID{later}, $peer);
	if (@a) {
		my $p = audit_payload($a[0]);
		is $p->{smtpStatus}, 451, 'email.failed payload smtpStatus 451';
		is $p->{step}, 'rcpt', 'email.failed payload step rcpt';
		ok defined $p->{attempt}, 'email.failed payload has attempt';
	}
	my $r = http(POST => "/email/outbox/$ID{later}/retry", session => $admin);
	check_error($r, 409, 'conflict', 'retry of a queued item');
	ok !$peer->messages_to($ADDR{later}), 'the 451 recipient got nothing';
}

# ============================================================ 550: failed at once, no retries
{
	my $row = wait_outbox_row($ID{rejected}, 15, sub ($r) { $r->{status} =~ /^(?:failed|sent)$/ });
	is $row->{status}, 'failed', '550 on RCPT: status failed' or outbox_diag($ID{rejected}, $peer);
	is $row->{attempts}, 1, '550: attempts 1';
	like $row->{last_error} // '', qr/^rcpt: 550\b/, '550: last_error starts "rcpt: 550"';
	is $row->{last_smtp_status}, 550, '550: last_smtp_status 550';
	ok !defined $row->{sent_at}, '550: no sent_at';
	sleep 4;
	$row = outbox_row($ID{rejected}) // {};
	is $row->{attempts}, 1, '550: still attempts 1 four seconds later (no retry)';
	is $row->{status}, 'failed', '550: still failed';
	is scalar(rcpt_events($ADDR{rejected})), 1, 'the peer saw RCPT TO the refused address exactly once'
	    or outbox_diag($ID{rejected}, $peer);
	ok !$peer->messages_to($ADDR{rejected}), 'and no message for it';
	my @a = audit_rows('email.failed', target_id => $ID{rejected});
	is scalar(@a), 1, 'audit: one email.failed for the 550 item' or outbox_diag($ID{rejected}, $peer);
	if (@a) {
		my $p = audit_payload($a[0]);
		is $a[0]{target_type}, 'email', "email.failed target_type 'email'";
		ok JSON::PP::is_bool($p->{willRetry}) && !$p->{willRetry}, 'payload willRetry false';
		is $p->{smtpStatus}, 550, 'payload smtpStatus 550';
		is $p->{step}, 'rcpt', 'payload step rcpt';
		is $p->{attempt}, 1, 'payload attempt 1';
	}

	# the retry endpoint: back to queued with attempts 0, and it fails again
	my $r = http(POST => "/email/outbox/$ID{rejected}/retry", session => $admin);
	is $r->{status}, 200, 'POST /email/outbox/:id/retry on the failed item 200' or diag $r->{body};
	my $j = $r->{json} // {};
	is $j->{id}, $ID{rejected}, 'retry returns the item';
	is $j->{status}, 'queued', 'retry: status queued';
	is $j->{attempts}, 0, 'retry: attempts 0';
	$row = wait_outbox_row($ID{rejected}, 15, sub ($r) { $r->{status} eq 'failed' && $r->{attempts} >= 1 });
	is $row->{status}, 'failed', 'after the retry it is tried again and fails again' or outbox_diag($ID{rejected}, $peer);
	is $row->{attempts}, 1, 'attempts 1 again';
	is scalar(rcpt_events($ADDR{rejected})), 2, 'the peer saw the refused RCPT a second time';
	check_error(http(POST => "/email/outbox/$ID{exact}/retry", session => $admin), 409, 'conflict', 'retry of a sent item');
	check_error(http(POST => "/email/outbox/$ID{suppressed}/retry", session => $admin), 409, 'conflict',
	    'retry of a suppressed item');
	check_error(http(POST => '/email/outbox/' . uuid7_like() . '/retry', session => $admin), 404, undef,
	    'retry of an unknown id');
	my $bad = http(POST => '/email/outbox/not-an-id/retry', session => $admin);
	ok $bad->{status} == 400 || $bad->{status} == 404, "retry of a malformed id: 400 or 404 (got $bad->{status})";
	check_error(http(POST => "/email/outbox/$ID{rejected}/retry", session => $admin, csrf => undef), 403, 'csrf_failed',
	    'retry without the CSRF token');
}

# ============================================================ suppressed: recorded, never sent
{
	for my $k (qw(suppressed lookalike suffix)) {
		my $row = outbox_row($ID{$k}) // {};
		is $row->{status}, 'suppressed', "$k: outbox row suppressed" or outbox_diag($ID{$k}, $peer);
		my @a = audit_rows('email.suppressed', target_id => $ID{$k});
		is scalar(@a), 1, "$k: audit email.suppressed with target_id = the outbox id";
		is $a[0]{target_type}, 'email', "$k: target_type email" if @a;
	}
	# by now more than 5 s have passed since the POSTs
	sleep(5 - (time - $t_post)) if time - $t_post < 5;   # at least 5 s since the POSTs
	for my $k (qw(suppressed lookalike suffix)) {
		ok !$peer->messages_to($ADDR{$k}) && !rcpt_events($ADDR{$k}), "$k: the peer never heard of $ADDR{$k}";
		is +(outbox_row($ID{$k}) // {})->{status}, 'suppressed', "$k: still suppressed";
	}
}

# ============================================================ peer down, then back: nothing lost, nothing twice
{
	$peer->stop;
	ok !$peer->running, 'the SMTP peer is stopped';
	my $r = email_test_post($ADDR{down});
	is $r->{status}, 202, 'POST /email/test while the peer is down 202' or diag $r->{body};
	is $r->{json}{status}, 'queued', 'queued';
	my $id = $ID{down} = $r->{json}{id};
	my $row = wait_outbox_row($id, 20, sub ($r) { $r->{attempts} >= 2 });
	cmp_ok $row->{attempts} // 0, '>=', 2, 'attempts grow while the peer is down' or outbox_diag($id, $peer);
	like $row->{status} // '', qr/^(?:queued|sending)$/, 'still queued' or outbox_diag($id, $peer);
	like $row->{last_error} // '', qr/^connect:/, 'last_error starts "connect:"' or outbox_diag($id, $peer);
	my $before = $row->{attempts};
	$peer->start;
	ok $peer->running, 'the SMTP peer is back on the same port';
	my @m = $peer->wait_messages(1, 20, to => $ADDR{down});
	is scalar(@m), 1, 'the queued message is delivered once the peer is back' or outbox_diag($id, $peer);
	$row = wait_outbox_row($id, 10, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', 'status sent' or outbox_diag($id, $peer);
	cmp_ok $row->{attempts}, '>', $before, "attempts counts the successful attempt too ($row->{attempts})";
	sleep 3;
	is scalar($peer->messages_to($ADDR{down})), 1, 'exactly one copy three seconds later';
	my @a = audit_rows('email.sent', target_id => $id);
	is scalar(@a), 1, 'one email.sent for it';
	my @f = grep { audit_payload($_)->{willRetry} } audit_rows('email.failed', target_id => $id);
	cmp_ok scalar(@f), '>=', 1, 'email.failed (willRetry true) recorded for the failed connects';
	is audit_payload($f[0])->{step}, 'connect', 'their step is connect' if @f;
}

# ============================================================ bad input: 400, nothing queued
{
	my $n0 = outbox_count();
	my $long = ('a' x 64) . '@' . ('b' x 63) . '.' . ('c' x 63) . '.' . ('d' x 61);   # 254
	is length($long), 254, 'a 254-character address';
	my @bad = (
		[{}, 'to missing', 'to'],
		[{ to => 123 }, 'to a number', 'to'],
		[{ to => undef }, 'to null', 'to'],
		[{ to => ['allowed@example.test'] }, 'to an array', 'to'],
		[{ to => { a => 1 } }, 'to an object', 'to'],
		[{ to => '' }, 'to empty', 'to'],
		[{ to => 'no-at-sign' }, 'no @', 'to'],
		[{ to => 'a@' }, 'no domain', 'to'],
		[{ to => '@allowed.test' }, 'no local part', 'to'],
		[{ to => "a\@b.test\r\nBcc: x\@evil.test" }, 'CRLF header injection', 'to'],
		[{ to => "allowed\@example.test\nBcc: x\@evil.test" }, 'LF inside', 'to'],
		[{ to => "allowed\@example.test\r" }, 'CR at the end', 'to'],
		[{ to => "a\@b\x{0}c.test" }, 'NUL inside', 'to'],
		[{ to => ('x' x 290) . '@allowed.test' }, '303-character address', 'to'],
		[{ to => substr($long, 0, -1) . 'dd' }, '255-character address', 'to'],
		[{ to => 'allowed@example.test', cc => 'x@evil.test' }, 'an unknown field', 'cc'],
	);
	for my $c (@bad) {
		my ($body, $name, $field) = @$c;
		my $r = email_test_post($body);
		check_error($r, 400, 'validation_failed', "POST /email/test with $name");
		my $f = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH' && ref $r->{json}{error}{details} eq 'HASH'
		    ? $r->{json}{error}{details}{fields} : undef;
		ok ref $f eq 'HASH' && exists $f->{$field}, "$name: details.fields.$field" or diag $r->{body};
	}
	my $raw = http(POST => '/email/test', body => '{"to":', session => $admin,
	    headers => { 'Content-Type' => 'application/json' });
	check_error($raw, 400, 'invalid_json', 'POST /email/test with broken JSON');
	is outbox_count(), $n0, 'no bad input added an outbox row';
	my $ok = email_test_post($long);
	is $ok->{status}, 202, 'a well-formed 254-character address is accepted' or diag $ok->{body};
	is $ok->{json}{status}, 'suppressed', '(and suppressed: not allowlisted)';
	is outbox_count(), $n0 + 1, 'it added one row';
}

# ============================================================ permissions
my $org = create_org();
my $mem = create_user(role => 'member', org => $org);
my $mem_s = login($mem->{email}, $mem->{password});
my $pa = create_user(role => 'platform_admin');
my $pa_s = login($pa->{email}, $pa->{password});
{
	my $n0 = outbox_count();
	check_error(email_test_post('allowed@example.test', as => $mem_s), 403, 'forbidden', 'POST /email/test as a member');
	check_error(http(GET => '/email/outbox', session => $mem_s), 403, 'forbidden', 'GET /email/outbox as a member');
	check_error(http(POST => "/email/outbox/$ID{rejected}/retry", session => $mem_s), 403, 'forbidden',
	    'retry as a member');
	check_error(http(POST => '/email/test', json => { to => 'allowed@example.test' }), 401, 'unauthenticated',
	    'POST /email/test without credentials');
	check_error(http(GET => '/email/outbox'), 401, 'unauthenticated', 'GET /email/outbox without credentials');

	# runbook 5 steps 1-3 through the API: the settings, test mode, the allowlist
	check_error(http(GET => '/email/settings', session => $mem_s), 403, 'forbidden', 'GET /email/settings as a member');
	check_error(http(GET => '/email/settings'), 401, 'unauthenticated', 'GET /email/settings without credentials');
	my $st = http(GET => '/email/settings', session => $pa_s);
	is $st->{status}, 200, 'GET /email/settings as platform_admin' or diag $st->{body};
	my $j = $st->{json} // {};
	is $j->{server}, 'localhost', 'server';
	is $j->{port}, $peer->port, 'port';
	is $j->{secure}, 'starttls', 'secure';
	is $j->{user}, $SMTP_USER, 'user';
	ok $j->{passwordSet}, 'passwordSet true';
	ok $j->{testMode}, 'testMode true';
	is_deeply $j->{allowlist}, ['allowed@example.test', '@allowed.test'], 'the allowlist, entry by entry';
	unlike $st->{body}, qr/\Q$SMTP_PASS\E/, 'never the password';
	my ($rc, $out) = opsctl('email', 'settings', '--json');
	is $rc, 0, 'opsctl email settings --json exits 0';
	is_deeply json_decode($out), $j, 'and prints the same document';
	check_error(email_test_post('allowed@example.test', csrf => undef), 403, 'csrf_failed', 'POST /email/test without CSRF');
	is outbox_count(), $n0, 'refused requests queued nothing';
	my $r = email_test_post($ADDR{suppressed}, as => $pa_s);
	is $r->{status}, 202, 'platform_admin may POST /email/test' or diag $r->{body};
	is http(GET => '/email/outbox', session => $pa_s)->{status}, 200, 'platform_admin may GET /email/outbox';
}

# ============================================================ GET /email/outbox
{
	my $all = outbox(limit => 500);
	is $all->{status}, 200, 'GET /email/outbox 200' or diag $all->{body};
	my @all = items($all);
	ok exists(($all->{json} // {})->{nextCursor}), 'the list has nextCursor';
	is scalar(@all), outbox_count(), 'limit=500 lists every row';
	my %by_id = map { $_->{id} => $_ } @all;
	ok !grep({ !$by_id{$ID{$_}} } qw(exact domain rejected later suppressed down)), 'every item we made is listed';
	my @missing = map { my $i = $_; map { exists $i->{$_} ? () : "$i->{id}: $_" }
	    qw(id kind to subject status attempts nextAttemptAt lastSmtpStatus lastError createdAt sentAt) } @all;
	ok !@missing, 'every item has id kind to subject status attempts nextAttemptAt lastSmtpStatus lastError createdAt sentAt'
	    or diag join(', ', @missing[0 .. ($#missing < 9 ? $#missing : 9)]);
	my $e = $by_id{ $ID{exact} } // {};
	is $e->{status}, 'sent', 'the delivered item: status sent';
	is $e->{to}, $ADDR{exact}, 'to (the API shows the address to operators)';
	is $e->{attempts}, 1, 'attempts 1';
	is $e->{lastSmtpStatus}, 250, 'lastSmtpStatus 250';
	like $e->{sentAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/, 'sentAt is RFC 3339';
	like $e->{createdAt} // '', qr/^\d{4}-\d\d-\d\dT/, 'createdAt is RFC 3339';
	is $e->{kind}, 'test', 'kind test';
	is $e->{subject}, 'opsd test message', 'subject';
	my $f = $by_id{ $ID{rejected} } // {};
	like $f->{lastError} // '', qr/^rcpt: 550/, 'the failed item shows lastError';
	my @created = map { $_->{createdAt} // '' } @all;
	ok !grep({ $created[$_] lt $created[$_ + 1] } 0 .. $#created - 1), 'newest first';

	my $sent = outbox(status => 'sent', limit => 500);
	is $sent->{status}, 200, '?status=sent 200';
	my @s = items($sent);
	ok @s && !grep({ ($_->{status} // '') ne 'sent' } @s), '?status=sent lists only sent items'
	    or diag $sent->{body};
	is_deeply [sort map { $_->{id} } @s], [sort map { $_->{id} } grep { $_->{status} eq 'sent' } @all],
	    '?status=sent lists every sent item';
	my @sup = items(outbox(status => 'suppressed', limit => 500));
	ok @sup && !grep({ $_->{status} ne 'suppressed' } @sup), '?status=suppressed lists only suppressed items';
	ok grep({ $_->{id} eq ($ID{suppressed} // '') } @sup), 'and includes the suppressed one';
	my @fl = items(outbox(status => 'failed', limit => 500));
	ok grep({ $_->{id} eq ($ID{rejected} // '') } @fl), '?status=failed includes the 550 item';
	check_error(outbox(status => 'bogus'), 400, 'validation_failed', '?status=bogus');
	check_error(outbox(status => 'SENT'), 400, 'validation_failed', '?status=SENT (names are lower-case)');
	check_error(outbox(limit => 0), 400, 'validation_failed', '?limit=0');
	check_error(outbox(limit => 501), 400, 'validation_failed', '?limit=501');
	check_error(outbox(cursor => 'not-a-cursor!'), 400, 'validation_failed', 'a forged cursor');

	# paging one by one gives the same list, in order, without duplicates
	my (@ids, $cursor, $bad);
	for my $page (1 .. 200) {
		my $r = outbox(limit => 1, (defined $cursor ? (cursor => $cursor) : ()));
		if ($r->{status} != 200) { $bad = "page $page: $r->{status} $r->{body}"; last }
		my @it = items($r);
		$bad = "page $page has " . scalar(@it) . ' items' if @it > 1;
		push @ids, map { $_->{id} } @it;
		$cursor = $r->{json}{nextCursor};
		last unless defined $cursor;
		$bad = 'an empty page with a nextCursor' unless @it;
	}
	ok !$bad, 'limit=1 paging: every page 200 with one item' or diag $bad;
	is_deeply \@ids, [map { $_->{id} } @all], 'the pages, in order, equal the full list';
	my @sp;
	$cursor = undef;
	for (1 .. 100) {
		my $r = outbox(status => 'sent', limit => 1, (defined $cursor ? (cursor => $cursor) : ()));
		last unless $r->{status} == 200;
		push @sp, map { $_->{id} } items($r);
		$cursor = $r->{json}{nextCursor};
		last unless defined $cursor;
	}
	is_deeply \@sp, [map { $_->{id} } @s], 'paging with ?status=sent&limit=1 gives the sent list';
}

# ============================================================ opsctl: the outbox, settings, a test message
{
	# A message still being retried can turn failed between two reads: compare
	# opsctl's list with the API's read before and after it, until both agree.
	my ($api, $rc, $out, $err);
	for (1 .. 10) {
		$api = outbox(status => 'failed', limit => 500);
		($rc, $out, $err) = opsctl('email', 'outbox', 'list', '--status', 'failed', '--limit', '500');
		my $after = outbox(status => 'failed', limit => 500);
		last if Test::More::eq_array([$api->{json}], [$after->{json}]);
		select(undef, undef, undef, 0.5);
	}
	is $rc, 0, 'opsctl email outbox list --status failed exits 0' or diag $err;
	is_deeply json_decode($out), $api->{json}, 'it prints what GET /email/outbox?status=failed answers';
	($rc, $out) = opsctl('email', 'outbox', 'list', '--limit', '1');
	my $p1 = json_decode($out) // {};
	is scalar(@{ $p1->{items} // [] }), 1, 'outbox list --limit 1: one item';
	ok defined $p1->{nextCursor}, 'and a nextCursor';
	($rc, $out) = opsctl('email', 'outbox', 'list', '--limit', '1', '--cursor', $p1->{nextCursor} // '');
	is_deeply json_decode($out), outbox(limit => 1, cursor => $p1->{nextCursor} // '')->{json},
	    'the next page with --cursor, as the API gives it';
	for my $bad (['--status', 'bogus'], ['--limit', '0'], ['--limit', '501'], ['--cursor', 'not-a-cursor!']) {
		($rc, $out, $err) = opsctl('email', 'outbox', 'list', @$bad);
		is $rc, 2, "outbox list @$bad: exit 2";
	}

	# retry of the 550 item: queued again, audited as cli:root, fails again
	my $n_retry = audit_count('email.retry_requested');
	($rc, $out, $err) = opsctl('email', 'outbox', 'retry', '--id', $ID{rejected});
	is $rc, 0, 'opsctl email outbox retry of the failed item exits 0' or diag $err;
	my $j = json_decode($out) // {};
	is $j->{id}, $ID{rejected}, 'it prints the item';
	is $j->{status}, 'queued', 'status queued';
	is $j->{attempts}, 0, 'attempts 0';
	is audit_count('email.retry_requested'), $n_retry + 1, 'email.retry_requested audited';
	my @rr = audit_rows('email.retry_requested', target_id => $ID{rejected});
	is $rr[-1]{actor_label}, 'cli:root', 'with actor cli:root' if @rr;
	my $row = wait_outbox_row($ID{rejected}, 15, sub ($r) { $r->{status} eq 'failed' && $r->{attempts} >= 1 });
	is $row->{status}, 'failed', 'it is tried again and fails again';
	is scalar(rcpt_events($ADDR{rejected})), 3, 'the peer saw the refused RCPT a third time';
	($rc, $out, $err) = opsctl('email', 'outbox', 'retry', '--id', $ID{exact});
	is $rc, 1, 'retry of a sent item exits 1';
	like $err, qr/only a failed message can be retried/, '"only a failed message can be retried"';
	($rc, $out, $err) = opsctl('email', 'outbox', 'retry', '--id', uuid7_like());
	is $rc, 1, 'retry of an unknown id exits 1';
	like $err, qr/no such message/, '"no such message"';
	($rc) = opsctl('email', 'outbox', 'retry', '--id', 'not-an-id');
	is $rc, 2, 'retry of a malformed id exits 2';
	is audit_count('email.retry_requested'), $n_retry + 1, 'the refused retries wrote nothing';

	# the settings: what the outbox uses, never the password
	($rc, $out, $err) = opsctl('email', 'settings');
	is $rc, 0, 'opsctl email settings exits 0' or diag $err;
	like $out, qr/^server: +localhost$/m, 'server';
	like $out, qr/^port: +${\ $peer->port }$/m, 'port';
	like $out, qr/^secure: +starttls$/m, 'secure';
	like $out, qr/^user: +\Q$SMTP_USER\E$/m, 'user';
	like $out, qr/^password: +set$/m, 'password: set';
	like $out, qr/^test mode: +on\b/m, 'test mode on';
	like $out, qr/^allowlist: +allowed\@example\.test,\@allowed\.test$/m, 'the allowlist';
	unlike "$out$err", qr/\Q$SMTP_PASS\E/, 'never the password';

	# a test message through the outbox, delivered by the jobs process
	my $to = "cli-$RAND\@allowed.test";
	my $n_req = audit_count('email.test_requested');
	($rc, $out, $err) = opsctl('email', 'test', '--to', $to, '--wait');
	is $rc, 0, 'opsctl email test --wait exits 0' or diag "$out$err";
	my ($id) = $out =~ /^queued: \S+ \(outbox ([0-9a-f-]{36})\)$/m;
	ok $id, 'it says the message is queued, with its outbox id';
	like $out, qr/^sent: \Q$to\E via localhost:${\ $peer->port } \(starttls, auth\)$/m, 'then that it was sent';
	my @m = $peer->wait_messages(1, 10, to => $to);
	is scalar(@m), 1, 'the peer received it' or diag $peer->state_text;
	is +(outbox_row($id // 'none') // {})->{kind}, 'test', 'an outbox row of kind test';
	is audit_count('email.test_requested'), $n_req + 1, 'email.test_requested audited';
	my @tr = audit_rows('email.test_requested', target_id => $id // 'none');
	is $tr[0]{actor_label}, 'cli:root', 'with actor cli:root' if @tr;
	is audit_payload($tr[0] // {})->{status}, 'queued', 'payload status queued';
	unlike $tr[0]{payload} // '', qr/\Q$to\E/i, 'and no address in it';
	is scalar(audit_rows('email.sent', target_id => $id // 'none')), 1, 'email.sent audited';
	my $p = email_test_post("api-$RAND\@allowed.test");
	my @ar = audit_rows('email.test_requested', target_id => ($p->{json} // {})->{id} // 'none');
	is $ar[0]{actor_label}, 'superadmin', 'POST /email/test writes email.test_requested too' if @ar;
	ok @ar, 'POST /email/test is audited as email.test_requested';
	$peer->wait_messages(1, 10, to => "api-$RAND\@allowed.test");
}

# ============================================================ 451 until OPSD_SMTP_MAX_ATTEMPTS
{
	my $row = wait_outbox_row($ID{later}, 40, sub ($r) { $r->{status} eq 'failed' });
	is $row->{status}, 'failed', 'the 451 item ends failed after OPSD_SMTP_MAX_ATTEMPTS' or outbox_diag($ID{later}, $peer);
	is $row->{attempts}, 5, 'after exactly 5 attempts';
	sleep 3;
	is +(outbox_row($ID{later}) // {})->{attempts}, 5, 'and is not tried again';
	my @last = grep { JSON::PP::is_bool(audit_payload($_)->{willRetry}) && !audit_payload($_)->{willRetry} }
	    audit_rows('email.failed', target_id => $ID{later});
	is scalar(@last), 1, 'one email.failed with willRetry false for it';
	ok !$peer->messages_to($ADDR{later}), 'the 451 recipient never got a message';
}

# ============================================================ exactly once, overall
{
	my %n;
	$n{ lc $_ }++ for map { @{ $_->{rcpt_tos} // [] } } $peer->messages;
	my @dup = grep { $n{$_} > 1 } sort keys %n;
	ok !@dup, 'no recipient got a message twice' or diag "duplicates: @dup";
	my @sent_rows = outbox_rows("status = 'sent'");
	is scalar($peer->messages), scalar(@sent_rows), 'the peer got exactly one message per sent outbox row'
	    or diag $peer->state_text;
}

# ============================================================ metrics
{
	my $m = http(GET => '/metrics');
	is $m->{status}, 200, 'GET /metrics 200';
	my %v;
	$v{$1} = $2 while $m->{body} =~ /^opsd_emails_total\{outcome="(\w+)"\}\s+([\d.e+]+)\s*$/mg;
	cmp_ok $v{sent} // 0, '>=', 4, 'opsd_emails_total{outcome="sent"} ≥ 4' or diag join(' ', %v);
	cmp_ok $v{suppressed} // 0, '>=', 4, 'opsd_emails_total{outcome="suppressed"} ≥ 4';
	cmp_ok $v{failed} // 0, '>=', 2, 'opsd_emails_total{outcome="failed"} ≥ 2';
	cmp_ok $v{retry} // 0, '>=', 2, 'opsd_emails_total{outcome="retry"} ≥ 2';
	like $m->{body}, qr/^# TYPE opsd_emails_total counter$/m, 'opsd_emails_total is a counter';
}

# ============================================================ logs: the events, masked; nothing leaks
{
	my @rec = log_records('opsd.log');
	for my $ev (qw(email.sent email.failed email.suppressed)) {
		ok scalar(grep { ($_->{event} // '') eq $ev } @rec), "opsd.log has an $ev line";
	}
	my %needles = (
		'SMTP_PASS' => $SMTP_PASS,
		# (allowed@example.test is also in TEST_EMAIL_ALLOWLIST, which a config line may show)
		map { ("recipient $_" => $ADDR{$_}) } qw(domain down suppressed lookalike suffix rejected later),
	);
	my ($m) = $peer->messages_to($ADDR{exact});
	my $rid = $POST{exact}{headers}{'x-request-id'} // '';
	my $n = 0;
	for my $line (split /\n/, ($m // {})->{body} // '') {
		next if length $line < 12 || index($line, $rid) >= 0;
		$needles{ 'body line ' . ++$n } = $line;
	}
	ok $n, 'the body has lines of text to look for';
	my @hits = find_in_logs(\%needles);
	ok !@hits, 'no recipient address, body line or SMTP password in log/' or diag join("\n", @hits);
	my $payloads = mysql('SELECT CONCAT_WS(\' \', action, target_id, payload) FROM audit_events') // '';
	my %all = (%needles, 'recipient exact' => $ADDR{exact});
	my @ah = grep { index(lc $payloads, lc $all{$_}) >= 0 } sort keys %all;
	ok !@ah, 'no recipient, body line or SMTP password in audit_events' or diag join("\n", @ah);
	my @lines = grep { ($_->{event} // '') =~ /^email\./ } @rec;
	my @full = grep { my $l = json_encode($_); grep { index(lc $l, lc $_) >= 0 } values %ADDR } @lines;
	ok !@full, 'no email.* log line shows a recipient unmasked' or diag join("\n", map { json_encode($_) } @full[0 .. ($#full < 4 ? $#full : 4)]);
}

finish();
