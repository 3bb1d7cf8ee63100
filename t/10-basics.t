#!/usr/bin/perl
# The stack stands up: health and readiness, the error envelope for unknown
# paths and wrong methods, /status and /metrics from loopback, the console,
# HSTS and other security headers, TLS versions.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack();

my $RID = qr/^[0-9a-f]{32}$/;   # nginx's $request_id

# ---- /healthz and /readyz
{
	my $r = http(GET => '/healthz');
	is $r->{status}, 200, 'GET /healthz 200' or diag $r->{body};
	like $r->{headers}{'content-type'} // '', qr{^application/json}, '/healthz is JSON';
	is_deeply $r->{json}, { status => 'ok' }, '/healthz body is {"status":"ok"}';
	like $r->{headers}{'x-request-id'} // '', $RID, '/healthz has an X-Request-Id from nginx';
	is $r->{json}{requestId}, $r->{headers}{'x-request-id'}, '/healthz requestId equals the header'
	    if ref $r->{json} eq 'HASH' && exists $r->{json}{requestId};

	my $r2 = http(GET => '/healthz');
	isnt $r2->{headers}{'x-request-id'}, $r->{headers}{'x-request-id'}, 'each request gets its own id';

	my $h = http(HEAD => '/healthz');
	is $h->{status}, 200, 'HEAD /healthz 200 (HEAD matches GET routes)';
	is $h->{body}, '', 'HEAD has no body';

	my $q = http(GET => '/healthz?verbose=1&x=%zz');
	is $q->{status}, 200, 'a query string does not change /healthz';

	my $y = http(GET => '/readyz');
	is $y->{status}, 200, 'GET /readyz 200' or diag $y->{body};
	like $y->{headers}{'content-type'} // '', qr{^application/json}, '/readyz is JSON';
	is_deeply $y->{json}, { status => 'ready', db => 'ok', schema => 'current' },
	    '/readyz says ready, db ok, schema current' or diag $y->{body};
	like $y->{headers}{'x-request-id'} // '', $RID, '/readyz has an X-Request-Id';

	my $db = http(GET => '/__test/db');
	is $db->{status}, 200, 'GET /__test/db (a DB round trip) 200 in OPSD_ENV=test' or diag $db->{body};
}

# ---- 404 and 405
{
	my $r = http(GET => '/no/such/path');
	check_error($r, 404, 'not_found', 'GET /no/such/path');
	like $r->{headers}{'x-request-id'} // '', $RID, '404 carries X-Request-Id';
	ok request_id_logged($r->{headers}{'x-request-id'}), "the 404's request id is in log/opsd.log";

	my $root = http(GET => '/');
	check_error($root, 404, 'not_found', 'GET /');

	my $p = http(POST => '/healthz', json => {});
	check_error($p, 405, 'method_not_allowed', 'POST /healthz');
	like $p->{headers}{allow} // '', qr/\bGET\b/, '405 Allow lists GET';

	my $d = http(DELETE => '/readyz');
	check_error($d, 405, 'method_not_allowed', 'DELETE /readyz');
	like $d->{headers}{allow} // '', qr/\bGET\b/, '405 Allow lists GET for /readyz';

	my $t = http(GET => '/healthz/extra');
	check_error($t, 404, 'not_found', 'GET /healthz/extra (no prefix matching)');
}

