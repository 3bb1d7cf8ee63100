package OpsdTest;

# Integration-test harness (SPEC §18): starts the real stack (MariaDB, nginx,
# opsd) with `script/server start` in a temporary OPSD_VAR, talks HTTPS to
# nginx, and stops everything again, even when a test dies. Core Perl plus
# IO::Socket::SSL (Debian libio-socket-ssl-perl, installed by script/test).
#
#   use lib 't/lib';
#   use OpsdTest;
#   start_stack(env => { OPSD_WORKERS => 2 });
#   my $r = http(GET => '/healthz');
#   is $r->{status}, 200;
#   finish();   # stops the stack, checks ASan reports and JSON logs, done_testing
#
# Environment read here: OPSD_BUILD (build/<name>, default "default"),
# OPSD_SKIP_BUILD=1 (passed on: script/test builds once, then runs prove),
# OPSD_ASAN_DIR / ASAN_OPTIONS / UBSAN_OPTIONS (sanitizer reports),
# OPSD_TEST_START_TIMEOUT (seconds for `script/server start`, default 600),
# OPSD_TEST_KEEP=1 (keep the temp dir even when everything passed),
# OPSD_TEST_ARCHIVE (a directory: logs of every stack and the sensitive
# values of every test are collected there for t/99-logs.t; see the end).

use v5.36;
use Carp qw(croak);
use Cwd qw(abs_path);
use Errno qw(EINTR EAGAIN);
use Exporter qw(import);
use File::Basename qw(dirname basename);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use POSIX qw(WNOHANG setsid _exit);
use Socket qw(SOCK_STREAM SHUT_WR);
use Test::More ();
use Time::HiRes qw(time sleep);

BEGIN {
	# Loaded on demand so that `perl -c` works where it is missing; every
	# HTTPS helper needs it.
	eval { require IO::Socket::SSL; IO::Socket::SSL->import(); 1 }
	    or warn "OpsdTest: IO::Socket::SSL missing (apt-get install libio-socket-ssl-perl)\n";
}

our @EXPORT = qw(
	start_stack finish stack var_dir repo_root https_port base_url build_dir opsd_bin opsctl_bin
	http raw_request check_error request_id_logged
	master_pid nginx_pid mysqld_pid worker_pids jobs_pid children_of proc_title proc_uids
	pid_alive wait_until logs log_records diag_logs
	mysql stop_mysql start_mysql
	fcgi_record fcgi_nv fcgi_begin fcgi_params fcgi_exchange
	run_cmd parse_env_file json_decode json_encode
	admin_email admin_password session_secret restart_stack
	login admin_session session_cookie_header set_cookies session_set_cookie
	make_session_cookie cookie_session_id session_row_hash
	opsctl create_user create_org contract_roles contract_permissions
	uuid7_like uri_escape_all db_dump find_in_logs
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $OWNER = $$;          # END blocks also run in forked children: only the owner cleans up
my $STACK;               # the one stack of this test file
my @SERVER_CMD = ('script/server');
my $SHARED_UA;           # http()'s keep-alive agent (dropped by restart_stack)

# The superadmin script/server creates in every test stack, and the session
# secret used unless a test gives another one.
use constant ADMIN_EMAIL => 'admin@example.test';
use constant ADMIN_PASSWORD => 'Adm1n-test-P4ssword-0f-the-stack';
use constant DEFAULT_SESSION_SECRET => 'opsd-test-session-secret-7f3a9c1e5b2d4086af1e';

$SIG{PIPE} = 'IGNORE';   # a peer closing early must show as an error, not kill the test

sub json_decode($s) { my $v = eval { $JSON->decode($s) }; return $v }
sub json_encode($v) { return $JSON->encode($v) }

sub repo_root() {
	state $root = abs_path(dirname(__FILE__) . '/../..');
	return $root;
}

sub build_dir() { return repo_root() . '/build/' . ($ENV{OPSD_BUILD} || 'default') }
sub opsd_bin()  { return build_dir() . '/opsd' }
sub opsctl_bin() { return build_dir() . '/opsctl' }

sub stack() { croak 'no stack: call start_stack first' unless $STACK; return $STACK }
sub var_dir() { return stack()->{var} }
sub https_port() { return stack()->{port} }
sub base_url() { return 'https://127.0.0.1:' . https_port() }

sub _free_port() {
	for (1 .. 20) {
		my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0,
		    Proto => 'tcp', ReuseAddr => 0) or next;
		my $port = $s->sockport;
		close $s;
		# 8443 is the default a developer's own stack may be using
		return $port if $port != 8443;
	}
	croak "no free TCP port: $!";
}

sub _slurp($path) {
	open my $fh, '<:raw', $path or return undef;
	local $/;
	my $s = <$fh>;
	return $s // '';
}

sub _spit($path, $data, $mode = undef) {
	open my $fh, '>:raw', $path or croak "write $path: $!";
	print {$fh} $data;
	close $fh or croak "close $path: $!";
	chmod $mode, $path if defined $mode;
}

sub _tail($text, $n) {
	my @l = split /\n/, $text // '';
	@l = @l[-$n .. -1] if @l > $n;
	return join("\n", @l);
}

# The variables that must not leak from the developer's shell into the stack
# (an inherited OPSD_DB_URI would point the tests at a real database).
sub _scrub_env(%env) {
	my %keep = map { $_ => 1 } qw(OPSD_BUILD OPSD_ASAN_DIR OPSD_SKIP_INSTALL OPSD_SKIP_BUILD OPSD_READY_TIMEOUT);
	for my $k (keys %env) {
		next if $keep{$k};
		delete $env{$k} if $k =~ /^(?:OPSD_|SMTP_|SESSION_|LEGAL_ENFORCE$|TEST_EMAIL_ALLOWLIST$)/;
	}
	return %env;
}

