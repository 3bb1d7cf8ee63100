package OpsdTest::Hosts;

# ---------------------------------------------------------------- a second host on the same database
#
#   use OpsdTest::Hosts;                            # (not loaded by `use OpsdTest;`)
#   start_stack(...);                               # host A: the usual stack
#   my $b = start_host(env => { LEGAL_ENFORCE => 1 });   # host B
#   my $r = http_on($b, GET => '/auth/me', session => $s);   # http() against B
#   host_pid($b, 'opsd.pid'); host_logs($b, 'opsd.log');
#   stop_host($b);                                  # before finish(); END does it too
#
# Host B is a second `script/server start` in its own OPSD_VAR (a directory
# beside host A's, removed with it) on its own HTTPS port, with no MariaDB of
# its own: OPSD_DB_URI and OPSD_DEDICATED_DB_URI are the ones host A's
# opsd.env holds (A's private MariaDB), and it shares A's SESSION_SECRET and
# OPSD_DATA_KEY, so a session cookie or API token made on one host works on
# the other. Its other variables are those host A was started with, plus
# env => {...} (undef removes one). Two opsd hosts of one database: what a
# deployment behind a load balancer runs.

use v5.36;
use Carp qw(croak);
use Exporter qw(import);
use IO::Socket::INET;
use Test::More ();

our @EXPORT;
BEGIN { @EXPORT = qw(start_host stop_host http_on host_logs host_pid) }
use OpsdTest qw(http stack run_cmd parse_env_file pid_alive wait_until);

my @HOSTS;
my $OWNER = $$;

sub _port() {
	for (1 .. 20) {
		my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
		    or next;
		my $p = $s->sockport;
		close $s;
		return $p if $p != 8443 && $p != stack()->{port};
	}
	croak "no free TCP port: $!";
}

sub _slurp($path) {
	open my $fh, '<:raw', $path or return undef;
	local $/;
	return scalar <$fh>;
}

sub host_logs($h, $name) { return _slurp("$h->{var}/log/$name") // '' }

sub host_pid($h, $file) {
	my $s = _slurp("$h->{var}/run/$file") // return undef;
	return $s =~ /^\s*(\d+)/ ? $1 + 0 : undef;
}

sub start_host(%o) {
	my $first = stack();
	my $n = @HOSTS + 2;
	my $var = "$first->{tmp}/var-host$n";
	mkdir $var or croak "mkdir $var: $!";
	chmod 0755, $var;
	my $aenv = parse_env_file("$first->{var}/opsd.env") // croak "no $first->{var}/opsd.env";
	my $port = _port();
	my %env = (%{ $first->{env} },
		(map { defined $aenv->{$_} ? ($_ => $aenv->{$_}) : () }
		    qw(OPSD_DB_URI OPSD_DEDICATED_DB_URI SESSION_SECRET OPSD_DATA_KEY OPSD_DATA_KEY_PREVIOUS)),
		OPSD_VAR => $var,
		OPSD_HTTPS_PORT => $port,
		OPSD_SKIP_BUILD => 1,
		%{ $o{env} // {} });
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	my $h = { var => $var, port => $port, env => \%env, n => $n };
	push @HOSTS, $h;
	my $r = run_cmd(cmd => ['script/server', 'start'], env => \%env, tag => "host$n-start",
	    timeout => $ENV{OPSD_TEST_START_TIMEOUT} || 600);
	$h->{started} = 1;
	my $ok = Test::More::ok($r->{rc} == 0 && $r->{out} =~ m{^opsd ready: https://127\.0\.0\.1:$port/$}m,
	    "host $n: script/server start on host A's database is ready (port $port)");
	unless ($ok) {
		Test::More::diag("host $n start: rc=$r->{rc}\n$r->{out}\n$r->{err}");
		Test::More::diag("host $n opsd.log:\n" . substr(host_logs($h, 'opsd.log'), -3000));
		die "host $n did not start\n";
	}
	$h->{agent} = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 30,
	    max_redirect => 0, keep_alive => 1, agent => 'opsd-test/1');
	return $h;
}

# http() against host $h: the same options and answer (its own connection).
sub http_on($h, $method, $path, %o) {
	local stack()->{port} = $h->{port};
	return http($method, $path, agent => $h->{agent}, %o);
}

sub stop_host($h, $quiet = 0) {
	return if !$h->{started} || $h->{stopped};
	$h->{stopped} = 1;
	my @pids = grep { $_ } map { host_pid($h, $_) } qw(opsd.pid nginx.pid);
	my $r = run_cmd(cmd => ['script/server', 'stop'], env => $h->{env}, tag => "host$h->{n}-stop", timeout => 120);
	my $gone = wait_until(15, sub { !grep { pid_alive($_) } @pids }, 0.1);
	kill 'KILL', grep { pid_alive($_) } @pids unless $gone;
	return if $quiet;
	Test::More::is($r->{rc}, 0, "host $h->{n}: script/server stop exits 0") or Test::More::diag($r->{err});
	Test::More::ok($gone, "host $h->{n}: no opsd or nginx process left");
	my @bad = grep { length && !ref OpsdTest::json_decode($_) } split /\n/, host_logs($h, 'opsd.log');
	Test::More::ok(!@bad, "host $h->{n}: every line of log/opsd.log is a JSON object")
	    or Test::More::diag(join "\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]);
}

END {
	if ($$ == $OWNER) {
		my $exit = $?;
		stop_host($_, 1) for @HOSTS;
		$? = $exit;
	}
}

1;
