#!/usr/bin/perl
# The rate limits in force, shown and changed at run time (README "Runbook 4"
# step 2):
#   - GET /security/rate-limits: both layers' limits with their value and
#     source (default, environment, env file, set at run time by whom, when and
#     why), the same as `opsctl ratelimit show --json`; nginx's include
#     rendered from the values in force has the template's directives and
#     passes nginx -t;
#   - PUT refuses every field out of its range, wrong types, malformed rates,
#     an unknown field, no limit, no or a blank reason, a body that is not
#     JSON, a missing CSRF token and every role without security.rate_limits,
#     writing nothing;
#   - tightening the API limit for users to 1 r/s (60/min, burst 1) through
#     the API: 429s from opsd within a second on every worker (four clients
#     at once, so each of the three workers serves), audited with the old and
#     new values and the reason, in /metrics; the same values again change
#     nothing; relaxing it (null) lets them through again at once;
#   - from the host: opsctl ratelimit set (another process: the workers see
#     it through the database within a second), its exit codes (2 for bad
#     values, no limit, no reason, an unknown option; 3 without the
#     permission); the values survive a restart and a SIGHUP, which changes
#     only what comes from the env file;
#   - nginx's values are stored, applied by the nginx process within
#     seconds (nginxApplied true, the include on disk is what opsctl
#     renders, a burst gets nginx's 429), and again after they are cleared.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 3 });
my $T = JSON::PP::true;
my $F = JSON::PP::false;
my @NAMES = qw(userPerMin tokenPerMin ipPerMin burst nginxApiRate nginxApiBurst nginxLoginRate
    nginxLoginBurst nginxConnLimit);

my $org = create_org();
my %U = map { $_->[0] => create_user(role => $_->[1], ($_->[1] eq 'member' ? (org => $org) : ())) }
    [sec => 'security_admin'], [officer => 'compliance_officer'], [pa => 'platform_admin'], [member => 'member'],
    [other => 'member'];
my %S = map { $_ => login_ok($U{$_}, $_) } keys %U;
my $admin = admin_session();
# The security admin acts with an API token: tokens have a bucket of their own
# (tokenPerMin), which the tightening of userPerMin below leaves alone.
my $tr = http(POST => '/auth/tokens', session => $S{sec}, json => { name => 'limits', scopes => [qw(security.read security.rate_limits)] });
status_is $tr, 201, 'the security admin\'s API token for the limits';
my $TOK = sensitive('the security admin\'s API token', j($tr)->{token});

