package OpsdTest::Email;

# ---------------------------------------------------------------- email 
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
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Carp qw(croak);
use Exporter qw(import);
use File::Path ();
use File::Temp qw(tempdir);
use Test::More ();

our @EXPORT;
BEGIN {
	@EXPORT = qw(make_test_ca start_smtp_peer smtp_env smtp_python email_tmp_dir
	    outbox_row outbox_rows outbox_count parse_mail email_test_post wait_outbox_row outbox_diag);
}
use OpsdTest qw(run_cmd mysql sensitive http admin_session wait_until json_encode);

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
	OpsdTest::_spit("$dir/server.ext", join("\n", 'subjectAltName=' . join(',', @san), 'basicConstraints=critical,CA:FALSE',
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
# for STARTTLS required, no_starttls => 1 (a plain peer), auth => 'USER:PASS'
# or auth_file => FILE (re-read at every AUTH: "USER:PASS" lines accepted,
# "delay MS" holds each AUTH first; see t/lib/smtp_peer.py),
# refuse_rcpt => ADDR or [...] (550), tempfail_rcpt => ADDR or [...] (451),
# port => N (0: a free one), dir => DIR. Returns an OpsdTest::SmtpPeer;
# dies when the peer does not come up.
sub start_smtp_peer(%o) {
	sensitive('SMTP peer password', (split /:/, $o{auth}, 2)[1]) if defined $o{auth};
	my $peer = OpsdTest::SmtpPeer->_new(%o);
	$peer->start;
	return $peer;
}

# The stack's environment for a peer (README "Configuration"):
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

# POST /email/test to $to (an address, or the whole body as a hash) as the
# superadmin or as => $session; relogin => 1 logs the superadmin in again
# and retries once after a 401 (its session went with a restart); other
# options go to http() (csrf => undef, ...).
sub email_test_post($to, %o) {
	my $as = delete $o{as};
	my $relogin = delete $o{relogin};
	my $body = ref $to eq 'HASH' ? $to : { to => $to };
	my $r = http(POST => '/email/test', json => $body, session => $as // admin_session(), %o);
	if ($r->{status} == 401 && $relogin && !$as) {
		$r = http(POST => '/email/test', json => $body, session => admin_session(fresh => 1), %o);
	}
	return $r;
}

# Waits (up to $timeout s) until the outbox row $id satisfies $cond; returns
# the last row seen ({} when there was none).
sub wait_outbox_row($id, $timeout, $cond) {
	my $row;
	wait_until($timeout, sub { $row = outbox_row($id); $row && $cond->($row) }, 0.2);
	return $row // {};
}

# diag() of an outbox row and of the state of each peer, for a failed test.
sub outbox_diag($id, @peers) {
	my $row = outbox_row($id);
	Test::More::diag('outbox row ' . ($id // 'undef') . ': ' . ($row ? json_encode($row) : 'none'));
	Test::More::diag($_->state_text) for @peers;
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
		$dir = OpsdTest::Email::email_tmp_dir() . "/peer$n";
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
	my @a = (OpsdTest::Email::smtp_python(), OpsdTest::repo_root() . '/t/lib/smtp_peer.py',
	    '--port', $self->{port}, '--dir', $self->{dir});
	if ($self->{no_starttls}) {
		push @a, '--no-starttls';
	} elsif (my $ca = $self->{tls}) {
		push @a, '--tls-cert', $ca->{cert}, '--tls-key', $ca->{key};
	} elsif ($self->{cert}) {
		push @a, '--tls-cert', $self->{cert}, '--tls-key', $self->{key};
	}
	push @a, '--auth', $self->{auth} if defined $self->{auth};
	push @a, '--auth-file', $self->{auth_file} if defined $self->{auth_file};
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
		my $p = OpsdTest::Email::parse_mail($raw);
		$p->{$_} = $meta->{$_} for keys %$meta;
		push @m, $p;
	}
	return @m;
}

sub count($self) {
	opendir(my $dh, $self->{dir}) or return 0;
	return scalar grep { /^\d+\.json$/ } readdir $dh;
}

# {envelope recipient (lower case) => messages to it} from the peer's records
# alone (no message parsed: cheap to poll with hundreds received).
sub rcpt_counts($self) {
	opendir(my $dh, $self->{dir}) or return {};
	my %c;
	for my $f (grep { /^\d+\.json$/ } readdir $dh) {
		my $meta = OpsdTest::json_decode(OpsdTest::_slurp("$self->{dir}/$f") // '') // next;
		$c{ lc $_ }++ for @{ $meta->{rcpt_tos} // [] };
	}
	return \%c;
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

1;
