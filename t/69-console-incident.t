#!/usr/bin/perl
# The console's Incident screen (runbook 4, README "The console") in a real
# browser: t/browser/incident.mjs. First real 429s: a member signed in from
# another loopback address (127.0.0.7) bursts at GET /auth/me past opsd's
# per-user bucket, and anonymous calls from 127.0.0.9 run out the per-address
# one. Then a security_admin, in chromium, does the whole runbook: sees both
# addresses with their 429s (audit log) and the counters (GET /metrics),
# blocks 127.0.0.7 with an expiry from its row and sees nginx apply it (the
# row's nginx column turns to applied by itself), gets a malformed address, host
# bits and a past expiry refused next to their fields, blocks a range and
# lifts it with a typed reason, flushes a colleague's sessions (the
# colleague's session in another browser profile answers 401), revokes the
# member's API tokens, disables it, holds it and its org, flushes another org
# with its API tokens, revokes a leaked token by id (a malformed id refused
# next to its field), flushes every session (its own too: signed in again,
# back on the screen). A compliance_officer has no Incident menu and no
# access. The security_admin then reads the rate limits in force (values and
# sources), gets a value that is not a number and one out of range refused
# next to the field, and tightens opsd's per-user limit to 6 a minute with a
# typed reason. Then the server state: the blocklist rows, each audit event
# with the reason typed, the tokens that answer 401 and those that still
# work, the holds, the limit set at run time, and a user's burst that gets
# 429 from opsd at 6 a minute.
#
# Needs node, chromium and t/browser's packages (OpsdTest::Browser).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(time);
use OpsdTest;
use OpsdTest::Audit;

browser_ready();

my $BURST = 60;   # opsd's buckets: 60 at once, then 10 a second
start_stack(env => { OPSD_WORKERS => 2,
	OPSD_RATELIMIT_USER_PER_MIN => 600, OPSD_RATELIMIT_IP_PER_MIN => 600, OPSD_RATELIMIT_BURST => $BURST });
my $TAG = run_tag();
my $T = JSON::PP::true;
my ($SUSPECT_ADDR, $ANON_ADDR, $OTHER_CIDR) = ('127.0.0.7', '127.0.0.9', '198.51.100.0/24');

# A keep-alive agent whose connections leave from another loopback address.
sub agent_from($addr) {
	return HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 10,
	    max_redirect => 0, keep_alive => 1, local_address => $addr, agent => 'opsd-test/1');
}
# Requests until at least 10 were refused, at most 20 times the bucket.
sub burst($request) {
	my @r;
	while (@r < 20 * $BURST) {
		push @r, $request->();
		last if @r >= 2 * $BURST && (grep { $_->{status} == 429 } @r) >= 10;
	}
	return @r;
}
sub token_of($s, $name, %o) {
	my $r = http(POST => '/auth/tokens', session => $s, json => { name => $name, scopes => ['tenant.read'] }, %o);
	is $r->{status}, 201, "an API token: $name" or diag $r->{body};
	return j($r);
}
sub bearer_status($t) { return http(GET => '/auth/me', bearer => $t->{token})->{status} }

# ---------------------------------------------------------------- the people
my $sec = create_user(role => 'security_admin');
my $officer = create_user(role => 'compliance_officer');
my %ORG = map { $_->[0] => create_org(name => "$_->[1] $TAG") } [a => 'Acme Incident'], [b => 'Bystander Works'], [c => 'Cobalt Incident'];
my $suspect = create_user(role => 'member', org => $ORG{a});
my $colleague = create_user(role => 'member', org => $ORG{a});
my $bystander = create_user(role => 'member', org => $ORG{b});
my $cobalt = create_user(role => 'member', org => $ORG{c});
my $leaker = create_user(role => 'member', org => $ORG{b});
ok $_->{id}, "$_->{roles}[0] created" for $sec, $officer, $suspect, $colleague, $bystander, $cobalt, $leaker;
ok $_->{id}, "org $_->{name} created" for values %ORG;

