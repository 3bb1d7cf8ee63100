#!/usr/bin/perl
# Audit retention (doc/architecture.md "The audit log"): contacts A and B of
# an org and contact C of a second org O2 get several events each; A and O2 go on legal hold. `opsctl
# audit purge --dry-run --days 0` reports what it would delete (counted here
# independently) and changes nothing; the real purge deletes every event
# that is not about a held subject, keeps those about A and O2/C with their
# hashes, and leaves signed anchors in audit_anchors that carry the hashes
# of the runs they replace; audit.purged has the counts and no PII; the
# chain still verifies (API and CLI). Anchors are tamper-evident (signature,
# last_hash, prev_hash, a deleted anchor) and come back clean when restored. Later
# purges merge adjacent runs into one anchor (also on both sides of a
# released subject's events). Releasing A lets its events go, O2/C's stay.
# A tampered expired event stops the purge right before it (retention never
# deletes evidence) and verify names it; after the repair the purge goes
# on; the event after a deleted row (the one verify names) must stop it
# too. Bad --days values exit 2 with nothing deleted; without OPSD_DATA_KEY a
# real purge exits 1 with nothing deleted while --dry-run works, verify
# says the anchors cannot be checked, and another key is named as such.
# Last, the job (one stack per file, so on this one): the events after the
# last anchor are moved 3 days back in time (occurred_at rewritten, every
# hash, prev_hash and the chain head recomputed here with the canonical form
# of audit_hash.c, checked by /audit/verify), the stack
# is restarted with OPSD_AUDIT_RETENTION_DAYS=2 and the jobs process purges
# the aged events that are not held as "system".
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256);
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

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

