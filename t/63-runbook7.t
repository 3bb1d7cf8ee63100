#!/usr/bin/perl
# Runbook 7 (session/secret rotation) as README "Runbook 7" tells an operator
# to do it, and the containment flushes of runbook 4 step 3:
#   1. set a new SESSION_SECRET and restart (script/server stop; start):
#      every cookie is refused, users must log in again;
#   2. flush the session store: `opsctl sessions flush --all`;
#   3. log in again (cookies signed with the new secret);
# then POST /security/sessions/flush for one user, for one org and for all,
# the audit events of the flushes, and no secret in logs, responses or
# opsctl output; $OPSD_VAR/opsd.env (where the secret lives) is 0600.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });

my $var = var_dir();
my @SEEN;   # every response and opsctl output of this test, searched for secrets at the end
sub rec($r) { push @SEEN, join("\n", map { "$_: $r->{headers}{$_}" } sort keys %{ $r->{headers} // {} }) . "\n\n" . ($r->{body} // ''); return $r }
sub req(@a) { return rec(http(@a)) }
sub relogin($u) { my $s = login($u->{email}, $u->{password}); rec($s->{res}); return $s }
sub run_opsctl(@a) { my @r = opsctl(@a); push @SEEN, "$r[1]\n$r[2]"; return @r }
sub flushed_count($e) {
	my $p = ref $e->{payload} eq 'HASH' ? $e->{payload} : {};
	return $p->{count} // $p->{flushed};
}

# ---- the README documents the procedure
{
	open my $fh, '<', repo_root() . '/README.md' or die "README.md: $!";
	local $/;
	my $readme = <$fh>;
	my ($section) = $readme =~ /^(#+[^\n]*Runbook 7[^\n]*\n.*?)(?=^#+ |\z)/ms;
	ok $section, 'README.md has a "Runbook 7" section';
	$section //= '';
	like $section, qr/SESSION_SECRET/, 'it names SESSION_SECRET';
	like $section, qr{script/server}, 'it restarts with script/server';
	like $section, qr/opsctl sessions flush --all/, 'it flushes with opsctl sessions flush --all';
}

my $old_secret = session_secret();
ok length($old_secret // '') >= 32, 'the stack runs with a SESSION_SECRET';

my $org1 = create_org();
my $org2 = create_org();
ok $org1->{id} && $org2->{id}, 'two orgs';
my $ua = create_user(role => 'member', org => $org1);
my $ub = create_user(role => 'member', org => $org2);
my $c = create_user(role => 'org_admin', org => $org1);
my $sec = create_user(role => 'security_admin');
rec($_->{res}) for $ua, $ub, $c, $sec;

my $sa = relogin($ua);
my $sb = relogin($ub);
ok $sa->{cookie} && $sb->{cookie}, 'two users logged in';
my $t = req(POST => '/auth/tokens', session => $sa, json => { name => 'runbook7', scopes => ['tenant.read'] });
is $t->{status}, 201, 'and a token';
my $token = ($t->{json} // {})->{token};
my $admin_before = admin_session();

# ---- step 1: new SESSION_SECRET, restart
my $new_secret = 'rb7-' . join('', map { ('a' .. 'z', '0' .. '9')[rand 36] } 1 .. 48);
restart_stack(env => { SESSION_SECRET => $new_secret });
{
	my $e = parse_env_file("$var/opsd.env") // {};
	is $e->{SESSION_SECRET}, $new_secret, 'opsd.env has the new SESSION_SECRET';
	is((stat "$var/opsd.env")[2] & 07777, 0600, 'opsd.env is mode 0600');
	unlike join('', map { "$_=$e->{$_}\n" } sort keys %$e), qr/\Q$old_secret\E/, 'the old secret is gone from opsd.env';
}
# a start with another secret than the last one seen is audited once, by
# fingerprints (HMAC-SHA256 keyed by the secret, 8 bytes), never the secret
{
	my $fp = sub($secret) { substr(hmac_sha256_hex('opsd session secret fingerprint', $secret), 0, 16) };
	ok wait_until(10, sub { audit_count('security.session_secret_rotated') >= 1 }, 0.2),
	    'the start with the new secret writes security.session_secret_rotated';
	is_deeply [map { $_->{p} } audit_payloads('security.session_secret_rotated')],
	    [{ fingerprint => $fp->($new_secret), previousFingerprint => $fp->($old_secret) }], '  once, with both fingerprints';
}
check_error(rec(me($sa)), 401, 'unauthenticated', "user A's cookie after the rotation");
check_error(rec(me($sb)), 401, 'unauthenticated', "user B's cookie after the rotation");
check_error(rec(me($admin_before)), 401, 'unauthenticated', "the admin's cookie after the rotation");
note 'the API token after the rotation: ' . req(GET => '/auth/me', bearer => $token)->{status};

# ---- step 2: flush the store
{
	my $rows = mysql('SELECT COUNT(*) FROM sessions') // '';
	chomp $rows;
	ok $rows >= 3, "the old sessions are still stored ($rows rows)";
	my ($rc, $out, $err) = run_opsctl('sessions', 'flush', '--all');
	is $rc, 0, 'opsctl sessions flush --all exits 0' or diag "$out$err";
	like $out, qr/^flushed \d+ sessions\b/m, q{it prints "flushed N sessions" (a scope note may follow)};
	my ($n) = $out =~ /^flushed (\d+) sessions\b/m;
	is $n, $rows, 'N is the number of stored sessions';
	is mysql('SELECT COUNT(*) FROM sessions'), "0\n", 'the sessions table is empty';
	my ($rc2, $out2) = run_opsctl('sessions', 'flush', '--all');
	is $rc2, 0, 'flushing an empty store exits 0';
	like $out2, qr/^flushed 0 sessions\b/m, 'and flushes 0';
	my ($rc3, $out3, $err3) = run_opsctl('sessions', 'flush');
	is $rc3, 2, 'opsctl sessions flush without a scope is a usage error (2)' or diag "$out3$err3";
	my ($rc4) = run_opsctl('sessions', 'flush', '--user', 'not-a-uuid');
	isnt $rc4, 0, 'opsctl sessions flush --user <malformed> fails';
}

# ---- step 3: users re-authenticate
my $sa2 = relogin($ua);
my $sb2 = relogin($ub);
my $sc = relogin($c);
my $ss = relogin($sec);
ok $sa2->{cookie} && $sb2->{cookie} && $sc->{cookie} && $ss->{cookie}, 'everyone logs in again';
is make_session_cookie($new_secret, cookie_session_id($sa2->{cookie} // '') // ''), $sa2->{cookie} // '-',
    'the new cookies are signed with the new secret';
is rec(me($sa2))->{status}, 200, 'A works again';
is rec(me($sb2))->{status}, 200, 'B works again';

# ---- containment: flush one user, one org
{
	check_error(req(POST => '/security/sessions/flush', session => $sb2, json => { scope => 'all' }), 403, 'forbidden',
	    'a member flushing sessions');
	check_error(req(POST => '/security/sessions/flush', session => $sc, json => { scope => 'org', id => $org1->{id} }), 403,
	    'forbidden', 'an org_admin flushing their org');
	check_error(req(POST => '/security/sessions/flush', json => { scope => 'all' }), 401, 'unauthenticated', 'nobody flushing');
	check_error(req(POST => '/security/sessions/flush', session => $ss, csrf => undef, json => { scope => 'all' }), 403,
	    'csrf_failed', 'flush without X-CSRF-Token');
	for my $bad ([{}, '{}'], [{ scope => 'user' }, 'scope user without id'], [{ scope => 'org' }, 'scope org without id'],
	    [{ scope => 'everything' }, 'an unknown scope'], [{ scope => 'user', id => 'x' }, 'a malformed id'],
	    [{ scope => 'all', extra => 1 }, 'an unknown field']) {
		check_error(req(POST => '/security/sessions/flush', session => $ss, json => $bad->[0]), 400, 'validation_failed',
		    "flush with $bad->[1]");
	}
	is rec(me($ss))->{status}, 200, 'none of those flushed anything (security_admin still in)';

	my $u = req(POST => '/security/sessions/flush', session => $ss, json => { scope => 'user', id => $ua->{id} });
	is $u->{status}, 200, 'flush scope user as security_admin 200' or diag $u->{body};
	is(($u->{json} // {})->{scope}, 'user', 'the answer names the scope');
	ok((($u->{json} // {})->{flushed} // 0) >= 1, 'and flushed >= 1') or diag $u->{body};
	check_error(rec(me($sa2)), 401, 'unauthenticated', "the flushed user's cookie");
	is rec(me($sb2))->{status}, 200, 'another user is untouched';
	is rec(me($sc))->{status}, 200, 'a user of the same org is untouched';
	is rec(me($ss))->{status}, 200, 'the caller is untouched';

	my $sa3 = relogin($ua);
	ok $sa3->{cookie}, 'the flushed user can log in again';
	my $o = req(POST => '/security/sessions/flush', session => $ss, json => { scope => 'org', id => $org1->{id} });
	is $o->{status}, 200, 'flush scope org 200' or diag $o->{body};
	ok((($o->{json} // {})->{flushed} // 0) >= 2, 'flushed counts both users of the org') or diag $o->{body};
	check_error(rec(me($sa3)), 401, 'unauthenticated', 'org member A after the org flush');
	check_error(rec(me($sc)), 401, 'unauthenticated', 'org admin C after the org flush');
	is rec(me($sb2))->{status}, 200, 'a user of another org is untouched';
	is rec(me($ss))->{status}, 200, 'the security_admin (no org) is untouched';

	# audit: the flushes with scope and count, and nobody's email
	my $l = req(GET => '/audit?action=security.sessions_flushed&limit=100', session => $ss);
	is $l->{status}, 200, 'GET /audit?action=security.sessions_flushed' or diag $l->{body};
	my @ev = @{ ($l->{json} // {})->{items} // [] };
	my %by_scope;
	push @{ $by_scope{ (ref $_->{payload} eq 'HASH' ? $_->{payload}{scope} : undef) // '?' } }, $_ for @ev;
	ok $by_scope{user}, 'an event with scope user';
	ok $by_scope{org}, 'an event with scope org';
	ok $by_scope{all}, 'an event with scope all (opsctl sessions flush --all)';
	is flushed_count(($by_scope{user} // [{}])->[0]), $u->{json}{flushed}, 'the user event has the count (payload count or flushed)';
	is flushed_count(($by_scope{org} // [{}])->[0]), $o->{json}{flushed}, 'the org event has the count';
	is(($by_scope{user} // [{}])->[0]{actorId}, $sec->{id}, 'the actor is the security_admin');
	my $payloads = json_encode([map { $_->{payload} } @ev]);
	unlike $payloads, qr/\@/, 'no email in the flush events';
}

# ---- flush everything through the API: every earlier cookie, the caller's too
{
	my $adm = admin_session(fresh => 1);
	rec($adm->{res});
	ok $adm->{cookie}, 'the admin logs in with the new secret';
	my $r = req(POST => '/security/sessions/flush', session => $adm, json => { scope => 'all' });
	is $r->{status}, 200, 'flush scope all 200' or diag $r->{body};
	is(($r->{json} // {})->{scope}, 'all', 'scope all');
	check_error(rec(me($adm)), 401, 'unauthenticated', "the caller's own cookie after flush all");
	check_error(rec(me($sb2)), 401, 'unauthenticated', 'B after flush all');
	check_error(rec(me($ss)), 401, 'unauthenticated', 'the security_admin after flush all');
	is mysql('SELECT COUNT(*) FROM sessions'), "0\n", 'no session row is left';
	my $again = relogin($ub);
	is $again->{status}, 200, 'and logging in works afterwards';
}

# ---- secrets only in the environment
{
	my %s = ('old SESSION_SECRET' => $old_secret, 'new SESSION_SECRET' => $new_secret);
	my @hits = find_in_logs(\%s);
	ok !@hits, 'no SESSION_SECRET (old or new) in any log file' or diag join "\n", @hits;
	my @in_resp = grep { my $x = $_; grep { index($x, $_) >= 0 } values %s } @SEEN;
	ok !@in_resp, 'nor in any response or opsctl output (' . scalar(@SEEN) . ' checked)'
	    or diag substr($in_resp[0], 0, 500);
	SKIP: {
		my $dump = db_dump();
		skip 'no mariadb-dump', 1 unless defined $dump;
		ok !(grep { index($dump, $_) >= 0 } values %s), 'nor in the database';
	}
	is((stat "$var/opsd.env")[2] & 07777, 0600, '$OPSD_VAR/opsd.env is mode 0600');
	ok !-e "$var/session-secret" || ((stat "$var/session-secret")[2] & 077) == 0, 'a session-secret file, if any, is private';
}

finish();
