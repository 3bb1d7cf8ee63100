package OpsdTest::Rotation;

# ---------------------------------------------------------------- rotating credentials under load
#
#   use OpsdTest::Rotation;                         # (not loaded by `use OpsdTest;`)
#   my $d = dedicated_org($admin, contacts => 4);   # {org, db, contacts => [ids]}
#   my $load = load_start($admin, $d, clients => 3);
#   ... rotate something ...
#   wait_until(60, sub { load_after($load, $t) >= 20 });   # while it runs: wait, never sleep
#   my $r = load_stop($load);                       # {total, failed => [lines], times => [...]}
#   is scalar @{ $r->{failed} }, 0, 'no request failed';
#   cmp_ok load_after($r, $t), '>=', 20, 'requests went on after $t';
#   load_each_after($load, $t)                      # the fewest any one client sent since $t
#   env_file_set(...) and reload_opsd(...) are OpsdTest::Live's (exported by OpsdTest)
#   my ($user, $pass, $uri) = tenant_db_user($d->{db});   # a MariaDB user for it

use v5.36;
use Exporter qw(import);
use HTTP::Tiny ();
use POSIX ();
use Time::HiRes ();

our @EXPORT;
BEGIN { @EXPORT = qw(dedicated_org load_start load_stop load_after load_each_after tenant_db_user) }
use OpsdTest qw(http j status_is mysql var_dir sensitive
    run_tag migration_start migration_wait migration_finalize tenant_create);

# An org with $o{contacts} contacts, moved to its own database by a real
# migration (the default target: OPSD_DEDICATED_DB_URI, as the opsd user).
sub dedicated_org($admin, %o) {
	my $tag = run_tag();
	state $n = 0;
	$n++;
	my $org = OpsdTest::create_org(name => "Dedicated $tag $n");
	my @ids;
	for my $i (1 .. ($o{contacts} // 3)) {
		my $r = tenant_create($admin, $org->{id}, 'contacts', { name => "Contact $i", email => "c$i.$tag\@dedicated.test" });
		push @ids, j($r)->{id} if $r->{status} == 201;
	}
	my $db = "org_rot_${tag}_$n";
	my $s = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated', dbName => $db, timeout => 60);
	status_is $s, 202, "the org $org->{slug} starts moving to $db";
	my $d = migration_wait($admin, $org->{id}, qr/^ready_for_cutover$/, 90);
	status_is migration_finalize($admin, orgId => $org->{id}, timeout => 60), 202, '  finalize';
	$d = migration_wait($admin, $org->{id}, qr/^completed$/, 60);
	Test::More::is($d->{status}, 'completed', "  $org->{slug} lives in $db") or Test::More::diag(Test::More::explain($d));
	return { org => $org, db => $db, contacts => \@ids };
}

# A MariaDB user (and its password, registered as sensitive) with the
# rights the tenant write path needs on db (or %o{grant}), and the URI
# opsd reaches it with over the stack's socket.
sub tenant_db_user($db, %o) {
	state $n = 0;
	$n++;
	my $user = sprintf 'rot_%s_%d', run_tag(), $n;
	my $pass = sensitive("tenant db password $n", 'Tdb-' . join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24);
	my $grant = $o{grant} // 'SELECT, INSERT, UPDATE, DELETE';
	mysql("CREATE USER '$user'\@'localhost' IDENTIFIED BY '$pass'", "GRANT $grant ON `$db`.* TO '$user'\@'localhost'")
	    // die "cannot create MariaDB user $user\n";
	return ($user, $pass, tenant_uri($user, $pass, $db));
}

sub tenant_uri($user, $pass, $db) { return "mysql://$user:$pass\@localhost/$db?socket=" . var_dir() . '/run/mysqld.sock' }

# $o{clients} children (3) each loop until load_stop: GET one of the
# org's contacts, then PATCH it, as $session. Every answer goes to a file
# as "status epoch method path body-if-not-2xx".
sub load_start($session, $d, %o) {
	my $dir = var_dir() . '/..';
	my $stop = "$dir/load-stop-" . ++(state $n);
	unlink $stop;
	my @kids;
	for my $c (1 .. ($o{clients} // 3)) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, keep_alive => 1, timeout => 30);
			open my $out, '>', "$stop.$c" or POSIX::_exit(2);
			$out->autoflush(1);
			my $end = time + ($o{max_seconds} // 300);
			for (my $i = 0; !-e $stop && time < $end; $i++) {
				my $id = $d->{contacts}[($i + $c) % @{ $d->{contacts} }];
				my $path = "/orgs/$d->{org}{id}/contacts/$id";
				my ($m, %b) = $i % 2 ? ('PATCH', json => { name => "Load $c $i" }) : ('GET');
				my $t = Time::HiRes::time();
				my $r = http($m => $path, session => $session, agent => $ua, %b);
				my $body = $r->{status} =~ /^2/ ? '' : substr($r->{body} // '', 0, 300) =~ s/\s+/ /gr;
				printf {$out} "%d %.6f %s %s %s\n", $r->{status}, $t, $m, $path, $body;
			}
			close $out;
			POSIX::_exit(0);
		}
		push @kids, $pid;
	}
	return { stop => $stop, kids => \@kids, clients => $o{clients} // 3 };
}

# The start times of the requests each client has had answered so far: one
# array a client (a line is written once its answer arrived).
sub load_times($load) {
	my @per;
	for my $c (1 .. $load->{clients}) {
		my @t;
		if (open my $in, '<', "$load->{stop}.$c") {
			while (my $l = <$in>) {
				next unless $l =~ /\n\z/;
				push @t, (split / /, $l)[1];
			}
		}
		push @per, \@t;
	}
	return @per;
}

sub load_stop($load) {
	open my $fh, '>', $load->{stop} or die "$load->{stop}: $!";
	close $fh;
	waitpid $_, 0 for @{ $load->{kids} };
	my %r = (total => 0, failed => [], times => []);
	for my $c (1 .. $load->{clients}) {
		open my $in, '<', "$load->{stop}.$c" or next;
		while (my $l = <$in>) {
			chomp $l;
			my ($st, $t) = split / /, $l;
			$r{total}++;
			push @{ $r{times} }, $t;
			push @{ $r{failed} }, "client $c: $l" if $st !~ /^2/;
		}
	}
	return \%r;
}

# How many requests started after epoch $t: of load_stop's result, or of a
# load still running (those answered so far).
sub load_after($r, $t) {
	return scalar grep { $_ > $t } $r->{times} ? @{ $r->{times} } : map { @$_ } load_times($r);
}

# The fewest requests any one client of a running load started after $t and
# has had answered: once it is 1, no client still waits for an answer to a
# request sent before $t.
sub load_each_after($load, $t) {
	my @n = sort { $a <=> $b } map { scalar grep { $_ > $t } @$_ } load_times($load);
	return $n[0] // 0;
}

1;
