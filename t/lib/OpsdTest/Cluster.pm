package OpsdTest::Cluster;

# ---------------------------------------------------------------- the local cluster
#
#   use OpsdTest;
#   use OpsdTest::Cluster;                       # (not loaded by `use OpsdTest;`)
#   my $c = cluster_start(env => {...});         # script/cluster start: 3 Galera nodes, 2 hosts
#   my $r = on_host(2, GET => '/auth/me', session => $s);   # http() against host 2
#   node_sql(3, 'SELECT COUNT(*) FROM contacts');           # MariaDB as root on node 3
#   kill_node(1); start_node(1);                 # kill -9, restart (IST); start_* return seconds
#   kill_host(2); start_host(2);
#   my $load = cluster_load(steps => [...]);     # a client spreading requests over the hosts
#   my $sum = $load->stop;
#   cluster_finish();                            # script/cluster stop, checks, done_testing
#
# The cluster lives in the test's temporary directory (OPSD_CLUSTER_DIR); host 1
# is adopted as the harness's stack (OpsdTest::adopt_stack), so http(), login(),
# admin_session() and the MariaDB helpers (on node 1) work as in any test. The
# environment given to script/cluster is OpsdTest::stack_env(): OPSD_ENV=test,
# the harness's superadmin, nginx's limits raised, fast scrypt (not start_stack's
# OPSD_CACHE_POLL_MS=0: the hosts poll at the production default); env => {...}
# adds or overrides (undef removes).

use v5.36;
use Carp qw(croak);
use Exporter qw(import);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT;
BEGIN {
	@EXPORT = qw(cluster_start cluster_stop cluster_finish cluster on_host node_sql node_read node_status
		kill_node start_node kill_host start_host cluster_cmd cluster_load host_count node_count host_env)
}
use OpsdTest qw(http stack run_cmd pid_alive wait_until parse_env_file json_decode adopt_stack);

my $C;   # the cluster of this test file
my $OWNER = $$;

sub cluster() { croak 'no cluster: call cluster_start first' unless $C; return $C }
sub host_count() { return scalar @{ cluster()->{hosts} } }
sub node_count() { return scalar @{ cluster()->{nodes} } }

