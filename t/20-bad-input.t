#!/usr/bin/perl
# Bad input : bodies over the limit, invalid JSON and UTF-8, deep or
# huge JSON, wrong types and fields, unknown methods, malformed HTTP, and
# malformed FastCGI records sent straight to opsd's socket. Each gets its
# JSON error (or, for broken FastCGI, a closed connection), is logged, and
# the pool goes on serving.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $master = master_pid();
my @workers0 = worker_pids();
is scalar(@workers0), 2, 'two workers (OPSD_WORKERS=2)';

sub echo_post($body, %o) {
	my %h = exists $o{ct} ? (defined $o{ct} ? ('Content-Type' => $o{ct}) : ()) : ('Content-Type' => 'application/json');
	return http(POST => '/__test/echo', body => $body, headers => \%h);
}

# ---- the echo route accepts what it should
{
	my $r = echo_post('{"message":"hello","count":3}');
	is $r->{status}, 200, 'valid body → 200' or diag $r->{body};
	is_deeply $r->{json}, { message => 'hello', count => 3 }, 'the validated body is echoed';
	$r = echo_post('{"message":"only"}');
	is $r->{status}, 200, 'count is optional';
	$r = echo_post(json_encode({ message => 'x' x 200, count => 100 }));
	is $r->{status}, 200, 'boundaries accepted: 200-char message, count 100';
	$r = echo_post('{"message":"m","count":0}');
	is $r->{status}, 200, 'count 0 accepted';
	$r = echo_post('{"message":"ünïcödé ✓"}', ct => 'application/json; charset=utf-8');
	is $r->{status}, 200, 'UTF-8 text with "application/json; charset=utf-8"' or diag $r->{body};
	is(($r->{json} // {})->{message}, "\x{fc}n\x{ef}c\x{f6}d\x{e9} \x{2713}", 'UTF-8 echoed intact');
	$r = echo_post("  \n{\"message\":\"ws\"}\n  ");
	is $r->{status}, 200, 'whitespace around the object is fine';
}

# ---- invalid JSON and UTF-8
{
	my $rid;
	for my $case (
		['{"message":', 'truncated JSON'],
		['{message:"a"}', 'unquoted key'],
		["{'message':'a'}", 'single quotes'],
		['{"message":"a",}', 'trailing comma'],
		['{"message":"a"} x', 'trailing garbage'],
		['{"message":"a"}{"message":"b"}', 'two objects'],
		['{"message":"a\x00"}', 'raw NUL byte'],
		['{"message":"' . "\x01" . '"}', 'raw control character in a string'],
	) {
		my $r = echo_post($case->[0]);
		check_error($r, 400, 'invalid_json', "invalid JSON: $case->[1]");
		$rid //= $r->{headers}{'x-request-id'};
	}
	ok request_id_logged($rid), 'the invalid_json request is logged with its request id';

	for my $case (
		["{\"message\":\"\xff\xfe\"}", 'bytes 0xff 0xfe'],
		["{\"message\":\"\xc0\xaf\"}", 'overlong encoding'],
		["{\"message\":\"\xed\xa0\x80\"}", 'UTF-16 surrogate'],
		["{\"message\":\"\xf4\x90\x80\x80\"}", 'code point above U+10FFFF'],
		["{\"message\":\"abc\xe2\x82\"}", 'truncated sequence'],
	) {
		my $r = echo_post($case->[0]);
		check_error($r, 400, 'invalid_json', "invalid UTF-8: $case->[1]");
		like(($r->{json} // {})->{error}{message} // '', qr/UTF-?8/i, "invalid UTF-8 ($case->[1]): the message says UTF-8");
	}
}

# ---- depth, size, shape
{
	my $nest = sub ($depth) { '{"message":"x","d":' . ('[' x ($depth - 1)) . (']' x ($depth - 1)) . '}' };
	my $r = echo_post($nest->(32));
	# depth 32 passes the parser, then "d" is an unknown field
	check_error($r, 400, 'validation_failed', 'depth 32 is parsed (then d is unknown)');
	ok has_details_fields($r, 'd'), 'depth 32: details.fields names d';
	$r = echo_post($nest->(33));
	check_error($r, 400, 'invalid_json', 'depth 33 is refused');
	$r = echo_post($nest->(5000));
	check_error($r, 400, 'invalid_json', 'depth 5000 is refused (no stack blow-up)');

	my $mib = 1024 * 1024;
	my $wrap = sub ($n) { '{"message":"' . ('a' x ($n - 14)) . '"}' };
	is length($wrap->($mib)), $mib, 'the 1 MiB body is exactly 1 MiB';
	$r = echo_post($wrap->($mib));
	check_error($r, 400, 'validation_failed', 'a body of exactly 1 MiB passes the size limit (message too long)');
	ok has_details_fields($r, 'message'), '1 MiB body: details.fields names message';
	$r = echo_post($wrap->($mib + 1));
	check_error($r, 413, 'payload_too_large', 'a body of 1 MiB + 1 → 413');
	$r = echo_post($wrap->(5 * $mib));
	check_error($r, 413, 'payload_too_large', 'a body of 5 MiB → 413');

	# the same over the limit without Content-Length (chunked)
	my $body = $wrap->($mib + 1);
	my $chunked = join '', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a65536)*', $body);
	$r = raw_request("POST /__test/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
	    . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}0\r\n\r\n", timeout => 15);
	check_error($r, 413, 'payload_too_large', 'a chunked body of 1 MiB + 1 → 413');

	# a large but valid document: many small members
	my $big = '{"message":"big","d":[' . join(',', (1) x 200_000) . ']}';
	$r = echo_post($big);
	check_error($r, 400, 'validation_failed', 'a 400 KB array parses (d unknown)');

	for my $case (['[1,2]', 'array'], ['"text"', 'string'], ['42', 'number'], ['null', 'null'], ['true', 'boolean']) {
		$r = echo_post($case->[0]);
		check_error($r, 400, ['invalid_json', 'validation_failed'], "top-level $case->[1] → 400");
	}
	for my $case (['', 'empty'], ["  \n ", 'only whitespace']) {
		$r = echo_post($case->[0]);
		check_error($r, 400, ['invalid_json', 'validation_failed'], "$case->[1] body → 400");
	}
	for my $case (['1e400', 'huge exponent'], ['99999999999999999999999', 'beyond 64 bits'],
	    ['-99999999999999999999999', 'below -2^63'], ['1.5', 'fraction']) {
		$r = echo_post(qq({"message":"n","count":$case->[0]}));
		check_error($r, 400, ['validation_failed', 'invalid_json'], "count $case->[1] → 400");
	}
}

# ---- content type
{
	for my $case (['text/plain', 'text/plain'], ['application/x-www-form-urlencoded', 'a form'],
	    ['multipart/form-data; boundary=x', 'multipart'], [undef, 'no Content-Type']) {
		my $r = echo_post('{"message":"a"}', ct => $case->[0]);
		check_error($r, 415, 'unsupported_media_type', "Content-Type $case->[1] → 415");
	}
}

# ---- validation: the fields are named
{
	for my $case (
		['{"message":"a","bogus":1}', ['bogus'], 'unknown field'],
		['{"count":1}', ['message'], 'missing required field'],
		['{"message":5}', ['message'], 'message of the wrong type'],
		['{"message":"a","count":"3"}', ['count'], 'count as a string'],
		['{"message":"a","count":true}', ['count'], 'count as a boolean'],
		['{"message":["a"]}', ['message'], 'message as an array'],
		['{"message":"a","count":101}', ['count'], 'count above the range'],
		['{"message":"a","count":-1}', ['count'], 'count below the range'],
		['{"message":""}', ['message'], 'empty message (min 1)'],
		[json_encode({ message => 'x' x 201 }), ['message'], 'message of 201 characters'],
		['{"count":500,"extra":1,"other":{}}', [qw(message count extra other)], 'four problems at once'],
	) {
		my ($body, $fields, $name) = @$case;
		my $r = echo_post($body);
		check_error($r, 400, 'validation_failed', $name);
		ok has_details_fields($r, @$fields), "$name: details.fields names @$fields"
		    or diag $r->{body};
	}
}

# ---- paths and methods
{
	my $r = http(GET => '/__test/echo/%zz');
	check_error($r, [400, 404], undef, 'malformed escape under a route');
	$r = http(GET => '/%zz');
	check_error($r, [400, 404], undef, 'malformed escape /%zz');
	$r = http(GET => '/healthz%00');
	check_error($r, [400, 404], undef, 'encoded NUL in the path');

	$r = http(PROPFIND => '/healthz');
	check_error($r, 405, 'method_not_allowed', 'PROPFIND /healthz');
	like $r->{headers}{allow} // '', qr/\bGET\b/, 'PROPFIND: Allow lists GET';
	$r = http(GET => '/__test/echo');
	check_error($r, 405, 'method_not_allowed', 'GET on a POST route');
	like $r->{headers}{allow} // '', qr/\bPOST\b/, 'Allow lists POST for /__test/echo';

	$r = http(GET => '/' . ('a' x 8192));
	check_error($r, [400, 404, 414], undef, 'an 8 KB URI');
	$r = http(GET => '/healthz?' . ('q=1&' x 1500));
	ok $r->{status} == 200 || check_error($r, [400, 414], undef, 'a 6 KB query string'),
	    "a 6 KB query string on /healthz answers ($r->{status})";
	$r = http(GET => '/healthz', headers => { 'X-Big' => 'a' x 20000 });
	check_error($r, [400, 431], undef, 'a 20 KB header');
}

# ---- malformed HTTP (nginx's side)
{
	my $r = raw_request("NONSENSE\r\n\r\n");
	is $r->{status}, 400, 'a garbage request line → 400' or diag $r->{raw} // $r->{error};
	$r = raw_request("GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\nConnection: close\r\n\r\n");
	is $r->{status}, 400, 'Content-Length: -1 → 400';
	$r = raw_request("POST /__test/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
	    . "Content-Length: 15\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"message\":\"a\"}");
	is $r->{status}, 400, 'two Content-Length headers → 400';
	$r = raw_request("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	is $r->{status}, 200, 'a hand-written request works (the raw client is sound)';
}

# ---- FastCGI straight to opsd's socket
my $sock = var_dir() . '/run/opsd.sock';
ok -S $sock, "opsd listens on $sock";
{
	my $std = sub (%over) {
		my %p = (REQUEST_METHOD => 'GET', REQUEST_URI => '/healthz', DOCUMENT_URI => '/healthz',
		    QUERY_STRING => '', REMOTE_ADDR => '127.0.0.1', SERVER_PROTOCOL => 'HTTP/1.1',
		    REQUEST_ID => '0123456789abcdef0123456789abcdef', %over);
		delete $p{$_} for grep { !defined $p{$_} } keys %p;
		return [map { ($_ => $p{$_}) } sort keys %p];
	};
	my $stdin_end = fcgi_record(5, 1, '');

	# the well-formed control: our FastCGI client is right
	my $ok = fcgi_exchange(fcgi_begin() . fcgi_params(1, $std->()) . $stdin_end);
	ok $ok->{end}, 'a well-formed FastCGI request gets END_REQUEST' or diag explain $ok;
	is $ok->{status}, 200, 'a well-formed FastCGI GET /healthz → Status 200';
	like $ok->{stdout}, qr/^X-Request-Id: 0123456789abcdef0123456789abcdef\r?$/mi, 'REQUEST_ID is echoed as X-Request-Id';

	my $body = '{"message":"fcgi"}';
	my $post = fcgi_exchange(fcgi_begin() . fcgi_params(1, $std->(REQUEST_METHOD => 'POST',
	    REQUEST_URI => '/__test/echo', DOCUMENT_URI => '/__test/echo', CONTENT_TYPE => 'application/json',
	    CONTENT_LENGTH => length $body)) . fcgi_record(5, 1, $body) . $stdin_end);
	is $post->{status}, 200, 'a well-formed FastCGI POST with a body → 200';

	my $begin = fcgi_begin();
	my @cases = (
		['name length past the record', $begin . fcgi_record(4, 1, fcgi_nv('REQUEST_METHOD', 'GET', name_len => 100)) . fcgi_record(4, 1, '') . $stdin_end],
		['4-byte name length near 2^31', $begin . fcgi_record(4, 1, fcgi_nv('A', 'B', name_len => 0x7fffffff, long_name => 1)) . fcgi_record(4, 1, '') . $stdin_end],
		['4-byte value length near 2^31', $begin . fcgi_record(4, 1, fcgi_nv('REQUEST_METHOD', 'GET', value_len => 0x7ffffff0, long_value => 1)) . fcgi_record(4, 1, '') . $stdin_end],
		['value length near 2^31 plus junk', $begin . fcgi_record(4, 1, fcgi_nv('X', '', value_len => 0x7fffffff, long_value => 1) . ("\xff" x 4)) . fcgi_record(4, 1, '') . $stdin_end],
		['params stream longer than declared', $begin . fcgi_record(4, 1, fcgi_nv('REQUEST_METHOD', 'GET') . fcgi_nv('REQUEST_URI', '/healthz') . ('Z' x 60), declared_length => 10) . fcgi_record(4, 1, '') . $stdin_end],
		['params record shorter than declared', $begin . fcgi_record(4, 1, fcgi_nv('REQUEST_METHOD', 'GET'), declared_length => 4000)],
		['no REQUEST_METHOD', $begin . fcgi_params(1, $std->(REQUEST_METHOD => undef)) . $stdin_end, 'any'],
		['no REQUEST_URI/DOCUMENT_URI', $begin . fcgi_params(1, $std->(REQUEST_URI => undef, DOCUMENT_URI => undef)) . $stdin_end, 'any'],
		['REQUEST_URI without a slash', $begin . fcgi_params(1, $std->(REQUEST_URI => 'healthz', DOCUMENT_URI => 'healthz')) . $stdin_end, 'any'],
		['a 100 KB REQUEST_URI', $begin . fcgi_params(1, $std->(REQUEST_URI => '/' . ('u' x 100_000), DOCUMENT_URI => '/u')) . $stdin_end, 'any'],
		['invalid UTF-8 and NUL in params', $begin . fcgi_params(1, $std->(REQUEST_URI => "/\xff\xfe\x00x", HTTP_X_ODD => "\x00\xff")) . $stdin_end, 'any'],
		['1000 params', $begin . fcgi_params(1, [@{ $std->() }, map { ("HTTP_X_$_" => 'v' x 50) } 1 .. 1000]) . $stdin_end, 'any'],
		['a garbage REQUEST_ID', $begin . fcgi_params(1, $std->(REQUEST_ID => "\"}{\x01injected")) . $stdin_end, 200],
		['CONTENT_LENGTH 99999999999', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => '99999999999')) . fcgi_record(5, 1, '{"message"') . $stdin_end, '4xx'],
		['CONTENT_LENGTH -1', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => '-1')) . fcgi_record(5, 1, '{}') . $stdin_end, '4xx'],
		['CONTENT_LENGTH abc', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => 'abc')) . $stdin_end, '4xx'],
		['CONTENT_LENGTH 2^64', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => '18446744073709551616')) . $stdin_end, '4xx'],
		['CONTENT_LENGTH larger than STDIN', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => '100')) . fcgi_record(5, 1, '{"message":"a"}') . $stdin_end, '4xx'],
		['STDIN larger than CONTENT_LENGTH', $begin . fcgi_params(1, $std->(REQUEST_METHOD => 'POST', REQUEST_URI => '/__test/echo', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => '3')) . fcgi_record(5, 1, '{"message":"a"}' x 100) . $stdin_end, '4xx'],
		['STDIN before PARAMS end', $begin . fcgi_record(5, 1, 'early') . fcgi_params(1, $std->()) . $stdin_end],
		['unknown record type 99', fcgi_record(99, 1, 'x') . $begin . fcgi_params(1, $std->()) . $stdin_end],
		['FastCGI version 2', fcgi_record(1, 1, pack('nCx5', 1, 0), version => 2) . fcgi_params(1, $std->()) . $stdin_end],
		['AUTHORIZER role', fcgi_begin(1, 2) . fcgi_params(1, $std->()) . $stdin_end],
		['FILTER role', fcgi_begin(1, 3) . fcgi_params(1, $std->()) . $stdin_end],
		['GET_VALUES management record', fcgi_record(9, 0, fcgi_nv('FCGI_MAX_CONNS', '') . fcgi_nv('FCGI_MPXS_CONNS', '')) . $begin . fcgi_params(1, $std->()) . $stdin_end],
		['ABORT_REQUEST in the middle', $begin . fcgi_record(4, 1, fcgi_nv('REQUEST_METHOD', 'GET')) . fcgi_record(2, 1, '')],
		['params for another request id', $begin . fcgi_params(7, $std->()) . fcgi_record(5, 7, '')],
		['BEGIN_REQUEST twice', $begin . $begin . fcgi_params(1, $std->()) . $stdin_end],
		['padding of 255 bytes', fcgi_record(1, 1, pack('nCx5', 1, 0), pad => 255) . fcgi_params(1, $std->()) . $stdin_end],
		['a truncated header', "\x01\x01\x00"],
		['nothing at all', ''],
		['random bytes', join('', map { chr(($_ * 7919 + 13) % 256) } 1 .. 4096)],
	);
	for my $c (@cases) {
		my ($name, $bytes, $want) = @$c;
		my $r = fcgi_exchange($bytes, timeout => 5);
		ok $r->{connected} && !$r->{timed_out} && ($r->{end} || $r->{closed}),
		    sprintf('FastCGI %s: answered or closed within 5 s (%.2fs, %s)', $name, $r->{elapsed} // 0,
		    $r->{status} ? "status $r->{status}" : $r->{end} ? "END_REQUEST protocol $r->{end}{protocol_status}" : 'closed')
		    or diag explain { map { $_ => $r->{$_} } grep { $_ ne 'stdout' } keys %$r };
		next unless defined $want;
		if ($want eq '4xx') {
			ok(($r->{status} // 0) >= 400 && ($r->{status} // 0) < 500, "FastCGI $name: a 4xx answer (" . ($r->{status} // 'none') . ')')
			    or diag $r->{stdout};
		} elsif ($want eq 'any') {
			ok $r->{status}, "FastCGI $name: an HTTP answer (" . ($r->{status} // 'none') . ')' or diag $r->{stdout};
		} else {
			is $r->{status}, $want, "FastCGI $name: status $want";
		}
		if ($r->{status} && $r->{status} >= 400) {
			my ($b) = $r->{stdout} =~ /\r?\n\r?\n(.*)\z/s;
			my $j = json_decode($b // '');
			ok ref $j eq 'HASH' && ref $j->{error} eq 'HASH' && $j->{error}{code}, "FastCGI $name: JSON error envelope"
			    or diag $r->{stdout};
		}
	}
	my ($rid_line) = grep { index($_, 'injected') >= 0 } split /\n/, logs('opsd.log');
	ok !defined $rid_line || ref json_decode($rid_line) eq 'HASH', 'a hostile REQUEST_ID cannot break a log line';
}

# ---- the pool survived all of it
{
	ok wait_until(5, sub { scalar(worker_pids()) == 2 }), 'two workers again after the bad input'
	    or diag 'workers: ' . join(' ', worker_pids());
	is master_pid(), $master, 'the master did not restart';
	ok pid_alive($master), 'the master is alive';
	my @st = map { http(GET => '/healthz', fresh => 1)->{status} } 1 .. 20;
	is_deeply \@st, [(200) x 20], '20 requests to /healthz after the bad input all answer 200'
	    or diag "@st";
	my $full = http(GET => '/status?full')->{json} // {};
	is scalar(@{ $full->{processes} // [] }), 2, '/status?full still lists two workers';
	my @crash = grep { ($_->{event} // '') eq 'crash_loop' } log_records('opsd.log');
	ok !@crash, 'no crash_loop event in the log' or diag explain \@crash;
	my $rd = http(GET => '/readyz');
	is $rd->{status}, 200, '/readyz 200 after the bad input';
}

finish();
