#!/usr/bin/perl
# API tokens in runbook 7 (README "Runbook 7", "Identity, sessions and
# roles"): opsd issues no JWTs; an API token is a random bearer secret stored
# hashed, and what replaces a signing-key rotation is its maximum lifetime,
# revocation and reissue.
#   - lifetime: without expiresAt (or with null) a token expires
#     OPSD_TOKEN_MAX_DAYS (90) days after its creation; a later expiresAt is
#     refused (400 naming expiresAt, nothing written), a past one too; the
#     expiry is in auth.token_created; OPSD_TOKEN_MAX_DAYS=7 in opsd.env and
#     SIGHUP shorten it for the next token while a token loop never fails;
#     a token stored without expiry (made before the maximum existed) keeps
#     working, opsctl tokens list --no-expiry finds it and opsctl tokens
#     revoke --id ends it;
#   - revocation by org: POST /security/tokens/revoke {"orgId"} ends every
#     token of the org's users while another org's token, used in a loop
#     meanwhile, never fails; security.tokens_revoked with scope org; bad
#     input (malformed or unknown org, two selectors, none) and roles without
#     security.tokens_revoke write nothing; opsctl tokens revoke --user,
#     --org, --all, --id and tokens list (filters, JSON, no token value),
#     their bad input and their permission;
#   - README runbook 7 says what replaces "JWT" rotation.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(_exit);
use Time::HiRes ();
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $var = var_dir();
my $DAY = 86400;

my $org = create_org();
my $org2 = create_org();
my %U = map { $_->[0] => create_user(role => $_->[1], ($_->[2] ? (org => $_->[2]) : ())) }
    [sec => 'security_admin'], [a => 'member', $org], [b => 'org_admin', $org], [c => 'member', $org2];
my %S = map { $_ => login_ok($U{$_}, $_) } sort keys %U;

