#!/usr/bin/perl
# The API document (README "API clients"): GET /openapi.json (public, ETag
# and 304), the same document as `opsctl openapi` and as the openapi.json
# the build installs; valid OpenAPI 3.1 for an independent validator
# (@seriousme/openapi-schema-validator, t/openapi/validate.mjs); every route
# of `opsctl routes` but the test-only ones is an operation of it, and it
# has no other. Then, with OPSD_TEST_EXCHANGES (script/test sets it), the
# conformance of every request and answer the integration tests recorded
# (t/lib/OpsdTest.pm http(); t/openapi/check-exchanges.mjs, ajv): the path
# and method exist, the status is declared, an accepted request's body and
# every answer's body conform, refusals are in the error envelope. prove
# runs this file after the others (t/99-logs.t aside), so it sees their
# exchanges; with a narrowed PROVE_ARGS it checks what was recorded.
#
# Needs node and the packages of t/openapi/package.json: script/test runs
# `npm ci` there; run by hand, this file runs it when node_modules is
# missing (the npm registry must be reachable).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use OpsdTest;

my $TOOLS = repo_root() . '/t/openapi';

sub node_tools() {
	return 1 if -d "$TOOLS/node_modules/ajv" && -d "$TOOLS/node_modules/\@seriousme/openapi-schema-validator";
	my $r = run_cmd(cmd => ['npm', 'ci', '--no-audit', '--no-fund', '--prefix', $TOOLS], timeout => 600);
	diag "npm ci in t/openapi: rc $r->{rc}\n$r->{err}" if $r->{rc};
	return $r->{rc} == 0;
}

sub node(@args) {
	return run_cmd(cmd => ['node', @args], timeout => 300);
}

# ":orgId" → "{orgId}", as the document writes paths
sub templated($pattern) { return $pattern =~ s/:(\w+)/{$1}/gr }

unless (ok(node_tools(), 'node and the checks of t/openapi/ are available (npm ci)')) {
	done_testing();
	exit 1;
}

start_stack();

