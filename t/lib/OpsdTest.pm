package OpsdTest;

# Integration-test harness (t/README): starts the real stack (MariaDB, nginx,
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
# values of every test are collected there for t/99-logs.t; see the end),
# OPSD_TEST_EXCHANGES (a directory: every http() exchange is recorded there
# for t/98-openapi.t; see the end).
#
# This file holds the core (the stack, processes and logs, HTTP, MariaDB,
# FastCGI, env files, identity, the log archive); the helpers of each area
# are in t/lib/OpsdTest/: Email.pm (SMTP peer, outbox), Legal.pm, Records.pm
# (tenant records, compliance, exports), Audit.pm (audit_events),
# Migration.pm (the /migration routes), Live.pm (a request loop that runs
# while a test changes something, env-file edits and reloads). OpsdTest
# exports what they export: `use OpsdTest;` is all a test needs.

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
	start_stack adopt_stack mysql_sock finish stack var_dir repo_root https_port base_url build_dir opsd_bin opsctl_bin
	http raw_request check_error request_id_logged
	master_pid nginx_pid mysqld_pid worker_pids jobs_pid children_of proc_title proc_uids
	pid_alive wait_until logs log_records diag_logs
	mysql stop_mysql start_mysql
	fcgi_record fcgi_nv fcgi_begin fcgi_params fcgi_exchange
	run_cmd parse_env_file json_decode json_encode
	admin_email admin_password session_secret restart_stack
	login admin_session session_cookie_header set_cookies session_set_cookie
	make_session_cookie cookie_session_id session_row_hash me login_ok
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
# What every test stack (and every host of a test cluster) runs with: test mode, the
# build under test, nginx's limits out of the way, a known superadmin, fast scrypt,
# a fixed secret.
sub stack_env() {
	return (
		OPSD_ENV => 'test',
		OPSD_SKIP_INSTALL => 1,
		OPSD_BUILD => $ENV{OPSD_BUILD} || 'default',
		OPSD_NGINX_API_RATE => '10000r/s',
		OPSD_NGINX_API_BURST => 10000,
		OPSD_NGINX_CONN_LIMIT => 1000,
		OPSD_NGINX_LOGIN_RATE => '1000r/s',
		OPSD_NGINX_LOGIN_BURST => 1000,
		OPSD_ADMIN_EMAIL => ADMIN_EMAIL,
		OPSD_ADMIN_PASSWORD => ADMIN_PASSWORD,
		OPSD_SCRYPT_LN => 10,
		SESSION_SECRET => DEFAULT_SESSION_SECRET,
	);
}

