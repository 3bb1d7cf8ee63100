#!/usr/bin/perl
# nginx in front of opsd against slow and abusive clients, and its TLS
# (conf/nginx/, README "Production: nginx and TLS"):
# - oversized request lines, headers and bodies get nginx's JSON errors (414,
#   400 header_too_large, 413 with the limit of the route's class), and so do
#   the other errors nginx makes itself (400, 416, 501, 505);
# - Debian's slowhttptest in slowloris (-H) and slow-body (-B) modes, 15 s and
#   300 connections each, while a request loop beside it opens a new
#   connection for every request: every request is answered, the 99th
#   percentile stays under 2 s, and no opsd worker waits on a slow client;
# - TLS (Mozilla "intermediate"): 1.0 and 1.1 refused, TLS 1.2 CBC suites
#   refused, the profile's suites and TLS 1.3 accepted, no session ticket
#   (sessions resume from the cache);
# - a real certificate (a test CA, an RSA certificate naming an OCSP
#   responder that `openssl ocsp` runs): script/render-nginx turns stapling
#   on, nginx staples a good status, RSA key exchange and DHE are refused.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

my $MAIN = $$;
my @STOP_PIDS;    # the OCSP responder and the second nginx, stopped at the end
END {
	local $?;    # waitpid below must not become the exit status
	if ($$ == $MAIN) {
		kill 'TERM', $_ for @STOP_PIDS;
		waitpid $_, 0 for @STOP_PIDS;
	}
}

start_stack();
my $tmp = stack()->{tmp};

sub free_port() {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
	    or die "no free port: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

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

# ---- TLS on the stack (its self-signed ECDSA certificate)
sub s_client($port, @args) {
	state $n = 0;
	my $r = run_cmd(cmd => ['openssl', 's_client', '-connect', "127.0.0.1:$port", '-servername', 'localhost', @args],
	    tag => 'tls-' . ++$n, timeout => 20);
	$r->{all} = "$r->{out}$r->{err}";
	return $r;
}
sub refused($r) { return $r->{rc} != 0 && $r->{all} !~ /^New, TLS/m }
sub suite($r) { return $r->{all} =~ /^New, (TLSv[\d.]+), Cipher is (\S+)/m ? "$1 $2" : 'none' }

{
	my $port = https_port();
	# SECLEVEL=0 lets the client offer what it otherwise would not: the alert is nginx's
	for my $v ('tls1', 'tls1_1') {
		my $r = s_client($port, "-$v", '-cipher', 'DEFAULT@SECLEVEL=0');
		ok refused($r) && $r->{all} =~ /alert protocol version/, "$v is refused (protocol version alert)"
		    or diag $r->{all};
	}
	for my $c ('ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256') {
		my $r = s_client($port, '-tls1_2', '-cipher', "$c\@SECLEVEL=0");
		ok refused($r) && $r->{all} =~ /alert handshake failure/, "TLS 1.2 with the CBC suite $c is refused"
		    or diag $r->{all};
	}
	for my $c ('ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305') {
		is suite(s_client($port, '-tls1_2', '-cipher', $c)), "TLSv1.2 $c", "TLS 1.2 with $c is accepted";
	}
	for my $c ('TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256') {
		is suite(s_client($port, '-tls1_3', '-ciphersuites', $c)), "TLSv1.3 $c", "TLS 1.3 with $c is accepted";
	}
	# the server's order: a client preferring AES-256 gets the server's first
	# choice (AES-128-GCM); a client listing ChaCha20 first keeps it (PrioritizeChaCha)
	is suite(s_client($port, '-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256')),
	    'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256', 'TLS 1.2: the server\'s cipher order wins over the client\'s';
	is suite(s_client($port, '-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256')),
	    'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305', 'TLS 1.2: a client listing ChaCha20 first gets it';
	is suite(s_client($port, '-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384')),
	    'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256', 'TLS 1.3: a client listing ChaCha20 first gets it';
	# sessions: no ticket in TLS 1.2; in TLS 1.3 only the cache entry's id (no sealed
	# session state); both resume from the server's cache. A request is sent and its
	# answer read (-ign_eof), so that TLS 1.3's tickets, sent after the handshake, arrive.
	open my $req, '>', "$tmp/tls-request.txt" or die;
	print $req "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	close $req;
	for my $v ('tls1_2', 'tls1_3') {
		my $sess = "$tmp/sess-$v.pem";
		my $r = run_cmd(cmd => ['openssl', 's_client', '-connect', "127.0.0.1:$port", '-servername', 'localhost',
		    "-$v", '-ign_eof', '-sess_out', $sess], stdin_file => "$tmp/tls-request.txt", tag => "sess-out-$v", timeout => 20);
		my $text = run_cmd(cmd => ['openssl', 'sess_id', '-in', $sess, '-noout', '-text'], tag => "sess-$v")->{out};
		my ($hex) = $text =~ /TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)*)/;
		my $bytes = 0;
		$bytes += () = /\b[0-9a-f]{2}\b/g for map { (/^\s+[0-9a-f]{4} - (.{47})/)[0] // '' } split /\n/, $hex // '';
		if ($v eq 'tls1_2') {
			unlike $text, qr/TLS session ticket:/, 'TLS 1.2: no session ticket is issued';
		} else {
			ok $bytes > 0 && $bytes <= 32, "TLS 1.3: the ticket is the cache entry's id, not sealed state ($bytes bytes)";
		}
		like s_client($port, "-$v", '-sess_in', $sess)->{all}, qr/^Reused, TLSv1\.[23]/m, "$v: the session resumes";
	}
	like http(GET => '/healthz')->{headers}{'strict-transport-security'} // '', qr/^max-age=63072000\b/,
	    'HSTS for two years';
	like slurp_file(var_dir() . '/nginx/opsd.conf'), qr/^\s*ssl_stapling off;/m,
	    'the self-signed certificate: no OCSP stapling';
	unlike logs('nginx-error.log'), qr/stapling/i, 'nginx logged no stapling warning';
}

