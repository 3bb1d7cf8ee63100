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
#     working.
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

finish();