sub start_stack(%o) {
	croak 'start_stack called twice in one test file' if $STACK;
	my $tmp = tempdir('opsd-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);
	# www-data (opsd workers, nginx workers) must reach the sockets and logs inside
	chmod 0755, $tmp;
	my $var = "$tmp/var";
	mkdir $var or croak "mkdir $var: $!";
	chmod 0755, $var;
	my $port = _free_port();
	my %env = (_scrub_env(%ENV), stack_env(),
		OPSD_VAR => $var,
		OPSD_HTTPS_PORT => $port,
		# the host cache reads cache_invalidations at every signed-in request (one that comes
		# in while another worker reads it waits for a read that began after it): a test that
		# edits sessions or users with SQL sees it on its next request, not within a second
		# (t/78-session-cache.t runs the production default)
		OPSD_CACHE_POLL_MS => 0,
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

# adopt_stack(var => $OPSD_VAR, port => $https_port, tmp => $dir, mysql_sock => $socket):
# the stack of this file is one that something else started and stops (the
# local cluster's first host, t/lib/OpsdTest/Cluster.pm): http(), var_dir(),
# logins and the MariaDB helpers work against it; finish() and END neither
# stop it nor check its logs, and END removes tmp when every test passed.
sub adopt_stack(%o) {
	croak 'adopt_stack: a stack exists already' if $STACK;
	$STACK = { tmp => $o{tmp}, var => $o{var}, port => $o{port}, env => {}, started => 0, finished => 0,
	    adopted => 1, mysql_sock => $o{mysql_sock}, sanitizer_before => {}, t0 => time };
	return $STACK;
}

# The socket of the MariaDB the helpers query: the stack's own, or the one
# an adopted stack names (local it to query another node).
sub mysql_sock() { return stack()->{mysql_sock} // var_dir() . '/run/mysqld.sock' }

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
	# nginx closes idle keep-alive connections when it reloads (opsd's nginx
	# process does at start and on blocklist or limit changes): a request that
	# meets the closed socket was never read and got no answer, and a browser
	# sends it again on a new connection. HTTP::Tiny does so itself only for
	# GET and HEAD; here any method is, once. Tests that count deliveries see
	# any double this could hide.
	$r = $ua->request($method, base_url() . $path, \%args)
	    if $r->{status} == 599 && ($r->{content} // '') =~
	    /^(?:Unexpected end of stream while looking for line|Socket closed by remote server: Broken pipe)/;
	my $res = _result($r->{status}, $r->{reason}, $r->{headers}, $r->{content});
	$res->{elapsed} = time - $t0;
	_sensitive_http($method, $path, $o{json}, $res) if test_archive();
	_record_exchange($method, $path, \%headers, $args{content}, $res) if exchanges_dir();
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

# Checks the README "API" error envelope. $code: a string, an arrayref of
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

# Small assertions on answers, shared by the tests: j($r) is the answer's
# JSON object ({} when the body is not one); status_is($r, $want, $name) is
# is() on the status with the start of the body as a diagnostic;
# fields_named($r, @names) tests that the error's details.fields names each
# of @names (an arrayref [a, b]: either a or b), has_details_fields is the
# same without the test; items($r) lists an answer's items.

push @EXPORT, qw(j status_is has_details_fields fields_named items);

sub j($r) { return ref $r->{json} eq 'HASH' ? $r->{json} : {} }

sub status_is($r, $want, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return Test::More::is($r->{status}, $want, $name) || Test::More::diag('body: ' . substr($r->{body} // '', 0, 800));
}

sub has_details_fields($r, @names) {
	my $e = j($r)->{error};
	my $f = ref $e eq 'HASH' && ref $e->{details} eq 'HASH' ? $e->{details}{fields} : undef;
	return 0 unless ref $f eq 'HASH';
	for my $n (@names) {
		return 0 unless grep { exists $f->{$_} } (ref $n ? @$n : $n);
	}
	return 1;
}

sub fields_named($r, @names) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = has_details_fields($r, @names);
	Test::More::ok($ok, '  details.fields names ' . join(' ', map { ref $_ ? join('|', @$_) : $_ } @names))
	    or Test::More::diag("body: $r->{body}");
	return $ok;
}

sub items($r) { return @{ (ref $r->{json} eq 'HASH' ? $r->{json}{items} : undef) // [] } }

# ---------------------------------------------------------------- MariaDB

sub mysql(@sql) {
	my $sock = mysql_sock();
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
	my $sock = mysql_sock();
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

# Rows of a query, single rows by id and whole tables .

push @EXPORT, qw(uuid_hex db_rows db_row table_snapshot);

sub _sql_str($s) {
	$s =~ s/\\/\\\\/g;
	$s =~ s/'/\\'/g;
	return "'$s'";
}

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
	my $sock = mysql_sock();
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

# db_count($sql): the one integer a query answers (SELECT COUNT(*) ...); -1
# when the query fails or its answer is not a single integer.
# norm_id($id): an id as lower-case hex without dashes (as LOWER(HEX(id))
# prints it). org_hex($org): an org's id (the org hash or the id) as
# lower-case hex for UNHEX('...'); "none" (UNHEX gives NULL: no org) when it
# is not a UUID.

push @EXPORT, qw(db_count norm_id org_hex uuid_sql);

sub db_count($sql) {
	my $v = mysql($sql) // return -1;
	chomp $v;
	return $v =~ /\A-?\d+\z/ ? $v + 0 : -1;
}

sub norm_id($id) { return lc(($id // '') =~ s/-//gr) }

sub org_hex($org) { return lc(uuid_hex(ref $org eq 'HASH' ? $org->{id} : $org) // 'none') }

# SQL that prints the binary id in $col as a lower-case hyphenated UUID.
sub uuid_sql($col) { return "INSERT(INSERT(INSERT(INSERT(LOWER(HEX($col)),9,0,'-'),14,0,'-'),19,0,'-'),24,0,'-')" }

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

# fcgi_http(METHOD => $path, remote_addr => ADDR, cookie => VALUE (a session
# cookie's value), bearer => TOKEN, timeout => s): one request straight to
# opsd's socket as nginx would pass it from REMOTE_ADDR (203.0.113.7 unless
# given; the tests' own clients reach nginx from loopback only, where the
# monitoring routes need no credentials); socket => PATH for another opsd
# than the stack's. Returns {status, headers (lc
# names), body, json} as http() does; status 0 when opsd did not answer.

push @EXPORT, qw(fcgi_http);

sub fcgi_http($method, $path, %o) {
	my ($doc, $qs) = split /\?/, $path, 2;
	my %p = (REQUEST_METHOD => $method, REQUEST_URI => $path, DOCUMENT_URI => $doc, QUERY_STRING => $qs // '',
	    REMOTE_ADDR => $o{remote_addr} // '203.0.113.7', SERVER_PROTOCOL => 'HTTP/1.1', HTTPS => 'on',
	    REQUEST_ID => sprintf('%08x%08x%08x%08x', map { int rand 2**32 } 1 .. 4));
	$p{HTTP_COOKIE} = session_cookie_header($o{cookie}) if defined $o{cookie};
	$p{HTTP_AUTHORIZATION} = "Bearer $o{bearer}" if defined $o{bearer};
	my $x = fcgi_exchange(fcgi_begin() . fcgi_params(1, [map { ($_ => $p{$_}) } sort keys %p]) . fcgi_record(FCGI_STDIN, 1, ''),
	    timeout => $o{timeout} // 10, socket => $o{socket});
	my ($head, $body) = split /\r?\n\r?\n/, $x->{stdout} // '', 2;
	my %h;
	for my $line (split /\r?\n/, $head // '') {
		$h{ lc $1 } = $2 if $line =~ /^([^:\s]+):\s*(.*)$/;
	}
	return _result($x->{status} // 0, '', \%h, $body);
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

# ---------------------------------------------------------------- time, text and JSON

# script/test runs prove with PROVE_ARGS (default t/): only t/ and options
# that do not choose, order or parallelise the files leave the run whole
# (every t/*.t ran: t/98 and t/99 check the whole suite's traces then).
sub whole_run() {
	for my $w (split ' ', $ENV{PROVE_ARGS} // '') {
		next if $w =~ m{\A(?:\./)?t/?\z};
		next if $w =~ /\A(?:-v|--verbose|--timer|-c|--color|--nocolor|-f|--failures|-o|--comments|-m|--merge|-q|--quiet|-Q|--QUIET)\z/;
		return 0;
	}
	return 1;
}

push @EXPORT, qw(rfc3339_at rfc3339_epoch sha256_utf8 json_strings near_now run_tag run_num slurp whole_run);

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

# Every key and string/number value inside a decoded JSON structure.
sub json_strings($v) {
	return () unless defined $v;
	return (map { ($_, json_strings($v->{$_})) } keys %$v) if ref $v eq 'HASH';
	return (map { json_strings($_) } @$v) if ref $v eq 'ARRAY';
	return () if ref $v;   # JSON booleans
	return ("$v");
}

# A test: $t is an RFC 3339 time within 120 s of now.
sub near_now($t, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $e = rfc3339_epoch($t);
	return Test::More::ok(defined $e && abs($e - time) < 120, "$name is an RFC 3339 time of now")
	    || Test::More::diag('got ' . ($t // 'undef'));
}

# run_tag(): 8 random lower-case letters, run_num(): 4 random digits, each
# drawn once per test file: the tests put them into the values they write so
# that those are distinctive (searchable in logs and tables).
sub run_tag() { state $t = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8; return $t }
sub run_num() { state $n = sprintf '%04d', int rand 10000; return $n }

# A file's bytes (undef when it cannot be read).
sub slurp($path) { return _slurp($path) }

# ---------------------------------------------------------------- identity 

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

# The permissions of each role, as the README defines them (org_users.manage:
# /orgs/:orgId/users).
my @PERMS = qw(legal.publish legal.report compliance.read compliance.strip_pii
	compliance.legal_hold compliance.archive compliance.export migration.run security.read
	security.sessions_flush security.blocklist audit.read audit.verify email.send_test email.outbox
	users.read users.manage orgs.read orgs.manage tenant.read tenant.write system.status
	org_users.manage security.users_disable security.tokens_revoke security.rate_limits);
sub contract_permissions() { return sort @PERMS }
sub contract_roles() {
	my @compliance = qw(compliance.read compliance.strip_pii compliance.legal_hold compliance.archive
	    compliance.export legal.report audit.read tenant.read orgs.read users.read);
	my %r = (
		superadmin => [@PERMS],
		platform_admin => [qw(legal.publish legal.report users.read users.manage orgs.read orgs.manage
		    email.send_test email.outbox system.status tenant.read tenant.write org_users.manage
		    audit.read)],
		compliance => [@compliance],
		compliance_officer => [@compliance, 'audit.verify'],
		security_admin => [qw(security.read security.sessions_flush security.blocklist audit.read
		    audit.verify compliance.read compliance.strip_pii compliance.legal_hold compliance.archive
		    compliance.export users.read orgs.read tenant.read system.status security.users_disable
		    security.tokens_revoke security.rate_limits)],
		org_admin => [qw(tenant.read tenant.write orgs.read users.read org_users.manage)],
		member => [qw(tenant.read)],
	);
	return { map { $_ => [sort @{ $r{$_} }] } keys %r };
}

# Stops the stack with `script/server stop` and starts it again on the same
# OPSD_VAR (same database, same $OPSD_VAR/opsd.env, same port).
# env => {VAR => value} changes variables for this and later starts: given
# to script/server, which writes them back to opsd.env; undef removes one
# from the environment and its lines from opsd.env, as an operator would.
# from_file => [VAR, ...]: no longer given to script/server, so opsd.env's
# lines (edited by the test) stand. The start's {out, err, rc} are kept in
# stack()->{last_start}. Dies when the stack does not come back.
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
	my @drop = grep { !defined $env{$_} } keys %env;
	delete @env{ @drop, @{ $o{from_file} // [] } };
	_env_file_drop("$st->{var}/opsd.env", @drop);
	$st->{env} = \%env;
	undef $SHARED_UA;   # its kept-alive connection went with nginx
	my $r = run_cmd(cmd => [@SERVER_CMD, 'start'], env => \%env, tag => 'server-restart-start',
	    timeout => $ENV{OPSD_TEST_START_TIMEOUT} || 600);
	$st->{last_start} = $r;
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

# Removes the lines setting these variables from an env file (mode kept).
sub _env_file_drop($path, @names) {
	return unless @names && -e $path;
	my $s = _slurp($path) // croak "read $path: $!";
	my $re = join '|', map { quotemeta } @names;
	$s =~ s/^[ \t]*(?:export[ \t]+)?(?:$re)=.*(?:\n|\z)//mg;
	_spit($path, $s);
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

# GET /auth/me as $session (undef: with none); %o as for http().
sub me($session, %o) { return http(GET => '/auth/me', %o, ($session ? (session => $session) : ())) }

# login() as $u (a hash with email and password: create_user's, or a body
# sent to create one) with a test "$label logs in". Returns the session.
sub login_ok($u, $label) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $s = login($u->{email}, $u->{password});
	Test::More::ok($s->{cookie}, "$label logs in")
	    or Test::More::diag(($u->{res} ? "create: $u->{res}{body}\n" : '') . "login: $s->{res}{body}");
	return $s;
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
	my $sock = mysql_sock();
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
	$STACK->{finished} = 1 if $STACK && $STACK->{adopted};
	unless (Test::More->builder->is_passing) {
		diag_logs();
		_diag_summary();
	}
	Test::More::done_testing();
}

# CI shows the tail of a failing run, where the log dump would push the
# failures out of sight: they are named again after it, with what helpers
# kept for this moment through late_diag().
my @LATE;
sub late_diag(@msg) { push @LATE, @msg }

sub _diag_summary() {
	my @d = Test::More->builder->details;
	my @failed = map { "  #" . ($_ + 1) . " $d[$_]{name}" } grep { !$d[$_]{ok} } 0 .. $#d;
	Test::More::diag(join "\n", '---- failed tests (again, after the logs) ----', @failed, @LATE);
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

# ---------------------------------------------------------------- log archive and sensitive values 
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

# ---------------------------------------------------------------- recorded exchanges
#
# With OPSD_TEST_EXCHANGES=DIR (script/test sets it) http() appends every
# exchange as one JSON line to DIR/<test>.exchanges: method, path (with the
# query), the request's Content-Type and body, the status, the answer's
# Content-Type and body. Bodies are text (UTF-8) or, when they are not
# UTF-8, "requestBodyBase64"/"responseBodyBase64"; a body over 8 MiB is
# left out ("responseBodyOmitted"). t/98-openapi.t checks each exchange
# against the API document. The directory holds secrets (passwords in
# bodies): it lives in script/test's scratch directory, outside the log
# archive, and goes with it.

push @EXPORT, qw(exchanges_dir);

use constant EXCHANGE_BODY_MAX => 8 * 1024 * 1024;

sub exchanges_dir() {
	my $d = $ENV{OPSD_TEST_EXCHANGES};
	return defined $d && length $d ? $d : undef;
}

# $rec->{$key} = the body as text, or base64 when it is not UTF-8.
sub _exchange_body($rec, $key, $bytes) {
	return unless defined $bytes && length $bytes;
	if (length $bytes > EXCHANGE_BODY_MAX) {
		$rec->{"${key}Omitted"} = JSON::PP::true;
		return;
	}
	require Encode;
	my $copy = $bytes;
	my $text = utf8::is_utf8($copy) ? $copy : eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK()) };
	if (defined $text) {
		$rec->{$key} = $text;
	} else {
		require MIME::Base64;
		$rec->{"${key}Base64"} = MIME::Base64::encode_base64($bytes, '');
	}
}

sub _record_exchange($method, $path, $headers, $content, $res) {
	my ($ct) = map { $headers->{$_} } grep { lc $_ eq 'content-type' } keys %$headers;
	my %rec = (test => test_name(), method => $method, path => $path, status => $res->{status} + 0);
	$rec{requestContentType} = $ct if defined $ct;
	$rec{responseContentType} = $res->{headers}{'content-type'} if defined $res->{headers}{'content-type'};
	_exchange_body(\%rec, 'requestBody', $content);
	my $body = $res->{body};
	# a gzip answer (nginx's precompressed legal files) is checked as what it encodes
	if (($res->{headers}{'content-encoding'} // '') eq 'gzip' && defined $body) {
		require IO::Uncompress::Gunzip;
		my $plain;
		IO::Uncompress::Gunzip::gunzip(\$body, \$plain) and $body = $plain;
	}
	_exchange_body(\%rec, 'responseBody', $body);
	my $line = $JSON->encode(\%rec) . "\n";
	my $file = exchanges_dir() . '/' . test_name() . '.exchanges';
	if (sysopen(my $fh, $file, O_WRONLY | O_APPEND | O_CREAT, 0600)) {
		syswrite($fh, $line);   # one write: lines of forked children stay whole
		close $fh;
	} else {
		Test::More::diag("cannot append to $file: $!");
	}
}

# ---------------------------------------------------------------- area modules
#
# The helpers of each area live in t/lib/OpsdTest/<Area>.pm; OpsdTest exports
# everything they export, so `use OpsdTest;` is all a test needs.

for my $area (qw(Email Legal Records Audit Migration Prom Browser Live)) {
	my $pkg = "OpsdTest::$area";
	no strict 'refs';
	# an area module sets its @EXPORT in a BEGIN block before it loads
	# OpsdTest: when it is set, the module is being compiled already (it was
	# loaded first, or it is `perl -c`'s script) and must not be loaded twice
	require "OpsdTest/$area.pm" unless @{"${pkg}::EXPORT"};
	push @EXPORT, @{"${pkg}::EXPORT"};
	$pkg->import;   # into OpsdTest, which hands them on
}

1;
