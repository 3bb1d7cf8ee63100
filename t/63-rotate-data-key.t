#!/usr/bin/perl
# README "Runbook 7", rotating the data key: a stack whose key A sealed a
# dedicated org's target (by a real migration) and signed a retention
# anchor (opsctl audit purge --days 0). While three clients read and write
# the org's contacts without pause: opsd.env gets key B in OPSD_DATA_KEY and
# A in OPSD_DATA_KEY_PREVIOUS, SIGHUP; the org is served and the chain
# verifies (API, opsctl); opsctl data-key rotate seals the targets and
# signs the anchors again under B (counts, security.data_key_rotated with
# the keys' fingerprints and no key), a second run finds nothing left; A is
# removed, SIGHUP. No request fails; the chain still verifies, retention
# merges under B. Then a key that is neither (C alone): the org answers 503
# unavailable, verify names the anchor signed with another key, rotate
# exits 1 and changes nothing; B back, everything works.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(hmac_sha256_hex);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;
use OpsdTest::Rotation;

my $WORKERS = 3;
start_stack(env => { OPSD_WORKERS => $WORKERS });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin signs in' or BAIL_OUT('no session');
my $d = dedicated_org($admin, contacts => 4);
my $ORG = $d->{org}{id};
ok $ORG && @{ $d->{contacts} } == 4, 'a dedicated org with 4 contacts' or BAIL_OUT('no dedicated org');

my $A = parse_env_file(var_dir() . '/opsd.env')->{OPSD_DATA_KEY} // '';
like $A, qr/^[0-9a-f]{64}$/, 'the stack runs with a data key A (script/server made it)';
sub new_key($label) { return sensitive($label, join '', map { sprintf '%02x', int rand 256 } 1 .. 32) }
my ($B, $C) = (new_key('data key B'), new_key('data key C'));
sub fingerprint($k) { return substr hmac_sha256_hex('opsd data key fingerprint v1', pack 'H*', $k), 0, 16 }