sub create_token($s, %body) {
	return http(POST => '/auth/tokens', session => $s, json => { name => 'rb7', scopes => ['tenant.read'], %body });
}
sub token_of($s, $name = 'rb7') {
	my $r = create_token($s, name => $name);
	is $r->{status}, 201, "  $s->{email} creates token $name" or diag $r->{body};
	return j($r);
}
sub bearer_status($tok) { return http(GET => '/auth/me', bearer => $tok->{token})->{status} }
sub near($got, $want_epoch, $name) {
	my $g = rfc3339_epoch($got // '') // 0;
	ok abs($g - $want_epoch) <= 60, "$name (" . ($got // 'null') . ')';
}
sub live_tokens() { return db_count('SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL') }

# ============================================================ the longest lifetime
{
	my $r = create_token($S{a});
	is $r->{status}, 201, 'a token without expiresAt: 201' or diag $r->{body};
	near j($r)->{expiresAt}, time + 90 * $DAY, '  it expires in OPSD_TOKEN_MAX_DAYS (90) days';
	my ($ev) = grep { norm_id($_->{target_id}) eq norm_id(j($r)->{id}) } audit_payloads('auth.token_created');
	is $ev->{p}{expiresAt}, j($r)->{expiresAt}, '  auth.token_created has the expiry';
	$r = create_token($S{a}, expiresAt => undef);
	is $r->{status}, 201, 'expiresAt null: 201';
	near j($r)->{expiresAt}, time + 90 * $DAY, '  the same 90 days';
	my $at = rfc3339_at(time + 30 * $DAY);
	$r = create_token($S{a}, expiresAt => $at);
	is $r->{status}, 201, 'expiresAt in 30 days: 201';
	near j($r)->{expiresAt}, time + 30 * $DAY, '  kept as asked';
	$r = create_token($S{a}, expiresAt => rfc3339_at(time + 90 * $DAY - 120));
	is $r->{status}, 201, 'expiresAt just inside 90 days: 201';

	my $before = db_count('SELECT COUNT(*) FROM api_tokens');
	my $audits = audit_count();
	for my $bad ([rfc3339_at(time + 90 * $DAY + 3600), 'an hour past 90 days'], [rfc3339_at(time + 3650 * $DAY), 'in ten years'],
	    [rfc3339_at(time - 60), 'a minute ago'], ['soon', 'not RFC 3339']) {
		$r = create_token($S{a}, expiresAt => $bad->[0]);
		check_error($r, 400, 'validation_failed', "expiresAt $bad->[1]");
		fields_named($r, 'expiresAt');
	}
	like j(create_token($S{a}, expiresAt => rfc3339_at(time + 91 * $DAY)))->{error}{details}{fields}{expiresAt} // '',
	    qr/90 days/, '  the refusal says the maximum';
	is db_count('SELECT COUNT(*) FROM api_tokens'), $before, 'none of those made a token';
	is audit_count(), $audits, '  nor an audit event';
}

# ============================================================ a token without expiry (made before the maximum)
my $legacy = token_of($S{a}, 'legacy');
{
	mysql("UPDATE api_tokens SET expires_at = NULL WHERE id = UNHEX('" . uuid_hex($legacy->{id}) . "')");
	is bearer_status($legacy), 200, 'a stored token without expiry keeps working';
	my ($item) = grep { $_->{id} eq $legacy->{id} } items(http(GET => '/auth/tokens', session => $S{a}));
	ok $item && !defined $item->{expiresAt}, '  GET /auth/tokens shows it with expiresAt null';
}

# ============================================================ a shorter maximum by reload, under load
{
	my $loop_tok = token_of($S{c}, 'loop');
	my $stop = "$var/../loop.stop";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open my $out, '>', "$var/../loop.txt" or _exit(2);
		my $n = 0;
		until (-e $stop && $n >= 20) {
			my $r = http(GET => '/auth/me', bearer => $loop_tok->{token}, fresh => 1);
			printf {$out} "%d\n", $r->{status};
			$n++;
		}
		close $out;
		_exit(0);
	}
	my $envf = "$var/opsd.env";
	my $text = slurp($envf) =~ s/^OPSD_TOKEN_MAX_DAYS=.*\n//mgr;
	open my $fh, '>', $envf or die "$envf: $!";
	print {$fh} $text, "OPSD_TOKEN_MAX_DAYS='7'\n";
	close $fh;
	my @old = worker_pids();
	ok kill('HUP', master_pid()), 'OPSD_TOKEN_MAX_DAYS=7 in opsd.env, then SIGHUP';
	ok wait_until(15, sub { my @w = worker_pids(); @w == 2 && !grep { my $p = $_; grep { $_ == $p } @old } @w }, 0.1),
	    '  every worker is replaced';
	my $r = create_token($S{a});
	near j($r)->{expiresAt}, time + 7 * $DAY, '  a new token now expires in 7 days';
	$r = create_token($S{a}, expiresAt => rfc3339_at(time + 8 * $DAY));
	check_error($r, 400, 'validation_failed', '  expiresAt in 8 days');
	like j($r)->{error}{details}{fields}{expiresAt} // '', qr/7 days/, '  the refusal says 7 days';
	is bearer_status($legacy), 200, '  tokens made before keep their expiry';
	open $fh, '>', $stop or die;
	close $fh;
	waitpid $pid, 0;
	my @st = split /\n/, slurp("$var/../loop.txt") // '';
	my @fail = grep { $_ != 200 } @st;
	ok @st >= 20, 'the token loop ran across the reload (' . scalar(@st) . ' requests)';
	is scalar(@fail), 0, '  and no request failed' or diag "@fail";
}

# ============================================================ the README says what replaces JWT rotation
{
	my $readme = slurp(repo_root() . '/README.md') // '';
	my ($section) = $readme =~ /^(## Runbook 7[^\n]*\n.*?)(?=^## |\z)/ms;
	$section //= '';
	like $section, qr/no JWT/i, 'README runbook 7 says opsd issues no JWT';
	like $section, qr/OPSD_TOKEN_MAX_DAYS/, '  names the maximum lifetime';
	like $section, qr/opsctl tokens list --no-expiry/, '  how to find tokens without expiry';
	like $section, qr/opsctl tokens revoke --org/, '  and how to revoke an org\'s tokens';
}

# Runs a token loop in a child until the returned stop sub is called; that
# sub returns the statuses.
sub token_loop($tok) {
	my ($stop, $file) = ("$var/../loop-$tok->{id}.stop", "$var/../loop-$tok->{id}.txt");
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open my $out, '>', $file or _exit(2);
		my $n = 0;
		until (-e $stop && $n >= 20) {
			printf {$out} "%d\n", http(GET => '/auth/me', bearer => $tok->{token}, fresh => 1)->{status};
			$n++;
		}
		close $out;
		_exit(0);
	}
	return sub {
		open my $fh, '>', $stop or die "$stop: $!";
		close $fh;
		waitpid $pid, 0;
		return split /\n/, slurp($file) // '';
	};
}
sub revoke($s, $body) { return http(POST => '/security/tokens/revoke', session => $s, json => $body) }
sub last_event($action) { my @e = audit_payloads($action); return $e[-1] // {} }
sub actor_of($e) { return mysql("SELECT actor_label FROM audit_events WHERE seq = $e->{seq}") =~ s/\s+\z//r }

# ============================================================ revoke an org's tokens
{
	my @in = (token_of($S{a}, 'a1'), token_of($S{b}, 'b1'));
	my $out = token_of($S{c}, 'c1');
	my $mine = token_of($S{sec}, 'sec1');
	my $stop = token_loop($out);
	sleep 1;
	my $r = revoke($S{sec}, { orgId => $org->{id}, reason => 'INC-9 org compromised' });
	is $r->{status}, 200, 'revoke an org\'s tokens: 200' or diag $r->{body};
	is_deeply [@{ j($r) }{qw(scope id)}], ['org', $org->{id}], '  scope org, its id';
	cmp_ok j($r)->{revoked}, '>=', 3, '  revoked every live token of its users (' . (j($r)->{revoked} // 0) . ')';
	is bearer_status($_), 401, "  $_->{name} of the org: 401" for @in, $legacy;
	is bearer_status($out), 200, '  another org\'s token works';
	is bearer_status($mine), 200, '  a platform user\'s token works';
	my @st = $stop->();
	ok @st >= 20, '  the other org\'s token was used meanwhile (' . scalar(@st) . ' requests)';
	is scalar(grep { $_ != 200 } @st), 0, '  and no request failed';
	my $e = last_event('security.tokens_revoked');
	is_deeply [$e->{target_type}, norm_id($e->{target_id}), $e->{org}], ['org', norm_id($org->{id}), org_hex($org)],
	    'security.tokens_revoked is about the org';
	is_deeply $e->{p}, { scope => 'org', revoked => j($r)->{revoked}, reason => 'INC-9 org compromised' }, '  payload {scope, revoked, reason}';
	is actor_of($e), 'security_admin', '  by the security_admin';
	is j(revoke($S{sec}, { orgId => $org->{id} }))->{revoked}, 0, 'again: 200, revoked 0';

	my $audits = audit_count();
	my $t = token_of($S{a}, 'survivor');
	$audits = audit_count();
	for my $bad ([{ orgId => 'nope' }, ['orgId'], 'a malformed orgId'], [{ orgId => $org->{id}, userId => $U{a}{id} }, ['orgId', 'userId'], 'orgId and userId'],
	    [{ orgId => $org->{id}, all => JSON::PP::true }, ['orgId', 'all'], 'orgId and all'],
	    [{ orgId => undef }, ['orgId', 'userId', 'all', 'tokenId'], 'orgId null (no selector)'],
	    [{ orgId => $org->{id}, reason => '   ' }, ['reason'], 'a blank reason'], [{ orgId => $org->{id}, extra => 1 }, ['extra'], 'an unknown field']) {
		my $br = revoke($S{sec}, $bad->[0]);
		check_error($br, 400, 'validation_failed', "revoke with $bad->[2]");
		fields_named($br, @{ $bad->[1] });
	}
	check_error(revoke($S{sec}, { orgId => uuid7_like() }), 404, 'not_found', 'revoke an unknown org');
	check_error(revoke($S{b}, { orgId => $org->{id} }), 403, 'forbidden', 'an org_admin revoking its own org');
	check_error(revoke($S{c}, { orgId => $org->{id} }), 403, 'forbidden', 'a member revoking an org');
	is audit_count(), $audits, 'none of those wrote anything';
	is bearer_status($t), 200, '  the org\'s new token still works';
}

# ============================================================ opsctl tokens list and revoke
{
	my $old = token_of($S{c}, 'old-style');
	mysql("UPDATE api_tokens SET expires_at = NULL WHERE id = UNHEX('" . uuid_hex($old->{id}) . "')");
	my $fresh = token_of($S{a}, 'fresh');
	my ($rc, $out, $err) = opsctl(qw(tokens list --no-expiry));
	is $rc, 0, 'opsctl tokens list --no-expiry exits 0' or diag $err;
	like $out, qr/^ID\s+USER\s+ORG\s+EXPIRES\s+LAST USED\s+NAME$/m, '  a header';
	like $out, qr/^\Q$old->{id}\E\s+\Q$U{c}{id}\E\s+\Q$org2->{id}\E\s+never\s/m, '  the token without expiry, its owner and org';
	unlike $out, qr/\Q$fresh->{id}\E|\Q$legacy->{id}\E/, '  not a token with an expiry, nor a revoked one';
	like $out, qr/^1 live API tokens, 1 without expiry$/m, '  and a count';
	($rc, $out) = opsctl(qw(tokens list --json --org), $org->{id});
	my $list = json_decode($out) // [];
	is ref $list, 'ARRAY', 'opsctl tokens list --json --org: a JSON array';
	my %ids = map { $_->{id} => $_ } @$list;
	ok $ids{ $fresh->{id} } && !$ids{ $old->{id} }, '  the org\'s live tokens only';
	is_deeply [@{ $ids{ $fresh->{id} } // {} }{qw(userId orgId name)}], [$U{a}{id}, $org->{id}, 'fresh'], '  with owner, org and name';
	ok !grep({ index($out, $_->{token}) >= 0 } $fresh, $old), '  never a token value';
	($rc, $out) = opsctl(qw(tokens list --json --user), $U{c}{id});
	is_deeply [sort map { $_->{name} } @{ json_decode($out) // [] }], [sort qw(c1 loop old-style)], 'opsctl tokens list --user: that user\'s';

	($rc, $out, $err) = opsctl(qw(tokens revoke --id), $old->{id}, '--reason', 'no expiry');
	is $rc, 0, 'opsctl tokens revoke --id ends the token without expiry' or diag $err;
	like $out, qr/^revoked 1 API tokens \(token \Q$old->{id}\E\)/m, '  "revoked 1 API tokens (token …)"';
	is bearer_status($old), 401, '  it answers 401';
	($rc, $out) = opsctl(qw(tokens list --no-expiry));
	like $out, qr/^0 live API tokens, 0 without expiry$/m, '  none is left without expiry';

	($rc, $out, $err) = opsctl(qw(tokens revoke --org), $org->{id}, '--reason', 'rotation');
	is $rc, 0, 'opsctl tokens revoke --org exits 0' or diag $err;
	like $out, qr/^revoked [1-9]\d* API tokens \(org \Q$org->{id}\E\)/m, '  "revoked N API tokens (org …)"';
	is bearer_status($fresh), 401, '  the org\'s token: 401';
	my $e = last_event('security.tokens_revoked');
	is actor_of($e), 'cli:root', '  security.tokens_revoked by cli:root';
	is_deeply [$e->{p}{scope}, $e->{p}{reason}, $e->{org}], ['org', 'rotation', org_hex($org)], '  scope org, the reason, the org';

	my $u = token_of($S{c}, 'c2');
	($rc, $out) = opsctl(qw(tokens revoke --user), $U{c}{id});
	is $rc, 0, 'opsctl tokens revoke --user exits 0';
	like $out, qr/^revoked 3 API tokens \(user /m, '  revoked 3 (loop, c1, c2)';
	($rc, $out) = opsctl(qw(token revoke --org), $org2->{id});
	is $rc, 0, 'opsctl token revoke (the older name) takes --org too';

	my $audits = audit_count();
	for my $bad ([[qw(tokens revoke)], 2, 'no selector'], [[qw(tokens revoke --org nope)], 2, 'a malformed org'],
	    [[qw(tokens revoke --org), $org->{id}, '--user', $U{a}{id}], 2, 'two selectors'],
	    [[qw(tokens revoke --org), uuid7_like()], 1, 'an unknown org'], [[qw(tokens revoke --all --reason), ' '], 2, 'a blank reason'],
	    [[qw(tokens list --user nope)], 2, 'list with a malformed user'], [[qw(tokens list --org)], 2, 'list --org without a value'],
	    [[qw(tokens list --expired)], 2, 'list with an unknown option']) {
		my ($brc, $bout, $berr) = opsctl(@{ $bad->[0] });
		is $brc, $bad->[1], "opsctl @{ $bad->[0] }: exit $bad->[1] ($bad->[2])" or diag "$bout$berr";
		like $berr, qr/^opsctl: /m, '  one line on stderr';
	}
	for my $cmd ([qw(tokens list)], [qw(tokens revoke --all)]) {
		my ($brc, undef, $berr) = opsctl({ env => { OPSD_CLI_ROLES => 'root:compliance' } }, @$cmd);
		is $brc, 3, "opsctl @$cmd as a compliance principal: exit 3";
		like $berr, qr/lacks security\.tokens_revoke/, '  it lacks security.tokens_revoke';
	}
	is audit_count(), $audits, 'none of those wrote anything';

	my $last = token_of($S{sec}, 'last');
	($rc, $out) = opsctl(qw(tokens revoke --all --reason), 'signing rotation drill');
	is $rc, 0, 'opsctl tokens revoke --all exits 0';
	like $out, qr/^revoked [1-9]\d* API tokens \(all\)/m, '  revoked N (all)';
	is bearer_status($last), 401, '  every token answers 401';
	is live_tokens(), 0, '  no live token is left';
}

finish();
