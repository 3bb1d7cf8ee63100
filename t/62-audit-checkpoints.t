#!/usr/bin/perl
# Audit verification that scales (README "Audit log", runbook 6): a chain of
# a few thousand events (written here with the canonical hash) verifies in
# full, streamed in pages (opsctl audit verify --full; GET /audit/verify
# paged with limit and cursor to the end, a break on the third page named);
# opsctl audit verify records a signed checkpoint (audit.verified) and the
# next run replays only what was appended since; an edit after the
# checkpoint is found incrementally, one before it only by a full run; a
# chain rewritten under a checkpoint, an edited, forged or deleted
# checkpoint are found, and incremental runs refuse a checkpoint that does
# not verify; retention removing the checkpoint's event keeps both runs
# clean, and limit bounds its anchors and checkpoint rows per call too; 20 KB
# payloads verify in pages bounded by bytes. Bad parameters (a cursor forged
# under a key of zeros among them) answer 400, and verifying needs
# audit.verify.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256 hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use POSIX qw(strftime);
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin signs in' or BAIL_OUT('no session');
my $coff = create_user(role => 'compliance_officer');
my $comp = create_user(role => 'compliance');
my $coff_s = login($coff->{email}, $coff->{password});
my $comp_s = login($comp->{email}, $comp->{password});
ok $coff_s->{cookie} && $comp_s->{cookie}, 'a compliance_officer and a compliance user sign in';

# ---------------------------------------------------------------- helpers

