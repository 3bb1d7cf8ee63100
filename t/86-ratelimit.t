#!/usr/bin/perl
# Rate limits in both layers (README "Runbook 4"): a burst at
# /auth/login from one address gets 429 from nginx with the JSON body; a
# burst by one signed-in user gets 429 from opsd with Retry-After and the
# RateLimit-* headers while another user is not affected; an API token has
# its own bucket; anonymous calls are limited per address; every 429 is
# logged and counted by layer and route in /metrics, and summarised in the
# audit log as security.rate_limited at most once a minute per source.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $USER_PER_MIN = 60;   # one a second
my $BURST = 5;
start_stack(env => {
	OPSD_NGINX_LOGIN_RATE => '30r/m',
	OPSD_NGINX_LOGIN_BURST => 3,
	OPSD_RATELIMIT_USER_PER_MIN => $USER_PER_MIN,
	OPSD_RATELIMIT_TOKEN_PER_MIN => $USER_PER_MIN,
	OPSD_RATELIMIT_IP_PER_MIN => 120,
	OPSD_RATELIMIT_BURST => $BURST,
});

sub metric($name, %labels) {
	my $m = http(GET => '/metrics');
	my $sel = join ',', map { qq{$_="$labels{$_}"} } sort keys %labels;
	my ($v) = ($m->{body} // '') =~ /^\Q$name\E\{\Q$sel\E\} (\S+)$/m;
	return $v;
}

# ---------------------------------------------------------------- users
my $A = create_user(role => 'compliance');
my $B = create_user(role => 'compliance');
my $sa = login($A->{email}, $A->{password});
my $sb = login($B->{email}, $B->{password});
ok $sa->{cookie} && $sb->{cookie}, 'two users signed in' or BAIL_OUT('cannot sign in');

# ---------------------------------------------------------------- opsd: per user
{
	my @r = map { http(GET => '/auth/me', session => $sa) } 1 .. $BURST + 3;
	my @ok = grep { $_->{status} == 200 } @r;
	my @lim = grep { $_->{status} == 429 } @r;
	ok @ok >= $BURST && @ok <= $BURST + 1, "user A: the first $BURST calls pass (" . scalar(@ok) . ')';
	ok @lim >= 2, 'user A: the burst beyond gets 429 (' . scalar(@lim) . ')';
	my $first = $r[0];
	is $first->{headers}{'ratelimit-limit'}, $BURST, 'a passing answer carries RateLimit-Limit';
	like $first->{headers}{'ratelimit-remaining'} // '', qr/^\d+$/, '  and RateLimit-Remaining';
	like $first->{headers}{'ratelimit-reset'} // '', qr/^\d+$/, '  and RateLimit-Reset';
	my $l = $lim[0] // { headers => {} };
	check_error($l, 429, 'rate_limited', 'user A over the limit');
	like $l->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '  Retry-After in whole seconds';
	is $l->{headers}{'ratelimit-limit'}, $BURST, '  RateLimit-Limit';
	is $l->{headers}{'ratelimit-remaining'}, 0, '  RateLimit-Remaining 0';
	like $l->{headers}{'ratelimit-reset'} // '', qr/^\d+$/, '  RateLimit-Reset';
	is(($l->{json}{error}{details}{layer} // ''), 'opsd', '  details.layer is opsd');

	my $b = http(GET => '/auth/me', session => $sb);
	status_is $b, 200, 'user B is not affected';
	is $b->{headers}{'ratelimit-remaining'}, $BURST - 1, '  and has a full bucket of its own';

	sleep 1.2;
	status_is http(GET => '/auth/me', session => $sa), 200, 'user A passes again a second later (60/min)';

	ok wait_until(3, sub { logs('opsd.log') =~ /"event":"rate_limited".*"layer":"opsd"/ }),
	    'opsd.log has a rate_limited line with layer opsd';
	unlike logs('opsd.log'), qr/\Q$sa->{cookie}\E/, '  and no session cookie';
	my $uid = lc $A->{id};
	is audit_count('security.rate_limited', "target_id = '$uid'"), 1, 'one security.rate_limited event for user A (not one per 429)';
	for (1 .. 4) { http(GET => '/auth/me', session => $sa) }
	is audit_count('security.rate_limited', "target_id = '$uid'"), 1, '  still one after more refusals in the same minute';
	my $row = mysql("SELECT payload FROM audit_events WHERE action = 'security.rate_limited' AND target_id = '$uid'") // '';
	my $p = json_decode($row) // {};
	is $p->{layer}, 'opsd', '  payload layer opsd';
	is $p->{route}, 'auth_me', '  payload route auth_me';
	is $p->{source}, 'user', '  payload source user';
	ok(($p->{refusedSinceLastEvent} // 0) >= 1, '  payload counts the refusals');
	ok((metric('opsd_rate_limited_total', layer => 'opsd', route => 'auth_me') // 0) >= 2,
	    '/metrics: opsd_rate_limited_total{layer="opsd",route="auth_me"} counts them');
}

# ---------------------------------------------------------------- opsd: per API token
{
	my $t = http(POST => '/auth/tokens', session => $sb, json => { name => 'bucket', scopes => ['tenant.read'] });
	status_is $t, 201, 'user B makes an API token';
	my $tok = $t->{json}{token};
	my @r = map { http(GET => '/auth/me', bearer => $tok) } 1 .. $BURST + 2;
	ok scalar(grep { $_->{status} == 429 } @r) >= 1, 'the token has its own bucket, and it runs out';
	status_is http(GET => '/auth/me', session => $sb), 200, '  user B by session is unaffected by the token\'s bucket';
}

# ---------------------------------------------------------------- opsd: anonymous, per address
{
	my @r = map { http(GET => '/legal/terms') } 1 .. $BURST + 6;
	my @lim = grep { $_->{status} == 429 } @r;
	ok @lim >= 1, 'anonymous calls from one address run out (' . scalar(@lim) . ' of ' . scalar(@r) . ')';
	check_error($lim[0] // {}, 429, 'rate_limited', 'anonymous over the limit');
	status_is http(GET => '/healthz'), 200, '/healthz is outside the limiter';
	status_is http(GET => '/metrics'), 200, '/metrics is outside the limiter';
}

# ---------------------------------------------------------------- opsd: failed authentications, per address
{
	my $bogus = 'opsd_' . ('A' x 43);
	my @r = map { http(GET => '/auth/me', bearer => $bogus) } 1 .. $BURST + 3;
	my @unauth = grep { $_->{status} == 401 } @r;
	my @lim = grep { $_->{status} == 429 } @r;
	is scalar(@unauth), $BURST, "failed authentications: the first $BURST get 401";
	ok @lim >= 2, '  the next ones get 429 instead (' . scalar(@lim) . ')';
	check_error($lim[0] // {}, 429, 'rate_limited', 'failed authentications over the limit');
	status_is http(GET => '/auth/me', session => $sb), 200, '  a signed-in user from the same address still passes';
	ok wait_until(3, sub { logs('opsd.log') =~ /"event":"rate_limited"[^\n]*"source":"ip-authfail"/ }),
	    '  logged with source ip-authfail';
}

# ---------------------------------------------------------------- nginx: login burst
{
	sleep 1.5;  # let the anonymous bucket refill: nginx must be the one refusing
	my @r = map { http(POST => '/auth/login', json => { email => 'nobody@example.test', password => 'wrong-password-xyz' }) } 1 .. 8;
	my @lim = grep { $_->{status} == 429 } @r;
	ok @lim >= 2, 'a login burst from one address gets 429 (' . scalar(@lim) . ' of 8)';
	my ($n) = grep { ($_->{json}{error}{details}{layer} // '') eq 'nginx' } @lim;
	ok $n, '  from nginx (details.layer nginx)' or diag join "\n", map { $_->{body} } @lim;
	$n //= { headers => {}, json => {} };
	is $n->{headers}{'content-type'}, 'application/json', '  with a JSON body';
	is $n->{json}{error}{code}, 'rate_limited', '  code rate_limited';
	ok $n->{json}{requestId}, '  and a request id';
	like $n->{headers}{'retry-after'} // '', qr/^\d+$/, '  and Retry-After';
	my @acc = grep { /"uri":"\/auth\/login"/ && /"status":429/ } split /\n/, logs('nginx-access.log');
	ok @acc >= 2, 'the access log shows the 429s';
	like $acc[0] // '', qr/"limit_req_status":"REJECTED"/, '  with limit_req_status REJECTED';
	ok wait_until(8, sub { (metric('opsd_rate_limited_total', layer => 'nginx', route => 'auth_login') // 0) >= 2 }),
	    '/metrics counts them: opsd_rate_limited_total{layer="nginx",route="auth_login"}';
	ok wait_until(5, sub { audit_count('security.rate_limited', "target_type = 'ip' AND payload LIKE '%\"layer\":\"nginx\"%'") == 1 }),
	    'one security.rate_limited event for the address (layer nginx)';
}

finish();
