#!/usr/bin/perl
# nginx in front of opsd against slow and abusive clients (conf/nginx/,
# README "Production: nginx and TLS"):
# - oversized request lines, headers and bodies get nginx's JSON errors (414,
#   400 header_too_large, 413 with the limit of the route's class), and so do
#   the other errors nginx makes itself (400, 416, 501, 505);
# - Debian's slowhttptest in slowloris (-H) and slow-body (-B) modes, 15 s and
#   300 connections each, while a request loop beside it opens a new
#   connection for every request: every request is answered, the 99th
#   percentile stays under 2 s, and no opsd worker waits on a slow client;
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(time sleep);

start_stack();
my $tmp = stack()->{tmp};

# ---- oversized requests: nginx answers with the JSON envelope (HTTP/1.1)
{
	my $h = "Host: localhost\r\nConnection: close\r\n";
	my $r = raw_request("GET /healthz HTTP/1.1\r\n${h}X-Big: " . ('a' x 9000) . "\r\n\r\n");
	check_error($r, 400, 'header_too_large', 'a 9 KB header line');
	$r = raw_request("GET /healthz HTTP/1.1\r\n$h" . join('', map { "X-B$_: " . ('a' x 7000) . "\r\n" } 1 .. 6) . "\r\n");
	check_error($r, 400, 'header_too_large', 'six 7 KB header lines (42 KB in all)');
	$r = raw_request("GET /healthz HTTP/1.1\r\n${h}X-Big: " . ('a' x 7000) . "\r\n\r\n");
	is $r->{status}, 200, 'a 7 KB header line passes';
	$r = raw_request('GET /' . ('a' x 9000) . " HTTP/1.1\r\n$h\r\n");
	check_error($r, 414, 'uri_too_long', 'a 9 KB request line');
	$r = raw_request('GET /healthz?' . ('q=1&' x 1500) . " HTTP/1.1\r\n$h\r\n");
	is $r->{status}, 200, 'a 6 KB query string passes';

	# bodies: each route class has its limit, told in details.maxBytes
	my $post = sub ($path, $len, %o) {
		my $te = $o{chunked} ? "Transfer-Encoding: chunked\r\n" : "Content-Length: $len\r\n";
		my $body = 'a' x $len;
		$body = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a65536)*', $body)) . "0\r\n\r\n"
		    if $o{chunked};
		return raw_request("POST $path HTTP/1.1\r\n${h}Content-Type: application/json\r\n$te\r\n$body", timeout => 15);
	};
	for my $c (['/users', 300_000, 262144], ['/orgs/x/contacts', 300_000, 262144], ['/auth/login', 40_000, 32768],
	    ['/users', 300_000, 262144, 'chunked']) {
		my ($path, $len, $max, $chunked) = @$c;
		my $name = "POST $path with " . ($chunked ? 'a chunked ' : 'a ') . "body of $len bytes";
		$r = $post->($path, $len, chunked => $chunked);
		check_error($r, 413, 'payload_too_large', $name);
		is((j($r)->{error} // {})->{details}{maxBytes}, $max, "$name: details.maxBytes $max");
	}
	for my $c (['/users', 200_000], ['/auth/login', 20_000], ['/legal', 300_000]) {
		my ($path, $len) = @$c;
		$r = $post->($path, $len);
		ok $r->{status} != 413 && $r->{status} >= 400 && $r->{status} < 500,
		    "POST $path with $len bytes passes nginx's limit (opsd answers $r->{status})"
		    or diag $r->{raw};
	}

	# the other errors nginx makes itself
	$r = raw_request("POST /users HTTP/1.1\r\n${h}Transfer-Encoding: gzip\r\n\r\nx");
	check_error($r, 501, 'not_implemented', 'an unknown Transfer-Encoding');
	$r = raw_request("GET /healthz HTTP/3.0\r\n$h\r\n");
	check_error($r, 505, 'http_version_not_supported', 'HTTP/3.0 in the request line');
	$r = raw_request("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
	check_error($r, 400, 'bad_request', 'HTTP/1.1 without Host');
	$r = raw_request("GET /console/index.html HTTP/1.1\r\n${h}If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n\r\n");
	check_error($r, 412, 'precondition_failed', 'a console file with an If-Unmodified-Since it fails');
	$r = raw_request("GET /console/index.html HTTP/1.1\r\n${h}Range: bytes=99999999-\r\n\r\n");
	is $r->{status}, 200, 'a Range past the end of a console file: the whole file (no ranges there)';
}

# ---- slow clients: slowhttptest with a request loop beside it
# The loop opens a new TLS connection for every GET /healthz (a legitimate
# client arriving during the attack) and reads /status between two, whose
# activeProcesses counts the workers busy (the loop's own /status included).
sub attack($label, @args) {
	my $out = "$tmp/loop-$label.txt";
	my $stop = "$tmp/loop-$label.stop";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open my $fh, '>', $out or POSIX::_exit(1);
		$fh->autoflush(1);
		my %tls = (verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 15);
		my $st = HTTP::Tiny->new(%tls, keep_alive => 1);
		until (-e $stop) {
			my $t0 = time;
			my $res = HTTP::Tiny->new(%tls, keep_alive => 0)->get(base_url() . '/healthz');
			my $dt = time - $t0;
			my $s = $st->get(base_url() . '/status');
			my $active = ($s->{content} // '') =~ /"activeProcesses":(\d+)/ ? $1 : -1;
			printf $fh "%d %.4f %d\n", $res->{status}, $dt, $active;
			sleep 0.02;
		}
		POSIX::_exit(0);
	}
	sleep 0.5;
	my $r = run_cmd(cmd => ['slowhttptest', @args, '-c', 300, '-r', 30, '-l', 15, '-i', 5, '-p', 3,
	    '-g', '-o', "$tmp/slow-$label"], tag => "slowhttptest-$label", timeout => 60);
	open my $fh, '>', $stop or die "$stop: $!";
	close $fh;
	waitpid $pid, 0;
	ok !$r->{timed_out}, "$label: slowhttptest ran ($r->{elapsed}s)" or diag "$r->{out}$r->{err}";
	# slowhttptest's own record: seconds, closed, pending, connected, ...
	my ($max_connected, $closed) = (0, 0);
	if (open my $csv, '<', "$tmp/slow-$label.csv") {
		while (<$csv>) {
			my @f = split /,/;
			next unless @f >= 4 && $f[0] =~ /^\d+$/;
			$max_connected = $f[3] if $f[3] > $max_connected;
			$closed = $f[1];
		}
	}
	my @rows = map { [split] } split /\n/, (do { local (@ARGV, $/) = $out; <> } // '');
	my @lat = sort { $a <=> $b } map { $_->[1] } @rows;
	my @failed = grep { $_->[0] != 200 } @rows;
	my ($p50, $p99, $max) = @lat ? (map { $lat[int($_ * $#lat)] } 0.5, 0.99, 1) : (0, 0, 0);
	my $active = 0;
	$active < $_->[2] and $active = $_->[2] for @rows;
	note sprintf '%s: %d slow connections at most, %d closed by nginx; %d requests beside it, '
	    . '%d failed, latency p50 %.3f s, p99 %.3f s, max %.3f s; at most %d worker(s) busy',
	    $label, $max_connected, $closed, scalar @rows, scalar @failed, $p50, $p99, $max, $active;
	return { connected => $max_connected, closed => $closed, rows => \@rows, failed => \@failed,
		p99 => $p99, active => $active };
}

for my $mode (['slowloris', '-H', '-u', base_url() . '/healthz'],
    ['slow-body', '-B', '-s', 100_000, '-f', 'application/json', '-u', base_url() . '/users']) {
	my ($label, @args) = @$mode;
	my $a = attack($label, @args, '-x', 24);
	cmp_ok $a->{connected}, '>=', 150, "$label: the attack held at least 150 connections at once";
	cmp_ok scalar @{ $a->{rows} }, '>=', 30, "$label: the loop sent requests during the attack";
	is scalar @{ $a->{failed} }, 0, "$label: every request beside the attack answered 200"
	    or diag join ' ', map { $_->[0] } @{ $a->{failed} };
	cmp_ok $a->{p99}, '<', 2, "$label: 99% of them within 2 s";
	cmp_ok $a->{active}, '<=', 2, "$label: no opsd worker waits on a slow client (busy: the loop's own)";
	cmp_ok $a->{closed}, '>', 0, "$label: nginx closed slow-header connections (client_header_timeout)"
	    if $label eq 'slowloris';
}
is http(GET => '/healthz')->{status}, 200, 'opsd answers after both attacks';

finish();