sub org_sealed() { return mysql("SELECT JSON_VALUE(dedicated_target, '\$.sealed') FROM orgs WHERE id = UNHEX('" . org_hex($ORG) . "')") // '' }
sub migration_sealed() { return mysql('SELECT target_sealed FROM migrations ORDER BY id') // '' }
sub key_ids() { return sort { $a cmp $b } keys %{ { map { $_ => 1 } grep { length } split /\n/, mysql('SELECT key_id FROM audit_anchors') // '' } } }
sub contact_status() { return http(GET => "/orgs/$ORG/contacts/$d->{contacts}[0]", session => $admin) }
sub verify_ok($label) {
	my ($r, $v) = audit_verify($admin);
	is $v->{ok}, JSON::PP::true, "$label: GET /audit/verify ok" or diag $r->{body};
	my ($rc, $out, $err) = opsctl(qw(audit verify));
	is $rc, 0, "$label: opsctl audit verify exits 0" or diag "$out$err";
}
sub rotate() { return opsctl(qw(data-key rotate)) }

# ============================================================ what key A sealed and signed
my ($rc, $out, $err) = opsctl(qw(audit purge --days 0));
is $rc, 0, 'opsctl audit purge --days 0 replaces the events so far by an anchor' or diag "$out$err";
my @ids_a = key_ids();
is scalar(@ids_a), 1, 'the anchors are signed under one key (A)';
verify_ok('under A');
my ($org_a, $mig_a) = (org_sealed(), migration_sealed());
ok length $org_a, 'the org\'s target is sealed (under A)';

# ============================================================ B current, A previous; rotate; A gone — under load
{
	my $load = load_start($admin, $d, clients => 3);
	ok wait_until(60, sub { load_each_after($load, 0) >= 3 }), 'three clients read and write the org\'s contacts';
	env_file_set(OPSD_DATA_KEY => $B, OPSD_DATA_KEY_PREVIOUS => $A);
	# the jobs process too: one left from before would sign anchors under A alone
	ok reload_opsd(workers => $WORKERS), 'SIGHUP with B current and A previous: every worker and the jobs process are new';
	my $t1 = time;
	status_is contact_status(), 200, 'the dedicated org is served (its target opens under A)';
	verify_ok('B current, A previous');

	($rc, $out, $err) = rotate();
	is $rc, 0, 'opsctl data-key rotate exits 0' or diag "$out$err";
	my $t2 = time;
	like $out, qr/^current key \Q@{[fingerprint($B)]}\E; previous key: \Q@{[fingerprint($A)]}\E$/m,
	    '  names the keys by their fingerprints' or diag $out;
	like $out, qr/sealed again: 1 dedicated target, [1-9]\d* migration targets?; signed again: [1-9]\d* audit anchors?;/,
	    '  sealed the target and the migrations\' targets again, signed the anchors again' or diag $out;
	unlike "$out$err", qr/\Q$A\E|\Q$B\E/i, '  prints no key';
	isnt org_sealed(), $org_a, 'the org\'s target is sealed anew';
	isnt migration_sealed(), $mig_a, 'so are the migrations\' targets';
	my @ids_b = key_ids();
	is scalar(@ids_b), 1, 'every anchor is signed under one key';
	isnt $ids_b[0], $ids_a[0], '  another one than before (B)';
	my @ev = audit_payloads('security.data_key_rotated');
	is scalar(@ev), 1, 'security.data_key_rotated';
	my $p = $ev[0]{p};
	is $p->{keyFingerprint}, fingerprint($B), '  with the current key\'s fingerprint';
	is_deeply $p->{previousKeyFingerprints}, [fingerprint($A)], '  and the previous one\'s';
	is $p->{orgTargets}, 1, '  one org target';
	cmp_ok $p->{migrationTargets}, '>=', 1, '  the migrations\' targets';
	cmp_ok $p->{anchors}, '>=', 1, '  the anchors';
	cmp_ok $p->{checkpoints}, '>=', 1, '  the verification checkpoints (opsctl audit verify recorded them under A)';
	is_deeply [sort keys %{ { map { $_ => 1 } split /\n/, mysql('SELECT key_id FROM audit_checkpoints') // '' } }], [$ids_b[0]],
	    '  every checkpoint now names the anchors\' key B';
	is_deeply [@$p{qw(unopenable unverifiable)}], [0, 0], '  nothing left behind';
	my ($row) = audit_rows('security.data_key_rotated');
	is $row->{actor_label}, 'cli:root', '  by cli:root';
	unlike audit_text(), qr/\Q$A\E|\Q$B\E/i, 'no key in the audit log';

	($rc, $out, $err) = rotate();
	is $rc, 0, 'a second rotate exits 0';
	like $out, qr/sealed again: 0 dedicated targets, 0 migration targets; signed again: 0 audit anchors; already under the current key: [1-9]/,
	    '  and finds nothing left to do' or diag $out;

	env_file_set(OPSD_DATA_KEY_PREVIOUS => undef);
	ok reload_opsd(workers => $WORKERS), 'SIGHUP without A: every worker and the jobs process are new';
	my $t3 = time;
	# as long as the clients need (the counts are checked below): they still run
	wait_until(90, sub { load_after($load, $t1) >= 30 && load_after($load, $t2) >= 20 && load_after($load, $t3) >= 10 }, 0.2);
	my $l = load_stop($load);
	is scalar(@{ $l->{failed} }), 0, "no failed request among $l->{total}"
	    or diag join "\n", @{ $l->{failed} }[0 .. ($#{ $l->{failed} } > 9 ? 9 : $#{ $l->{failed} })];
	cmp_ok load_after($l, $t1), '>=', 30, 'requests went on after the first SIGHUP';
	cmp_ok load_after($l, $t2), '>=', 20, '  after the rotation';
	cmp_ok load_after($l, $t3), '>=', 10, '  and after A was removed';
}
status_is contact_status(), 200, 'the dedicated org is served under B alone';
verify_ok('B alone');
($rc, $out, $err) = opsctl(qw(audit purge --days 0));
is $rc, 0, 'retention under B alone' or diag "$out$err";
my @merged = key_ids();
is scalar(@merged), 1, '  merges into anchors under one key';
verify_ok('after retention under B');

# ============================================================ a key that is neither
{
	my ($org_b, $mig_b, @ids_b) = (org_sealed(), migration_sealed(), key_ids());
	env_file_set(OPSD_DATA_KEY => $C);
	ok reload_opsd(workers => $WORKERS), 'SIGHUP with C alone';
	check_error(contact_status(), 503, 'unavailable', 'the dedicated org: 503 unavailable');
	ok wait_until(20, sub { logs('opsd.log') =~ /tenant_db_unreachable[^\n]*neither OPSD_DATA_KEY nor/ }),
	    '  the log says no key of the ring opens its target';
	my ($r, $v) = audit_verify($admin);
	is $v->{ok}, JSON::PP::false, 'GET /audit/verify: not ok';
	is $v->{reason}, 'anchor signed with another key', '  an anchor signed with another key';
	($rc, $out, $err) = opsctl(qw(audit verify));
	is $rc, 1, 'opsctl audit verify exits 1';
	($rc, $out, $err) = rotate();
	is $rc, 1, 'opsctl data-key rotate exits 1';
	like $out, qr/left as they are: [1-9]\d* sealed targets? that no key of the ring opens/, '  names the targets it cannot open';
	like $out, qr/left as they are: [1-9]\d* audit anchors? that no key of the ring verifies/, '  and the anchors';
	is_deeply [org_sealed(), migration_sealed(), key_ids()], [$org_b, $mig_b, @ids_b], '  and changes none of them';

	env_file_set(OPSD_DATA_KEY => $B);
	ok reload_opsd(workers => $WORKERS), 'SIGHUP with B again';
	status_is contact_status(), 200, 'the dedicated org is served again';
	verify_ok('B again');
}
my @hits = find_in_logs({ A => $A, B => $B, C => $C });
is scalar(@hits), 0, 'no key in the logs' or diag "@hits";

finish();