sub first_lines(@l) { return join "\n", @l[0 .. ($#l < 14 ? $#l : 14)] }

# ---------------------------------------------------------------- the chain as MariaDB holds it

# The columns of the canonical form as audit.c reads them: ids as lower-case
# hyphenated UUID text, occurred_at as MariaDB prints DATETIME(3).
my $EVENT_COLS = join ', ', 'seq', uuid_sql('id') . ' AS id', 'occurred_at', uuid_sql('actor_id') . ' AS actor_id',
    'actor_label', uuid_sql('org_id') . ' AS org_id', qw(action target_type target_id ip request_id payload),
    'LOWER(HEX(prev_hash)) AS prev_hash', 'LOWER(HEX(hash)) AS hash';
my %SEEN;     # seq => the last row read of every event this test saw (for the anchor link checks)
sub events() {
	my @e = db_rows("SELECT $EVENT_COLS FROM audit_events ORDER BY seq");
	$SEEN{ $_->{seq} } = $_ for @e;
	return @e;
}
sub count_events() { return audit_count() }
sub count_anchors() { return db_count('SELECT COUNT(*) FROM audit_anchors') }
sub anchors() {
	return db_rows('SELECT first_seq, last_seq, LOWER(HEX(prev_hash)) AS prev_hash, LOWER(HEX(last_hash)) AS last_hash,'
	    . ' key_id, LOWER(HEX(signature)) AS signature, created_at FROM audit_anchors ORDER BY first_seq');
}
sub head() { my ($h) = db_rows('SELECT seq, LOWER(HEX(hash)) AS hash FROM audit_chain_head WHERE id = 1'); return $h // {} }
# seq => hash of the events a predicate picks
sub hashes(@e) { return { map { $_->{seq} => $_->{hash} } @e } }
# A UUID (case-insensitive) as the event's actor, org or target, or anywhere in its payload.
sub about($e, @ids) {
	for my $id (map { lc } grep { defined } @ids) {
		return 1 if grep { lc($_ // '') eq $id } @$e{qw(actor_id org_id target_id)};
		return 1 if index(lc($e->{payload} // ''), $id) >= 0;
	}
	return 0;
}
sub purged_rows() {
	return map { { %$_, p => json_decode($_->{payload} // '') } }
	    db_rows("SELECT $EVENT_COLS FROM audit_events WHERE action = 'audit.purged' ORDER BY seq");
}

# The canonical event hash (audit_hash.c audit_record_hash): seq as 8 bytes
# big-endian; per field "N" for NULL or "S" + 8-byte big-endian length + the
# bytes; the 32 raw bytes of prev_hash.
sub canon_hash($e, $prev) {
	my $m = pack 'Q>', $e->{seq};
	for my $f (qw(id occurred_at actor_id actor_label org_id action target_type target_id ip request_id payload)) {
		my $v = $e->{$f};
		$m .= defined $v ? 'S' . pack('Q>', length $v) . $v : 'N';
	}
	return sha256($m . $prev);
}

# What a purge with this held set (every event expired: --days 0) deletes,
# keeps and how many runs of consecutive seqs it deletes in, counted here;
# upto => SEQ stops before that seq (a refused event).
sub expect_purge($held, %o) {
	my %x = (deleted => 0, kept => 0, anchors => 0, deleted_seqs => [], kept_seqs => []);
	my ($open, $prev) = (0, undef);
	for my $e (events()) {
		last if defined $o{upto} && $e->{seq} >= $o{upto};
		if (about($e, @$held)) {
			$x{kept}++;
			push @{ $x{kept_seqs} }, $e->{seq};
			$open = 0;
		} else {
			$x{anchors}++ unless $open && $e->{seq} == $prev + 1;
			$x{deleted}++;
			push @{ $x{deleted_seqs} }, $e->{seq};
			$open = 1;
		}
		$prev = $e->{seq};
	}
	return \%x;
}

# `opsctl audit purge ...` with its report line parsed (events are read
# first so that the anchor checks know the hashes of what it deletes).
my $PURGE_RE = qr/^(would delete|deleted) (\d+) events older than (\S+) \((\d+) days\); (\d+) kept under legal hold; (\d+) anchors( \(dry run: nothing changed\))?$/m;
sub purge(@args) {
	my $o = ref $args[0] eq 'HASH' ? shift @args : {};
	events();
	my ($rc, $out, $err) = opsctl($o, 'audit', 'purge', @args);
	my %r = (rc => $rc, out => $out, err => $err, t => time);
	@r{qw(verb deleted cutoff days kept anchors dry)} = ($1, $2, $3, $4, $5, $6, $7 ? 1 : 0) if $out =~ $PURGE_RE;
	return \%r;
}
# refused => SEQ: the purge stopped before that event: exit 1 and a "stopped:" line.
sub purge_matches($r, $dry, $days, $what, %o) {
	my $ok = is $r->{rc}, $o{refused} ? 1 : 0, "$what: exits " . ($o{refused} ? 1 : 0);
	$ok &= like $r->{out}, qr/^stopped: audit event seq $o{refused} does not verify/m, "$what: says it stopped at seq $o{refused}"
	    if $o{refused};
	$ok &= like $r->{out}, $dry
	    ? qr/^would delete \d+ events older than \S+ \($days days\); \d+ kept under legal hold; \d+ anchors \(dry run: nothing changed\)$/m
	    : qr/^deleted \d+ events older than \S+ \($days days\); \d+ kept under legal hold; \d+ anchors$/m,
	    "$what: prints \"" . ($dry ? 'would delete' : 'deleted') . " N events older than <time> ($days days); K kept under"
	    . ' legal hold; A anchors' . ($dry ? ' (dry run: nothing changed)"' : '"');
	my $c = rfc3339_epoch($r->{cutoff});
	$ok &= ok defined $c && abs($c - ($r->{t} - $days * 86400)) < 60, "$what: the cutoff $r->{cutoff} is now - $days days";
	diag "stdout: $r->{out}\nstderr: $r->{err}" unless $ok;
	return $ok;
}
sub purge_counts_are($r, $x, $what) {
	is_deeply { map { $_ => $r->{$_} } qw(deleted kept anchors) }, { map { $_ => $x->{$_} } qw(deleted kept anchors) },
	    "$what: deleted $x->{deleted}, kept $x->{kept}, $x->{anchors} anchors, as counted here" or diag "stdout: $r->{out}";
}

sub verify_ok($what) {
	my ($r, $v) = audit_verify();
	my $n = count_events();
	is $r->{status}, 200, "$what: GET /audit/verify 200";
	ok JSON::PP::is_bool($v->{ok}) && $v->{ok} && ($v->{checked} // -1) == $n,
	    "$what: /audit/verify {ok: true, checked: $n} (the row count)" or diag $r->{body};
	my ($rc, $out, $err) = opsctl('audit', 'verify', '--full');
	is $rc, 0, "$what: opsctl audit verify exits 0" or diag "$out$err";
	like $out, qr/^ok: $n events checked$/m, "$what: and prints \"ok: $n events checked\"";
}
# want: seq, id, reason (a string or a regex)
sub verify_broken($what, %w) {
	my ($r, $v) = audit_verify();
	is $r->{status}, 200, "$what: GET /audit/verify 200";
	my $rs = ref $w{reason} ? $w{reason} : qr/^\Q$w{reason}\E$/;
	my $ok = ok JSON::PP::is_bool($v->{ok}) && !$v->{ok}, "$what: ok false";
	$ok &= like $v->{reason} // '', $rs, "$what: reason \"" . ($v->{reason} // '') . '"';
	$ok &= is $v->{firstBrokenSeq}, $w{seq}, "$what: firstBrokenSeq $w{seq}";
	$ok &= is $v->{firstBrokenId}, $w{id}, "$what: firstBrokenId is the event at seq $w{seq}";
	diag $r->{body} unless $ok;
	my ($rc, $out, $err) = opsctl('audit', 'verify', '--full');
	is $rc, 1, "$what: opsctl audit verify exits 1" or diag "$out$err";
	like $out, qr/^broken: first bad event \Q$w{id}\E \(seq $w{seq}\)$/m, "$what: opsctl names event seq $w{seq}" or diag "$out$err";
	my ($reason) = $out =~ /^reason: (.*)$/m;
	like $reason // '', $rs, "$what: opsctl prints the reason" or diag "$out$err";
}

# Every seq from 1 to the head is exactly one stored event or inside exactly
# one anchor; no anchor ends right before another begins (merged runs); each
# anchor carries the prev_hash its first deleted event had and the hash of
# its last one (as this test read them before they were deleted).
sub check_cover($what) {
	my @ev = events();
	my @an = anchors();
	my $h = head();
	my (%at, @bad);
	for my $e (@ev) { push @bad, "seq $e->{seq} twice" if $at{ $e->{seq} }++ }
	for my $a (@an) {
		push @bad, "anchor $a->{first_seq}..$a->{last_seq} is inverted" if $a->{last_seq} < $a->{first_seq};
		for my $s ($a->{first_seq} .. $a->{last_seq}) { push @bad, "seq $s is an event and anchored, or anchored twice" if $at{$s}++ }
	}
	for my $s (1 .. ($h->{seq} // 0)) { push @bad, "seq $s is neither an event nor anchored" unless $at{$s} }
	push @bad, 'seqs past the head: ' . join(' ', grep { $_ > ($h->{seq} // 0) } sort { $a <=> $b } keys %at)
	    if grep { $_ > ($h->{seq} // 0) } keys %at;
	ok !@bad, "$what: each seq 1..$h->{seq} is one event or in one anchor (" . scalar(@ev) . ' events, ' . scalar(@an)
	    . ' anchors)' or diag first_lines(@bad);
	my %first = map { $_->{first_seq} => $_ } @an;
	my @adj = map { "$_->{first_seq}..$_->{last_seq} then $first{ $_->{last_seq} + 1 }{first_seq}..$first{ $_->{last_seq} + 1 }{last_seq}" }
	    grep { $first{ $_->{last_seq} + 1 } } @an;
	ok !@adj, "$what: no anchor's last_seq + 1 is another's first_seq (adjacent runs merged)" or diag first_lines(@adj);
	my @links;
	for my $a (@an) {
		my ($f, $l) = ($SEEN{ $a->{first_seq} }, $SEEN{ $a->{last_seq} });
		push @links, "anchor $a->{first_seq}..$a->{last_seq}: not both ends seen" unless $f && $l;
		push @links, "anchor $a->{first_seq}: prev_hash $a->{prev_hash}, event $a->{first_seq} had $f->{prev_hash}"
		    if $f && $f->{prev_hash} ne $a->{prev_hash};
		push @links, "anchor ..$a->{last_seq}: last_hash $a->{last_hash}, event $a->{last_seq} had $l->{hash}"
		    if $l && $l->{hash} ne $a->{last_hash};
		push @links, "anchor $a->{first_seq}: key_id '$a->{key_id}'" unless ($a->{key_id} // '') =~ /^[0-9a-f]{16}$/;
	}
	ok !@links, "$what: each anchor's prev_hash/last_hash are those of its first/last deleted event; key_id 16 hex" or diag first_lines(@links);
	return { events => \@ev, anchors => \@an, head => $h };
}

# ============================================================ 1. setup through the API
my $org1 = create_org(name => pii('org1 name', "Retention Ltd $R"));
my $O2 = create_org(name => pii('O2 name', "Held Holdings $R"));
ok $org1->{id} && $O2->{id}, 'org1 and O2 created' or BAIL_OUT('cannot create orgs');
# a contact with a name, an email and a phone (PII): its id
sub contact_id($org, $tag) { return contact($admin, $org, $tag, address => undef, notes => undef)->{id} }
sub patch($org, $id, $tag, $n) {
	for my $i (1 .. $n) {
		status_is tenant_patch($admin, $org, 'contacts', $id,
		    { notes => pii("$tag notes $i", "Note $i on \u$tag: Ölgemälde $R"), phone => pii("$tag phone $i", "+44 131 $N $i") }),
		    200, "  PATCH $tag ($i)";
	}
}
my $A = contact_id($org1, 'alice');
my $B = contact_id($org1, 'bruno');
my $C = contact_id($O2, 'carla');
ok $A && $B && $C, 'contacts A, B (org1) and C (O2)' or BAIL_OUT('cannot create contacts');
# A's updates sit between B's, so that releasing A later lets the runs on
# both sides of them become one anchor
patch($org1, $B, 'bruno 1', 1);
patch($org1, $A, 'alice 1', 1);
patch($org1, $B, 'bruno 2', 1);
patch($org1, $A, 'alice 2', 1);
patch($org1, $B, 'bruno 3', 1);
patch($O2, $C, 'carla', 2);
{
	my $h = legal_hold($admin, entity => 'contacts', ids => [$A], hold => 1, reason => 'case 7');
	status_is $h, 200, 'A on legal hold (POST /compliance/legal-hold {contacts, [A], hold: true, reason: "case 7"})';
	is_deeply [map { $_->{result} } @{ j($h)->{results} // [] }], ['held'], '  result held' or diag $h->{body};
	my $o = legal_hold($admin, entity => 'orgs', ids => [$O2->{id}], hold => 1, reason => 'case 7');
	status_is $o, 200, 'O2 on legal hold (entity orgs)';
	is_deeply [map { $_->{result} } @{ j($o)->{results} // [] }], ['held'], '  result held' or diag $o->{body};
}
# one more event about B after the holds: the first purge's last run ends
# right before its own audit.purged event, so the next purge has to merge
patch($org1, $B, 'bruno 4', 1);

my @HELD = ($A, $O2->{id}, $C);
my @all = events();
my %about_A = %{ hashes(grep { about($_, $A) } @all) };
my %about_O2 = %{ hashes(grep { about($_, $O2->{id}, $C) } @all) };
my %about_B = %{ hashes(grep { about($_, $B) } @all) };
cmp_ok scalar(keys %about_A), '>=', 4, 'events about A recorded (created, 2 updates, hold): ' . scalar(keys %about_A);
cmp_ok scalar(keys %about_O2), '>=', 5, 'events about O2/C recorded (org, C created, 2 updates, hold): ' . scalar(keys %about_O2);
cmp_ok scalar(keys %about_B), '>=', 5, 'events about B recorded (created, 4 updates): ' . scalar(keys %about_B);
my @B_SEQS = sort { $a <=> $b } keys %about_B;
ok !(grep { $about_B{$_} } keys %about_A, keys %about_O2), '(no event is about B and about a held subject)';
ok !(grep { !/^[0-9a-f]{64}$/ } values %about_A, values %about_O2, values %about_B), '(hashes read as 64 hex digits)';
is count_anchors(), 0, 'audit_anchors is empty before any purge';

# the Perl canonical form reproduces every stored hash (the time-travel helper relies on it)
{
	my @bad = map { "seq $_->{seq}" } grep { unpack('H*', canon_hash($_, pack('H*', $_->{prev_hash}))) ne $_->{hash} } @all;
	ok !@bad, 'the canonical hash computed here matches all ' . scalar(@all) . ' stored hashes' or diag first_lines(@bad);
	my @link = grep { $all[$_]{prev_hash} ne $all[$_ - 1]{hash} } 1 .. $#all;
	ok !@link && $all[0]{seq} == 1 && $all[0]{prev_hash} eq '0' x 64, '(and every prev_hash is the previous hash, from zeros)';
}

# ============================================================ 2. dry run: the report, nothing changed
my $x1 = expect_purge(\@HELD);
cmp_ok $x1->{deleted}, '>', 0, "(counted here: $x1->{deleted} events would go)";
cmp_ok $x1->{kept}, '>', 0, "(counted here: $x1->{kept} events are about a held subject)";
my $dry;
{
	my @before = events();
	my $na = count_anchors();
	$dry = purge('--dry-run', '--days', '0');
	purge_matches($dry, 1, 0, 'opsctl audit purge --dry-run --days 0');
	ok(($dry->{deleted} // 0) > 0 && ($dry->{kept} // 0) > 0, "  N = $dry->{deleted} > 0 and K = $dry->{kept} > 0");
	purge_counts_are($dry, $x1, '  dry run');
	is count_events(), scalar(@before), '  audit_events row count unchanged';
	is count_anchors(), $na, '  audit_anchors count unchanged';
	is_deeply hashes(events()), hashes(@before), '  every event unchanged (seq, hash)';
	is scalar(purged_rows()), 0, '  no audit.purged event';
}

# ============================================================ 3. the real purge
my $p1;
{
	$p1 = purge('--days', '0');
	purge_matches($p1, 0, 0, 'opsctl audit purge --days 0');
	is_deeply [@$p1{qw(deleted kept anchors)}], [@$dry{qw(deleted kept anchors)}], '  the same N, K and A as the dry run';
	purge_counts_are($p1, $x1, '  real run');
	my %now = %{ hashes(events()) };
	my @lost = grep { ($now{$_} // '') ne $about_A{$_} } sort { $a <=> $b } keys %about_A;
	ok !@lost, 'every event about A is still there with the same hash (' . scalar(keys %about_A) . ')' or diag "lost: @lost";
	@lost = grep { ($now{$_} // '') ne $about_O2{$_} } sort { $a <=> $b } keys %about_O2;
	ok !@lost, 'every event about O2/C is still there with the same hash (' . scalar(keys %about_O2) . ')' or diag "lost: @lost";
	my @left = grep { $now{$_} } sort { $a <=> $b } keys %about_B;
	ok !@left, 'no event about B remains' or diag "left: @left";
	ok !(grep { about($_, $B) } events()), '  (none anywhere in audit_events)';
	my @an = anchors();
	cmp_ok scalar(@an), '>=', 1, 'audit_anchors has rows (' . scalar(@an) . ')';
	is scalar(@an), $p1->{anchors}, '  one per run reported';
	is_deeply [map { $_->{key_id} } @an], [($an[0]{key_id}) x @an], '  all under one key_id';
	my @pr = purged_rows();
	is scalar(@pr), 1, 'one audit.purged event';
	my $pe = $pr[0] // {};
	my $pp = ref $pe->{p} eq 'HASH' ? $pe->{p} : {};
	is_deeply [sort keys %$pp], [qw(anchors complete cutoff deleted keptLegalHold)],
	    '  payload keys: cutoff, deleted, keptLegalHold, anchors, complete' or diag $pe->{payload};
	is $pp->{deleted}, $p1->{deleted}, "  payload deleted = $p1->{deleted} (the N printed)";
	is $pp->{keptLegalHold}, $p1->{kept}, "  payload keptLegalHold = $p1->{kept}";
	is $pp->{anchors}, $p1->{anchors}, "  payload anchors = $p1->{anchors}";
	is $pp->{complete}, JSON::PP::true, '  payload complete true';
	is rfc3339_epoch($pp->{cutoff}), rfc3339_epoch($p1->{cutoff}), '  payload cutoff = the cutoff printed';
	like $pe->{actor_label} // '', qr/^cli:/, "  actor_label $pe->{actor_label}";
	ok !defined $pe->{org_id} && !defined $pe->{target_id}, '  no org, no target';
	my @hits = pii_hits($pe->{payload});
	ok !@hits && ($pe->{payload} // '') !~ /\@|[0-9a-f]{8}-[0-9a-f]{4}-/i, '  no PII (no name, email, phone, note) and no id in the payload'
	    or diag "$pe->{payload}\n@hits";
	is count_events(), $x1->{kept} + 1, 'the events left: the kept ones and audit.purged';
	verify_ok('after the purge');
	check_cover('after the purge');
}

# ============================================================ 4. anchors are tamper-evident
{
	my @an = anchors();
	my $an = $an[int(@an / 2)];
	my $next = $SEEN{ $an->{last_seq} + 1 };
	ok $next && db_count("SELECT COUNT(*) FROM audit_events WHERE seq = $next->{seq}") == 1,
	    "anchor $an->{first_seq}..$an->{last_seq} is followed by event seq " . ($next // {})->{seq};
	$next //= { seq => -1, id => '' };
	my $where = "WHERE first_seq = $an->{first_seq}";
	my $flip = sub ($hex) { substr($hex, 0, 2) = sprintf '%02x', hex(substr $hex, 0, 2) ^ 0x01; return $hex };

	ok defined mysql("UPDATE audit_anchors SET signature = UNHEX('" . $flip->($an->{signature}) . "') $where"),
	    'one bit of the anchor\'s signature flipped in MariaDB';
	verify_broken('signature flipped', seq => $next->{seq}, id => $next->{id}, reason => 'anchor signature mismatch');
	mysql("UPDATE audit_anchors SET signature = UNHEX('$an->{signature}') $where");
	verify_ok('signature restored');

	ok defined mysql("UPDATE audit_anchors SET last_hash = UNHEX('" . $flip->($an->{last_hash}) . "') $where"),
	    'the anchor\'s last_hash changed (signature left as it was)';
	verify_broken('last_hash changed', seq => $next->{seq}, id => $next->{id}, reason => qr/^(?:anchor signature mismatch|hash mismatch)$/);
	mysql("UPDATE audit_anchors SET last_hash = UNHEX('$an->{last_hash}') $where");
	verify_ok('last_hash restored');

	ok defined mysql("UPDATE audit_anchors SET prev_hash = UNHEX('" . $flip->($an->{prev_hash}) . "') $where"),
	    'the anchor\'s prev_hash changed';
	verify_broken('prev_hash changed', seq => $next->{seq}, id => $next->{id}, reason => qr/^(?:anchor signature mismatch|hash mismatch)$/);
	mysql("UPDATE audit_anchors SET prev_hash = UNHEX('$an->{prev_hash}') $where");
	verify_ok('prev_hash restored');

	ok defined mysql("DELETE FROM audit_anchors $where"), "anchor $an->{first_seq}..$an->{last_seq} deleted";
	verify_broken('an anchor deleted', seq => $next->{seq}, id => $next->{id}, reason => qr/^(?:events missing|hash mismatch)$/);
	ok defined mysql("INSERT INTO audit_anchors (first_seq, last_seq, prev_hash, last_hash, key_id, signature, created_at)"
	    . " VALUES ($an->{first_seq}, $an->{last_seq}, UNHEX('$an->{prev_hash}'), UNHEX('$an->{last_hash}'), '$an->{key_id}',"
	    . " UNHEX('$an->{signature}'), '$an->{created_at}')"), '  re-inserted as saved';
	verify_ok('anchor re-inserted');
	is_deeply [anchors()], \@an, 'audit_anchors is exactly as before the tampering';
}

# ============================================================ 5. more activity, a second purge merges runs
my $D = contact_id($org1, 'dora');
patch($org1, $D, 'dora', 2);
patch($org1, $B, 'bruno second', 1);
{
	my @before = anchors();
	my $x = expect_purge(\@HELD);
	my $p = purge('--days', '0');
	purge_matches($p, 0, 0, 'second purge');
	purge_counts_are($p, $x, '  second purge');
	is $p->{anchors}, 1, '  the new events are one run';
	is count_anchors(), scalar(@before), '  and it merged into the anchor before it (as many anchors as before)';
	my %now = %{ hashes(events()) };
	ok !(grep { ($now{$_} // '') ne $about_A{$_} } keys %about_A) && !(grep { ($now{$_} // '') ne $about_O2{$_} } keys %about_O2),
	    '  the events about A and O2/C are untouched';
	is scalar(grep { about($_, $D) || about($_, $B) } events()), 0, '  no event about D or B left';
	check_cover('after the second purge');
	verify_ok('after the second purge');
}

# ============================================================ 6. A released: its events go, O2/C's stay
{
	my $r = legal_hold($admin, entity => 'contacts', ids => [$A], hold => 0, reason => 'case 7 closed');
	status_is $r, 200, "A's hold released (hold: false)";
	is_deeply [map { $_->{result} } @{ j($r)->{results} // [] }], ['released'], '  result released' or diag $r->{body};
	@HELD = ($O2->{id}, $C);
	my $na = count_anchors();
	my $x = expect_purge(\@HELD);
	my $p = purge('--days', '0');
	purge_matches($p, 0, 0, 'purge after the release');
	purge_counts_are($p, $x, '  purge after the release');
	my %now = %{ hashes(events()) };
	my @left = grep { $now{$_} } sort { $a <=> $b } keys %about_A;
	ok !@left, "A's old events are gone now (" . scalar(keys %about_A) . ')' or diag "left: @left";
	is scalar(grep { about($_, $A) } events()), 0, '  no event about A at all (the release event went too)';
	my @lost = grep { ($now{$_} // '') ne $about_O2{$_} } sort { $a <=> $b } keys %about_O2;
	ok !@lost, 'every event about O2/C is still there with the same hash' or diag "lost: @lost";
	cmp_ok count_anchors(), '<', $na, "  fewer anchors: those on both sides of A's updates merged ($na before, " . count_anchors() . ' now)';
	my ($b1, $b3) = @B_SEQS[1, 3];
	ok((grep { $_->{first_seq} <= $b1 && $_->{last_seq} >= $b3 } anchors()),
	    "  one anchor now spans B's updates 1 to 3 (seq $b1..$b3) and A's updates between them")
	    or diag json_encode([anchors()]);
	check_cover('after the release and purge');
	verify_ok('after the release and purge');
}

# ============================================================ 7. a tampered event stops the purge before it
my $E = contact_id($org1, 'emil');
patch($org1, $E, 'emil', 2);
patch($org1, $D, 'dora second', 1);
{
	my @new = grep { about($_, $E) || about($_, $D) } events();
	is scalar(@new), 4, 'four new events (E created, 2 updates, D updated)';
	my $t = $new[1] // { seq => -1 };
	my @after = grep { $_->{seq} > $t->{seq} } events();
	my $orig = mysql("SELECT HEX(payload) FROM audit_events WHERE seq = $t->{seq}") // '';
	chomp $orig;
	ok length $orig, "saved the payload of seq $t->{seq} (an expired event about no held subject)";
	ok defined mysql(qq{UPDATE audit_events SET payload = '{"entity":"contacts","fields":["name"]}' WHERE seq = $t->{seq}}),
	    "its payload altered in MariaDB";
	my $x = expect_purge(\@HELD, upto => $t->{seq});
	my $head0 = head()->{seq} // 0;
	my $p = purge('--days', '0');
	purge_matches($p, 0, 0, 'purge with a tampered event', refused => $t->{seq});
	purge_counts_are($p, $x, "  it stopped before seq $t->{seq}");
	like "$p->{out}$p->{err}", qr/\bseq $t->{seq}\b/, "  and says so, naming seq $t->{seq}" or diag "stdout: $p->{out}\nstderr: $p->{err}";
	is db_count("SELECT COUNT(*) FROM audit_events WHERE seq = $t->{seq}"), 1, "seq $t->{seq} is still there";
	my %now = %{ hashes(events()) };
	my @gone = grep { !$now{ $_->{seq} } } @after;
	ok !@gone, 'every event after it is still there (' . scalar(@after) . ')' or diag 'gone: ' . join ' ', map { $_->{seq} } @gone;
	my @pr = grep { $_->{seq} > $head0 } purged_rows();
	is scalar(@pr), 1, '  a new audit.purged event for what it did delete';
	my $pp = ($pr[-1] // {})->{p} // {};
	ok $pp->{deleted} == $x->{deleted} && $pp->{complete} eq JSON::PP::false, "  with deleted $x->{deleted} and complete false"
	    or diag(($pr[-1] // {})->{payload});
	verify_broken('the tampered event after the purge', seq => $t->{seq}, id => $t->{id}, reason => 'hash mismatch');
	mysql("UPDATE audit_events SET payload = UNHEX('$orig') WHERE seq = $t->{seq}");
	verify_ok('payload restored');
	check_cover('payload restored');

	my $x2 = expect_purge(\@HELD);
	my $p2 = purge('--days', '0');
	purge_matches($p2, 0, 0, 'purge after the repair');
	purge_counts_are($p2, $x2, '  purge after the repair');
	is db_count("SELECT COUNT(*) FROM audit_events WHERE seq >= $t->{seq} AND seq <= " . ($after[-1] // $t)->{seq}), 0,
	    "  it went past seq $t->{seq} this time";
	check_cover('after the repair and purge');
	verify_ok('after the repair and purge');
}

# ============================================================ 7b. a deleted row: the event after it is evidence too
# /audit/verify names the event after a missing row (t/62-audit.t); "anything
# that does not verify" must survive retention like a tampered one.
my $H = contact_id($org1, 'hanna');
patch($org1, $H, 'hanna', 3);
{
	my @h = grep { about($_, $H) } events();
	is scalar(@h), 4, 'four events about a new contact H';
	my ($gone, $after) = @h[1, 2];
	$gone //= { seq => -1 };
	$after //= { seq => -1, id => '' };
	ok defined mysql('DROP TABLE IF EXISTS t93_saved', "CREATE TABLE t93_saved AS SELECT * FROM audit_events WHERE seq = $gone->{seq}",
	    "DELETE FROM audit_events WHERE seq = $gone->{seq}"), "event seq $gone->{seq} deleted in MariaDB (saved aside)";
	verify_broken('a row deleted', seq => $after->{seq}, id => $after->{id}, reason => qr/^(?:events missing|hash mismatch)$/);
	my $x = expect_purge(\@HELD, upto => $after->{seq});
	my $p = purge('--days', '0');
	purge_matches($p, 0, 0, 'purge with a row missing', refused => $after->{seq});
	my $kept = db_count("SELECT COUNT(*) FROM audit_events WHERE seq = $after->{seq}") == 1;
	ok $kept, "  seq $after->{seq}, the event verify names after the missing row, is still there"
	    or diag "purge said: $p->{out}$p->{err}";
	purge_counts_are($p, $x, "  it stopped before seq $after->{seq}") if $kept;
	my ($r, $v) = audit_verify();
	ok JSON::PP::is_bool($v->{ok}) && !$v->{ok}, '  verify still reports the chain broken' or diag $r->{body};
	# every stored column by name: ip_bin is computed by MariaDB and takes no value
	my $cols = 'seq, id, occurred_at, actor_id, actor_label, org_id, action, target_type, target_id, ip, request_id,'
	    . ' payload, prev_hash, hash';
	ok defined mysql("INSERT INTO audit_events ($cols) SELECT $cols FROM t93_saved", 'DROP TABLE t93_saved'),
	    "seq $gone->{seq} put back";
	verify_ok('the deleted row put back');
	my $x2 = expect_purge(\@HELD);
	my $p2 = purge('--days', '0');
	purge_matches($p2, 0, 0, 'purge after putting it back');
	purge_counts_are($p2, $x2, '  purge after putting it back') if $kept;
	is scalar(grep { about($_, $H) } events()), 0, "  no event about H left";
	check_cover('after the row was put back and purged');
	verify_ok('after the row was put back and purged');
}

# ============================================================ 7c. an event altered with its hash recomputed
# The altered event verifies on its own; the one after it no longer links to
# it. Retention must keep both (the altered one is the evidence).
my $K = contact_id($org1, 'kira');
patch($org1, $K, 'kira', 2);
{
	my @k = grep { about($_, $K) } events();
	is scalar(@k), 3, 'three events about a new contact K';
	my ($alt, $after) = @k[1, 2];
	$alt //= { seq => -1 };
	$after //= { seq => -1, id => '' };
	my ($orig) = db_rows("SELECT HEX(payload) AS p, LOWER(HEX(hash)) AS h FROM audit_events WHERE seq = $alt->{seq}");
	my $forged = { %$alt, payload => '{"entity":"contacts","fields":["forged"]}' };
	my $h = unpack 'H*', canon_hash($forged, pack('H*', $alt->{prev_hash} // ''));
	ok defined mysql(qq{UPDATE audit_events SET payload = '$forged->{payload}', hash = UNHEX('$h') WHERE seq = $alt->{seq}}),
	    "event seq $alt->{seq} altered and its hash recomputed in MariaDB";
	verify_broken('a recomputed hash', seq => $after->{seq}, id => $after->{id}, reason => 'hash mismatch');
	my $p = purge('--days', '0');
	is $p->{rc}, 1, 'the purge stops (exit 1)' or diag "$p->{out}$p->{err}";
	is db_count("SELECT COUNT(*) FROM audit_events WHERE seq IN ($alt->{seq}, $after->{seq})"), 2,
	    "  the altered event ($alt->{seq}) and the one after it are both still there";
	mysql("UPDATE audit_events SET payload = UNHEX('$orig->{p}'), hash = UNHEX('$orig->{h}') WHERE seq = $alt->{seq}");
	verify_ok('the altered event restored');
	my $p2 = purge('--days', '0');
	is $p2->{rc}, 0, 'the next purge goes past them' or diag "$p2->{out}$p2->{err}";
	is scalar(grep { about($_, $K) } events()), 0, '  no event about K left';
	check_cover('after the recomputed-hash case');
	verify_ok('after the recomputed-hash case');
}

# ============================================================ new activity for the last steps
my $F = contact_id($org1, 'frida');
patch($org1, $F, 'frida', 1);
my $G = contact_id($O2, 'gus');            # a new record of the held org: held too
patch($org1, $B, 'bruno third', 1);
push @HELD, $G if $G;

# ============================================================ 9. bad --days: exit 2, nothing deleted
{
	my $before = hashes(events());
	my $na = count_anchors();
	for my $args (['--days', '-1'], ['--days', 'abc'], ['--days', '99999'], ['--days', ''], ['--days', '1.5'],
	    ['--dry-run', '--days'], ['--dryrun', '--days', '0'], ['--days', '0', 'now']) {
		my ($rc, $out, $err) = opsctl('audit', 'purge', @$args);
		my $shown = join ' ', map { length $_ ? $_ : "''" } @$args;
		is $rc, 2, "opsctl audit purge $shown exits 2" or diag "$out$err";
		like $err, qr/--days/, '  with a message about --days' or diag "stderr: $err";
		unlike $out, $PURGE_RE, '  and no report line' or diag "stdout: $out";
	}
	is_deeply hashes(events()), $before, 'nothing deleted or changed by the refused purges';
	is count_anchors(), $na, '  no anchor written';
}

# ============================================================ 10. no OPSD_DATA_KEY
{
	my $envf = var_dir() . '/opsd.env';
	ok exists((parse_env_file($envf) // {})->{OPSD_DATA_KEY}), 'opsd.env has the OPSD_DATA_KEY script/server made';
	my $text = slurp($envf) // '';
	my $write = sub ($name, $s) {
		my $f = stack()->{tmp} . "/$name";
		open my $fh, '>:raw', $f or die "$f: $!";
		print {$fh} $s;
		close $fh;
		chmod 0600, $f;
		return $f;
	};
	(my $nokey = $text) =~ s/^(?:export\s+)?OPSD_DATA_KEY=.*\n//mg;
	my $nokey_f = $write->('opsd-nokey.env', $nokey);
	ok !exists((parse_env_file($nokey_f) // {})->{OPSD_DATA_KEY}), '(a copy of opsd.env without it, mode 0600)';
	my $o = { env => { OPSD_ENV_FILE => $nokey_f } };
	my $before = hashes(events());
	my $na = count_anchors();
	my $x = expect_purge(\@HELD);
	cmp_ok $x->{deleted}, '>', 0, "(counted here: $x->{deleted} events could go)";
	my $p = purge($o, '--days', '0');
	is $p->{rc}, 1, 'without OPSD_DATA_KEY a real purge exits 1' or diag "stdout: $p->{out}\nstderr: $p->{err}";
	like $p->{err}, qr/OPSD_DATA_KEY/, '  and names OPSD_DATA_KEY' or diag "stderr: $p->{err}";
	is_deeply hashes(events()), $before, '  nothing deleted';
	is count_anchors(), $na, '  no anchor written';
	my $d = purge($o, '--dry-run', '--days', '0');
	purge_matches($d, 1, 0, 'without OPSD_DATA_KEY --dry-run');
	purge_counts_are($d, $x, '  dry run without the key');
	is_deeply hashes(events()), $before, '  nothing changed';
	my ($rc, $out, $err) = opsctl($o, 'audit', 'verify');
	is $rc, 1, 'without OPSD_DATA_KEY opsctl audit verify exits 1 (anchors cannot be checked)' or diag "$out$err";
	like $out, qr/^reason: .*OPSD_DATA_KEY/m, '  and says OPSD_DATA_KEY is unset' or diag "$out$err";

	my $other = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
	(my $otherkey = $text) =~ s/^((?:export\s+)?OPSD_DATA_KEY=).*$/$1'$other'/mg;
	my $o2 = { env => { OPSD_ENV_FILE => $write->('opsd-otherkey.env', $otherkey) } };
	($rc, $out, $err) = opsctl($o2, 'audit', 'verify');
	is $rc, 1, 'with another OPSD_DATA_KEY opsctl audit verify exits 1' or diag "$out$err";
	like $out, qr/^reason: anchor signed with another key$/m, '  reason: anchor signed with another key' or diag "$out$err";
	verify_ok('with the right key again');
}

# ============================================================ 8. the job: events 3 days old, OPSD_AUDIT_RETENTION_DAYS=2
# time_travel($days): every event after the last anchor gets occurred_at
# $days earlier; prev_hash, hash and audit_chain_head are recomputed in
# order with the canonical form (the events before, and the anchors, are
# left as they are, so the rewritten part links to them unchanged). Returns
# the rewritten rows.
sub time_travel($days) {
	my $from = db_count('SELECT IFNULL(MAX(last_seq), 0) FROM audit_anchors') + 1;
	my @ev = db_rows("SELECT $EVENT_COLS, occurred_at - INTERVAL $days DAY AS new_at FROM audit_events WHERE seq >= $from ORDER BY seq");
	return () unless @ev;
	my @gap = grep { $ev[$_]{seq} != $ev[0]{seq} + $_ } 0 .. $#ev;
	ok !@gap && $ev[0]{seq} == $from, "time travel: events $from..$ev[-1]{seq} are consecutive, right after the last anchor"
	    or diag "gaps at @gap";
	my $prev = pack 'H*', $ev[0]{prev_hash};
	my @sql = ('START TRANSACTION');
	for my $e (@ev) {
		my $h = canon_hash({ %$e, occurred_at => $e->{new_at} }, $prev);
		push @sql, sprintf "UPDATE audit_events SET occurred_at = '%s', prev_hash = UNHEX('%s'), hash = UNHEX('%s') WHERE seq = %d",
		    $e->{new_at}, unpack('H*', $prev), unpack('H*', $h), $e->{seq};
		$prev = $h;
	}
	push @sql, sprintf("UPDATE audit_chain_head SET hash = UNHEX('%s') WHERE id = 1 AND seq = %d", unpack('H*', $prev), $ev[-1]{seq}),
	    'COMMIT';
	ok defined mysql(@sql), 'time travel: ' . scalar(@ev) . " events rewritten $days days back in one transaction";
	is_deeply head(), { seq => $ev[-1]{seq}, hash => unpack('H*', $prev) }, 'time travel: the chain head names the new last hash';
	return @ev;
}
{
	my $n_before = count_events();
	my @moved = time_travel(3);
	cmp_ok scalar(@moved), '>=', 5, 'the newest events moved 3 days back (' . scalar(@moved) . ')';
	is db_count('SELECT COUNT(*) FROM audit_events WHERE occurred_at < UTC_TIMESTAMP(3) - INTERVAL 2 DAY'), scalar(@moved),
	    '  exactly those are now older than 2 days';
	verify_ok('after the time travel (the helper recomputed the chain right)');
	my @aged = grep { my $s = $_->{seq}; grep { $_->{seq} == $s } @moved } events();
	my @aged_held = grep { about($_, @HELD) } @aged;
	my @aged_free = grep { !about($_, @HELD) } @aged;
	ok @aged_held >= 1 && @aged_free >= 3, 'among them ' . scalar(@aged_held) . ' about O2 (held) and ' . scalar(@aged_free) . ' not';
	my $np = scalar(purged_rows());
	is count_events(), $n_before, '  (the default retention of 3650 days deleted nothing meanwhile)';

	restart_stack(env => { OPSD_AUDIT_RETENTION_DAYS => 2 });
	$admin = admin_session(fresh => 1);
	ok $admin->{cookie}, 'the superadmin logs in after the restart';
	my $t0 = time;
	my $job = wait_until(30, sub { (grep { ($_->{actor_label} // '') eq 'system' } purged_rows())[0] }, 0.5);
	ok $job, sprintf('the jobs process purged (an audit.purged event by actor_label "system" after %.1fs)', time - $t0);
	$job //= {};
	my $jp = ref $job->{p} eq 'HASH' ? $job->{p} : {};
	ok !defined $job->{actor_id}, '  no actor_id';
	is $jp->{deleted}, scalar(@aged_free), '  payload deleted = ' . scalar(@aged_free) . ' (the aged events about no held subject)'
	    or diag $job->{payload};
	is $jp->{keptLegalHold}, scalar(@aged_held), '  payload keptLegalHold = ' . scalar(@aged_held) or diag $job->{payload};
	is $jp->{complete}, JSON::PP::true, '  payload complete true';
	my $c = rfc3339_epoch($jp->{cutoff});
	ok defined $c && abs($c - ($t0 - 2 * 86400)) < 120, "  cutoff $jp->{cutoff} is now - 2 days";
	my %now = %{ hashes(events()) };
	my @left = grep { $now{ $_->{seq} } } @aged_free;
	ok !@left, 'the aged events not about a held subject are gone' or diag 'left: ' . join ' ', map { $_->{seq} } @left;
	my @lost = grep { ($now{ $_->{seq} } // '') ne $_->{hash} } @aged_held;
	ok !@lost, 'the aged events about O2 (held) are still there with the same hash' or diag 'lost: ' . join ' ', map { $_->{seq} } @lost;
	@lost = grep { ($now{$_} // '') ne $about_O2{$_} } keys %about_O2;
	ok !@lost, 'and so are the first events about O2/C' or diag "lost: @lost";
	my @logged = grep { ($_->{event} // '') eq 'audit_purged' } log_records('opsd.log');
	ok((grep { ($_->{deleted} // -1) == @aged_free } @logged), 'log/opsd.log has an audit_purged record with the count')
	    or diag json_encode(\@logged);
	check_cover('after the job');
	verify_ok('after the job');
}

finish();