sub head() { my ($h) = db_rows('SELECT seq, LOWER(HEX(hash)) AS hash FROM audit_chain_head WHERE id = 1'); return $h }
sub count_events() { return audit_count() }
sub max_seq() { return db_count('SELECT IFNULL(MAX(seq), 0) FROM audit_events') }
sub event($seq) {
	my ($e) = db_rows("SELECT seq, " . uuid_sql('id') . " AS id, HEX(payload) AS payload_hex FROM audit_events WHERE seq = $seq");
	return $e;
}
sub checkpoints() {
	return db_rows('SELECT seq, from_seq, events, LOWER(HEX(hash)) AS hash, verified_at, verified_by, key_id,'
	    . ' LOWER(HEX(signature)) AS signature FROM audit_checkpoints ORDER BY seq');
}
sub count_checkpoints() { return db_count("SELECT COUNT(*) FROM audit_checkpoints") }
sub verify(%q) { return verify_as($admin, %q) }
sub verify_as($s, %q) {
	my $qs = join '&', map { "$_=$q{$_}" } sort keys %q;
	my $r = http(GET => '/audit/verify' . ($qs ? "?$qs" : ''), session => $s);
	return ($r, j($r) // {});
}
# opsctl audit verify [--full]: (rc, stdout)
sub cli(@a) { my ($rc, $out, $err) = opsctl('audit', 'verify', @a); return ($rc, "$out$err") }

# The canonical hash (audit_hash.c): seq as 8 bytes big-endian, each field
# "N" for NULL or "S" + 8-byte big-endian length + the bytes, the 32 bytes
# of prev_hash.
sub canon_hash($e, $prev) {
	my $m = pack 'Q>', $e->{seq};
	for my $f (qw(id occurred_at actor_id actor_label org_id action target_type target_id ip request_id payload)) {
		my $v = $e->{$f};
		$m .= defined $v ? 'S' . pack('Q>', length $v) . $v : 'N';
	}
	return sha256($m . $prev);
}
sub new_uuid() {
	my @b = map { int rand 256 } 1 .. 16;
	$b[6] = ($b[6] & 0x0f) | 0x70;
	$b[8] = ($b[8] & 0x3f) | 0x80;
	my $h = join '', map { sprintf '%02x', $_ } @b;
	return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}
# n events appended after the head in one transaction, hashed as opsd does
# (with payloads of about $size bytes when given).
sub append_events($n, $size = 0) {
	my $h = head();
	my ($seq, $prev) = ($h->{seq}, pack('H*', $h->{hash}));
	my $at = strftime('%Y-%m-%d %H:%M:%S.000', gmtime);
	my $file = stack()->{tmp} . "/append-$seq.sql";
	open my $fh, '>', $file or die "$file: $!";
	print $fh "START TRANSACTION;\n";
	my @rows;
	for my $i (1 .. $n) {
		my $e = { seq => $seq + $i, id => new_uuid(), occurred_at => $at, actor_label => 'system', action => 'user.updated',
		    target_type => 'user', payload => $size ? qq({"n":$i,"pad":") . ('x' x $size) . '"}' : qq({"n":$i}) };
		my $hash = canon_hash($e, $prev);
		push @rows, sprintf "(%d, UNHEX('%s'), '%s', 'system', 'user.updated', 'user', '%s', UNHEX('%s'), UNHEX('%s'))",
		    $e->{seq}, $e->{id} =~ s/-//gr, $at, $e->{payload}, unpack('H*', $prev), unpack('H*', $hash);
		$prev = $hash;
		if (@rows == 500 || $i == $n) {
			print $fh 'INSERT INTO audit_events (seq, id, occurred_at, actor_label, action, target_type, payload, prev_hash, hash) VALUES '
			    . join(",\n", @rows) . ";\n";
			@rows = ();
		}
	}
	printf $fh "UPDATE audit_chain_head SET seq = %d, hash = UNHEX('%s') WHERE id = 1 AND seq = %d;\nCOMMIT;\n",
	    $seq + $n, unpack('H*', $prev), $seq;
	close $fh;
	return defined mysql("source $file");
}
sub tamper($seq) { return defined mysql(qq{UPDATE audit_events SET payload = '{"tampered":1}' WHERE seq = $seq}) }
sub restore($e) { return defined mysql("UPDATE audit_events SET payload = UNHEX('$e->{payload_hex}') WHERE seq = $e->{seq}") }

# ================================================================ a few thousand events, verified in full
my $N0 = count_events();
ok append_events(4500), '4500 events appended to the chain, hashed as opsd hashes them';
my $N = count_events();
is $N, $N0 + 4500, "the log holds $N events";
is head()->{seq}, max_seq(), 'the chain head names the last one';
{
	my ($rc, $out) = cli('--full');
	is $rc, 0, 'opsctl audit verify --full exits 0' or diag $out;
	like $out, qr/^ok: $N events checked$/m, "  prints \"ok: $N events checked\" (pages of 2,000: memory stays bounded)";
	like $out, qr/^range: seq 1\.\.@{[max_seq()]}$/m, '  and the range, seq 1 to the head';
	like $out, qr/^the whole chain; 0 checkpoints checked$/m, '  the whole chain, no checkpoint yet';
	is count_checkpoints(), 0, '  --full records no checkpoint';

	my ($r, $v) = verify();
	is_deeply [@$v{qw(ok checked fromSeq toSeq more cursor)}], [JSON::PP::true, $N, 1, max_seq(), JSON::PP::false, undef],
	    "GET /audit/verify: the whole chain in one call ({ok, checked: $N, fromSeq: 1, toSeq: head, more: false})" or diag $r->{body};
	ok exists $v->{checkpoint} && !defined $v->{checkpoint}, '  checkpoint null (the run began at the start)';

	# paged to the end: 1,000 events a call, each continuing where the last stopped
	my (@pages, $cursor, %q);
	for (1 .. 20) {
		my ($pr, $pv) = verify(limit => 1000, $cursor ? (cursor => $cursor) : ());
		push @pages, $pv;
		last unless $pr->{status} == 200 && $pv->{more};
		$cursor = $pv->{cursor};
	}
	my $np = int(($N + 999) / 1000);
	is scalar(@pages), $np, "limit=1000: $np calls to the end";
	ok !(grep { !$_->{ok} } @pages), '  every page ok';
	is_deeply [map { $_->{checked} } @pages], [map { $_ * 1000 < $N ? $_ * 1000 : $N } 1 .. $np],
	    '  checked counts the whole run so far, 1,000 more each call';
	ok !(grep { $pages[$_]{toSeq} <= $pages[$_ - 1]{toSeq} } 1 .. $#pages), '  toSeq moves forward';
	ok !(grep { ($_->{more} ? 1 : 0) != (defined $_->{cursor} ? 1 : 0) } @pages), '  a cursor exactly when more';
	is $pages[-1]{toSeq}, max_seq(), '  the last one reaches the head';
	ok !(grep { $_->{fromSeq} != 1 } @pages), '  fromSeq stays the run\'s first seq';

	# a break on the third page: named by the run that pages, and by --full
	my $bad = event(max_seq() - 1500);
	ok tamper($bad->{seq}), "altered event seq $bad->{seq} (past the first pages)";
	($cursor, @pages) = (undef);
	for (1 .. 20) {
		my ($pr, $pv) = verify(limit => 1000, $cursor ? (cursor => $cursor) : ());
		push @pages, $pv;
		last unless $pr->{status} == 200 && $pv->{ok} && $pv->{more};
		$cursor = $pv->{cursor};
	}
	my $last = $pages[-1];
	is_deeply [@$last{qw(ok firstBrokenSeq firstBrokenId reason more cursor)}],
	    [JSON::PP::false, $bad->{seq}, $bad->{id}, 'hash mismatch', JSON::PP::false, undef],
	    "  the paged run stops at seq $bad->{seq} (hash mismatch), no cursor" or diag explain $last;
	($rc, $out) = cli('--full');
	is $rc, 1, '  opsctl audit verify --full exits 1';
	like $out, qr/^broken: first bad event \Q$bad->{id}\E \(seq $bad->{seq}\)$/m, '  and names it' or diag $out;
	ok restore($bad), '  restored';
}

# ================================================================ checkpoints: incremental runs
my $C1;
{
	my $n = count_events();
	my ($rc, $out) = cli();
	is $rc, 0, 'opsctl audit verify exits 0' or diag $out;
	like $out, qr/^ok: $n events checked$/m, "  no checkpoint yet: the whole chain ($n events)";
	like $out, qr/^the whole chain \(no checkpoint yet\)$/m, '  says so';
	my @cp = checkpoints();
	is scalar(@cp), 1, '  one checkpoint recorded';
	$C1 = $cp[0] // {};
	is $C1->{seq}, max_seq() - 1, '  at the head it verified (audit.verified follows it)';
	like $out, qr/^checkpoint recorded at seq $C1->{seq}$/m, '  and prints it';
	is_deeply [@$C1{qw(from_seq events verified_by)}], [1, $n, 'cli:root'], '  from seq 1, its event count, by cli:root';
	my ($at) = db_rows("SELECT LOWER(HEX(hash)) AS hash FROM audit_events WHERE seq = $C1->{seq}");
	is $C1->{hash}, $at->{hash}, '  with the hash of that event';
	my @ev = audit_payloads('audit.verified');
	is scalar(@ev), 1, 'audit.verified';
	is_deeply [@{ $ev[0]{p} // {} }{qw(checkpointSeq fromSeq checked)}], [$C1->{seq}, 1, $n], '  names the checkpoint, its range and count';
	my ($row) = audit_rows('audit.verified');
	is $row->{actor_label}, 'cli:root', '  by cli:root';
}
{
	ok append_events(30), '30 more events';
	for (1 .. 2) { create_org() }
	my $since = db_count("SELECT COUNT(*) FROM audit_events WHERE seq > $C1->{seq}");
	my ($r, $v) = verify(from => 'checkpoint');
	is_deeply [@$v{qw(ok checked fromSeq toSeq more)}], [JSON::PP::true, $since, $C1->{seq} + 1, max_seq(), JSON::PP::false],
	    "GET /audit/verify?from=checkpoint: only the $since events since the checkpoint" or diag $r->{body};
	is $v->{checkpoint}{seq}, $C1->{seq}, '  names the checkpoint it began after';
	is $v->{checkpoint}{verifiedBy}, 'cli:root', '  who recorded it';
	like $v->{checkpoint}{verifiedAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, '  and when (RFC 3339)';
	is count_checkpoints(), 1, '  the API records no checkpoint';

	my ($rc, $out) = cli();
	is $rc, 0, 'opsctl audit verify exits 0' or diag $out;
	like $out, qr/^ok: $since events checked$/m, "  checks only the $since events since the checkpoint";
	like $out, qr/^range: seq @{[$C1->{seq} + 1]}\.\.@{[max_seq() - 1]}$/m, '  prints the range' or diag $out;
	like $out, qr/^since the checkpoint at seq $C1->{seq} \(verified \S+ \S+ by cli:root\)$/m, '  and the checkpoint it began after';
	is count_checkpoints(), 2, '  a second checkpoint';
}

# ================================================================ tampering before and after the newest checkpoint
{
	my @cp = checkpoints();
	my $cp = $cp[-1];
	my $before = event(int($cp->{seq} / 2));
	ok tamper($before->{seq}), "altered event seq $before->{seq}, before the checkpoint at $cp->{seq}";
	my ($rc, $out) = cli();
	is $rc, 0, '  an incremental run does not replay it (exit 0): only a full one does' or diag $out;
	($rc, $out) = cli('--full');
	is $rc, 1, '  opsctl audit verify --full exits 1';
	like $out, qr/^broken: first bad event \Q$before->{id}\E \(seq $before->{seq}\)$/m, '  naming it';
	my ($r, $v) = verify();
	is_deeply [@$v{qw(ok firstBrokenSeq)}], [JSON::PP::false, $before->{seq}], '  GET /audit/verify (from the start) names it';
	ok restore($before), '  restored';

	@cp = checkpoints();
	$cp = $cp[-1];
	ok append_events(5), '5 more events';
	my $after = event(max_seq() - 2);
	ok tamper($after->{seq}), "altered event seq $after->{seq}, after the checkpoint at $cp->{seq}";
	($r, $v) = verify(from => 'checkpoint');
	is_deeply [@$v{qw(ok firstBrokenSeq firstBrokenId reason)}], [JSON::PP::false, $after->{seq}, $after->{id}, 'hash mismatch'],
	    '  GET /audit/verify?from=checkpoint names it' or diag $r->{body};
	my $ncp = count_checkpoints();
	($rc, $out) = cli();
	is $rc, 1, '  opsctl audit verify exits 1';
	like $out, qr/^broken: first bad event \Q$after->{id}\E \(seq $after->{seq}\)$/m, '  naming it';
	is count_checkpoints(), $ncp, '  and records no checkpoint';
	ok restore($after), '  restored';
	($rc, $out) = cli();
	is $rc, 0, 'clean again: opsctl audit verify exits 0' or diag $out;
}

# ================================================================ a chain rewritten under a checkpoint
{
	my @cp = checkpoints();
	my $cp = $cp[-1];
	my $from = $cp->{seq} - 3;
	my @ev = db_rows('SELECT seq, ' . uuid_sql('id') . ' AS id, occurred_at, ' . uuid_sql('actor_id') . ' AS actor_id, actor_label, '
	    . uuid_sql('org_id') . " AS org_id, action, target_type, target_id, ip, request_id, payload, LOWER(HEX(prev_hash)) AS prev_hash,"
	    . " LOWER(HEX(hash)) AS hash FROM audit_events WHERE seq >= $from ORDER BY seq");
	$_->{actor_id} = undef for grep { ($_->{actor_id} // '') eq '' } @ev;
	$_->{org_id} = undef for grep { ($_->{org_id} // '') eq '' } @ev;
	my $h0 = head();
	my $prev = pack 'H*', $ev[0]{prev_hash};
	my (@sql, @undo) = ('START TRANSACTION');
	for my $e (@ev) {
		my $p = $e->{seq} == $from ? '{"rewritten":1}' : $e->{payload};
		my $hash = canon_hash({ %$e, payload => $p }, $prev);
		push @sql, sprintf "UPDATE audit_events SET payload = %s, prev_hash = UNHEX('%s'), hash = UNHEX('%s') WHERE seq = %d",
		    $e->{seq} == $from ? "'$p'" : 'payload', unpack('H*', $prev), unpack('H*', $hash), $e->{seq};
		$prev = $hash;
	}
	push @sql, sprintf("UPDATE audit_chain_head SET hash = UNHEX('%s') WHERE id = 1", unpack('H*', $prev)), 'COMMIT';
	ok defined mysql(@sql), "rewrote the chain from seq $from (before the checkpoint at $cp->{seq}) with every hash recomputed";
	my ($r, $v) = verify();
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $cp->{seq}, 'checkpoint does not match the chain'],
	    '  the full run: every link holds, but the checkpoint does not match' or diag $r->{body};
	($r, $v) = verify(from => 'checkpoint');
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $cp->{seq}, 'checkpoint does not match the chain'],
	    '  the incremental run refuses to start from it' or diag $r->{body};
	my ($rc, $out) = cli();
	is $rc, 1, '  opsctl audit verify exits 1';
	like $out, qr/^reason: checkpoint does not match the chain$/m, '  with the reason' or diag $out;
	@sql = ('START TRANSACTION');
	for my $e (@ev) {
		push @sql, sprintf "UPDATE audit_events SET payload = %s, prev_hash = UNHEX('%s'), hash = UNHEX('%s') WHERE seq = %d",
		    "UNHEX('" . unpack('H*', $e->{payload}) . "')", $e->{prev_hash}, $e->{hash}, $e->{seq};
	}
	push @sql, "UPDATE audit_chain_head SET hash = UNHEX('$h0->{hash}') WHERE id = 1", 'COMMIT';
	ok defined mysql(@sql), '  the original rows put back';
	($rc, $out) = cli('--full');
	is $rc, 0, '  clean again' or diag $out;
}

# ================================================================ edited, forged and deleted checkpoints
{
	my @cp = checkpoints();
	my ($old, $new) = @cp[0, -1];
	my $ev_new = event($new->{seq});
	ok defined mysql("UPDATE audit_checkpoints SET events = events + 1 WHERE seq = $new->{seq}"), 'edited the newest checkpoint (its count)';
	my ($rc, $out) = cli();
	is $rc, 1, '  opsctl audit verify refuses it (exit 1)';
	like $out, qr/^broken: first bad event \Q$ev_new->{id}\E \(seq $new->{seq}\)$/m, '  naming the event it stands at' or diag $out;
	like $out, qr/^reason: checkpoint signature mismatch$/m, '  checkpoint signature mismatch';
	my ($r, $v) = verify(from => 'checkpoint');
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $new->{seq}, 'checkpoint signature mismatch'],
	    '  GET /audit/verify?from=checkpoint too' or diag $r->{body};
	($r, $v) = verify();
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $new->{seq}, 'checkpoint signature mismatch'],
	    '  and the full run' or diag $r->{body};
	mysql("UPDATE audit_checkpoints SET events = events - 1 WHERE seq = $new->{seq}");

	my $h = head();
	ok defined mysql("INSERT INTO audit_checkpoints (seq, from_seq, events, hash, verified_at, verified_by, key_id, signature)"
	    . " VALUES ($h->{seq}, 1, 1, UNHEX('$h->{hash}'), UTC_TIMESTAMP(3), 'cli:root', '$new->{key_id}', UNHEX(SHA2('forged', 256)))"),
	    "forged a checkpoint at the head (seq $h->{seq})";
	($r, $v) = verify(from => 'checkpoint');
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $h->{seq}, 'checkpoint signature mismatch'],
	    '  the incremental run refuses it' or diag $r->{body};
	($rc, $out) = cli('--full');
	is $rc, 1, '  so does the full one';
	like $out, qr/^reason: checkpoint signature mismatch$/m, '  (checkpoint signature mismatch)';
	mysql("DELETE FROM audit_checkpoints WHERE seq = $h->{seq}");

	my ($vev) = grep { ($_->{p}{checkpointSeq} // 0) == $old->{seq} } audit_payloads('audit.verified');
	ok defined mysql("DELETE FROM audit_checkpoints WHERE seq = $old->{seq}"), "deleted the first checkpoint (seq $old->{seq})";
	($rc, $out) = cli();
	is $rc, 0, '  the incremental run starts from the newest one: exit 0' or diag $out;
	($r, $v) = verify();
	is_deeply [@$v{qw(ok firstBrokenSeq reason)}], [JSON::PP::false, $vev->{seq}, 'checkpoint missing'],
	    "  the full run names the audit.verified event that recorded it (seq $vev->{seq})" or diag $r->{body};
	ok defined mysql("INSERT INTO audit_checkpoints (seq, from_seq, events, hash, verified_at, verified_by, key_id, signature)"
	    . " VALUES ($old->{seq}, $old->{from_seq}, $old->{events}, UNHEX('$old->{hash}'), '$old->{verified_at}', '$old->{verified_by}',"
	    . " '$old->{key_id}', UNHEX('$old->{signature}'))"), '  put back';
	($rc, $out) = cli('--full');
	is $rc, 0, '  clean again' or diag $out;
	my $ncp = count_checkpoints();
	like $out, qr/^the whole chain; $ncp checkpoints checked$/m, "  with every checkpoint checked ($ncp)" or diag $out;
}

# ================================================================ bad input, permissions
check_error(http(GET => '/audit/verify?from=middle', session => $admin), 400, 'validation_failed', 'from=middle');
check_error(http(GET => '/audit/verify?cursor=nonsense', session => $admin), 400, 'validation_failed', 'cursor=nonsense');
{
	my ($r, $v) = verify(limit => 1);
	my $c = $v->{cursor} // '';
	ok length $c, 'limit=1 gives a cursor';
	(my $edited = $c) =~ s/^(.{20})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
	my $e = http(GET => "/audit/verify?cursor=$edited", session => $admin);
	check_error($e, 400, 'validation_failed', 'an edited cursor');
	is_deeply [keys %{ $e->{json}{error}{details}{fields} // {} }], ['cursor'], '  the field is cursor';
	check_error(http(GET => "/audit/verify?cursor=$c&from=start", session => $admin), 400, 'validation_failed', 'cursor with from');
	check_error(http(GET => "/audit/verify?cursor=$c&cursor=$c", session => $admin), 400, 'validation_failed', 'cursor twice');
	my ($r2, $v2) = verify(cursor => $c);
	is_deeply [@$v2{qw(ok more)}], [JSON::PP::true, JSON::PP::false], '  the cursor itself continues the run to the end' or diag $r2->{body};
	is $v2->{checked}, count_events(), '  checking every event';
}
{
	# a cursor at the head MAC'd under a key anyone knows (zeros): before, a
	# server without OPSD_DATA_KEY took it and answered ok without a replay
	my $h = head();
	for my $v (1, 2) {
		my $body = pack('C C Q> Q> Q> a32', $v, 1, 1, $h->{seq} + 1, 0, pack('H*', $h->{hash}))
		    . ($v == 2 ? pack('Q> Q>', 0, time) : '');
		my $label = "opsd-audit-verify-cursor-v$v";
		my $forged = encode_base64url($body . substr(hmac_sha256($label . $body, "\0" x 32), 0, 16));
		check_error(http(GET => "/audit/verify?cursor=$forged", session => $admin), 400, 'validation_failed',
		    "a cursor (v$v) forged under a key of zeros");
	}
}
check_error(http(GET => "/audit/verify?limit=$_", session => $admin), 400, 'validation_failed', "limit=$_") for qw(0 -1 ten 1000001);
check_error(http(GET => '/audit/verify?full=1', session => $admin), 400, 'validation_failed', 'an unknown parameter');
check_error(http(GET => '/audit/verify?from=checkpoint', session => $comp_s), 403, 'forbidden', 'compliance (no audit.verify)');
check_error(http(GET => '/audit/verify?from=checkpoint'), 401, 'unauthenticated', 'nobody');
{
	my ($r, $v) = verify_as($coff_s, from => 'checkpoint');
	is $v->{ok}, JSON::PP::true, 'the compliance_officer verifies from the checkpoint' or diag $r->{body};
	my ($rc, $out, $err) = opsctl({ env => { OPSD_CLI_ROLES => 'root:compliance' } }, 'audit', 'verify');
	is $rc, 3, 'opsctl audit verify without audit.verify exits 3' or diag "$out$err";
	($rc, $out, $err) = opsctl('audit', 'verify', '--fast');
	is $rc, 2, 'an unknown option exits 2' or diag "$out$err";
}

# ================================================================ retention removes the checkpoint's event
{
	my @cp = checkpoints();
	my ($rc, $out, $err) = opsctl(qw(audit purge --days 0));
	is $rc, 0, 'opsctl audit purge --days 0: every event so far replaced by an anchor' or diag "$out$err";
	is db_count("SELECT COUNT(*) FROM audit_events WHERE seq = $cp[-1]{seq}"), 0, "  the newest checkpoint's event (seq $cp[-1]{seq}) is gone";
	($rc, $out) = cli();
	is $rc, 0, '  opsctl audit verify still starts from that checkpoint (the anchor over it is signed)' or diag $out;
	like $out, qr/^since the checkpoint at seq $cp[-1]{seq} /m, '  says so';
	($rc, $out) = cli('--full');
	is $rc, 0, '  the full run is clean, every checkpoint on an anchor or an event' or diag $out;
	my ($r, $v) = verify(from => 'checkpoint');
	is $v->{ok}, JSON::PP::true, '  GET /audit/verify?from=checkpoint ok' or diag $r->{body};
	append_events(3);
	($rc, $out) = cli();
	is $rc, 0, '  and after new events' or diag $out;
	($r, $v) = verify();
	is $v->{ok}, JSON::PP::true, '  the full run too' or diag $r->{body};

	# limit bounds the anchors and checkpoint rows a call steps over, not
	# only the events: with limit=1 a call checks at most one checkpoint
	my ($cursor, $calls, $last) = (undef, 0);
	while ($calls < 500) {
		my ($pr, $pv) = verify(limit => 1, $cursor ? (cursor => $cursor) : ());
		$calls++;
		$last = $pv;
		last unless $pr->{status} == 200 && $pv->{ok} && $pv->{more};
		$cursor = $pv->{cursor};
	}
	is_deeply [@$last{qw(ok more)}], [JSON::PP::true, JSON::PP::false], "limit=1 to the end after retention: ok in $calls calls"
	    or diag explain $last;
	cmp_ok $calls, '>', count_checkpoints(), '  at least one call per checkpoint row';
}

# ================================================================ large payloads: pages bounded by bytes
{
	ok append_events(300, 20_000), '300 events of 20 KB each (as compliance.archived with hundreds of ids)';
	my ($r, $v) = verify();
	is_deeply [@$v{qw(ok checked more)}], [JSON::PP::true, count_events(), JSON::PP::false],
	    '  GET /audit/verify replays them all (pages of a few MB, not 2,000 rows of 20 KB)' or diag $r->{body};
	my ($cursor, @pages) = (undef);
	while (@pages < 20) {
		my ($pr, $pv) = verify(limit => 150, $cursor ? (cursor => $cursor) : ());
		push @pages, $pv;
		last unless $pr->{status} == 200 && $pv->{ok} && $pv->{more};
		$cursor = $pv->{cursor};
	}
	is_deeply [@{ $pages[-1] }{qw(ok checked more)}], [JSON::PP::true, count_events(), JSON::PP::false], '  and paged with limit=150';
	ok !(grep { $_->{more} && $_->{checked} % 150 } @pages), '  150 events a call, whatever the page size';
	my ($rc, $out) = cli('--full');
	is $rc, 0, '  opsctl audit verify --full too' or diag $out;
}

finish();
