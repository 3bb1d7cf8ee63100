package OpsdTest::Live;

# ---------------------------------------------------------------- changes to a live stack
#
# env_file_set(KEY => value, ...) edits $OPSD_VAR/opsd.env in place (mode
# kept; undef removes a line); reload_opsd() sends SIGHUP to the master (or
# lets by => sub { ... } send it) and waits until every worker and the jobs
# process are new and the old ones are gone (README "The process model and
# signals").
#
# request_loop: a forked client that sends requests through nginx, round after round, until
# it is stopped: what an operator's users do while a change is made (a reload,
# a rotation), so a test can assert that none of their requests failed.
#
#   my $loop = request_loop(steps => [
#       { label => 'me', method => 'GET', path => '/auth/me', session => $s },
#       { label => 'create', method => 'POST', path => "/orgs/$org/contacts", session => $s,
#         json => sub ($i) { { name => "c$i" } } },
#       { label => 'mail', method => 'POST', path => '/email/test', session => $s, every => 4,
#         json => sub ($i) { { to => "m$i\@allowed.test" } } },
#   ], pause => 0.01);
#   ... the change ...
#   my $sum = $loop->stop;    # {total, by_label => {label => n}, failed => [lines], rows => [...]}
#   is scalar @{ $sum->{failed} }, 0, 'no request failed';
#   my @lost = acked_missing($sum, 'create', 'contacts');   # 2xx-answered ids not in the table
#
# A step's json may be a hash or a sub called with the round number; ok is a
# regexp of the statuses that count as success (default 2xx); every => n runs
# the step every n-th round only. Each row is {round, label, host, status, t
# (epoch, when the answer arrived), ms (how long it took), id (the answer's
# "id", when it has one), body (the start of a failed answer)}. $loop->rows
# reads what has arrived so far.
#
# hosts => [{port}, ...] (several opsd hosts: OpsdTest::Cluster) spreads the
# requests as a load balancer does: step k of the loop's whole sequence goes to
# host k mod HOSTS, and a request that could not connect (the host is down:
# nothing was sent) goes to the next host; row host is 1-based. dir => D puts
# the loop's files in D (default: beside the stack's OPSD_VAR); quiet => 1
# leaves the failed requests out of the summary printed after a failed test
# (a loop that expects some).
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use HTTP::Tiny;
use POSIX qw(_exit);
use Time::HiRes qw(time sleep);

our @EXPORT;
BEGIN { @EXPORT = qw(request_loop env_file_set reload_opsd acked_missing) }
my $OWNER = $$;   # END and DESTROY also run in forked children: only the owner stops a loop
use OpsdTest qw(http var_dir master_pid worker_pids jobs_pid pid_alive wait_until log_records mysql norm_id);

sub env_file_set(%set) {
	my $file = var_dir() . '/opsd.env';
	open my $in, '<', $file or die "$file: $!";
	my @lines = grep { my $l = $_; !grep { $l =~ /^\Q$_\E=/ } keys %set } <$in>;
	close $in;
	for my $k (sort keys %set) {
		next unless defined $set{$k};
		die "env_file_set: $k holds a quote" if $set{$k} =~ /'/;
		push @lines, "$k='$set{$k}'\n";
	}
	# truncate and write: the file keeps its mode (0600) and owner
	open my $out, '>', $file or die "$file: $!";
	print {$out} @lines;
	close $out or die "$file: $!";
}