# ---- /status (php-fpm-like) from loopback
my @workers = worker_pids();
ok scalar(@workers) >= 1, 'the master has worker children: ' . join(' ', @workers);
{
	my $s = http(GET => '/status');
	is $s->{status}, 200, 'GET /status 200 from loopback' or diag $s->{body};
	like $s->{headers}{'content-type'} // '', qr{^application/json}, '/status is JSON';
	my $j = ref $s->{json} eq 'HASH' ? $s->{json} : {};
	for my $k (qw(pool processManager acceptedConn listenQueue idleProcesses activeProcesses
	    totalProcesses maxChildrenReached slowRequests)) {
		ok exists $j->{$k}, "/status has $k";
	}
	is $j->{processManager}, 'static', 'processManager is static by default';
	is $j->{totalProcesses}, scalar(@workers), 'totalProcesses equals the worker processes under the master';
	ok $j->{activeProcesses} >= 1, 'activeProcesses counts at least the worker answering';
	is $j->{idleProcesses} + $j->{activeProcesses}, $j->{totalProcesses}, 'idle + active = total'
	    or diag $s->{body};
	my $a1 = $j->{acceptedConn} // 0;
	http(GET => '/healthz') for 1 .. 5;
	my $j2 = http(GET => '/status')->{json} // {};
	cmp_ok $j2->{acceptedConn} // 0, '>=', $a1 + 6, 'acceptedConn grows with requests';

	my $f = http(GET => '/status?full');
	is $f->{status}, 200, 'GET /status?full 200';
	my $procs = ref $f->{json} eq 'HASH' ? $f->{json}{processes} : undef;
	is ref $procs, 'ARRAY', '/status?full has processes[]' or diag $f->{body};
	$procs = [] unless ref $procs eq 'ARRAY';
	for my $p (@$procs) {
		ok defined $p->{pid} && defined $p->{state} && defined $p->{requests},
		    "process entry has pid/state/requests (pid " . ($p->{pid} // '?') . ')';
	}
	my $jobs = jobs_pid() // 0;
	is_deeply [sort { $a <=> $b } grep { $_ != $jobs } map { $_->{pid} // 0 } @$procs], [worker_pids()],
	    '/status?full lists exactly the worker pids under the master' or diag $f->{body};
	my $served = 0;
	$served += $_->{requests} // 0 for @$procs;
	ok $served >= 8, "workers' request counters add up to the requests made ($served)";
	my $f2 = http(GET => '/status?full=1');
	is ref(($f2->{json} // {})->{processes}), 'ARRAY', '/status?full=1 also lists processes';
	my $plain = http(GET => '/status');
	ok !exists(($plain->{json} // {})->{processes}), 'plain /status has no processes[]';
}

# ---- /metrics in Prometheus text format
{
	http(GET => '/healthz') for 1 .. 3;
	http(GET => '/definitely-missing');
	my $m = http(GET => '/metrics');
	is $m->{status}, 200, 'GET /metrics 200 from loopback';
	like $m->{headers}{'content-type'} // '', qr{^text/plain;\s*version=0\.0\.4}, '/metrics content type';
	my (@bad, %samples, %type);
	for my $line (split /\n/, $m->{body}) {
		next if $line eq '';
		if ($line =~ /^#/) {
			if ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/) {
				$type{$1} = $2;
			} elsif ($line !~ /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /) {
				push @bad, $line;
			}
			next;
		}
		if ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? ([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|Inf|NaN))(?: -?\d+)?$/) {
			push @{ $samples{$1} }, { labels => $2 // '', value => $3 };
		} else {
			push @bad, $line;
		}
	}
	ok !@bad, 'every /metrics line is a comment or name{labels} value' or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
	for my $name (qw(opsd_http_requests_total opsd_http_request_duration_seconds_bucket opsd_workers)) {
		ok $samples{$name}, "/metrics has $name";
	}
	is $type{opsd_http_requests_total}, 'counter', 'opsd_http_requests_total is a counter';
	is $type{opsd_http_request_duration_seconds}, 'histogram', 'the latency is a histogram';
	is $type{opsd_workers}, 'gauge', 'opsd_workers is a gauge';
	ok((grep { $_->{labels} =~ /route="healthz"/ && $_->{labels} =~ /status="200"/ && $_->{value} >= 3 }
	    @{ $samples{opsd_http_requests_total} // [] }), 'requests are counted by route and status (healthz 200)');
	ok((grep { $_->{labels} =~ /status="404"/ } @{ $samples{opsd_http_requests_total} // [] }),
	    'the 404 is counted');
	ok((grep { $_->{labels} =~ /le="\+Inf"/ } @{ $samples{opsd_http_request_duration_seconds_bucket} // [] }),
	    'the histogram has a +Inf bucket');
	my $total = 0;
	$total += $_->{value} for @{ $samples{opsd_workers} // [] };
	is $total, scalar(worker_pids()), 'opsd_workers over all states equals the worker processes';

	# Every sample belongs to a family with a TYPE line.
	my @untyped = grep { my $n = $_; !$type{$n} && !($n =~ /^(.*)_(?:bucket|sum|count)$/ && $type{$1}) } sort keys %samples;
	ok !@untyped, 'every metric family has a # TYPE line' or diag "@untyped";

	SKIP: {
		my $promtool = (grep { -x "$_/promtool" } split /:/, $ENV{PATH})[0];
		skip 'promtool not installed', 1 unless $promtool;
		my $f = var_dir() . '/../metrics.txt';
		open my $fh, '>', $f or die $!;
		print {$fh} $m->{body};
		close $fh;
		my $r = run_cmd(cmd => ["$promtool/promtool", 'check', 'metrics'], stdin_file => $f, tag => 'promtool');
		# exit 3 is lint advice only; 1 is a parse error
		ok $r->{rc} == 0 || $r->{rc} == 3, 'promtool parses /metrics' or diag "$r->{out}$r->{err}";
		note "promtool lint: $r->{out}$r->{err}" if $r->{rc} == 3;
	}
}

# ---- the console, HSTS, security headers
{
	my $c = http(GET => '/console/');
	is $c->{status}, 200, 'GET /console/ 200';
	like $c->{headers}{'content-type'} // '', qr{^text/html}, '/console/ is HTML';
	like $c->{body}, qr/<html/i, '/console/ serves the console page';
	my $csp = $c->{headers}{'content-security-policy'} // '';
	like $csp, qr/default-src/, '/console/ has a Content-Security-Policy';
	unlike $csp, qr/'unsafe-inline'/, "the console's CSP does not allow inline script";

	my $h = http(GET => '/healthz');
	like $h->{headers}{'strict-transport-security'} // '', qr/max-age=\d{6,}/, 'HSTS on API responses';
	like $c->{headers}{'strict-transport-security'} // '', qr/max-age=\d{6,}/, 'HSTS on the console';
	is lc($h->{headers}{'x-content-type-options'} // ''), 'nosniff', 'X-Content-Type-Options: nosniff';
	unlike $h->{headers}{server} // '', qr/\d/, 'the Server header does not advertise a version';
}

# ---- TLS versions
SKIP: {
	my $openssl = (grep { -x "$_/openssl" } split /:/, $ENV{PATH})[0];
	skip 'openssl not installed', 3 unless $openssl;
	my $port = https_port();
	my $probe = sub ($ver) {
		# SECLEVEL=0 lets the client offer old versions: the refusal must come from nginx
		return run_cmd(cmd => ["$openssl/openssl", 's_client', '-connect', "127.0.0.1:$port",
		    "-$ver", '-cipher', 'DEFAULT@SECLEVEL=0', '-brief'], tag => "tls-$ver", timeout => 20);
	};
	my $t12 = $probe->('tls1_2');
	ok $t12->{rc} == 0 && "$t12->{out}$t12->{err}" =~ /TLSv1\.2/, 'TLS 1.2 is accepted'
	    or diag "$t12->{out}$t12->{err}";
	my $t13 = $probe->('tls1_3');
	ok $t13->{rc} == 0 && "$t13->{out}$t13->{err}" =~ /TLSv1\.3/, 'TLS 1.3 is accepted'
	    or diag "$t13->{out}$t13->{err}";
	my $t11 = $probe->('tls1_1');
	ok $t11->{rc} != 0 && "$t11->{out}$t11->{err}" !~ /Protocol version: TLSv1\.1/, 'TLS 1.1 is refused'
	    or diag "$t11->{out}$t11->{err}";
}

finish();