# Runs a command with a given environment; returns {rc, out, err, timed_out,
# elapsed}. Output goes through files, never pipes: daemons started by the
# command inherit its descriptors and would keep a pipe open forever.
sub run_cmd(%o) {
	my $cmd = $o{cmd} or croak 'run_cmd: cmd';
	my $timeout = $o{timeout} // 120;
	state $n = 0;
	my $dir = $o{dir} // ($STACK ? $STACK->{tmp} : tempdir('opsd-cmd-XXXXXX', TMPDIR => 1, CLEANUP => 1));
	my $tag = $o{tag} // ('cmd' . ++$n);
	my ($outf, $errf) = ("$dir/$tag.out", "$dir/$tag.err");
	my %env = $o{env} ? %{ $o{env} } : %ENV;
	my $t0 = time;
	my $pid = fork // croak "fork: $!";
	if ($pid == 0) {
		setsid();
		%ENV = %env;
		chdir($o{cwd} // repo_root()) or _exit(127);
		open STDIN, '<', (defined $o{stdin_file} ? $o{stdin_file} : '/dev/null') or _exit(127);
		open STDOUT, '>', $outf or _exit(127);
		open STDERR, '>', $errf or _exit(127);
		exec { $cmd->[0] } @$cmd or do { print STDERR "exec $cmd->[0]: $!\n"; _exit(127) };
	}
	my $rc;
	my $timed_out = 0;
	while (1) {
		my $w = waitpid($pid, WNOHANG);
		if ($w == $pid) { $rc = $?; last }
		if (time - $t0 > $timeout) {
			$timed_out = 1;
			kill 'TERM', -$pid;
			sleep 2;
			kill 'KILL', -$pid;
			waitpid($pid, 0);
			$rc = $?;
			last;
		}
		sleep 0.05;
	}
	return {
		rc => ($rc >> 8) | ($rc & 127 ? 128 + ($rc & 127) : 0),
		signal => $rc & 127,
		out => _slurp($outf) // '',
		err => _slurp($errf) // '',
		timed_out => $timed_out,
		elapsed => time - $t0,
		out_file => $outf,
		err_file => $errf,
	};
}

sub _sanitizer_spots() {
	my @spots;
	push @spots, [$ENV{OPSD_ASAN_DIR}, ''] if $ENV{OPSD_ASAN_DIR};
	for my $opt ($ENV{ASAN_OPTIONS}, $ENV{UBSAN_OPTIONS}, $ENV{LSAN_OPTIONS}) {
		next unless $opt && $opt =~ /(?:^|[:,])log_path=([^:,]+)/;
		my $p = $1;
		next if $p eq 'stderr' || $p eq 'stdout';
		push @spots, [dirname($p), basename($p)];
	}
	return @spots;
}

sub _sanitizer_files() {
	my %f;
	for my $spot (_sanitizer_spots()) {
		my ($dir, $prefix) = @$spot;
		opendir(my $dh, $dir) or next;
		for my $e (readdir $dh) {
			next if $e =~ /^\./;
			next if length $prefix && index($e, $prefix) != 0;
			$f{"$dir/$e"} = 1 if -f "$dir/$e";
		}
	}
	return \%f;
}

# Starts the whole stack. Options: env => {VAR => value} overrides.
sub start_stack(%o) {
	croak 'start_stack called twice in one test file' if $STACK;
	my $tmp = tempdir('opsd-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);
	# www-data (opsd workers, nginx workers) must reach the sockets and logs inside
	chmod 0755, $tmp;
	my $var = "$tmp/var";
	mkdir $var or croak "mkdir $var: $!";
	chmod 0755, $var;
	my $port = _free_port();
	my %env = _scrub_env(%ENV);
	%env = (%env,
		OPSD_VAR => $var,
		OPSD_HTTPS_PORT => $port,
		OPSD_ENV => 'test',
		OPSD_SKIP_INSTALL => 1,
		OPSD_BUILD => $ENV{OPSD_BUILD} || 'default',
		OPSD_NGINX_API_RATE => '10000r/s',
		OPSD_NGINX_API_BURST => 10000,
		OPSD_NGINX_CONN_LIMIT => 1000,
		OPSD_NGINX_LOGIN_RATE => '1000r/s',
		OPSD_NGINX_LOGIN_BURST => 1000,
		# identity (issue 3): a known superadmin, fast scrypt, a fixed secret
		OPSD_ADMIN_EMAIL => ADMIN_EMAIL,
		OPSD_ADMIN_PASSWORD => ADMIN_PASSWORD,
		OPSD_SCRYPT_LN => 10,
		SESSION_SECRET => DEFAULT_SESSION_SECRET,
		%{ $o{env} // {} },
	);
	# env => { VAR => undef } removes a variable (e.g. SESSION_SECRET, to let
	# script/server make $OPSD_VAR/session-secret)
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	$STACK = {
		tmp => $tmp, var => $var, port => $port, env => \%env, started => 0, finished => 0,
		sanitizer_before => _sanitizer_files(), t0 => time,
	};
	Test::More::note("opsd test stack: OPSD_VAR=$var port=$port");

	my $r = run_cmd(cmd => [@SERVER_CMD, 'start'], env => \%env, tag => 'server-start',
	    timeout => $ENV{OPSD_TEST_START_TIMEOUT} || 600);
	$STACK->{start_out} = $r->{out};
	_sensitive_stack();
	my @ready = grep { m{^opsd ready: https://127\.0\.0\.1:\d+/$} } split /\n/, $r->{out};
	my $ok = Test::More::ok($r->{rc} == 0 && !$r->{timed_out},
	    "script/server start exits 0 (rc=$r->{rc}" . ($r->{timed_out} ? ', timed out' : '') .
	    sprintf(', %.1fs)', $r->{elapsed}));
	$ok &= Test::More::is(scalar(@ready), 1, 'script/server start prints exactly one ready line');
	$ok &= Test::More::is($ready[0] // '', "opsd ready: https://127.0.0.1:$port/",
	    'the ready line names our port');
	$STACK->{started} = 1;  # stop even when start half-worked
	unless ($ok) {
		Test::More::diag("script/server start stdout:\n" . _tail($r->{out}, 40));
		Test::More::diag("script/server start stderr:\n" . _tail($r->{err}, 40));
		diag_logs();
		die "the stack did not start; see the diagnostics above\n";
	}
	$STACK->{master_at_start} = master_pid();
	return $STACK;
}

sub _pidfile($name) {
	my $s = _slurp(var_dir() . "/run/$name") // return undef;
	return $s =~ /^\s*(\d+)/ ? $1 + 0 : undef;
}
sub master_pid() { return _pidfile('opsd.pid') }
sub nginx_pid()  { return _pidfile('nginx.pid') }
sub mysqld_pid() { return _pidfile('mysqld.pid') }

sub pid_alive($pid) {
	return 0 unless $pid;
	return 0 unless kill 0, $pid;
	# a zombie is dead for our purposes
	my $st = _slurp("/proc/$pid/stat") // return 0;
	return $st =~ /\)\s+Z\s/ ? 0 : 1;
}

# "opsd: worker" etc.: argv rewritten by setproctitle, NULs and padding removed.
sub proc_title($pid) {
	my $c = _slurp("/proc/$pid/cmdline") // return undef;
	$c =~ s/\0/ /g;
	$c =~ s/\s+$//;
	return $c;
}

# (real, effective, saved, fs) uid and gid lists, and supplementary groups.
sub proc_uids($pid) {
	my $s = _slurp("/proc/$pid/status") // return undef;
	my %r;
	$r{uid} = [split ' ', $1] if $s =~ /^Uid:\s*(.*)$/m;
	$r{gid} = [split ' ', $1] if $s =~ /^Gid:\s*(.*)$/m;
	$r{groups} = [split ' ', $1 // ''] if $s =~ /^Groups:[ \t]*(.*)$/m;
	return \%r;
}

sub children_of($ppid) {
	return () unless $ppid;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my $st = _slurp("/proc/$pid/stat") // next;
		next unless $st =~ /\)\s+(\S)\s+(\d+)/;
		next if $1 eq 'Z';
		push @kids, $pid + 0 if $2 == $ppid;
	}
	return sort { $a <=> $b } @kids;
}

sub _children_titled($re) {
	return grep { (proc_title($_) // '') =~ $re } children_of(master_pid());
}
sub worker_pids() { return _children_titled(qr/^opsd: worker/) }
sub jobs_pid() { my @j = _children_titled(qr/^opsd: jobs/); return $j[0] }

sub wait_until($timeout, $code, $interval = 0.05) {
	my $end = time + $timeout;
	while (1) {
		my $v = $code->();
		return $v if $v;
		return $v if time >= $end;
		sleep $interval;
	}
}

sub logs($name) { return _slurp(var_dir() . "/log/$name") // '' }

# Decoded JSON lines of a log (lines that do not parse are skipped here; the
# end-of-test check reports them).
sub log_records($name) {
	return grep { ref eq 'HASH' } map { json_decode($_) } grep { length } split /\n/, logs($name);
}

# True when opsd's log has a line with this request id (any field).
sub request_id_logged($rid, $timeout = 3) {
	return 0 unless $rid;
	return wait_until($timeout, sub { index(logs('opsd.log'), $rid) >= 0 });
}

sub diag_logs(@names) {
	return unless $STACK;
	my $var = $STACK->{var};
	# lines of each log worth showing: opsd's own first, MariaDB's barely
	my %lines = ('opsd.log' => 40, 'nginx-error.log' => 15, 'nginx-access.log' => 8, 'mysqld.log' => 8);
	@names = ('opsd.log', 'nginx-error.log', 'nginx-access.log', 'mysqld.log') unless @names;
	Test::More::diag("OPSD_VAR=$var");
	for my $n (@names) {
		my $s = _slurp("$var/log/$n");
		next unless defined $s && length $s;
		Test::More::diag("---- tail of log/$n ----\n" . _tail($s, $lines{$n} // 30));
	}
	for my $n ('server-start.err', 'server-stop.out', 'server-stop.err') {
		my $s = _slurp("$STACK->{tmp}/$n");
		next unless defined $s && length $s;
		Test::More::diag("---- tail of $n ----\n" . _tail($s, 20));
	}
}

# ---------------------------------------------------------------- HTTP

sub _agent(%o) {
	my %args = (
		verify_SSL => 0,
		SSL_options => { SSL_verify_mode => 0 },
		timeout => $o{timeout} // 30,
		max_redirect => 0,
		keep_alive => 1,
		agent => 'opsd-test/1',
	);
	return HTTP::Tiny->new(%args);
}

sub _result($status, $reason, $headers, $body) {
	my %h;
	for my $k (keys %{ $headers // {} }) {
		my $v = $headers->{$k};
		$h{lc $k} = ref $v eq 'ARRAY' ? join(', ', @$v) : $v;
	}
	my $res = { status => $status, reason => $reason, headers => \%h, body => $body // '' };
	# Set-Cookie values one by one (joining them with ", " breaks on Expires=)
	my ($sc) = grep { lc $_ eq 'set-cookie' } keys %{ $headers // {} };
	$res->{set_cookie} = !defined $sc ? [] : ref $headers->{$sc} eq 'ARRAY' ? [@{ $headers->{$sc} }] : [$headers->{$sc}];
	$res->{json} = json_decode($res->{body})
	    if ($h{'content-type'} // '') =~ m{^application/(?:[\w.+-]+\+)?json\b}i && length $res->{body};
	return $res;
}

# http(METHOD => '/path', json => {...} | body => $bytes, headers => {...},
#      timeout => s, agent => HTTP::Tiny object (own connection),
#      session => $s (from login(): sends its cookie and, for POST/PUT/PATCH/
#      DELETE, its X-CSRF-Token), csrf => $value (another X-CSRF-Token; undef
#      or '' sends none), bearer => $token (Authorization: Bearer $token),
#      cookie => $raw (a Cookie header as given)).
# Returns {status, reason, headers (lc names), set_cookie [...], body, json,
# elapsed}; status 599 means no HTTP answer (connection error: see body).
# Explicit headers win over those made from session/csrf/bearer/cookie.
sub http($method, $path, %o) {
	my $ua = $o{agent} // ($o{fresh} ? _agent(%o) : ($SHARED_UA //= _agent()));
	my %headers;
	if (my $s = $o{session}) {
		$headers{Cookie} = session_cookie_header($s->{cookie}) if defined $s->{cookie};
		my $csrf = exists $o{csrf} ? $o{csrf} : $s->{csrf};
		$headers{'X-CSRF-Token'} = $csrf
		    if defined $csrf && length $csrf && $method =~ /^(?:POST|PUT|PATCH|DELETE)$/;
	} elsif (defined $o{csrf} && length $o{csrf}) {
		$headers{'X-CSRF-Token'} = $o{csrf};
	}
	$headers{Cookie} = $o{cookie} if defined $o{cookie};
	$headers{Authorization} = "Bearer $o{bearer}" if defined $o{bearer};
	%headers = (%headers, %{ $o{headers} // {} });
	my %args;
	if (exists $o{json}) {
		$args{content} = ref $o{json} ? json_encode($o{json}) : $o{json};
		$headers{'Content-Type'} //= 'application/json';
	} elsif (exists $o{body}) {
		$args{content} = $o{body};
	}
	$args{headers} = \%headers;
	my $t0 = time;
	my $r = $ua->request($method, base_url() . $path, \%args);
	my $res = _result($r->{status}, $r->{reason}, $r->{headers}, $r->{content});
	$res->{elapsed} = time - $t0;
	_sensitive_http($method, $path, $o{json}, $res) if test_archive();
	return $res;
}

sub _parse_raw($raw) {
	my ($head, $body) = split /\r\n\r\n/, $raw, 2;
	return { status => 0, headers => {}, body => '', raw => $raw } unless defined $head && $head =~ m{^HTTP/\d\.\d (\d{3})\s*(.*)};
	my ($status, $reason) = ($1, $2);
	my %h;
	for my $line (split /\r\n/, $head) {
		next unless $line =~ /^([^:\s]+):\s*(.*)$/;
		my $k = lc $1;
		$h{$k} = exists $h{$k} ? "$h{$k}, $2" : $2;
	}
	$body //= '';
	if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
		my $out = '';
		while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
			my $n = hex $1;
			last if $n == 0;
			$out .= substr($body, 0, $n, '');
			$body =~ s/^\r\n//;
		}
		$body = $out;
	}
	my $res = _result($status, $reason, \%h, $body);
	$res->{raw} = $raw;
	return $res;
}

# Sends bytes as they are over TLS and reads until the server closes (or the
# timeout). Returns the parsed first response plus raw, closed, timed_out.
sub raw_request($bytes, %o) {
	my $timeout = $o{timeout} // 10;
	my $t0 = time;
	my $s = IO::Socket::SSL->new(PeerHost => '127.0.0.1', PeerPort => https_port(),
	    SSL_verify_mode => 0, Timeout => $timeout)
	    or return { status => 0, error => "connect: $! " . ($IO::Socket::SSL::SSL_ERROR // ''),
	    headers => {}, body => '' };
	my $off = 0;
	while ($off < length $bytes) {
		my $w = syswrite($s, $bytes, 65536, $off);
		last unless defined $w && $w > 0;   # the server may answer and close early
		$off += $w;
	}
	my ($raw, $closed, $timed_out) = ('', 0, 0);
	my $sel = IO::Select->new($s);
	while (1) {
		my $left = $t0 + $timeout - time;
		if ($left <= 0) { $timed_out = 1; last }
		# SSL may hold decrypted bytes the kernel no longer reports
		next unless $s->pending || $sel->can_read($left);
		my $n = sysread($s, my $chunk, 65536);
		if (!defined $n) {
			next if $! == EAGAIN || $! == EINTR;
			$closed = 1;
			last;
		}
		if ($n == 0) { $closed = 1; last }
		$raw .= $chunk;
	}
	close $s;
	my $res = _parse_raw($raw);
	@$res{qw(closed timed_out elapsed written)} = ($closed, $timed_out, time - $t0, $off);
	return $res;
}

sub _short($s) {
	$s //= '';
	return length $s > 600 ? substr($s, 0, 600) . '...' : $s;
}

# Checks the SPEC §5 error envelope. $code: a string, an arrayref of
# acceptable codes, or undef for any snake_case code; $status: a number or an
# arrayref. Returns true when every part holds.
sub check_error($res, $status, $code, $name) {
	my @st = ref $status ? @$status : ($status);
	my @codes = ref $code ? @$code : defined $code ? ($code) : ();
	my $ok = 1;
	my $j = $res->{json};
	my $rid = $res->{headers}{'x-request-id'};
	$ok &= Test::More::ok((grep { $_ == $res->{status} } @st),
	    "$name: status $res->{status} is " . join('/', @st));
	$ok &= Test::More::like($res->{headers}{'content-type'} // '', qr{^application/json}i,
	    "$name: JSON content type");
	$ok &= Test::More::ok(ref $j eq 'HASH' && ref $j->{error} eq 'HASH', "$name: has an error object");
	my $e = ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error} : {};
	$ok &= Test::More::ok(defined $e->{code} && !ref $e->{code} && $e->{code} =~ /^[a-z][a-z0-9_]*$/
	    && (!@codes || grep { $_ eq $e->{code} } @codes),
	    "$name: error.code " . ($e->{code} // 'undef') . ' is ' . (@codes ? join('/', @codes) : 'snake_case'));
	$ok &= Test::More::ok(defined $e->{message} && !ref $e->{message} && length $e->{message},
	    "$name: error.message is a non-empty string");
	$ok &= Test::More::ok(ref $j eq 'HASH' && defined $j->{requestId} && length $j->{requestId},
	    "$name: requestId present");
	$ok &= Test::More::is($rid, (ref $j eq 'HASH' ? $j->{requestId} : undef),
	    "$name: X-Request-Id header equals requestId");
	unless ($ok) {
		Test::More::diag("$name: headers: " . join(', ', map { "$_: $res->{headers}{$_}" } sort keys %{ $res->{headers} }));
		Test::More::diag("$name: body: " . _short($res->{body}));
	}
	return $ok;
}

# ---------------------------------------------------------------- MariaDB

sub mysql(@sql) {
	my $sock = var_dir() . '/run/mysqld.sock';
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-N', '-B', 'opsd', '-e', join(";\n", @sql)],
	    timeout => 60, tag => 'mysql');
	if ($r->{rc} != 0) {
		Test::More::diag("mysql(@sql) failed rc=$r->{rc}: $r->{err}");
		return undef;
	}
	return $r->{out};
}

sub _lib_sh_function(@candidates) {
	my $lib = _slurp(repo_root() . '/script/lib.sh') // return undef;
	for my $f (@candidates) {
		return $f if $lib =~ /^\s*(?:function\s+)?\Q$f\E\s*\(\s*\)/m;
	}
	return undef;
}

# Runs one function of script/lib.sh with $OPSD_VAR as its argument (the
# lib's convention: mysql_stop VAR, mysql_start VAR).
sub _lib_sh($fn) {
	my $script = 'source script/lib.sh && ' . $fn . ' "$OPSD_VAR"';
	return run_cmd(cmd => ['bash', '-c', $script], env => stack()->{env}, timeout => 120,
	    tag => "lib-$fn");
}

# Stops the private MariaDB (not the rest of the stack). Remembers the exact
# command line of the running mariadbd so start_mysql can bring the same one
# back when script/lib.sh has no function for it.
sub stop_mysql() {
	my $pid = mysqld_pid() or croak 'stop_mysql: no run/mysqld.pid';
	my $argv = _slurp("/proc/$pid/cmdline");
	stack()->{mysqld_argv} = [split /\0/, $argv] if $argv;
	stack()->{mysqld_cwd} = readlink("/proc/$pid/cwd");
	if (my $f = _lib_sh_function(qw(mysql_stop))) {
		my $r = _lib_sh($f);
		Test::More::diag("lib.sh $f failed (rc=$r->{rc}): $r->{err}") if $r->{rc} != 0;
	} else {
		kill 'TERM', $pid;
	}
	my $gone = wait_until(60, sub { !pid_alive($pid) }, 0.1);
	Test::More::diag("mariadbd $pid still running after stop_mysql") unless $gone;
	return $gone;
}

sub _mysql_pings() {
	my $sock = var_dir() . '/run/mysqld.sock';
	return 0 unless -S $sock;
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-N', '-e', 'SELECT 1'],
	    timeout => 10, tag => 'mysql-ping');
	return $r->{rc} == 0;
}

sub start_mysql() {
	if (my $f = _lib_sh_function(qw(mysql_start))) {
		my $r = _lib_sh($f);
		Test::More::diag("lib.sh $f failed (rc=$r->{rc}): $r->{err}") if $r->{rc} != 0;
	} else {
		my $argv = stack()->{mysqld_argv} or croak 'start_mysql: stop_mysql first';
		my $log = var_dir() . '/log/mysqld.log';
		my $pid = fork // croak "fork: $!";
		if ($pid == 0) {
			# double fork: mariadbd must not stay our child (a zombie after stop)
			setsid();
			my $p2 = fork // _exit(1);
			_exit(0) if $p2;
			chdir(stack()->{mysqld_cwd} // '/');
			open STDIN, '<', '/dev/null';
			open STDOUT, '>>', $log;
			open STDERR, '>>', $log;
			exec { $argv->[0] } @$argv or _exit(127);
		}
		waitpid($pid, 0);
	}
	my $up = wait_until(60, \&_mysql_pings, 0.2);
	Test::More::diag('MariaDB did not answer after start_mysql') unless $up;
	return $up;
}

# ---------------------------------------------------------------- FastCGI

use constant {
	FCGI_BEGIN_REQUEST => 1, FCGI_ABORT_REQUEST => 2, FCGI_END_REQUEST => 3,
	FCGI_PARAMS => 4, FCGI_STDIN => 5, FCGI_STDOUT => 6, FCGI_STDERR => 7,
};

# One record; content longer than 65535 must be split by the caller.
# %o: version, pad, declared_length (lie about the content length).
sub fcgi_record($type, $id, $content, %o) {
	my $len = $o{declared_length} // length $content;
	my $pad = $o{pad} // 0;
	return pack('CCnnCx', $o{version} // 1, $type, $id, $len, $pad) . $content . ("\0" x $pad);
}

sub _nv_len($n, $long = 0) { return $n < 128 && !$long ? pack('C', $n) : pack('N', $n | 0x80000000) }

# One name-value pair (FastCGI 1.0 §3.4). %o: name_len / value_len declare a
# length other than the real one; long_name / long_value force the 4-byte form.
sub fcgi_nv($name, $value, %o) {
	return _nv_len($o{name_len} // length $name, $o{long_name})
	    . _nv_len($o{value_len} // length $value, $o{long_value}) . $name . $value;
}

sub fcgi_begin($id = 1, $role = 1, $flags = 0) {
	return fcgi_record(FCGI_BEGIN_REQUEST, $id, pack('nCx5', $role, $flags));
}

# A PARAMS stream from pairs (an arrayref keeps the order), terminated.
sub fcgi_params($id, $pairs) {
	my @p = ref $pairs eq 'HASH' ? %$pairs : @$pairs;
	my $body = '';
	while (@p) { my ($k, $v) = splice @p, 0, 2; $body .= fcgi_nv($k, $v) }
	my $out = '';
	while (length $body) { $out .= fcgi_record(FCGI_PARAMS, $id, substr($body, 0, 65535, '')) }
	return $out . fcgi_record(FCGI_PARAMS, $id, '');
}

# Sends bytes to opsd's own socket (bypassing nginx), half-closes, and reads
# records until END_REQUEST, EOF or the timeout. Returns {connected, closed,
# timed_out, end (app_status, protocol_status), stdout, stderr, elapsed}.
sub fcgi_exchange($bytes, %o) {
	my $timeout = $o{timeout} // 5;
	my $path = $o{socket} // var_dir() . '/run/opsd.sock';
	my $t0 = time;
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
	    or return { connected => 0, error => "connect $path: $!" };
	my $off = 0;
	while ($off < length $bytes) {
		my $w = syswrite($s, $bytes, 65536, $off);
		last unless defined $w && $w > 0;
		$off += $w;
	}
	shutdown($s, SHUT_WR) unless $o{keep_open};
	my %r = (connected => 1, closed => 0, timed_out => 0, stdout => '', stderr => '', written => $off);
	my $buf = '';
	my $sel = IO::Select->new($s);
	READ: while (1) {
		my $left = $t0 + $timeout - time;
		if ($left <= 0) { $r{timed_out} = 1; last }
		next unless $sel->can_read($left);
		my $n = sysread($s, my $chunk, 65536);
		if (!defined $n) { next if $! == EINTR; $r{closed} = 1; $r{error} = "$!"; last }
		if ($n == 0) { $r{closed} = 1; last }
		$buf .= $chunk;
		while (length $buf >= 8) {
			my ($ver, $type, $id, $len, $pad) = unpack('CCnnC', $buf);
			last if length $buf < 8 + $len + $pad;
			my $content = substr($buf, 8, $len);
			substr($buf, 0, 8 + $len + $pad, '');
			if ($type == FCGI_STDOUT) { $r{stdout} .= $content }
			elsif ($type == FCGI_STDERR) { $r{stderr} .= $content }
			elsif ($type == FCGI_END_REQUEST) {
				my ($app, $proto) = unpack('NC', $content);
				$r{end} = { app_status => $app, protocol_status => $proto };
				last READ;
			} else { push @{ $r{other} }, $type }
		}
	}
	close $s;
	$r{elapsed} = time - $t0;
	if ($r{stdout} =~ /^Status:\s*(\d{3})/mi) { $r{status} = $1 + 0 }
	elsif (length $r{stdout}) { $r{status} = 200 }
	return \%r;
}

# ---------------------------------------------------------------- env files

# KEY=VALUE lines (export prefix, quotes) as opsd reads them.
sub parse_env_file($path) {
	my $s = _slurp($path) // return undef;
	my %e;
	for my $line (split /\n/, $s) {
		next if $line =~ /^\s*(?:#|$)/;
		next unless $line =~ /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
		my ($k, $v) = ($1, $2);
		$v =~ s/\s+$//;
		if ($v =~ /^"(.*)"$/) { $v = $1; $v =~ s/\\(.)/$1/g }
		elsif ($v =~ /^'(.*)'$/) { $v = $1 }
		$e{$k} = $v;
	}
	return \%e;
}

# ---------------------------------------------------------------- identity (issue 3)

use Digest::SHA qw(hmac_sha256 sha256_hex);
use MIME::Base64 qw(encode_base64url decode_base64url);

use constant SESSION_COOKIE => '__Host-opsd_session';

sub admin_email() { return ADMIN_EMAIL }
sub admin_password() { return ADMIN_PASSWORD }
# The SESSION_SECRET the running stack was (re)started with (undef when the
# test removed it and script/server made $OPSD_VAR/session-secret).
sub session_secret() {
	my $s = stack()->{env}{SESSION_SECRET};
	return $s if defined $s;
	my $f = _slurp(var_dir() . '/session-secret');
	return defined $f ? (split /\n/, $f)[0] : undef;
}

# The permissions of each role, as issue 3's contract defines them (org_users.manage:
# issue 6, /orgs/:orgId/users).
my @PERMS = qw(legal.publish legal.report compliance.read compliance.strip_pii
	compliance.legal_hold compliance.archive compliance.export migration.run security.read
	security.sessions_flush security.blocklist audit.read audit.verify email.send_test email.outbox
	users.read users.manage orgs.read orgs.manage tenant.read tenant.write system.status
	org_users.manage);
sub contract_permissions() { return sort @PERMS }
sub contract_roles() {
	my @compliance = qw(compliance.read compliance.strip_pii compliance.legal_hold compliance.archive
	    compliance.export legal.report audit.read tenant.read);
	my %r = (
		superadmin => [@PERMS],
		platform_admin => [qw(legal.publish legal.report users.read users.manage orgs.read orgs.manage
		    email.send_test email.outbox system.status tenant.read tenant.write org_users.manage)],
		compliance => [@compliance],
		compliance_officer => [@compliance, 'audit.verify'],
		security_admin => [qw(security.read security.sessions_flush security.blocklist audit.read
		    audit.verify compliance.read compliance.strip_pii compliance.legal_hold compliance.archive
		    compliance.export users.read orgs.read tenant.read system.status)],
		org_admin => [qw(tenant.read tenant.write orgs.read users.read org_users.manage)],
		member => [qw(tenant.read)],
	);
	return { map { $_ => [sort @{ $r{$_} }] } keys %r };
}

# Stops the stack with `script/server stop` and starts it again on the same
# OPSD_VAR (same database, same $OPSD_VAR/session-secret, same port).
# env => {VAR => value} changes variables for this and later starts (undef
# removes one). Dies when the stack does not come back.
sub restart_stack(%o) {
	my $st = stack();
	croak 'restart_stack: the stack is not running' unless $st->{started} && !$st->{stopped};
	my @pids = grep { $_ } (master_pid(), nginx_pid(), mysqld_pid(), worker_pids(), jobs_pid());
	my $stop = run_cmd(cmd => [@SERVER_CMD, 'stop'], env => $st->{env}, tag => 'server-restart-stop',
	    timeout => 120);
	Test::More::is($stop->{rc}, 0, 'restart_stack: script/server stop exits 0')
	    or Test::More::diag("stop stdout:\n$stop->{out}\nstop stderr:\n$stop->{err}");
	my $gone = wait_until(30, sub { !grep { pid_alive($_) } @pids }, 0.1);
	Test::More::ok($gone, 'restart_stack: opsd, nginx and MariaDB stopped');
	unless ($gone) {
		my @left = grep { pid_alive($_) } @pids;
		kill 'TERM', @left;
		wait_until(10, sub { !grep { pid_alive($_) } @left }, 0.1);
		kill 'KILL', grep { pid_alive($_) } @left;
	}
	eval { _archive_logs('restart_stack'); 1 } or Test::More::diag("archiving the logs failed: $@");
	my %env = (%{ $st->{env} }, %{ $o{env} // {} });
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	$st->{env} = \%env;
	undef $SHARED_UA;   # its kept-alive connection went with nginx
	my $r = run_cmd(cmd => [@SERVER_CMD, 'start'], env => \%env, tag => 'server-restart-start',
	    timeout => $ENV{OPSD_TEST_START_TIMEOUT} || 600);
	_sensitive_stack();
	my @ready = grep { m{^opsd ready: https://127\.0\.0\.1:\d+/$} } split /\n/, $r->{out};
	my $ok = Test::More::ok($r->{rc} == 0 && !$r->{timed_out} && @ready == 1
	    && $ready[0] eq "opsd ready: https://127.0.0.1:$st->{port}/",
	    sprintf('restart_stack: script/server start is ready again (rc=%d, %.1fs)', $r->{rc}, $r->{elapsed}));
	unless ($ok) {
		Test::More::diag("script/server start stdout:\n" . _tail($r->{out}, 40));
		Test::More::diag("script/server start stderr:\n" . _tail($r->{err}, 40));
		diag_logs();
		die "the stack did not restart; see the diagnostics above\n";
	}
	$st->{master_at_start} = master_pid();
	return $st;
}

# Set-Cookie header values of a response, one per cookie.
sub set_cookies($res) { return @{ $res->{set_cookie} // [] } }

# The __Host-opsd_session Set-Cookie of a response, parsed: {raw, value,
# attrs => {lc name => value (1 for flags)}, names => [attribute names as
# sent]}; undef when there is none.
sub session_set_cookie($res) {
	for my $raw (set_cookies($res)) {
		my ($pair, @attrs) = split /;\s*/, $raw;
		next unless defined $pair && $pair =~ /^\s*\Q${\SESSION_COOKIE}\E=(.*)$/;
		my %c = (raw => $raw, value => $1, attrs => {}, names => []);
		for my $a (@attrs) {
			my ($k, $v) = split /=/, $a, 2;
			$k =~ s/^\s+|\s+$//g;
			push @{ $c{names} }, $k;
			$c{attrs}{ lc $k } = $v // 1;
		}
		return \%c;
	}
	return undef;
}

sub session_cookie_header($value) { return SESSION_COOKIE . "=$value" }

# A cookie value in the contract's format: b64url(id) "." b64url(HMAC-SHA256(
# secret, "session" || id)), both unpadded.
sub make_session_cookie($secret, $id) {
	return encode_base64url($id) . '.' . encode_base64url(hmac_sha256('session' . $id, $secret));
}

# The 32 id bytes of a cookie value (undef when it has no id part).
sub cookie_session_id($cookie) {
	return undef unless defined $cookie && $cookie =~ /^([A-Za-z0-9_-]+)\./;
	return decode_base64url($1);
}

# hex(sha256(id)): the sessions.id_hash of a cookie, for
# "WHERE id_hash = UNHEX('...')".
sub session_row_hash($cookie) {
	my $id = cookie_session_id($cookie) // return undef;
	return sha256_hex($id);
}

# POST /auth/login. Returns {status, res, email, password} plus, on success,
# cookie (the value), csrf, user and expiresAt; cookie is undef otherwise.
sub login($email, $password, %o) {
	sensitive("password given to login($email)", $password);
	my $r = http(POST => '/auth/login', json => { email => $email, password => $password }, %o);
	my %s = (status => $r->{status}, res => $r, email => $email, password => $password);
	my $c = session_set_cookie($r);
	if ($r->{status} == 200 && ref $r->{json} eq 'HASH' && $c && length $c->{value}) {
		$s{cookie} = $c->{value};
		$s{csrf} = $r->{json}{csrfToken};
		$s{user} = $r->{json}{user};
		$s{expiresAt} = $r->{json}{expiresAt};
	}
	return \%s;
}

# The superadmin's session, logged in once and kept; fresh => 1 logs in again.
sub admin_session(%o) {
	my $st = stack();
	if ($o{fresh} || !$st->{admin_session} || !$st->{admin_session}{cookie}) {
		my $s = login(ADMIN_EMAIL, ADMIN_PASSWORD);
		Test::More::diag("admin login failed: $s->{status} $s->{res}{body}") unless $s->{cookie};
		$st->{admin_session} = $s;
	}
	return $st->{admin_session};
}

# Runs build/$OPSD_BUILD/opsctl with OPSD_ENV_FILE=$OPSD_VAR/opsd.env. An
# optional leading hashref: {stdin => $text, env => {...}, timeout => s}.
# Returns (exit code, stdout, stderr).
sub opsctl(@args) {
	my %o = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
	my %env = (_scrub_env(%ENV), OPSD_ENV_FILE => var_dir() . '/opsd.env', %{ $o{env} // {} });
	state $n = 0;
	$n++;
	my $in;
	if (defined $o{stdin}) {
		$in = stack()->{tmp} . "/opsctl-stdin-$n";
		_spit($in, $o{stdin}, 0600);
	}
	my $r = run_cmd(cmd => [opsctl_bin(), @args], env => \%env, tag => "opsctl$n",
	    stdin_file => $in, timeout => $o{timeout} // 120);
	unlink $in if defined $in;
	return ($r->{rc}, $r->{out}, $r->{err});
}

sub _random_string($n, $chars = ['A' .. 'Z', 'a' .. 'z', '0' .. '9']) {
	return join '', map { $chars->[int rand @$chars] } 1 .. $n;
}

# POST /users as the superadmin (or as => $session). role => R or roles =>
# [...], org => $id (or an org hash), name, email, password, service.
# Returns {id (undef on failure), email, password, name, roles, orgId, user,
# res}. Emails are u-<role>-<n>@example.test, passwords 24 random chars.
sub create_user(%o) {
	my $st = stack();
	my @roles = $o{roles} ? @{ $o{roles} } : ($o{role} // 'member');
	my $n = ++$st->{user_seq};
	my $org = ref $o{org} eq 'HASH' ? $o{org}{id} : $o{org};
	my %u = (
		email => $o{email} // sprintf('u-%s-%d@example.test', $roles[0] =~ tr/_/-/r, $n),
		password => $o{password} // ('Pw-' . _random_string(24)),
		name => $o{name} // "Test Person $n",
		roles => \@roles,
		orgId => $org,
	);
	sensitive("password of create_user $u{email}", $u{password});
	my %body = (email => $u{email}, name => $u{name}, password => $u{password}, roles => \@roles);
	$body{orgId} = $org if defined $org;
	$body{service} = $o{service} ? JSON::PP::true : JSON::PP::false if exists $o{service};
	my $r = http(POST => '/users', json => \%body, session => $o{as} // admin_session());
	if ($r->{status} == 401 && !$o{as}) {
		$r = http(POST => '/users', json => \%body, session => admin_session(fresh => 1));
	}
	$u{res} = $r;
	if ($r->{status} == 201 && ref $r->{json} eq 'HASH') {
		$u{user} = $r->{json};
		$u{id} = $r->{json}{id};
	} elsif (!$o{quiet}) {
		Test::More::diag("create_user(@roles) failed: $r->{status} $r->{body}");
	}
	return \%u;
}

# POST /orgs as the superadmin (or as => $session). Returns the org JSON
# ({id, name, slug, ...}, id undef on failure) with res.
sub create_org(%o) {
	my $st = stack();
	my $n = ++$st->{org_seq};
	my %body = (name => $o{name} // "Test Org $n", slug => $o{slug} // sprintf('org-%d-%s', $n, lc _random_string(6)));
	my $r = http(POST => '/orgs', json => \%body, session => $o{as} // admin_session());
	if ($r->{status} == 401 && !$o{as}) {
		$r = http(POST => '/orgs', json => \%body, session => admin_session(fresh => 1));
	}
	my %org = (%body, res => $r);
	if ($r->{status} == 201 && ref $r->{json} eq 'HASH') {
		%org = (%org, %{ $r->{json} });
	} else {
		$org{id} = undef;
		Test::More::diag("create_org failed: $r->{status} $r->{body}") unless $o{quiet};
	}
	return \%org;
}

# A random id shaped like a UUIDv7 (time-ordered prefix, version 7, variant 10).
sub uuid7_like() {
	my $ms = sprintf('%012x', int(time * 1000));
	return sprintf('%s-%s-7%03x-%x%03x-%012x', substr($ms, 0, 8), substr($ms, 8, 4), int rand 0x1000,
	    8 + int rand 4, int rand 0x1000, int(rand 0x1000000) * 0x1000000 + int rand 0x1000000);
}

sub uri_escape_all($s) {
	$s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
	return $s;
}

# The opsd database as SQL text (one INSERT per row, binary columns in hex),
# or undef when no dump tool is installed.
sub db_dump() {
	my $sock = var_dir() . '/run/mysqld.sock';
	for my $tool (qw(mariadb-dump mysqldump)) {
		my ($bin) = grep { -x "$_/$tool" } split /:/, $ENV{PATH};
		next unless $bin;
		my $r = run_cmd(cmd => ["$bin/$tool", '--no-defaults', "--socket=$sock", '-uroot',
		    '--skip-extended-insert', '--hex-blob', '--skip-comments', 'opsd'], timeout => 120, tag => 'db-dump');
		return $r->{out} if $r->{rc} == 0;
		Test::More::diag("$tool failed (rc=$r->{rc}): $r->{err}");
		return undef;
	}
	return undef;
}

# Which log files (every file under log/) contain which of the strings:
# {label => string, ...} → list of "log/<file>: <label>".
sub find_in_logs($needles) {
	my $dir = var_dir() . '/log';
	my @hits;
	opendir(my $dh, $dir) or return ("cannot open $dir");
	for my $f (sort grep { -f "$dir/$_" } readdir $dh) {
		my $s = _slurp("$dir/$f") // next;
		for my $label (sort keys %$needles) {
			my $v = $needles->{$label};
			next unless defined $v && length $v;
			push @hits, "log/$f: $label" if index($s, $v) >= 0;
		}
	}
	return @hits;
}

# ---------------------------------------------------------------- the end

sub _check_json_logs() {
	my $var = var_dir();
	opendir(my $dh, "$var/log") or return Test::More::fail("no $var/log directory");
	my @files = sort grep { /^opsd\.log/ || $_ eq 'nginx-access.log' } readdir $dh;
	Test::More::ok((grep { $_ eq 'opsd.log' } @files), 'log/opsd.log exists');
	for my $f (@files) {
		my ($n, @bad) = (0);
		for my $line (split /\n/, _slurp("$var/log/$f") // '') {
			$n++;
			my $v = json_decode($line);
			push @bad, "line $n: " . _short($line) unless ref $v eq 'HASH';
		}
		Test::More::ok(!@bad, "every line of log/$f is a JSON object ($n lines)")
		    or Test::More::diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
	}
}

sub _check_sanitizers() {
	my $before = $STACK->{sanitizer_before} // {};
	my $now = _sanitizer_files();
	my @new = sort grep { !$before->{$_} } keys %$now;
	# without log_path the report lands on opsd's stderr, i.e. under log/
	my @in_logs;
	if (opendir(my $dh, var_dir() . '/log')) {
		for my $f (sort grep { !/^\./ } readdir $dh) {
			my $s = _slurp(var_dir() . "/log/$f") // next;
			push @in_logs, "log/$f" if $s =~ /ERROR: (?:Address|Leak|Undefined)Sanitizer|runtime error: /;
		}
	}
	my $ok = Test::More::ok(!@new && !@in_logs, 'no sanitizer report (ASan/UBSan/LSan)');
	unless ($ok) {
		for my $f (@new) { Test::More::diag("---- $f ----\n" . _tail(_slurp($f), 60)) }
		for my $f (@in_logs) {
			my $s = _slurp(var_dir() . "/$f");
			my $i = $s =~ /(ERROR: \w+Sanitizer|runtime error: )/ ? $-[0] : 0;
			Test::More::diag("---- $f ----\n" . substr($s, $i > 2000 ? $i - 2000 : 0, 8000));
		}
	}
}

sub _stop_stack($quiet) {
	return unless $STACK && $STACK->{started} && !$STACK->{stopped};
	$STACK->{stopped} = 1;
	my @pids = grep { $_ } (master_pid(), nginx_pid(), mysqld_pid(), worker_pids(), jobs_pid());
	my $r = run_cmd(cmd => [@SERVER_CMD, 'stop'], env => $STACK->{env}, tag => 'server-stop',
	    timeout => 120);
	my $gone = wait_until(15, sub { !grep { pid_alive($_) } @pids }, 0.1);
	my @left = grep { pid_alive($_) } @pids;
	# never leave daemons behind, whatever stop did
	kill 'TERM', @left if @left;
	if (@left && !wait_until(10, sub { !grep { pid_alive($_) } @left }, 0.1)) {
		kill 'KILL', grep { pid_alive($_) } @left;
	}
	eval { _archive_logs($quiet ? 'cleanup' : 'stop'); 1 } or Test::More::diag("archiving the logs failed: $@");
	return if $quiet;
	Test::More::is($r->{rc}, 0, 'script/server stop exits 0')
	    or Test::More::diag("stop stdout:\n$r->{out}\nstop stderr:\n$r->{err}");
	Test::More::ok($gone, 'script/server stop leaves no opsd/nginx/mariadbd process')
	    or Test::More::diag('still running: ' . join(' ', map { "$_ (" . (proc_title($_) // '?') . ')' } @left));
}

# Stops the stack, checks logs and sanitizer reports, ends the plan.
sub finish() {
	if ($STACK && $STACK->{started}) {
		_stop_stack(0);
		_check_json_logs();
		_check_sanitizers();
		$STACK->{finished} = 1;
	}
	diag_logs() unless Test::More->builder->is_passing;
	Test::More::done_testing();
}

END {
	if ($$ == $OWNER && $STACK) {
		my $exit = $?;
		my $died = !$STACK->{finished};
		_stop_stack(1) if $STACK->{started};
		my $passing = Test::More->builder->is_passing && !$died && $exit == 0;
		if ($passing && !$ENV{OPSD_TEST_KEEP}) {
			remove_tree($STACK->{tmp}, { safe => 0 });
		} else {
			diag_logs() if $died && $STACK->{started};
			Test::More::diag("test stack kept in $STACK->{tmp} (OPSD_VAR=$STACK->{var})");
		}
		$? = $exit;
	}
}

# ---------------------------------------------------------------- email (issue 4)
#
# A real SMTP peer (t/lib/smtp_peer.py on Debian's python3-aiosmtpd) and a
# throwaway CA for its certificate. The peer is started before the stack (the
# stack needs its port):
#
#   my $ca = make_test_ca();
#   my $peer = start_smtp_peer(tls => $ca, auth => 'mailer:pw');
#   start_stack(env => smtp_env($peer, $ca, SMTP_USER => 'mailer', SMTP_PASS => 'pw'));
#   ... $peer->wait_messages(1, 15); my @m = $peer->messages; ...
#
# Peers are stopped at the end of the test file; their files (and the CA) are
# removed when every test passed, kept otherwise (the path is printed).

push @EXPORT, qw(make_test_ca start_smtp_peer smtp_env smtp_python email_tmp_dir
	outbox_row outbox_rows outbox_count audit_rows parse_mail);

my $EMAIL_TMP;

# A directory for CA files and peer spools: 0755, so www-data (opsd's jobs
# process) can read the CA certificate in it.
sub email_tmp_dir() {
	return $EMAIL_TMP if $EMAIL_TMP;
	$EMAIL_TMP = tempdir('opsd-smtp-XXXXXX', TMPDIR => 1, CLEANUP => 0);
	chmod 0755, $EMAIL_TMP;
	return $EMAIL_TMP;
}

# Debian's interpreter (python3-aiosmtpd lives in its dist-packages; a pyenv
# or venv python3 first on PATH does not see it). OPSD_TEST_PYTHON overrides.
sub smtp_python() {
	return $ENV{OPSD_TEST_PYTHON} if $ENV{OPSD_TEST_PYTHON};
	return -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
}

# make_test_ca($dir): a throwaway CA (ca.crt, ca.key) and a server key and
# certificate it signs for CN=localhost with SAN DNS:localhost, IP:127.0.0.1
# (server.crt, server.key). names => [...] replaces the SAN entries (e.g. a
# certificate for another host). Returns {dir, ca, ca_key, cert, key}; dies
# when openssl fails.
sub make_test_ca($dir = undef, %o) {
	state $seq = 0;
	$dir //= email_tmp_dir() . '/ca' . ++$seq;
	unless (-d $dir) { mkdir $dir or croak "mkdir $dir: $!" }
	chmod 0755, $dir;
	my @san = $o{names} ? @{ $o{names} } : ('DNS:localhost', 'IP:127.0.0.1');
	my $cn = $o{cn} // 'localhost';
	_spit("$dir/server.ext", join("\n", 'subjectAltName=' . join(',', @san), 'basicConstraints=critical,CA:FALSE',
	    'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', ''));
	my @ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes');
	my @steps = (
		['openssl', 'req', '-x509', @ec, '-keyout', "$dir/ca.key", '-out', "$dir/ca.crt", '-days', '2',
		    '-subj', '/CN=opsd throwaway test CA ' . int(rand 1e9),
		    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
		['openssl', 'req', @ec, '-keyout', "$dir/server.key", '-out', "$dir/server.csr", '-subj', "/CN=$cn"],
		['openssl', 'x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
		    '-CAcreateserial', '-out', "$dir/server.crt", '-days', '2', '-extfile', "$dir/server.ext"],
		['openssl', 'verify', '-CAfile', "$dir/ca.crt", "$dir/server.crt"],
	);
	for my $cmd (@steps) {
		my $r = run_cmd(cmd => $cmd, dir => $dir, tag => 'openssl', timeout => 60);
		croak "make_test_ca: @$cmd failed (rc=$r->{rc}): $r->{err}" if $r->{rc} != 0;
	}
	chmod 0600, "$dir/ca.key", "$dir/server.key";
	chmod 0644, "$dir/ca.crt", "$dir/server.crt";
	return { dir => $dir, ca => "$dir/ca.crt", ca_key => "$dir/ca.key", cert => "$dir/server.crt",
	    key => "$dir/server.key" };
}

# start_smtp_peer(%o): tls => $ca (from make_test_ca; or cert => F, key => F)
# for STARTTLS required, no_starttls => 1 (a plain peer), auth => 'USER:PASS',
# refuse_rcpt => ADDR or [...] (550), tempfail_rcpt => ADDR or [...] (451),
# port => N (0: a free one), dir => DIR. Returns an OpsdTest::SmtpPeer;
# dies when the peer does not come up.
sub start_smtp_peer(%o) {
	sensitive('SMTP peer password', (split /:/, $o{auth}, 2)[1]) if defined $o{auth};
	my $peer = OpsdTest::SmtpPeer->_new(%o);
	$peer->start;
	return $peer;
}

# The stack's environment for a peer (SPEC §3 plus issue 4's contract):
# STARTTLS with the throwaway CA, test mode and the allowlist, 1 s backoff,
# 5 attempts. Later pairs override (undef removes a variable).
sub smtp_env($peer, $ca, %over) {
	my %e = (
		SMTP_SERVER => 'localhost',
		SMTP_PORT => $peer->port,
		SMTP_FROM => 'opsd@example.test',
		SMTP_SECURE => 'starttls',
		SMTP_TEST_MODE => 1,
		TEST_EMAIL_ALLOWLIST => 'allowed@example.test,@allowed.test',
		OPSD_SMTP_RETRY_BASE_S => 1,
		OPSD_SMTP_MAX_ATTEMPTS => 5,
	);
	$e{SMTP_CA_FILE} = $ca->{ca} if $ca;
	if (defined(my $a = $peer->{auth})) {
		my ($u, $p) = split /:/, $a, 2;
		@e{qw(SMTP_USER SMTP_PASS)} = ($u, $p);
	}
	%e = (%e, %over);
	return \%e;
}

sub _sql_str($s) {
	$s =~ s/\\/\\\\/g;
	$s =~ s/'/\\'/g;
	return "'$s'";
}

my @OUTBOX_COLS = qw(id kind to_addr subject status attempts next_attempt_at last_smtp_status last_error
	created_at sent_at updated_at due);

# email_outbox rows as hashes (id as the API's UUID string, NULL as undef,
# due = 1 when next_attempt_at <= now). $where is SQL after WHERE.
sub outbox_rows($where = '1') {
	my $sql = 'SELECT LOWER(INSERT(INSERT(INSERT(INSERT(HEX(id),21,0,\'-\'),17,0,\'-\'),13,0,\'-\'),9,0,\'-\')),'
	    . ' kind, to_addr, subject, status, attempts, next_attempt_at, last_smtp_status,'
	    . ' REPLACE(REPLACE(last_error, CHAR(9), \' \'), CHAR(10), \' \'), created_at, sent_at, updated_at,'
	    . ' next_attempt_at <= NOW(3)'
	    . " FROM email_outbox WHERE $where ORDER BY created_at, id";
	my $out = mysql($sql) // return ();
	my @rows;
	for my $line (split /\n/, $out) {
		my @v = split /\t/, $line, -1;
		my %r;
		@r{@OUTBOX_COLS} = map { $_ eq 'NULL' ? undef : $_ } @v;
		push @rows, \%r;
	}
	return @rows;
}

# One outbox row by its id (the UUID string the API returns), or undef.
sub outbox_row($id) {
	return undef unless defined $id && $id =~ /^[0-9a-fA-F-]{32,36}$/;
	(my $hex = $id) =~ s/-//g;
	my @r = outbox_rows("id = UNHEX('$hex')");
	return $r[0];
}

sub outbox_count() {
	my $n = mysql('SELECT COUNT(*) FROM email_outbox') // return -1;
	chomp $n;
	return $n + 0;
}

# audit_events rows of one action (all columns the table has, by name; NULL
# as undef); target_id => ID keeps those about one target.
sub audit_rows($action, %o) {
	my $sock = var_dir() . '/run/mysqld.sock';
	my $where = 'action = ' . _sql_str($action);
	if (defined $o{target_id}) {
		my $t = $o{target_id};
		$where .= ' AND (target_id = ' . _sql_str($t) . (($t =~ s/-//gr) =~ /^[0-9a-fA-F]{32}$/
		    ? " OR HEX(target_id) = '" . uc($t =~ s/-//gr) . "'" : '') . ')';
	}
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-B', 'opsd', '-e',
	    "SELECT * FROM audit_events WHERE $where ORDER BY 1"], timeout => 60, tag => 'mysql-audit');
	if ($r->{rc} != 0) {
		Test::More::diag("audit_rows($action) failed: $r->{err}");
		return ();
	}
	my ($head, @lines) = split /\n/, $r->{out};
	return () unless defined $head;
	my @names = split /\t/, $head;
	my @rows;
	for my $line (@lines) {
		my @v = split /\t/, $line, -1;
		my %row;
		@row{@names} = map { $_ eq 'NULL' ? undef : $_ } @v;
		push @rows, \%row;
	}
	return @rows;
}

# parse_mail($raw): a message as the peer received it, parsed:
# {raw, header_block, header_list => [[name, raw value]], headers => {lc name
# => value of its first occurrence, unfolded, RFC 2047 decoded}, header_count
# => {lc name => n}, body_raw, body (Content-Transfer-Encoding undone, charset
# decoded: a Perl string with \n line ends), crlf_only (every line ends in
# CRLF), max_line (longest line in octets without CRLF)}.
sub parse_mail($raw) {
	require Encode;
	require MIME::QuotedPrint;
	require MIME::Base64;
	my %m = (raw => $raw);
	my @lines = split /(?<=\n)/, $raw;
	$m{crlf_only} = (length $raw && !grep { !/\r\n\z/ } @lines) ? 1 : 0;
	$m{bare_lf} = ($raw =~ /(?<!\r)\n/) ? 1 : 0;
	$m{bare_cr} = ($raw =~ /\r(?!\n)/) ? 1 : 0;
	my $max = 0;
	for (@lines) { my $l = length(s/\r?\n\z//r); $max = $l if $l > $max }
	$m{max_line} = $max;
	my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
	$head //= '';
	$body //= '';
	$m{header_block} = $head;
	$m{body_raw} = $body;
	my @fields;
	for my $l (split /\r?\n/, $head) {
		if ($l =~ /^[ \t]/ && @fields) { $fields[-1][1] .= $l; next }   # unfold: drop the CRLF only
		if ($l =~ /^([!-9;-~]+):[ \t]*(.*)$/) { push @fields, [$1, $2] }
		else { push @{ $m{bad_header_lines} }, $l }
	}
	$m{header_list} = \@fields;
	for my $f (@fields) {
		my $k = lc $f->[0];
		$m{header_count}{$k}++;
		next if exists $m{headers}{$k};
		my $v = $f->[1];
		$v =~ s/\s+$//;
		my $d = eval { Encode::decode('MIME-Header', $v) } // $v;
		$m{headers}{$k} = $d;
		$m{headers_raw}{$k} = $v;
	}
	my $cte = lc($m{headers}{'content-transfer-encoding'} // '7bit');
	(my $b = $body) =~ s/\r\n/\n/g;
	if ($cte eq 'quoted-printable') { $b = MIME::QuotedPrint::decode_qp($b) }
	elsif ($cte eq 'base64') { $b = MIME::Base64::decode_base64($b) }
	my ($charset) = ($m{headers}{'content-type'} // '') =~ /charset="?([\w.-]+)"?/i;
	$m{body_octets} = $b;
	$m{body} = eval { Encode::decode($charset // 'UTF-8', $b, Encode::FB_CROAK()) };
	$m{body_decode_error} = $@ if !defined $m{body};
	return \%m;
}

package OpsdTest::SmtpPeer;

use v5.36;
use Carp qw(croak);
use POSIX qw(WNOHANG setsid _exit);
use Time::HiRes qw(time sleep);

my @PEERS;
my $PEER_OWNER = $$;

sub _new($class, %o) {
	my $dir = $o{dir};
	unless ($dir) {
		state $n = 0;
		$n++;
		$dir = OpsdTest::email_tmp_dir() . "/peer$n";
	}
	unless (-d $dir) { mkdir $dir or croak "mkdir $dir: $!" }
	my $self = bless { %o, dir => $dir, port => $o{port} // 0, pid => undef, starts => 0 }, $class;
	push @PEERS, $self;
	return $self;
}

sub port($self) { return $self->{port} }
sub dir($self) { return $self->{dir} }
sub pid($self) { return $self->{pid} }
sub running($self) { return $self->{pid} && OpsdTest::pid_alive($self->{pid}) ? 1 : 0 }

sub _as_list($v) { return !defined $v ? () : ref $v eq 'ARRAY' ? @$v : ($v) }

sub _argv($self) {
	my @a = (OpsdTest::smtp_python(), OpsdTest::repo_root() . '/t/lib/smtp_peer.py',
	    '--port', $self->{port}, '--dir', $self->{dir});
	if ($self->{no_starttls}) {
		push @a, '--no-starttls';
	} elsif (my $ca = $self->{tls}) {
		push @a, '--tls-cert', $ca->{cert}, '--tls-key', $ca->{key};
	} elsif ($self->{cert}) {
		push @a, '--tls-cert', $self->{cert}, '--tls-key', $self->{key};
	}
	push @a, '--auth', $self->{auth} if defined $self->{auth};
	push @a, '--refuse-rcpt', $_ for _as_list($self->{refuse_rcpt});
	push @a, '--tempfail-rcpt', $_ for _as_list($self->{tempfail_rcpt});
	return @a;
}

# Starts the peer (again: on the same port and directory, so earlier messages
# stay and numbering goes on). Dies when it is not ready within 20 s.
sub start($self) {
	croak 'smtp peer already running' if $self->running;
	my $n = ++$self->{starts};
	my ($out, $err) = ("$self->{dir}/peer-$n.out", "$self->{dir}/peer-$n.err");
	my @argv = $self->_argv;
	my ($port, $ready);
	for my $try (1 .. 5) {   # the old port may linger a moment after a stop
		unlink $out;
		my $pid = fork // croak "fork: $!";
		if ($pid == 0) {
			setsid();
			open STDIN, '<', '/dev/null';
			open STDOUT, '>', $out or _exit(127);
			open STDERR, '>', $err or _exit(127);
			exec { $argv[0] } @argv or do { print STDERR "exec $argv[0]: $!\n"; _exit(127) };
		}
		$self->{pid} = $pid;
		$ready = OpsdTest::wait_until(20, sub {
			my $s = OpsdTest::_slurp($out) // '';
			($port) = $s =~ /^port (\d+)$/m;
			return 1 if $s =~ /^ready$/m;
			return 1 unless waitpid($pid, WNOHANG) == 0;  # it died
			return 0;
		}, 0.05);
		last if $ready && $self->running;
		$self->_reap;
		last unless $self->{port};    # port 0 failing is not a lingering port
		sleep 0.5;
	}
	unless ($ready && $self->{pid} && $port) {
		my $e = OpsdTest::_slurp($err) // '';
		croak "smtp peer did not start (@argv): $e";
	}
	$self->{port} = $port + 0;
	my @shown = map { s/^([^:\s]+):.+$/$1:***/r } @argv[2 .. $#argv];   # no password in the TAP output
	Test::More::note("smtp peer pid $self->{pid} on 127.0.0.1:$port (@shown)");
	return $self;
}

sub _reap($self) {
	my $pid = $self->{pid} or return;
	if (waitpid($pid, WNOHANG) == 0) {
		kill 'TERM', $pid;
		my $end = time + 10;
		while (waitpid($pid, WNOHANG) == 0) {
			if (time > $end) { kill 'KILL', $pid; waitpid($pid, 0); last }
			sleep 0.02;
		}
	}
	$self->{pid} = undef;
}

# Stops the peer with SIGTERM (SIGKILL after 10 s); the port is free after.
sub stop($self) {
	$self->_reap;
	return $self;
}

# Messages received so far (in order): parse_mail() of each n.eml plus the
# peer's record: n, mail_from, rcpt_tos, auth_user, authenticated, tls,
# tls_version, helo.
sub messages($self) {
	opendir(my $dh, $self->{dir}) or return ();
	my @n = sort { $a <=> $b } map { /^(\d+)\.json$/ ? $1 : () } readdir $dh;
	my @m;
	for my $n (@n) {
		my $meta = OpsdTest::json_decode(OpsdTest::_slurp("$self->{dir}/$n.json") // '') // next;
		my $raw = OpsdTest::_slurp("$self->{dir}/$n.eml") // next;
		my $p = OpsdTest::parse_mail($raw);
		$p->{$_} = $meta->{$_} for keys %$meta;
		push @m, $p;
	}
	return @m;
}

sub count($self) {
	opendir(my $dh, $self->{dir}) or return 0;
	return scalar grep { /^\d+\.json$/ } readdir $dh;
}

# Messages with this envelope recipient (case-insensitive).
sub messages_to($self, $addr) {
	return grep { my $m = $_; grep { lc $_ eq lc $addr } @{ $m->{rcpt_tos} // [] } } $self->messages;
}

# Waits until at least $n messages (to => ADDR: to that recipient) arrived.
# Returns the messages (so far) in list context, true/false in scalar.
sub wait_messages($self, $n, $timeout = 15, %o) {
	my $get = sub { defined $o{to} ? $self->messages_to($o{to}) : $self->messages };
	OpsdTest::wait_until($timeout, sub { my @m = $get->(); @m >= $n }, 0.1);
	my @m = $get->();
	return wantarray ? @m : @m >= $n;
}

# The session events (events.jsonl): ehlo, starttls, auth (user, ok), mail,
# rcpt (code), data, listening, stopped; event => NAME keeps one kind.
sub events($self, %o) {
	my $s = OpsdTest::_slurp("$self->{dir}/events.jsonl") // '';
	my @e = grep { ref eq 'HASH' } map { OpsdTest::json_decode($_) } grep { length } split /\n/, $s;
	@e = grep { $_->{event} eq $o{event} } @e if $o{event};
	return @e;
}

# A few lines on the peer's state, for diag().
sub state_text($self) {
	my @m = $self->messages;
	my @e = $self->events;
	@e = @e[-15 .. -1] if @e > 15;
	my $err = OpsdTest::_slurp("$self->{dir}/peer-$self->{starts}.err") // '';
	my @l = split /\n/, $err;
	@l = @l[-10 .. -1] if @l > 10;
	return join("\n",
		sprintf('smtp peer port %d pid %s %s, dir %s, %d message(s)', $self->{port}, $self->{pid} // '-',
		    $self->running ? 'running' : 'stopped', $self->{dir}, scalar @m),
		(map { sprintf('  message %d: from %s to %s tls %s auth %s', $_->{n}, $_->{mail_from} // '?',
		    join(',', @{ $_->{rcpt_tos} // [] }), $_->{tls} ? 1 : 0, $_->{auth_user} // '-') } @m),
		'  last events:', (map { '    ' . OpsdTest::json_encode($_) } @e),
		(@l ? ('  stderr:', map { "    $_" } @l) : ()));
}

END {
	if ($$ == $PEER_OWNER) {
		my $exit = $?;
		$_->stop for grep { $_->{pid} } @PEERS;
		if ($EMAIL_TMP && -d $EMAIL_TMP) {
			if (Test::More->builder->is_passing && $exit == 0 && !$ENV{OPSD_TEST_KEEP}) {
				File::Path::remove_tree($EMAIL_TMP, { safe => 0 });
			} else {
				Test::More::diag("smtp peer files and test CA kept in $EMAIL_TMP");
			}
		}
		$? = $exit;
	}
}

package OpsdTest;

# ---------------------------------------------------------------- legal documents (issue 5)
#
#   my $r = legal_publish($admin, type => 'privacy', version => 'v1', content => $text);
#   my $s = legal_status($member);                  # GET /legal/acceptance/status
#   my $a = legal_accept($member, 'privacy', 'v1');  # POST /legal/acceptance

push @EXPORT, qw(rfc3339_at rfc3339_epoch legal_publish legal_accept legal_status legal_get
	legal_versions sha256_utf8);

use POSIX ();
use Time::Local ();

# RFC 3339 in UTC with whole seconds ("2030-01-02T03:04:05Z") of an epoch.
sub rfc3339_at($epoch) { return POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(int $epoch)) }

# The epoch (fractional) of an RFC 3339 date-time, or undef when it is not one.
sub rfc3339_epoch($s) {
	return undef unless defined $s && !ref $s
	    && $s =~ /^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?(?:([Zz])|([+-])(\d\d):(\d\d))$/;
	my $t = eval { Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) } // return undef;
	$t += $7 if defined $7;
	$t -= ($9 eq '-' ? -1 : 1) * ($10 * 3600 + $11 * 60) unless defined $8;
	return $t;
}

# Lower-case hex SHA-256 of a Perl string's UTF-8 bytes.
sub sha256_utf8($s) {
	require Encode;
	return sha256_hex(Encode::encode_utf8($s));
}

# POST /legal as $session with the given fields (booleans as JSON::PP true/
# false; notify => 1 is turned into true). bearer => T instead of a session.
sub legal_publish($session, %body) {
	my %o;
	$o{bearer} = delete $body{bearer} if exists $body{bearer};
	$body{notify} = $body{notify} ? JSON::PP::true : JSON::PP::false
	    if exists $body{notify} && !ref $body{notify} && $body{notify} =~ /^[01]?$/;
	return http(POST => '/legal', json => \%body, ($session ? (session => $session) : ()), %o);
}

# POST /legal/acceptance {type, version}.
sub legal_accept($session, $type, $version, %o) {
	return http(POST => '/legal/acceptance', json => { type => $type, version => $version },
	    session => $session, %o);
}

# GET /legal/acceptance/status.
sub legal_status($session, %o) {
	return http(GET => '/legal/acceptance/status', ($session ? (session => $session) : ()), %o);
}

# GET /legal/:type (anonymous unless session => ...).
sub legal_get($type, %o) { return http(GET => "/legal/$type", %o) }

# The items of GET /legal/:type/versions ([] when it is not 200).
sub legal_versions($type) {
	my $r = http(GET => "/legal/$type/versions");
	return [] unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && ref $r->{json}{items} eq 'ARRAY';
	return $r->{json}{items};
}

# ---------------------------------------------------------------- tenant records and compliance (issue 6)
#
#   my $r = tenant_create($s, $org_id, 'contacts', { name => 'N', email => 'e@x.test' });
#   my @items = tenant_list_all($s, $org_id, 'contacts', limit => 1);   # every page
#   my $h = legal_hold($s, entity => 'contacts', ids => [$id], hold => 1, reason => 'case');
#   my $x = strip_pii($s, entity => 'contacts', ids => [$id], reason => 'DSR');
#   my $row = db_row('contacts', $id);   # the MariaDB row, for "unchanged" checks

push @EXPORT, qw(tenant_create tenant_get tenant_patch tenant_delete tenant_list tenant_list_all
	legal_hold strip_pii compliance_record uuid_hex db_rows db_row table_snapshot audit_text
	json_strings);

sub _tenant_path($org, $entity, $id = undef) {
	$org = $org->{id} if ref $org eq 'HASH';
	return "/orgs/$org/$entity" . (defined $id ? "/$id" : '');
}
sub tenant_create($s, $org, $entity, $fields, %o) {
	return http(POST => _tenant_path($org, $entity), json => $fields, session => $s, %o);
}
sub tenant_get($s, $org, $entity, $id, %o) { return http(GET => _tenant_path($org, $entity, $id), session => $s, %o) }
sub tenant_patch($s, $org, $entity, $id, $fields, %o) {
	return http(PATCH => _tenant_path($org, $entity, $id), json => $fields, session => $s, %o);
}
sub tenant_delete($s, $org, $entity, $id, %o) { return http(DELETE => _tenant_path($org, $entity, $id), session => $s, %o) }
# GET /orgs/:orgId/<entity>?limit=&cursor= (query => {limit, cursor}).
sub tenant_list($s, $org, $entity, %q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } sort keys %q;
	return http(GET => _tenant_path($org, $entity) . ($qs ? "?$qs" : ''), session => $s);
}
# Follows nextCursor from the first page to the end (at most max_pages).
# Returns {items => [...], pages => n, errors => [...], max_page_items => n}.
sub tenant_list_all($s, $org, $entity, %o) {
	my %r = (items => [], pages => 0, errors => [], max_page_items => 0);
	my ($cursor, %seen);
	while ($r{pages} < ($o{max_pages} // 100)) {
		my $p = tenant_list($s, $org, $entity, limit => $o{limit}, cursor => $cursor);
		$r{pages}++;
		my $j = ref $p->{json} eq 'HASH' ? $p->{json} : {};
		if ($p->{status} != 200 || ref $j->{items} ne 'ARRAY') {
			push @{ $r{errors} }, "page $r{pages}: $p->{status} " . _short($p->{body});
			last;
		}
		my $n = @{ $j->{items} };
		$r{max_page_items} = $n if $n > $r{max_page_items};
		push @{ $r{items} }, @{ $j->{items} };
		$cursor = $j->{nextCursor};
		last if !defined $cursor;
		if ($seen{$cursor}++) { push @{ $r{errors} }, "page $r{pages}: nextCursor repeats"; last }
	}
	return \%r;
}

sub _bool_fields(%b) {
	for my $k (qw(hold dryRun)) {
		$b{$k} = $b{$k} ? JSON::PP::true : JSON::PP::false
		    if exists $b{$k} && defined $b{$k} && !ref $b{$k} && $b{$k} =~ /^[01]?$/;
	}
	return \%b;
}
# POST /compliance/legal-hold with the given fields (hold => 1/0 becomes a
# JSON boolean). POST /compliance/strip-pii likewise.
sub legal_hold($s, %body) { return http(POST => '/compliance/legal-hold', json => _bool_fields(%body), session => $s) }
sub strip_pii($s, %body) { return http(POST => '/compliance/strip-pii', json => _bool_fields(%body), session => $s) }
sub compliance_record($s, $entity, $id) { return http(GET => "/compliance/records/$entity/$id", session => $s) }

# A UUID string as 32 upper-case hex digits (for UNHEX('...')), undef if it is not one.
sub uuid_hex($id) {
	return undef unless defined $id && !ref $id;
	(my $h = $id) =~ s/-//g;
	return $h =~ /^[0-9a-fA-F]{32}$/ ? uc $h : undef;
}

# mariadb -B output unescaped (\\, \t, \n, \0).
sub _unbatch($v) {
	return undef if $v eq 'NULL';
	$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1 eq 't' ? "\t" : $1 eq '0' ? "\0" : $1/ge;
	return $v;
}

# Rows of a query as hashes by column name (NULL as undef).
sub db_rows($sql) {
	my $sock = var_dir() . '/run/mysqld.sock';
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-B', 'opsd', '-e', $sql],
	    timeout => 60, tag => 'mysql-rows');
	if ($r->{rc} != 0) {
		Test::More::diag("db_rows($sql) failed: $r->{err}");
		return ();
	}
	my ($head, @lines) = split /\n/, $r->{out};
	return () unless defined $head;
	my @names = split /\t/, $head;
	return map { my @v = split /\t/, $_, -1; my %h; @h{@names} = map { _unbatch($_) } @v; \%h } @lines;
}

# The select list of a table with binary columns as lower-case hex (so rows
# compare and print cleanly).
sub _select_list($table) {
	state %cache;
	return $cache{$table} //= do {
		my $out = mysql("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = DATABASE()"
		    . " AND table_name = " . _sql_str($table) . ' ORDER BY ordinal_position') // '';
		my @cols = map { [split /\t/] } grep { length } split /\n/, $out;
		@cols ? join(', ', map { $_->[1] =~ /binary|blob/i ? "LOWER(HEX(`$_->[0]`)) AS `$_->[0]`" : "`$_->[0]`" } @cols) : '*';
	};
}

# One row of a table by its UUID (every column; binary ones as hex), or undef.
sub db_row($table, $id) {
	my $hex = uuid_hex($id) // return undef;
	my @r = db_rows('SELECT ' . _select_list($table) . " FROM `$table` WHERE id = UNHEX('$hex')");
	return $r[0];
}

# Every row of the given tables (binary columns as hex), ordered by id:
# {table => [rows]}; for "nothing was written" comparisons.
sub table_snapshot(@tables) {
	return { map { $_ => [db_rows('SELECT ' . _select_list($_) . " FROM `$_` ORDER BY 1")] } @tables };
}

# Every audit event as one text (actor_label, action, target_type,
# target_id, org id in hex, ip, request_id, payload), to search for strings
# that must not be there.
sub audit_text() {
	return mysql("SELECT CONCAT_WS('|', IFNULL(actor_label,''), action, IFNULL(target_type,''), IFNULL(target_id,''),"
	    . " IFNULL(LOWER(HEX(org_id)),''), IFNULL(ip,''), IFNULL(request_id,''), IFNULL(payload,'')) FROM audit_events ORDER BY seq");
}

# Every key and string/number value inside a decoded JSON structure.
sub json_strings($v) {
	return () unless defined $v;
	return (map { ($_, json_strings($v->{$_})) } keys %$v) if ref $v eq 'HASH';
	return (map { json_strings($_) } @$v) if ref $v eq 'ARRAY';
	return () if ref $v;   # JSON booleans
	return ("$v");
}

# ---------------------------------------------------------------- archive and exports (issue 6, second slice)
#
#   my $r = batch_archive($s, entity => 'contacts', ids => [$id], reason => 'r', dryRun => 1);
#   my $x = compliance_export($s, 'contacts', $id);           # GET /compliance/export?entity=&id=
#   my $e = org_export($s, 'contacts', orgId => $org_id, format => 'csv');
#   my $csv = parse_csv($e->{body});   # {header, rows, records, quoted, errors, ...}
#   my $n = bulk_insert_contacts($org, 1200, tag => 'x', days_ago => 0);
#   set_created_at('contacts', $id, 400);   # created_at (and updated_at) 400 days back, UTC

push @EXPORT, qw(batch_archive compliance_export org_export parse_csv bulk_insert_contacts set_created_at
	org_row_ids);

# POST /compliance/batch-archive (dryRun => 1/0 becomes a JSON boolean).
sub batch_archive($s, %body) {
	return http(POST => '/compliance/batch-archive', json => _bool_fields(%body), session => $s);
}

# GET /compliance/export?entity=&id= (undef leaves a parameter out).
sub compliance_export($s, $entity, $id, %o) {
	my %q = (entity => $entity, id => $id);
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } qw(entity id);
	return http(GET => '/compliance/export' . ($qs ? "?$qs" : ''), session => $s, %o);
}

# GET /export/:entity?orgId=&format= (undef leaves a parameter out) on its own
# connection with a long timeout (the body is streamed, possibly large).
sub org_export($s, $entity, %q) {
	my $timeout = delete $q{timeout} // 180;
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } sort keys %q;
	return http(GET => "/export/$entity" . ($qs ? "?$qs" : ''), ($s ? (session => $s) : ()), fresh => 1,
	    timeout => $timeout);
}

# A strict RFC 4180 parser of a CSV body (bytes). The body must be UTF-8;
# records end in CRLF (a lone CR or LF outside quotes is an error); a field
# is either unquoted (no comma, quote, CR or LF in it) or quoted with inner
# quotes doubled, and a quoted field must be followed by a comma, a CRLF or
# the end. Returns {header => [...], rows => [[...], ...] (data rows, Perl
# character strings), quoted => [[0/1 per field], ...] (header row first),
# records => [{header name => value}, ...], errors => [...], bom => 0/1,
# trailing_crlf => 0/1, record_count => n (header included)}. Parsing stops
# at the first error.
sub parse_csv($bytes) {
	require Encode;
	my %r = (header => [], rows => [], quoted => [], records => [], errors => [], bom => 0, trailing_crlf => 0);
	my $s = eval { Encode::decode('UTF-8', $bytes // '', Encode::FB_CROAK() | Encode::LEAVE_SRC()) };
	unless (defined $s) {
		push @{ $r{errors} }, 'the body is not valid UTF-8';
		return \%r;
	}
	$r{bom} = $s =~ /^\x{FEFF}/ ? 1 : 0;
	$r{trailing_crlf} = $s =~ /\r\n\z/ ? 1 : 0;
	my @all;
	my $len = length $s;
	pos($s) = 0;
	RECORD: while (pos($s) < $len) {
		my (@f, @q);
		my $rec = @all + 1;
		while (1) {
			if ($s =~ /\G"/gc) {
				my $v = '';
				while (1) {
					if ($s =~ /\G([^"]+)/gc) { $v .= $1 }
					if ($s =~ /\G""/gc) { $v .= '"'; next }
					if ($s =~ /\G"/gc) { last }
					push @{ $r{errors} }, "record $rec field " . (@f + 1) . ': unterminated quoted field';
					last RECORD;
				}
				push @f, $v;
				push @q, 1;
			} else {
				$s =~ /\G([^,"\r\n]*)/gc;
				push @f, $1;
				push @q, 0;
			}
			if ($s =~ /\G,/gc) { next }
			if ($s =~ /\G\r\n/gc || pos($s) >= $len) { last }
			my $at = pos($s);
			my $c = substr($s, $at, 1);
			push @{ $r{errors} }, sprintf('record %d field %d: unexpected %s at character %d (near %s)', $rec, scalar @f,
			    $c eq "\r" ? 'CR without LF' : $c eq "\n" ? 'LF without CR' : $c eq '"' ? 'quote in an unquoted field'
			    : "character U+" . sprintf('%04X', ord $c), $at, json_encode(substr($s, $at > 20 ? $at - 20 : 0, 40)));
			last RECORD;
		}
		push @all, [\@f, \@q];
	}
	$r{record_count} = @all;
	return \%r unless @all;
	$r{header} = $all[0][0];
	$r{quoted} = [map { $_->[1] } @all];
	$r{rows} = [map { $_->[0] } @all[1 .. $#all]];
	my @h = @{ $r{header} };
	for my $i (0 .. $#{ $r{rows} }) {
		my $row = $r{rows}[$i];
		if (@$row != @h) {
			push @{ $r{errors} }, sprintf('data row %d has %d fields, the header %d', $i + 1, scalar @$row, scalar @h);
			next;
		}
		my %rec;
		@rec{@h} = @$row;
		push @{ $r{records} }, \%rec;
	}
	return \%r;
}

# Sets created_at (and updated_at, so both stay in UTC) of one row to
# UTC_TIMESTAMP(3) - INTERVAL $days DAY. Returns true when one row changed.
sub set_created_at($table, $id, $days) {
	my $hex = uuid_hex($id) // return 0;
	my $out = mysql("UPDATE `$table` SET created_at = UTC_TIMESTAMP(3) - INTERVAL " . ($days + 0) . ' DAY,'
	    . ' updated_at = UTC_TIMESTAMP(3) - INTERVAL ' . ($days + 0) . " DAY WHERE id = UNHEX('$hex')",
	    'SELECT ROW_COUNT()') // return 0;
	return $out =~ /^1$/m ? 1 : 0;
}

# Inserts $n contacts into an org straight through MariaDB (INSERT ... SELECT
# over seq_1_to_N of the Sequence engine, or a recursive CTE without it), ids
# from UNHEX(REPLACE(UUID(),'-','')). Values: name "Bulk Contact <i>, \"Jr.\"
# <tag>", email bulk<i>.<tag>@bulk.example, phone "+1 555 <i>", every third
# an address with a CRLF inside, every fifth a UTF-8 note ("Ünicode note
# <i>"); created_at = updated_at = now - days_ago days (+ i ms). Returns the
# number of rows of the org afterwards (undef when the insert failed).
sub bulk_insert_contacts($org, $n, %o) {
	my $org_hex = uuid_hex(ref $org eq 'HASH' ? $org->{id} : $org) // croak 'bulk_insert_contacts: org id';
	my $tag = $o{tag} // 'bulk';
	croak 'bulk_insert_contacts: tag must be [A-Za-z0-9]' unless $tag =~ /^[A-Za-z0-9]+$/;
	$n = int $n;
	my $days = int($o{days_ago} // 0);
	my $at = "UTC_TIMESTAMP(3) - INTERVAL $days DAY + INTERVAL seq * 1000 MICROSECOND";
	my $cols = 'id, org_id, name, email, phone, address, notes, created_at, updated_at';
	my $select = "SELECT UNHEX(REPLACE(UUID(), '-', '')), UNHEX('$org_hex'),"
	    . " CONCAT('Bulk Contact ', seq, ', \"Jr.\" $tag'), CONCAT('bulk', seq, '.$tag\@bulk.example'),"
	    . " CONCAT('+1 555 ', LPAD(seq, 4, '0')),"
	    . " IF(seq % 3 = 0, CONCAT(seq, ' Long Road', CHAR(13), CHAR(10), 'Townsville'), NULL),"
	    . " IF(seq % 5 = 0, CONCAT(CONVERT(UNHEX('C39C') USING utf8mb4), 'nicode note ', seq), NULL),"
	    . " $at, $at";
	my $has_seq = mysql("SELECT COUNT(*) FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'"
	    . " AND SUPPORT IN ('YES', 'DEFAULT')") // '';
	my $ok;
	if ($has_seq =~ /^1$/m) {
		$ok = mysql("INSERT INTO contacts ($cols) $select FROM seq_1_to_$n");
	} else {
		$ok = mysql("SET SESSION max_recursive_iterations = " . ($n + 10),
		    "INSERT INTO contacts ($cols) $select FROM (WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL"
		    . " SELECT seq + 1 FROM s WHERE seq < $n) SELECT seq FROM s) AS q");
	}
	return undef unless defined $ok;
	my $c = mysql("SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX('$org_hex')") // return undef;
	chomp $c;
	return $c + 0;
}

# The ids (lower-case hex, no dashes) of an org's rows of a tenant table.
sub org_row_ids($table, $org) {
	my $org_hex = uuid_hex(ref $org eq 'HASH' ? $org->{id} : $org) // return [];
	my $out = mysql("SELECT LOWER(HEX(id)) FROM `$table` WHERE org_id = UNHEX('$org_hex') ORDER BY id") // return [];
	return [grep { length } split /\n/, $out];
}

# ---------------------------------------------------------------- log archive and sensitive values (issue 8)
#
# With OPSD_TEST_ARCHIVE=DIR (script/test sets it for the prove run) every
# stack copies the files of its log/ (mysqld.log aside) into DIR/<test>-<n>/
# (<test>: the file name without .t) each time it stops: finish(),
# restart_stack and the END cleanup after a die. Each byte is copied once: a
# later copy on the same OPSD_VAR takes only what was appended since, and a
# rotated file (opsd.log renamed to opsd.log.1) is followed by its inode.
#
# sensitive($label, $value) appends {"label", "value"} as one JSON line to
# DIR/<test>.sensitive: a string no log line of the run may contain
# (t/99-logs.t checks every archived file against every value). The harness
# registers what it knows itself: the admin password, the session secret,
# OPSD_DATA_KEY, the MariaDB password, SMTP passwords, every password or
# secret a test sends in a JSON body (create_user, login, ...), API tokens
# from POST .../tokens, session cookies and CSRF tokens handed out. Without
# OPSD_TEST_ARCHIVE both are no-ops; sensitive returns its value either way,
# so it can wrap one: name => sensitive('name', 'Ada Lovelace').

push @EXPORT, qw(sensitive test_archive test_name);

use Fcntl qw(O_WRONLY O_APPEND O_CREAT);

my %SENSITIVE_SEEN;   # values this process already appended

sub test_archive() {
	my $d = $ENV{OPSD_TEST_ARCHIVE};
	return defined $d && length $d ? $d : undef;
}

# The test file's name without directory and .t ("91-compliance").
sub test_name() {
	state $name = do {
		my $b = basename($0);
		$b =~ s/\.t\z//;
		$b =~ s/[^A-Za-z0-9._-]/_/g;
		length $b ? $b : 'unknown';
	};
	return $name;
}

sub sensitive($label, $value) {
	my $root = test_archive();
	return $value unless defined $root && defined $value && !ref $value && length $value;
	my $v = "$value";
	# UTF-8 bytes (a test without `use utf8`) are stored as the characters they encode
	if (!utf8::is_utf8($v) && $v =~ /[\x80-\xff]/) {
		require Encode;
		my $copy = $v;
		my $d = eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK()) };
		$v = $d if defined $d;
	}
	return $value if $SENSITIVE_SEEN{$v}++;
	my $path = "$root/" . test_name() . '.sensitive';
	my $line = $JSON->encode({ label => "$label", value => $v }) . "\n";
	if (sysopen(my $fh, $path, O_WRONLY | O_APPEND | O_CREAT, 0600)) {
		syswrite($fh, $line);   # one write: lines of forked children stay whole
		close $fh;
	} else {
		Test::More::diag("sensitive: cannot append to $path: $!");
	}
	return $value;
}

# The running stack's secrets: the harness's own, its environment (names
# ending in PASS, PASSWORD, SECRET, TOKEN or DATA_KEY; the password inside a
# *_URI) and what script/server writes under OPSD_VAR.
sub _sensitive_stack() {
	return unless test_archive() && $STACK;
	sensitive('admin password', ADMIN_PASSWORD);
	sensitive('DEFAULT_SESSION_SECRET', DEFAULT_SESSION_SECRET);
	my $env = $STACK->{env} // {};
	for my $k (sort keys %$env) {
		my $v = $env->{$k};
		next unless defined $v && length $v;
		sensitive("stack env $k", $v) if $k =~ /(?:PASS|PASSWORD|SECRET|TOKEN|DATA_KEY)\z/;
		sensitive("password in stack env $k", $1) if $k =~ /_URI\z/ && $v =~ m{://[^/?#\@:]*:([^/?#\@]+)\@};
	}
	for my $f (qw(data-key session-secret db-password)) {
		my $s = _slurp("$STACK->{var}/$f") // next;
		my ($first) = split /\n/, $s;
		sensitive("\$OPSD_VAR/$f", $first) if defined $first;
	}
}

# Strings of a request's JSON body under a key ending in password, secret or
# passphrase or named token (any depth).
sub _sensitive_json($where, $v) {
	if (ref $v eq 'HASH') {
		for my $k (sort keys %$v) {
			my $x = $v->{$k};
			if (ref $x) { _sensitive_json($where, $x) }
			elsif (defined $x && $k =~ /(?:password|secret|passphrase)\z|\Atoken\z/i) { sensitive("$k sent to $where", $x) }
		}
	} elsif (ref $v eq 'ARRAY') {
		_sensitive_json($where, $_) for @$v;
	}
}

# What one http() exchange carries that no log may show.
sub _sensitive_http($method, $path, $sent, $res) {
	_sensitive_json("$method $path", $sent) if ref $sent;
	my $j = $res->{json};
	if (ref $j eq 'HASH') {
		sensitive("API token from $method $path", $j->{token})
		    if $method eq 'POST' && $path =~ m{/tokens(?:[/?]|\z)} && $res->{status} =~ /^2/ && !ref $j->{token};
		sensitive("csrfToken from $method $path", $j->{csrfToken}) if !ref $j->{csrfToken};
	}
	my $c = session_set_cookie($res);
	sensitive("session cookie from $method $path", $c->{value}) if $c && length $c->{value};
}

# Copies what log/ gained since the last copy into OPSD_TEST_ARCHIVE/<test>-<n>/.
sub _archive_logs($why) {
	my $root = test_archive();
	return unless defined $root && $STACK && $$ == $OWNER;
	unless (-d $root) {
		Test::More::diag("OPSD_TEST_ARCHIVE=$root is not a directory: logs not archived");
		return;
	}
	my $src = "$STACK->{var}/log";
	opendir(my $dh, $src) or return;
	my @files = sort grep { !/^\./ && !/^mysqld/ && -f "$src/$_" } readdir $dh;
	closedir $dh;
	my ($n, $dst) = ($STACK->{archive_seq} // 0);
	do { $n++; $dst = "$root/" . test_name() . "-$n" } while -e $dst;
	$STACK->{archive_seq} = $n;
	unless (mkdir $dst) {
		Test::More::diag("cannot make $dst: $!");
		return;
	}
	chmod 0755, $dst;
	my $done = $STACK->{archived} //= {};   # "dev:inode" => bytes copied before
	my ($copied, $bytes) = (0, 0);
	for my $f (@files) {
		my @st = stat "$src/$f" or next;
		my $data = _slurp("$src/$f") // next;
		my $key = "$st[0]:$st[1]";
		my $from = $done->{$key} // 0;
		$from = 0 if $from > length $data;   # truncated: all of it is new
		$done->{$key} = length $data;
		next if $from > 0 && $from == length $data;
		_spit("$dst/$f", substr($data, $from), 0644);
		$copied++;
		$bytes += length($data) - $from;
	}
	Test::More::note("logs archived ($why): $copied file(s), $bytes bytes in $dst");
}

1;