# The reload lines of log/opsd.log so far.
sub _reloads() { return scalar grep { ($_->{event} // '') eq 'reload' } log_records('opsd.log') }

# SIGHUP to the master (or by => sub { ... } sends it: the commands an
# operator runs); true once a new reload line is logged, every process of the
# pool is new and the old ones have exited (timeout in seconds).
sub reload_opsd(%o) {
	my @old = grep { $_ } (worker_pids(), jobs_pid());
	my %old = map { $_ => 1 } @old;
	my $before = _reloads();
	my $n = $o{workers} // scalar(grep { $_ } worker_pids());
	if ($o{by}) { $o{by}->() }
	else { kill 'HUP', master_pid() or return 0 }
	return wait_until($o{timeout} // 30, sub {
		my @w = worker_pids();
		my $j = jobs_pid();
		_reloads() > $before && @w >= $n && $j && !$old{$j} && !grep({ $old{$_} } @w)
		    && !grep { pid_alive($_) } @old;
	}, 0.05) ? 1 : 0;
}

sub request_loop(%o) {
	state $n = 0;
	$n++;
	my $dir = $o{dir} // var_dir() . '/..';
	my $self = bless {
		file => "$dir/loop-$n.txt", stop_file => "$dir/loop-$n.stop", steps => $o{steps},
		hosts => $o{hosts}, quiet => $o{quiet}, t0 => time,
	}, __PACKAGE__;
	unlink $self->{file}, $self->{stop_file};
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		# the child never returns into the test file, whatever a step's sub does
		eval { $self->_run($o{pause} // 0.01) };
		_exit(0);
	}
	$self->{pid} = $pid;
	# the loop is under way once its first round has answered
	OpsdTest::wait_until(20, sub { scalar $self->rows }, 0.05);
	return $self;
}

sub _agent() {
	return HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 },
	    keep_alive => 1, timeout => 30, max_redirect => 0, agent => 'opsd-test-loop/1');
}

# One request of step $s to host $h (undef: the stack's own).
sub _send($s, $i, $port, $ua) {
	my %o = (agent => $ua);
	$o{session} = $s->{session} if $s->{session};
	$o{bearer} = $s->{bearer} if $s->{bearer};
	$o{json} = ref $s->{json} eq 'CODE' ? $s->{json}->($i) : $s->{json} if exists $s->{json};
	my $path = ref $s->{path} eq 'CODE' ? $s->{path}->($i) : $s->{path};
	return http($s->{method}, $path, %o) unless defined $port;
	local OpsdTest::stack()->{port} = $port;
	return http($s->{method}, $path, %o);
}

sub _run($self, $pause) {
	my @ports = map { $_->{port} } @{ $self->{hosts} // [{ port => undef }] };
	my @ua = map { _agent() } @ports;
	open my $out, '>>', $self->{file} or _exit(2);
	my $k = 0;
	for (my $i = 1; !-e $self->{stop_file}; $i++) {
		for my $s (@{ $self->{steps} }) {
			next if $s->{every} && $i % $s->{every};
			my ($r, $h);
			for my $try (0 .. $#ports) {
				$h = ($k + $try) % @ports;
				$r = _send($s, $i, $ports[$h], $ua[$h]);
				last unless @ports > 1 && $r->{status} == 599
				    && ($r->{body} // '') =~ /Connection refused|Could not connect/i;
				$ua[$h] = _agent();
			}
			$k++;
			my $ok = $r->{status} =~ ($s->{ok} // qr/^2\d\d$/);
			my $id = ref $r->{json} eq 'HASH' && !ref $r->{json}{id} ? $r->{json}{id} // '' : '';
			my $body = $ok ? '' : substr($r->{body} // '', 0, 300) =~ s/\s+/ /gr;
			# one write per line: the parent may read while the loop runs
			syswrite $out, join("\t", $i, $s->{label}, $h + 1, $r->{status}, sprintf('%.6f', time),
			    sprintf('%.1f', ($r->{elapsed} // 0) * 1000), $ok ? 1 : 0, $id, $body) . "\n";
		}
		sleep $pause if $pause;
	}
	close $out;
}

sub rows($self) {
	open my $in, '<', $self->{file} or return ();
	my @rows;
	while (my $l = <$in>) {
		next unless $l =~ /\n\z/;
		chomp $l;
		my ($i, $label, $host, $status, $t, $ms, $ok, $id, $body) = split /\t/, $l, 9;
		push @rows, { round => $i, label => $label, host => $host, status => $status, t => $t, ms => $ms,
		    ok => $ok, id => $id, body => $body };
	}
	return @rows;
}

# Rows answered after the epoch $t.
sub rows_after($self, $t) { return grep { $_->{t} > $t } $self->rows }

sub stop($self) {
	if ($self->{pid}) {
		if (open my $fh, ">", $self->{stop_file}) { close $fh }
		waitpid $self->{pid}, 0;
		$self->{pid} = undef;
	}
	my @rows = $self->rows;
	my %by;
	$by{ $_->{label} }++ for @rows;
	my $several = @{ $self->{hosts} // [] } > 1;
	my @failed = map { sprintf '%s round %d%s: %s at %+.3fs %s', $_->{label}, $_->{round},
	    $several ? " host $_->{host}" : '', $_->{status}, $_->{t} - $self->{t0}, $_->{body} } grep { !$_->{ok} } @rows;
	unless ($self->{quiet}) {
		OpsdTest::late_diag("request loop: failed $_") for @failed[0 .. ($#failed > 9 ? 9 : $#failed)];
	}
	return { total => scalar @rows, by_label => \%by, rows => \@rows, failed => \@failed, t0 => $self->{t0} };
}

# The ids a step's 2xx answers gave ($sum from ->stop) that the shared
# database's table does not hold: acknowledged writes that were lost.
sub acked_missing($sum, $label, $table) {
	my @acked = map { norm_id($_->{id}) } grep { $_->{label} eq $label && $_->{ok} && $_->{id} } @{ $sum->{rows} };
	return () unless @acked;
	my $in = join ',', map { "UNHEX('$_')" } grep { /\A[0-9a-f]{32}\z/ } @acked;
	my %have = map { $_ => 1 } split /\n/, mysql("SELECT LOWER(HEX(id)) FROM `$table` WHERE id IN ($in)") // '';
	return grep { !$have{$_} } @acked;
}

sub DESTROY($self) {
	return unless $self->{pid} && $$ == $OWNER;
	if (open my $fh, ">", $self->{stop_file}) { close $fh }
	kill 'TERM', $self->{pid};
	waitpid $self->{pid}, 0;
}

1;