my $agent = agent_from($SUSPECT_ADDR);
my $ss = login($suspect->{email}, $suspect->{password}, agent => $agent);
ok $ss->{cookie}, "the member signs in from $SUSPECT_ADDR";
my $st = token_of($ss, 'the member\'s token', agent => $agent);
my $cs = login_ok($colleague, 'the colleague');
my $ct = token_of($cs, 'the colleague\'s token');
status_is http(POST => '/auth/logout', session => $cs), 200, '  (its harness session ends: the browser profile holds its one session)';
my $bs = login_ok($bystander, 'the bystander');
my $bt = token_of($bs, 'the bystander\'s token');
my $cos = login_ok($cobalt, 'the member of the other org');
my $cot = token_of($cos, 'its token');
my $ls = login_ok($leaker, 'the leaker');
my @lt = map { token_of($ls, "leaked $_") } 1 .. 2;

# ---------------------------------------------------------------- real 429s
my @r = burst(sub { http(GET => '/auth/me', session => $ss, agent => $agent) });
my $n_user = grep { $_->{status} == 429 } @r;
ok $n_user >= 10, "a burst of " . scalar(@r) . " requests by the member from $SUSPECT_ADDR: $n_user get 429";
is((j((grep { $_->{status} == 429 } @r)[0] // {})->{error}{details}{layer} // ''), 'opsd', '  from opsd');
my $anon = agent_from($ANON_ADDR);
@r = burst(sub { http(GET => '/legal', agent => $anon) });
my $n_ip = grep { $_->{status} == 429 } @r;
ok $n_ip >= 10, "anonymous requests from $ANON_ADDR: $n_ip get 429";
my @rl = audit_rows('security.rate_limited');
ok((grep { ($_->{ip} // '') eq $SUSPECT_ADDR && ($_->{target_type} // '') eq 'user' } @rl), "security.rate_limited for the member from $SUSPECT_ADDR");
ok((grep { ($_->{ip} // '') eq $ANON_ADDR && ($_->{target_type} // '') eq 'ip' } @rl), "security.rate_limited for $ANON_ADDR (ip)");
status_is me($bs), 200, 'the bystander passes meanwhile';

# ---------------------------------------------------------------- the browser
my $screens = browser_run('incident.mjs', TIMEOUT => 300,
	CONSOLE_SEC_EMAIL => $sec->{email}, CONSOLE_SEC_PASSWORD => $sec->{password},
	CONSOLE_OFFICER_EMAIL => $officer->{email}, CONSOLE_OFFICER_PASSWORD => $officer->{password},
	CONSOLE_SUSPECT_ADDR => $SUSPECT_ADDR, CONSOLE_SUSPECT_EMAIL => $suspect->{email},
	CONSOLE_ANON_ADDR => $ANON_ADDR,
	CONSOLE_COLLEAGUE_EMAIL => $colleague->{email}, CONSOLE_COLLEAGUE_PASSWORD => $colleague->{password},
	CONSOLE_ORGA_NAME => $ORG{a}{name}, CONSOLE_ORGC_NAME => $ORG{c}{name},
	CONSOLE_LEAK_TOKEN_ID => $lt[0]{id}, CONSOLE_OTHER_CIDR => $OTHER_CIDR);

# ---------------------------------------------------------------- what is true on the server
# the blocklist: the address, until about a day from now; the range lifted
my @bl = db_rows('SELECT cidr, reason, UNIX_TIMESTAMP(expires_at) AS exp FROM ip_blocklist');
my ($b) = grep { $_->{cidr} eq "$SUSPECT_ADDR/32" } @bl;
ok $b, "ip_blocklist holds $SUSPECT_ADDR/32" or diag explain \@bl;
is $b->{reason}, 'INC-42 credential stuffing', '  with the reason typed' if $b;
ok $b && $b->{exp} && abs($b->{exp} - (time + 86400)) < 600, '  expiring about a day from now (the local time typed)' or diag explain $b;
ok !(grep { $_->{cidr} eq $OTHER_CIDR } @bl), "$OTHER_CIDR is no longer blocked";
is scalar(@bl), 1, 'no bad input wrote an entry' or diag explain \@bl;
# opsd refused it at once; by now nginx does (opsd's nginx process applied the list)
check_error(http(GET => '/auth/me', agent => agent_from($SUSPECT_ADDR)), 403, 'forbidden', "$SUSPECT_ADDR is refused by nginx");
my ($applied) = grep { $_->{cidr} eq "$SUSPECT_ADDR/32" } items(http(GET => '/security/blocklist', session => admin_session(fresh => 1)));
is_deeply [@{ ($applied // {})->{nginx} // {} }{qw(applied hosts hostsApplied)}], [JSON::PP::true, 1, 1],
    '  and GET /security/blocklist says nginx has applied it, as the screen showed';

# the audit log: each action by the security admin, with the reason typed
my $sec_hex = uuid_hex($sec->{id});
sub by_sec($action, %o) { return grep { ($_->{actor_hex} // '') eq $sec_hex } audit_rows($action, %o) }
my @added = by_sec('security.blocklist_added');
is_deeply [sort map { audit_payload($_)->{cidr} } @added], [sort "$SUSPECT_ADDR/32", $OTHER_CIDR], 'security.blocklist_added: the address and the range';
my @removed = by_sec('security.blocklist_removed');
is scalar(@removed), 1, 'one security.blocklist_removed';
is_deeply [@{ audit_payload($removed[0] // {}) }{qw(cidr removalReason)}], [$OTHER_CIDR, 'false positive: partner NAT'],
    '  the range, with the reason typed in the dialog';
my %flush = map { ((audit_payload($_)->{scope} // '') => audit_payload($_)) } by_sec('security.sessions_flushed');
is_deeply $flush{user}, { scope => 'user', flushed => 1, tokens => JSON::PP::false, reason => 'INC-42 shared laptop' },
    'security.sessions_flushed: the colleague (1 session, tokens kept), with the reason';
is_deeply $flush{org}, { scope => 'org', flushed => 1, tokens => $T, tokensRevoked => 1, reason => 'INC-42 org compromised' },
    '  the other org with its tokens';
is(($flush{all} // {})->{reason}, 'INC-42 every session out', '  every session');
my ($fu) = by_sec('security.sessions_flushed', target_id => $colleague->{id});
ok $fu, '  the user flush names the colleague';
my @rev = map { audit_payload($_) } by_sec('security.tokens_revoked');
ok((grep { ($_->{scope} // '') eq 'user' && $_->{revoked} == 1 && ($_->{reason} // '') eq 'INC-42 token leaked' } @rev),
    'security.tokens_revoked: the member\'s token, with the reason') or diag explain \@rev;
ok((grep { ($_->{scope} // '') eq 'token' && $_->{revoked} == 1 && ($_->{reason} // '') eq 'INC-42 token in a public repo' } @rev),
    '  the leaked token by id, with the reason') or diag explain \@rev;
my @dis = by_sec('user.disabled', target_id => $suspect->{id});
is scalar(@dis), 1, 'user.disabled for the member';
is audit_payload($dis[0] // {})->{reason}, 'INC-42 phished', '  with the reason';
my @holds = by_sec('compliance.legal_hold_set');
my %held = map { ((audit_payload($_)->{ids} // [])->[0] // '' => audit_payload($_)) } @holds;
is(($held{$suspect->{id}} // {})->{reason}, 'INC-42 evidence (account)', 'compliance.legal_hold_set for the member, with the reason')
    or diag explain \@holds;
is(($held{$ORG{a}{id}} // {})->{reason}, 'INC-42 evidence', '  and for its org');
ok !(grep { index(json_encode([map { audit_payload($_) } by_sec('security.tokens_revoked')]), $_->{token}) >= 0 } $st, @lt, $ct, $bt, $cot),
    'no token value in the revocation events';

# sessions and tokens
is bearer_status($st), 401, 'the member\'s token answers 401';
ok !login($suspect->{email}, $suspect->{password})->{cookie}, '  and it cannot sign in';
is bearer_status($lt[0]), 401, 'the leaked token answers 401';
is bearer_status($lt[1]), 200, '  the leaker\'s other token still works';
is bearer_status($cot), 401, 'the flushed org\'s member\'s token answers 401';
check_error(me($cos), 401, 'unauthenticated', '  and its session');
is bearer_status($ct), 200, 'the colleague\'s token survives the plain flushes';
is bearer_status($bt), 200, 'the bystander\'s token is untouched';
check_error(me($bs), 401, 'unauthenticated', 'the bystander\'s session ended with every session');

# the holds, through the API
my $s = login_ok($sec, 'the security admin, through the API');
my $rec = http(GET => "/compliance/records/users/$suspect->{id}", session => $s);
is_deeply [@{ j($rec) }{qw(legalHold legalHoldReason)}], [$T, 'INC-42 evidence (account)'], 'GET /compliance/records/users/:id: held, with the reason';
is j(http(GET => "/orgs/$ORG{a}{id}", session => $s))->{legalHold}, $T, 'GET /orgs/:id: the member\'s org is held';
$rec = http(GET => "/compliance/records/orgs/$ORG{a}{id}", session => $s);
is_deeply [@{ j($rec) }{qw(legalHold legalHoldReason legalHoldCaseRef)}], [$T, 'INC-42 evidence', 'INC-42'],
    '  GET /compliance/records/orgs/:id: with the reason and the case reference typed';
is j(http(GET => "/orgs/$ORG{c}{id}", session => $s))->{legalHold}, JSON::PP::false, '  the other org is not';
is j(http(GET => "/users/$suspect->{id}", session => $s))->{disabled}, $T, 'GET /users/:id: the member is disabled';

# the rate limit tightened in the browser, in force for every user within seconds
my %lim = map { $_->{name} => $_ } @{ j(http(GET => '/security/rate-limits', session => $s))->{limits} // [] };
is_deeply [@{ $lim{userPerMin} // {} }{qw(value source setBy setByLabel reason envValue envSource)}],
    [6, 'runtime', $sec->{id}, 'security_admin', 'INC-42 scraping: 6 a minute per user', 600, 'env_file'],
    'GET /security/rate-limits: userPerMin 6, set at run time by the security admin with the reason typed';
my @rlc = by_sec('security.rate_limits_changed');
is scalar(@rlc), 1, 'one security.rate_limits_changed (the value out of range wrote nothing)';
is_deeply audit_payload($rlc[0] // {}), { reason => 'INC-42 scraping: 6 a minute per user',
	changes => { userPerMin => { old => 600, new => 6, oldSource => 'env_file', newSource => 'runtime' } } },
    '  with the old and new value';
my $bs2 = login_ok($bystander, 'the bystander, again');
my @rb = map { http(GET => '/auth/me', session => $bs2) } 1 .. $BURST + 20;
my @rl429 = grep { $_->{status} == 429 } @rb;
ok @rl429 >= 15, 'a user\'s burst of ' . scalar(@rb) . ' gets 429 past the bucket (' . scalar(@rl429) . ')';
ok !(grep { (j($_)->{error}{details}{layer} // '') ne 'opsd' } @rl429), '  from opsd';
ok !(grep { ($_->{headers}{'retry-after'} // 0) < 5 } @rl429), '  with Retry-After of 5 s and more: one request every 10 s'
    or diag join ' ', map { $_->{headers}{'retry-after'} // '-' } @rl429;

ok -s "$screens/$_-1280x800.png" && -s "$screens/$_-390x844.png", "screenshots $_ at both sizes"
    for qw(incident incident-block-errors incident-confirm incident-target incident-all incident-denied incident-limits);

finish();