# ---- the three copies of the document
my ($rc, $out, $err) = opsctl('openapi');
is $rc, 0, 'opsctl openapi exits 0 (the route table names nothing it cannot describe)' or diag $err;
is $err, '', 'opsctl openapi reports no problem';
my $doc = json_decode($out);
is ref $doc, 'HASH', 'opsctl openapi prints a JSON object' or diag $out;
$doc = { paths => {} } unless ref $doc eq 'HASH';
is $doc->{openapi}, '3.1.0', 'OpenAPI 3.1.0';
{
	my ($vrc, $vout) = opsctl('--version');
	my ($version) = ($vout // '') =~ /^opsctl (\S+)/;
	is $doc->{info}{version}, $version, "info.version is the package version ($version)";
}
{
	my $built = slurp(build_dir() . '/openapi.json');
	ok defined $built, 'the build made openapi.json (installed as $(pkgdatadir)/openapi.json)';
	is_deeply json_decode($built // 'null'), $doc, 'the built openapi.json is the document of opsctl openapi';
}

my $r = http(GET => '/openapi.json');
status_is $r, 200, 'GET /openapi.json without credentials';
like $r->{headers}{'content-type'} // '', qr{^application/json}, 'served as application/json';
my $etag = $r->{headers}{etag};
like $etag // '', qr/^"[0-9a-f]{16}"$/, 'with an ETag';
like $r->{headers}{'cache-control'} // '', qr/no-cache/, 'Cache-Control: no-cache (revalidated)';
is_deeply $r->{json}, $doc, 'the served document is the one of opsctl openapi';
{
	my $again = http(GET => '/openapi.json', headers => { 'If-None-Match' => $etag });
	is $again->{status}, 304, 'If-None-Match with its ETag: 304';
	is $again->{body}, '', 'a 304 has no body';
	$again = http(GET => '/openapi.json', headers => { 'If-None-Match' => '"0000000000000000"' });
	is $again->{status}, 200, 'another ETag: 200';
	my $w2 = http(GET => '/openapi.json', fresh => 1);
	is $w2->{headers}{etag}, $etag, 'the same ETag on another connection (another worker)';
	my $post = http(POST => '/openapi.json', json => {});
	check_error($post, 405, 'method_not_allowed', 'POST /openapi.json: 405');
}

# ---- an independent validator
my $tmp = tempdir(CLEANUP => 1);
my $file = "$tmp/openapi.json";
open my $fh, '>:raw', $file or die "$file: $!";
print {$fh} $r->{body};
close $fh;
{
	my $v = node("$TOOLS/validate.mjs", $file);
	is $v->{rc}, 0, 'the served document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)'
	    or diag "$v->{out}$v->{err}";
	my $bad = json_decode($r->{body});
	delete $bad->{info};
	$bad->{paths}{'/x'} = { get => { responses => { 200 => { '$ref' => '#/components/responses/Nope' } } } };
	open my $bf, '>:raw', "$tmp/bad.json" or die;
	print {$bf} json_encode($bad);
	close $bf;
	isnt node("$TOOLS/validate.mjs", "$tmp/bad.json")->{rc}, 0, '(control: the validator refuses a document without info)';
}

# ---- every route is an operation, and every operation a route
{
	my ($rc2, $all) = opsctl('routes', '--all');
	my @test = grep { $_->{testOnly} } @{ json_decode($all) // [] };
	ok @test >= 1, 'opsctl routes --all adds the test stacks\' routes (' . scalar(@test) . ')';
	ok !(grep { $doc->{paths}{ templated($_->{pattern}) } } @test), '  which the document leaves out';
}
($rc, $out, $err) = opsctl('routes');
my $routes = json_decode($out) // [];
my (%want, @missing);
ok !(grep { $_->{testOnly} } @$routes), 'opsctl routes lists the API\'s routes (no test-only one)';
for my $rt (@$routes) {
	my $path = templated($rt->{pattern});
	my $m = lc $rt->{method};
	$want{"$m $path"} = 1;
	push @missing, "$rt->{method} $rt->{pattern}" unless ref $doc->{paths}{$path} eq 'HASH' && $doc->{paths}{$path}{$m};
}
ok scalar(keys %want) > 40, sprintf('opsctl routes lists %d routes besides the test-only ones', scalar keys %want);
ok !@missing, 'every route of opsctl routes is in the document' or diag join "\n", @missing;
{
	my @extra;
	for my $path (sort keys %{ $doc->{paths} }) {
		for my $m (sort keys %{ $doc->{paths}{$path} }) {
			push @extra, "$m $path" unless $want{"$m $path"};
		}
	}
	ok !@extra, 'the document has no operation the route table lacks (none of /__test/)' or diag join "\n", @extra;
	my @no_ok = grep { my ($m, $p) = split / /, $_, 2; !grep { /^2/ } keys %{ $doc->{paths}{$p}{$m}{responses} // {} } } sort keys %want;
	ok !@no_ok, 'every operation declares its success status' or diag join "\n", @no_ok;
}
{
	my $op = $doc->{paths}{'/orgs/{orgId}/contacts'}{post} // {};
	is_deeply [sort grep { /^\d+$/ } keys %{ $op->{responses} // {} }],
	    [qw(201 400 401 403 404 413 415 429 500 502 503 504)],
	    'POST /orgs/{orgId}/contacts: 201, the refusals the pipeline can give it and nginx\'s 502 and 504';
	ok $op->{requestBody}{required}, 'its body is required';
	my $del = $doc->{paths}{'/security/blocklist/{id}'}{delete} // {};
	is_deeply [$del->{requestBody}{required}, $del->{requestBody}{content}{'application/json'}{schema}{'$ref'}],
	    [JSON::PP::false, '#/components/schemas/BlocklistDeleteBody'],
	    'DELETE /security/blocklist/{id}: an optional body ({reason})';
	is_deeply [sort map { keys %$_ } @{ $op->{security} // [] }], [qw(bearerToken csrfToken sessionCookie)],
	    'a bearer token, or the session cookie with X-CSRF-Token';
	is_deeply $doc->{paths}{'/openapi.json'}{get}{security}, [], 'GET /openapi.json needs no credentials';
}

# ---- control: the conformance checker refuses exchanges that do not conform
{
	my $dir = "$tmp/bad-exchanges";
	mkdir $dir or die "$dir: $!";
	my @bad = (
		# an undeclared status
		{ method => 'GET', path => '/healthz', status => 418, responseContentType => 'application/json',
		  responseBody => '{"error":{"code":"teapot","message":"no","requestId":"x"}}' },
		# a property the schema does not have, on a closed object
		{ method => 'GET', path => '/email/settings', status => 200, responseContentType => 'application/json',
		  responseBody => '{"server":null,"port":25,"secure":"none","user":null,"passwordSet":false,"from":null,'
		    . '"caFile":null,"testMode":true,"allowlist":[],"password":"leaked"}' },
		# an accepted request with a field its body does not take
		{ method => 'POST', path => '/security/blocklist', status => 201, requestContentType => 'application/json',
		  requestBody => '{"cidr":"192.0.2.0/24","reason":"r","color":"red"}',
		  responseContentType => 'application/json', responseBody => '{}' },
		# an HTML answer for an unknown path
		{ method => 'GET', path => '/nowhere', status => 404, responseContentType => 'text/html',
		  responseBody => '<html>404</html>' },
	);
	open my $fh, '>', "$dir/control.exchanges" or die;
	print {$fh} map { json_encode({ test => 'control', %$_ }) . "\n" } @bad;
	close $fh;
	my $c = node("$TOOLS/check-exchanges.mjs", $file, $dir);
	isnt $c->{rc}, 0, '(control: check-exchanges.mjs fails on exchanges that do not conform)';
	my $res = json_decode($c->{out} // '') // {};
	my %hit = map { ("$_->{method} $_->{path} $_->{status}" => 1) } @{ $res->{failures} // [] };
	is scalar(keys %hit), scalar(@bad), '(  each of the four fails)' or diag $c->{out};
}

# ---- conformance of what the integration tests exchanged
SKIP: {
	my $dir = exchanges_dir();
	if (!defined $dir || !-d $dir) {
		fail('OPSD_TEST_EXCHANGES names a directory') if $ENV{OPSD_TEST_ARCHIVE_REQUIRED};
		skip 'OPSD_TEST_EXCHANGES is not set (script/test sets it): no exchanges to check', 4;
	}
	my $c = node("$TOOLS/check-exchanges.mjs", $file, $dir);
	my $res = json_decode($c->{out} // '');
	is ref $res, 'HASH', 'check-exchanges.mjs reports' or diag "rc $c->{rc}\n$c->{out}$c->{err}";
	$res = { failures => [] } unless ref $res eq 'HASH';
	ok(($res->{checked} // 0) > 0, sprintf('exchanges checked: %d of %d from %d test file(s); %d of %d operations exercised',
	    $res->{checked} // 0, $res->{exchanges} // 0, $res->{files} // 0, $res->{exercised} // 0, $res->{operations} // 0));
	my @un = @{ $res->{unexercised} // [] };
	note 'operations no recorded exchange exercised: ' . join(', ', @un) if @un;
	SKIP: {
		skip 'not a whole run under script/test: some operations may not have been exercised', 1
		    unless $ENV{OPSD_TEST_ARCHIVE_REQUIRED} && whole_run();
		ok !@un, 'the whole suite exercises every operation of the document' or diag join "\n", @un;
	}
	my @f = @{ $res->{failures} // [] };
	# one line per kind of failure, with a count and an example
	my (%count, %example);
	for my $x (@f) {
		(my $path = $x->{path} // '') =~ s/\?.*//;
		$path =~ s{/[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}(?=/|$)}{/:id}g;
		my $k = "$x->{method} $path $x->{status}: $x->{problem}";
		$example{$k} //= "$x->{test}: $x->{method} $x->{path}";
		$count{$k}++;
	}
	is scalar(@f), 0, 'every recorded exchange conforms to the document'
	    or diag join "\n", map { "$count{$_}x $_\n    e.g. $example{$_}" } (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. (keys %count > 60 ? 59 : $#{ [keys %count] })];
}

finish();