sub cluster_cmd(@args) {
	my %o = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
	state $n = 0;
	$n++;
	my $tag = 'cluster-' . join('-', @args) . "-$n";
	return run_cmd(cmd => ['script/cluster', @args], env => cluster()->{env}, dir => cluster()->{tmp},
	    tag => $tag, timeout => $o{timeout} // 600);
}

sub cluster_start(%o) {
	croak 'cluster_start called twice' if $C;
	my $tmp = tempdir('opsd-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);
	chmod 0755, $tmp;
	my %env = (OpsdTest::_scrub_env(%ENV), OpsdTest::stack_env(),
		OPSD_CLUSTER_DIR => "$tmp/cluster",
		%{ $o{env} // {} });
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	$C = { tmp => $tmp, dir => "$tmp/cluster", env => \%env, hosts => [], nodes => [] };
	my @args = ('start', $o{hosts} // 2, $o{nodes} // 3);
	my $r = cluster_cmd(@args);
	$C->{started} = 1;
	$C->{start} = $r;
	my @ready = grep { m{^opsd ready: } } split /\n/, $r->{out};
	for (split /\n/, $r->{out}) {
		push @{ $C->{nodes} }, { n => $1, port => $2, sock => $3 } if /^db node (\d+) ready: 127\.0\.0\.1:(\d+) socket=(\S+)$/;
	}
	for my $i (0 .. $#ready) {
		my ($port) = $ready[$i] =~ m{^opsd ready: https://127\.0\.0\.1:(\d+)/$};
		push @{ $C->{hosts} }, { n => $i + 1, port => $port, var => "$C->{dir}/host" . ($i + 1),
		    agent => _agent() };
	}
	$C->{join_s} = [map { /db node (\d+) synced in ([\d.]+) s/ ? [$1, $2] : () } split /\n/, $r->{err}];
	my $ok = Test::More::ok($r->{rc} == 0, sprintf('script/cluster %s exits 0 (%.1f s)', join(' ', @args), $r->{elapsed}));
	$ok &= Test::More::is(scalar @ready, $args[1], "  one ready line per host ($args[1])");
	$ok &= Test::More::is(scalar @{ $C->{nodes} }, $args[2], "  one ready line per db node ($args[2])");
	$ok &= Test::More::ok(!grep({ !$_->{port} } @{ $C->{hosts} }), '  every ready line names https://127.0.0.1:PORT/');
	unless ($ok) {
		Test::More::diag("script/cluster start stdout:\n$r->{out}\nstderr (tail):\n" . join("\n", (split /\n/, $r->{err})[-40 .. -1]));
		die "the cluster did not start\n";
	}
	adopt_stack(var => $C->{hosts}[0]{var}, port => $C->{hosts}[0]{port}, tmp => $tmp,
	    mysql_sock => $C->{nodes}[0]{sock});
	return $C;
}

sub _agent() {
	return HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 30,
	    max_redirect => 0, keep_alive => 1, agent => 'opsd-test/1');
}

# http() against host $n (1-based), on its own keep-alive connection.
sub on_host($n, $method, $path, %o) {
	my $h = cluster()->{hosts}[$n - 1] or croak "no host $n";
	local stack()->{port} = $h->{port};
	return http($method, $path, agent => $h->{agent}, %o);
}

# The variables host $n's opsd.env holds.
sub host_env($n) { return parse_env_file(cluster()->{hosts}[$n - 1]{var} . '/opsd.env') // {} }

# SQL as root on node $n (the output, undef when it fails); the harness's
# mysql() and friends on another node: local OpsdTest::stack()->{mysql_sock}.
sub node_sql($n, @sql) {
	my $node = cluster()->{nodes}[$n - 1] or croak "no node $n";
	local stack()->{mysql_sock} = $node->{sock};
	return OpsdTest::mysql(@sql);
}

# node_sql after the node has applied what the cluster committed before it
# (wsrep_sync_wait): what a test reads to check writes made through another node.
sub node_read($n, @sql) { return node_sql($n, 'SET SESSION wsrep_sync_wait = 1', @sql) }

sub node_status($n, $name) {
	my $v = node_sql($n, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '$name'")
	    // return undef;
	chomp $v;
	return $v;
}

sub _timed(@args) {
	my $r = cluster_cmd(@args);
	Test::More::diag("script/cluster @args failed: rc=$r->{rc}\n$r->{err}") if $r->{rc} != 0;
	return $r->{rc} == 0 ? $r->{elapsed} : undef;
}
sub kill_node($n) { return _timed('kill-node', $n) }
sub start_node($n) { return _timed('start-node', $n) }
sub kill_host($n) { return _timed('kill-host', $n) }
sub start_host($n) {
	my $h = cluster()->{hosts}[$n - 1];
	$h->{agent} = _agent();   # the old connections went with the killed nginx
	return _timed('start-host', $n);
}

# ---------------------------------------------------------------- a client spreading its requests
#
# cluster_load(steps => [...], pause => s): OpsdTest::Live's request_loop over
# every host of the cluster, as a load balancer spreads requests (step k of the
# loop's sequence to host k mod HOSTS; one that cannot connect goes to the
# next host). ->stop returns {total, rows => [{round, label, host, status, t,
# ms, ok, id, body}], failed, t0}.
sub cluster_load(%o) {
	return OpsdTest::Live::request_loop(%o, hosts => cluster()->{hosts}, dir => cluster()->{tmp}, quiet => 1);
}

# ---------------------------------------------------------------- the end

sub _pids() {
	my @p;
	for my $nd (@{ $C->{nodes} }) {
		(my $d = $nd->{sock}) =~ s{/mysqld\.sock\z}{};
		push @p, OpsdTest::slurp("$d/mysqld.pid") // ();
	}
	for my $h (@{ $C->{hosts} }) {
		push @p, OpsdTest::slurp("$h->{var}/run/$_") // () for qw(opsd.pid nginx.pid);
	}
	return grep { pid_alive($_) } map { /(\d+)/ ? $1 : () } @p;
}

# script/cluster stop; with $quiet no tests (the END cleanup).
sub cluster_stop($quiet = 0) {
	return unless $C && $C->{started} && !$C->{stopped};
	$C->{stopped} = 1;
	my @pids = _pids();
	my $r = cluster_cmd('stop');
	my $gone = wait_until(20, sub { !grep { pid_alive($_) } @pids }, 0.1);
	kill 'KILL', grep { pid_alive($_) } @pids unless $gone;
	return if $quiet;
	Test::More::is($r->{rc}, 0, 'script/cluster stop exits 0') or Test::More::diag($r->{err});
	Test::More::ok($gone, '  and leaves no mariadbd, opsd or nginx process of the cluster');
	for my $h (@{ $C->{hosts} }) {
		my @bad = grep { length && !ref json_decode($_) } split /\n/, OpsdTest::slurp("$h->{var}/log/opsd.log") // '';
		Test::More::ok(!@bad, "host $h->{n}: every line of log/opsd.log is a JSON object")
		    or Test::More::diag(join "\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]);
	}
}

sub _diag_logs() {
	for my $h (@{ $C->{hosts} }) {
		for my $f (qw(opsd.log nginx-error.log)) {
			my @l = split /\n/, OpsdTest::slurp("$h->{var}/log/$f") // '';
			@l = @l[-25 .. -1] if @l > 25;
			Test::More::diag("---- host $h->{n} log/$f ----\n" . join("\n", @l)) if @l;
		}
	}
	for my $i (1 .. @{ $C->{nodes} }) {
		my @l = grep { /ERROR|Warning.*WSREP|IST|SST/ } split /\n/, OpsdTest::slurp("$C->{dir}/db$i/log/mysqld.log") // '';
		@l = @l[-10 .. -1] if @l > 10;
		Test::More::diag("---- db node $i log/mysqld.log ----\n" . join("\n", @l)) if @l;
	}
}

sub cluster_finish() {
	cluster_stop(0);
	_diag_logs() unless Test::More->builder->is_passing;
	OpsdTest::finish();
}

END {
	if ($$ == $OWNER && $C) {
		my $exit = $?;
		_diag_logs() if !$C->{stopped} && $C->{started};
		cluster_stop(1);
		$? = $exit;
	}
}

1;