sub slurp_file($path) { open my $fh, '<', $path or return ''; local $/; return <$fh> }

# ---- a real certificate: render, OCSP stapling, RSA suites
{
	my $dir = "$tmp/realcert";
	mkdir $dir;
	chmod 0755, $dir;
	my $ocsp_port = free_port();
	my $port = free_port();
	my $n = 0;
	my $sh = sub ($cmd) {
		my $r = run_cmd(cmd => ['sh', '-c', $cmd], cwd => $dir, tag => 'realcert-' . ++$n);
		ok $r->{rc} == 0, "openssl: $cmd" =~ s/ -.*//r or diag $r->{err};
	};
	$sh->('openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=opsd-test-ca -keyout ca.key -out ca.pem '
	    . '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature');
	$sh->('openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout leaf.key -out leaf.csr');
	open my $ext, '>', "$dir/ext.cnf" or die;
	print $ext "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
	    . "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$ocsp_port/\nbasicConstraints=critical,CA:FALSE\n";
	close $ext;
	$sh->('openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -days 30 '
	    . '-extfile ext.cnf -out leaf.pem && cat leaf.pem ca.pem > fullchain.pem');
	open my $idx, '>', "$dir/index.txt" or die;
	printf $idx "V\t%s\t\t1001\tunknown\t/CN=localhost\n", POSIX::strftime('%y%m%d%H%M%SZ', gmtime(time + 30 * 86400));
	close $idx;
	my $ocsp = fork // die "fork: $!";
	if ($ocsp == 0) {
		chdir $dir;
		open STDOUT, '>', "$dir/ocsp.log";
		open STDERR, '>&', \*STDOUT;
		exec('openssl', 'ocsp', '-index', 'index.txt', '-port', $ocsp_port, '-rsigner', 'ca.pem', '-rkey', 'ca.key',
		    '-CA', 'ca.pem', '-ignore_err') or POSIX::_exit(127);
	}
	push @STOP_PIDS, $ocsp;

	my %env = (PATH => $ENV{PATH}, OPSD_HTTPS_PORT => $port, OPSD_TLS_RESOLVER => '127.0.0.1');
	my $render = sub (%e) {
		return run_cmd(cmd => [repo_root() . '/script/render-nginx', "$dir/var"], env => { %env, %e },
		    tag => 'render-' . ++$n);
	};
	my $r = $render->(OPSD_TLS_CERT => "$dir/fullchain.pem");
	ok $r->{rc} != 0 && $r->{err} =~ /OPSD_TLS_CERT and OPSD_TLS_KEY go together/,
	    'render-nginx: a certificate without its key is refused';
	$r = $render->(OPSD_TLS_CERT => "$dir/fullchain.pem", OPSD_TLS_KEY => "$dir/leaf.key");
	ok $r->{rc} == 0, 'render-nginx with OPSD_TLS_CERT and OPSD_TLS_KEY' or diag $r->{err};
	my $conf = slurp_file("$dir/var/nginx/opsd.conf");
	like $conf, qr/^\s*ssl_certificate \Q$dir\E\/fullchain\.pem;/m, 'the real certificate is used';
	like $conf, qr/^\s*ssl_stapling on;\n\s*ssl_stapling_verify on;\n\s*ssl_trusted_certificate /m,
	    'a certificate naming an OCSP responder turns stapling on, verified';
	my $t = run_cmd(cmd => ['nginx', '-t', '-c', "$dir/var/nginx/nginx.conf", '-p', "$dir/var/nginx/"], tag => 'realcert-t');
	unlike $t->{err}, qr/\[(?:warn|emerg)\]/, 'nginx -t: no warning' or diag $t->{err};
	$t = run_cmd(cmd => ['nginx', '-c', "$dir/var/nginx/nginx.conf", '-p', "$dir/var/nginx/"], tag => 'realcert-nginx');
	my $npid;
	wait_until(10, sub { $npid = (slurp_file("$dir/var/run/nginx.pid") =~ /(\d+)/)[0] });
	push @STOP_PIDS, $npid if $npid;
	ok $npid, 'a second nginx runs the rendered configuration' or diag $t->{err};

	is suite(s_client($port, '-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256')), 'TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256',
	    'RSA certificate: ECDHE-RSA-AES128-GCM-SHA256 is accepted';
	for my $c ('AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA') {
		ok refused(s_client($port, '-tls1_2', '-cipher', "$c\@SECLEVEL=0")), "RSA certificate: $c is refused";
	}
	# each nginx worker asks the responder once, then staples its answer
	my $good = wait_until(15, sub { s_client($port, '-tls1_2', '-status')->{all} =~ /Cert Status: good/ }, 0.3);
	ok $good, 'nginx staples the OCSP answer (Cert Status: good)'
	    or diag slurp_file("$dir/var/log/nginx-error.log") . slurp_file("$dir/ocsp.log");
}

finish();