sub limits() {
	my $r = http(GET => '/security/rate-limits', bearer => $TOK);
	status_is $r, 200, 'GET /security/rate-limits' if $r->{status} != 200;
	return { map { $_->{name} => $_ } @{ j($r)->{limits} // [] } }, j($r);
}
sub put(%body) { return http(PUT => '/security/rate-limits', bearer => $TOK, json => \%body) }
sub state_row() { return (db_rows('SELECT generation, nginx_generation AS ng, nginx_applied_generation AS na FROM rate_limits_state'))[0] // {} }
sub directives($text) { return join "\n", grep { /\S/ && !/^\s*#/ } split /\n/, $text // '' }
# opsctl reads the env file; nginx's variables reach opsd (and script/render-nginx)
# from script/server's environment, so opsctl gets them the same way here.
my %NGINX_ENV = map { $_ => stack()->{env}{$_} } grep { /^OPSD_NGINX_/ } keys %{ stack()->{env} };
sub ctl(@args) { return opsctl({ env => { %NGINX_ENV, %{ ref $args[0] eq 'HASH' ? (shift @args)->{env} : {} } } }, @args) }

# ---------------------------------------------------------------- GET: shape and sources
my ($L, $doc) = limits();
is_deeply [map { $_->{name} } @{ $doc->{limits} // [] }], \@NAMES, 'GET lists every limit of both layers, in order';
is_deeply [map { $_->{layer} } @{ $doc->{limits} // [] }], [('opsd') x 4, ('nginx') x 5], '  opsd\'s buckets, then nginx\'s zones';
is_deeply [map { $L->{$_}{variable} } @NAMES], [qw(OPSD_RATELIMIT_USER_PER_MIN OPSD_RATELIMIT_TOKEN_PER_MIN
    OPSD_RATELIMIT_IP_PER_MIN OPSD_RATELIMIT_BURST OPSD_NGINX_API_RATE OPSD_NGINX_API_BURST OPSD_NGINX_LOGIN_RATE
    OPSD_NGINX_LOGIN_BURST OPSD_NGINX_CONN_LIMIT)], '  each with its variable';
ok !(grep { !length($_->{description} // '') } values %$L), '  and a description';
# script/server writes opsd's buckets to opsd.env (0 outside production); the
# harness gives nginx's to script/server's environment, which opsd inherits.
is_deeply [@{ $L->{userPerMin} }{qw(value source envValue envSource setBy setByLabel setAt reason)}],
    [0, 'env_file', 0, 'env_file', undef, undef, undef, undef], 'userPerMin: 0 from the env file';
is_deeply [@{ $L->{burst} }{qw(value source)}], [100, 'default'], 'burst: 100 by default';
is $L->{nginxApiRate}{value}, '10000r/s', 'nginxApiRate: the harness\'s 10000r/s';
like $L->{nginxApiRate}{source}, qr/^(environment|env_file)$/, '  from script/server\'s environment';
is $L->{nginxConnLimit}{value}, 1000, 'nginxConnLimit: 1000, an integer';
is_deeply [@$doc{qw(generation nginxGeneration nginxAppliedGeneration nginxApplied)}], [0, 0, 0, $T],
    'generation 0, and nginx runs nginx\'s values (none set at run time)';
status_is http(GET => '/security/rate-limits', session => $admin), 200, 'the superadmin reads them too';
check_error(http(GET => '/security/rate-limits', session => $S{officer}), 403, 'forbidden', 'a compliance_officer may not read them');
check_error(http(GET => '/security/rate-limits'), 401, 'unauthenticated', 'nobody may not');

my ($rc, $out, $err) = ctl('ratelimit', 'show', '--json');
is $rc, 0, 'opsctl ratelimit show --json exits 0';
is_deeply json_decode($out), $doc, '  and prints what GET answers';
($rc, $out) = ctl('ratelimit', 'show');
is $rc, 0, 'opsctl ratelimit show exits 0';
like $out, qr/^  userPerMin\s+0\s+env_file \(OPSD_RATELIMIT_USER_PER_MIN\)$/m, '  a line per limit with its source';
like $out, qr/^nginx, per client address \(applied\):$/m, '  and says nginx runs nginx\'s values';
($rc, $out) = ctl('ratelimit', 'show', '--nginx-conf');
is $rc, 0, 'opsctl ratelimit show --nginx-conf exits 0';
my $rendered = slurp(var_dir() . '/nginx/opsd-limits.conf');
is directives($out), directives($rendered), '  its directives are those script/render-nginx rendered from the template';
($rc, undef, $err) = ctl({ env => { OPSD_CLI_ROLES => 'root:compliance' } }, 'ratelimit', 'show');
is $rc, 3, 'opsctl ratelimit show without security.read exits 3';
like $err, qr/lacks security\.read/, '  and says which permission';

# ---------------------------------------------------------------- PUT: bad input writes nothing
my %range = (userPerMin => [0, 10000000], tokenPerMin => [0, 10000000], ipPerMin => [0, 10000000],
    burst => [1, 1000000], nginxApiBurst => [1, 1000000], nginxLoginBurst => [1, 1000000], nginxConnLimit => [1, 65535]);
for my $f (sort keys %range) {
	my ($lo, $hi) = @{ $range{$f} };
	for my $v ($lo - 1, $hi + 1) {
		my $r = put($f => $v, reason => 'out of range');
		is $r->{status}, 400, "PUT $f $v: 400" or diag $r->{body};
		fields_named($r, $f);
	}
}
for my $bad (['userPerMin', '60'], ['userPerMin', 1.5], ['burst', $T], ['nginxApiRate', 10], ['nginxApiRate', '10r/h'],
    ['nginxApiRate', '0r/s'], ['nginxLoginRate', 'fast'], ['nginxLoginRate', '1000001r/m'], ['nginxApiRate', '010r/s']) {
	my $r = put($bad->[0] => $bad->[1], reason => 'bad');
	check_error($r, 400, 'validation_failed', "PUT $bad->[0] " . json_encode([$bad->[1]]));
	fields_named($r, $bad->[0]);
}
{
	my $r = put(userPerMin => -1, nginxApiRate => 'x', nginxConnLimit => 0, reason => 'three at once');
	is $r->{status}, 400, 'three bad fields: 400';
	fields_named($r, qw(userPerMin nginxApiRate nginxConnLimit));
	like j($r)->{error}{details}{fields}{nginxApiRate} // '', qr{<n>r/s or <n>r/m}, '  the rate\'s reason says the syntax';
	$r = put(userPerMinute => 5, reason => 'typo');
	check_error($r, 400, 'validation_failed', 'an unknown field');
	fields_named($r, 'userPerMinute');
	check_error(put(reason => 'nothing'), 400, 'validation_failed', 'no limit at all');
	$r = put(userPerMin => 60);
	check_error($r, 400, 'validation_failed', 'no reason');
	fields_named($r, 'reason');
	$r = put(userPerMin => 60, reason => '   ');
	check_error($r, 400, 'validation_failed', 'a blank reason');
	fields_named($r, 'reason');
	check_error(http(PUT => '/security/rate-limits', session => $S{sec}, body => 'userPerMin=60',
	    headers => { 'Content-Type' => 'application/json' }), 400, 'invalid_json', 'a body that is not JSON');
	check_error(http(PUT => '/security/rate-limits', session => $S{sec}, body => '{"userPerMin":60,"reason":"x"}',
	    headers => { 'Content-Type' => 'text/plain' }), 415, undef, 'a body that is not application/json');
	check_error(http(PUT => '/security/rate-limits', session => $S{sec}, csrf => '', json => { userPerMin => 60, reason => 'x' }),
	    403, 'csrf_failed', 'no X-CSRF-Token');
	for my $who (qw(officer pa member)) {
		$r = http(PUT => '/security/rate-limits', session => $S{$who}, json => { userPerMin => 60, reason => 'not mine' });
		check_error($r, 403, 'forbidden', "$U{$who}{roles}[0] may not change them");
		is j($r)->{error}{details}{permission}, 'security.rate_limits', '  details.permission security.rate_limits';
	}
	my $t = http(POST => '/auth/tokens', session => $S{sec}, json => { name => 'read only', scopes => ['security.read'] });
	status_is $t, 201, 'a security_admin\'s token scoped to security.read';
	status_is http(GET => '/security/rate-limits', bearer => j($t)->{token}), 200, '  reads them';
	check_error(http(PUT => '/security/rate-limits', bearer => j($t)->{token}, json => { userPerMin => 60, reason => 'x' }),
	    403, 'forbidden', '  but may not change them');
}
is db_count('SELECT COUNT(*) FROM rate_limits'), 0, 'no bad request wrote a limit';
is state_row()->{generation}, 0, '  nor moved the generation';
is audit_count('security.rate_limits_changed'), 0, '  nor wrote an event';

# ---------------------------------------------------------------- tighten through the API: every worker within a second
my $uid = $U{member}{id};
my @workers = worker_pids();
is scalar(@workers), 3, 'three workers';

# $clients processes send GET /auth/me as $s for $secs seconds; each answer
# as [status, time, request id, layer].
sub hammer($s, $secs, $clients = 4) {
	my $dir = stack()->{tmp};
	my @kids;
	for my $c (1 .. $clients) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, keep_alive => 1, timeout => 10);
			open my $fh, '>', "$dir/hammer-$c.txt" or POSIX::_exit(2);
			my $end = time + $secs;
			while (time < $end) {
				my $r = http(GET => '/auth/me', session => $s, agent => $ua);
				my $layer = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH' ? $r->{json}{error}{details}{layer} // '-' : '-';
				printf {$fh} "%d %.3f %s %s\n", $r->{status}, time, $r->{headers}{'x-request-id'} // '-', $layer;
			}
			close $fh;
			POSIX::_exit(0);
		}
		push @kids, $pid;
	}
	waitpid $_, 0 for @kids;
	my @r;
	for my $c (1 .. $clients) {
		open my $fh, '<', "$dir/hammer-$c.txt" or next;
		push @r, map { [split / /] } grep { /\S/ } <$fh>;
		close $fh;
	}
	chomp $_->[3] for @r;
	return @r;
}

# The workers that logged a 429 for the member at or after $since, each with
# the time of its first.
sub refused_by_worker($since) {
	my %first;
	for my $l (log_records('opsd.log')) {
		next unless ($l->{event} // '') eq 'rate_limited' && ($l->{sourceId} // '') eq $uid;
		my $t = rfc3339_epoch($l->{time}) // next;
		next if $t < $since - 0.002;
		$first{ $l->{pid} } = $t if !defined $first{ $l->{pid} } || $t < $first{ $l->{pid} };
	}
	return \%first;
}

my @before = hammer($S{member}, 0.6);
ok @before >= 8 && !(grep { $_->[0] != 200 } @before), 'before: the member\'s burst of ' . scalar(@before) . ' all pass (no limit)';

my $r = put(userPerMin => 60, burst => 1, reason => 'INC-77 tighten');
my $t_put = time;
status_is $r, 200, 'PUT userPerMin 60, burst 1';
is j($r)->{changed}, 2, '  changed 2';
my %got = map { $_->{name} => $_ } @{ j($r)->{limits} // [] };
is_deeply [@{ $got{userPerMin} }{qw(value source envValue envSource setBy setByLabel reason)}],
    [60, 'runtime', 0, 'env_file', $U{sec}{id}, 'security_admin', 'INC-77 tighten'],
    '  the answer: userPerMin 60 set at run time by the security admin, with why and what it overrides';
near_now($got{userPerMin}{setAt}, '  setAt');
is_deeply [@{ $got{burst} }{qw(value source envValue envSource)}], [1, 'runtime', 100, 'default'], '  burst 1, over the default 100';
is_deeply [@{ j($r) }{qw(generation nginxGeneration nginxApplied)}], [1, 0, $T], '  generation 1; nginx\'s untouched';

my @after = hammer($S{member}, 1.5);
my @lim = grep { $_->[0] == 429 } @after;
my @ok = grep { $_->[0] == 200 } @after;
ok @lim >= 10, 'the member\'s burst right after: ' . scalar(@lim) . ' of ' . scalar(@after) . ' get 429';
ok @ok <= 4, '  at most burst 1 + 1 a second pass (' . scalar(@ok) . ')';
ok !(grep { $_->[0] != 200 && $_->[0] != 429 } @after), '  and nothing else';
ok !(grep { $_->[3] ne 'opsd' } @lim), '  every 429 from opsd (details.layer)';
my $first = refused_by_worker($t_put - 0.5);
is_deeply [sort keys %$first], [sort @workers], 'every worker refused the member' or diag explain $first;
ok !(grep { $_ - $t_put > 1.0 } values %$first), '  each within a second of the PUT'
    or diag explain { map { $_ => $first->{$_} - $t_put } keys %$first };
status_is http(GET => '/auth/me', session => $S{other}), 200, 'another member has a bucket of its own';

my @ev = audit_rows('security.rate_limits_changed');
is scalar(@ev), 1, 'one security.rate_limits_changed';
is $ev[0]{actor_hex}, uuid_hex($U{sec}{id}), '  by the security admin';
is $ev[0]{target_type}, 'rate_limits', '  target rate_limits';
is_deeply audit_payload($ev[0] // {}), { reason => 'INC-77 tighten', changes => {
	userPerMin => { old => 0, new => 60, oldSource => 'env_file', newSource => 'runtime' },
	burst => { old => 100, new => 1, oldSource => 'default', newSource => 'runtime' } } },
    '  with the old and new values, their sources and the reason';
like http(GET => '/metrics')->{body}, qr/^opsd_audit_events_total\{action="security\.rate_limits_changed"\} 1$/m,
    '/metrics counts it';
$r = put(userPerMin => 60, burst => 1, reason => 'again');
is_deeply [$r->{status}, j($r)->{changed}, j($r)->{generation}], [200, 0, 1], 'the same values again: 200, changed 0, generation 1';
is audit_count('security.rate_limits_changed'), 1, '  and no event';

$r = put(userPerMin => undef, burst => undef, reason => 'INC-77 over');
status_is $r, 200, 'PUT null clears both';
%got = map { $_->{name} => $_ } @{ j($r)->{limits} // [] };
is_deeply [map { @{ $got{$_} }{qw(value source setBy reason)} } qw(userPerMin burst)],
    [0, 'env_file', undef, undef, 100, 'default', undef, undef], '  back to the env file\'s and the default';
@after = hammer($S{member}, 0.6);
ok @after >= 8 && !(grep { $_->[0] != 200 } @after), 'right after, the member\'s burst of ' . scalar(@after) . ' all pass again';
is_deeply audit_payload((audit_rows('security.rate_limits_changed'))[-1] // {})->{changes}{userPerMin},
    { old => 60, new => 0, oldSource => 'runtime', newSource => 'env_file' }, 'the clear is audited: 60 → 0 from the env file';

# ---------------------------------------------------------------- from the host
my @bad = (
	[['--user-per-min', '-5', '--reason', 'x'], qr/--user-per-min "-5": must be an integer between 0 and 10000000/],
	[['--nginx-api-rate', '10r/h', '--reason', 'x'], qr{<n>r/s or <n>r/m}],
	[['--reason', 'x'], qr/at least one limit/],
	[['--burst', '5'], qr/--reason is required/],
	[['--burst', '5', '--reason', ' '], qr/--reason must be/],
	[['--burst', '5', '--reason', 'x', '--bogus'], qr/unexpected argument "--bogus"/],
	[['--burst'], qr/--burst needs a value/],
);
for my $b (@bad) {
	($rc, $out, $err) = ctl('ratelimit', 'set', @{ $b->[0] });
	is $rc, 2, "opsctl ratelimit set @{ $b->[0] }: exit 2";
	like $err, $b->[1], '  says why';
}
($rc, undef, $err) = ctl({ env => { OPSD_CLI_ROLES => 'root:compliance' } }, 'ratelimit', 'set', '--burst', '5', '--reason', 'x');
is $rc, 3, 'without security.rate_limits: exit 3';
is audit_count('security.rate_limits_changed'), 2, '  none of them wrote an event';

($rc, $out, $err) = ctl('ratelimit', 'set', '--user-per-min', '60', '--burst', '1', '--reason', 'INC-77 from the host');
my $t_cli = time;
is $rc, 0, 'opsctl ratelimit set --user-per-min 60 --burst 1: exit 0' or diag $err;
like $out, qr/^changed 2 limits$/m, '  says changed 2 limits';
like $out, qr/^  userPerMin\s+60\s+set at run time by cli:root at \S+Z: INC-77 from the host \(env_file: 0\)$/m,
    '  and shows userPerMin set at run time by cli:root';
@after = hammer($S{member}, 2.0);
ok scalar(grep { $_->[0] == 429 } @after) >= 10, 'the member gets 429s again (' . scalar(grep { $_->[0] == 429 } @after) . ')';
$first = refused_by_worker($t_cli - 1.0);
is_deeply [sort keys %$first], [sort @workers], 'every worker refused the member' or diag explain $first;
ok !(grep { $_ - $t_cli > 1.5 } values %$first), '  each within a second or so of opsctl (through the database)'
    or diag explain { map { $_ => $first->{$_} - $t_cli } keys %$first };
is((audit_rows('security.rate_limits_changed'))[-1]{actor_label}, 'cli:root', 'audited as cli:root');

# ---------------------------------------------------------------- nginx's values
# (nginx's API rate stays above what this test sends one request at a time)
$r = put(nginxApiRate => '50r/s', nginxApiBurst => 5, nginxConnLimit => 50, nginxLoginBurst => 1, reason => 'INC-77 nginx too');
status_is $r, 200, 'PUT nginxApiRate 50r/s, nginxApiBurst 5, nginxConnLimit 50, nginxLoginBurst 1';
is_deeply [@{ j($r) }{qw(changed nginxGeneration)}], [4, 1], '  stored: nginx generation 1';
($L) = limits();
is_deeply [map { @{ $L->{$_} }{qw(value source)} } qw(nginxApiRate nginxApiBurst nginxConnLimit nginxLoginBurst)],
    ['50r/s', 'runtime', 5, 'runtime', 50, 'runtime', 1, 'runtime'], '  GET shows them set at run time';
($rc, $out) = ctl('ratelimit', 'show', '--nginx-conf');
is $rc, 0, 'opsctl ratelimit show --nginx-conf exits 0';
like $out, qr/^# GENERATED by opsd .*nginx generation 1 of$/m, '  the include names its generation';
like $out, qr/^limit_req_zone \$binary_remote_addr zone=opsd_api:10m rate=50r\/s;$/m, '  the API rate 50r/s';
like $out, qr/^limit_conn opsd_conn 50;$/m, '  50 connections';
like $out, qr/^limit_req zone=opsd_login burst=1 nodelay;$/m, '  login burst 1';
{
	# nginx -t on a copy of the rendered configuration with this include
	my $stage = stack()->{tmp} . '/nginx-stage';
	mkdir $stage;
	for my $f (qw(nginx.conf opsd.conf opsd-fastcgi.conf opsd-blocklist.conf)) {
		my $c = slurp(var_dir() . "/nginx/$f");
		open my $fh, '>', "$stage/$f" or die "$stage/$f: $!";
		print {$fh} $c // '';
		close $fh;
	}
	open my $fh, '>', "$stage/opsd-limits.conf" or die;
	print {$fh} $out;
	close $fh;
	my $t = run_cmd(cmd => ['nginx', '-t', '-q', '-c', "$stage/nginx.conf", '-p', var_dir() . '/nginx/'], timeout => 30, tag => 'nginx-t');
	is $t->{rc}, 0, '  nginx -t accepts it' or diag "$t->{out}$t->{err}";
}
# the nginx process (README "Runbook 4") writes the include, runs nginx -t and
# reloads nginx within a second or so, then records the generation
my $d2;
ok wait_until(10, sub { (undef, $d2) = limits(); $d2->{nginxApplied} }), 'nginx applies them by itself: nginxApplied true'
    or diag explain $d2;
is $d2->{nginxAppliedGeneration}, 1, '  generation 1';
ok rfc3339_epoch($d2->{nginxAppliedAt}), '  with nginxAppliedAt';
is slurp(var_dir() . '/nginx/opsd-limits.conf'), $out, '  nginx\'s include is what opsctl ratelimit show --nginx-conf renders';
($rc, $out) = ctl('ratelimit', 'show');
unlike $out, qr/NOT applied/, '  and opsctl ratelimit show no longer says NOT applied';
my @ng = hammer($S{member}, 1.0);
ok scalar(grep { $_->[0] == 429 && $_->[3] eq 'nginx' } @ng) >= 1,
    '  a burst from one address now gets 429s from nginx (' . scalar(grep { $_->[0] == 429 && $_->[3] eq 'nginx' } @ng) . ')';
sleep 1;   # nginx's bucket refills before the test's own requests go on

# ---------------------------------------------------------------- a SIGHUP and a restart keep what was set at run time
{
	my $envf = var_dir() . '/opsd.env';
	my $text = slurp($envf);
	$text =~ s/^OPSD_RATELIMIT_IP_PER_MIN=.*$/OPSD_RATELIMIT_IP_PER_MIN='777'/m or $text .= "OPSD_RATELIMIT_IP_PER_MIN='777'\n";
	$text =~ s/^OPSD_RATELIMIT_USER_PER_MIN=.*$/OPSD_RATELIMIT_USER_PER_MIN='900'/m;
	open my $fh, '>', $envf or die;
	print {$fh} $text;
	close $fh;
	my @old = worker_pids();
	kill 'HUP', master_pid();
	ok wait_until(15, sub { my @w = worker_pids(); @w == 3 && !(grep { my $o = $_; grep { $_ == $o } @w } @old) }),
	    'SIGHUP: the workers are replaced';
	($L) = limits();
	is_deeply [@{ $L->{ipPerMin} }{qw(value source)}], [777, 'env_file'], 'ipPerMin 777 from the edited env file';
	is_deeply [@{ $L->{userPerMin} }{qw(value source envValue envSource)}], [60, 'runtime', 900, 'env_file'],
	    'userPerMin stays 60 set at run time, over the env file\'s new 900';
}
restart_stack();
($L) = limits();
is_deeply [map { @{ $L->{$_} }{qw(value source setByLabel)} } qw(userPerMin burst nginxApiRate)],
    [60, 'runtime', 'cli:root', 1, 'runtime', 'cli:root', '50r/s', 'runtime', 'security_admin'],
    'after a restart the values set at run time are still in force';
@after = hammer($S{member}, 1.0);
ok scalar(grep { $_->[0] == 429 } @after) >= 5, '  the member\'s burst gets 429s (' . scalar(grep { $_->[0] == 429 } @after) . ')';
($rc, $out, $err) = ctl('ratelimit', 'set', '--user-per-min', 'env', '--burst', 'env', '--nginx-api-rate', 'env',
    '--nginx-api-burst', 'env', '--nginx-conn-limit', 'env', '--nginx-login-burst', 'env', '--reason', 'INC-77 closed', '--json');
is $rc, 0, 'opsctl ratelimit set ... env clears them' or diag $err;
my $cleared = json_decode($out) // {};
is $cleared->{changed}, 6, '  changed 6';
ok !(grep { $_->{source} eq 'runtime' } @{ $cleared->{limits} // [] }), '  nothing is set at run time any more';
is $cleared->{nginxGeneration}, 2, '  nginx\'s values moved again: generation 2';
ok wait_until(10, sub { (limits())[1]{nginxAppliedGeneration} == 2 }), '  and nginx applies generation 2 by itself';
is db_count('SELECT COUNT(*) FROM rate_limits'), 0, 'rate_limits is empty';

finish();
