#!/usr/bin/perl
# The blocklist reaches nginx by itself (README "Runbook 4", step 3): opsd's nginx process
# ("opsd: nginx", the master's user) renders opsd-blocklist.conf from the database, writes it
# only when it changes, runs nginx -t and reloads nginx. An address blocked through the API gets
# nginx's own 403 on /console/ (a path opsd never sees) without opsctl; removing the entry lets
# it in again; an entry that expires is refused while it lives and let in after its expiresAt,
# with no step by anyone. (The bounds are generous: CI runs this under ASan on slow cores; each
# change normally takes about a second.) A configuration nginx -t
# refuses (a broken server.d file) keeps the previous include and the running nginx, and shows
# in /status, /metrics (opsd_nginx_apply_failures_total) and nginx_apply_hosts until it is fixed.
# Each entry says whether every applying host's nginx has it (a second host simulated in
# nginx_apply_hosts). All of it under a steady loop of requests that must all succeed.
# GET /security/blocklist?format=plain|nft|iptables|ip6tables and opsctl blocklist list
# --format; opsctl blocklist sync-nginx still works.
#
# Clients: the harness talks from 127.0.0.1; 127.0.0.5 … are the blocked ones
# (HTTP::Tiny local_address).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin is signed in';
my $file = var_dir() . '/nginx/opsd-blocklist.conf';
my $nginx = nginx_pid();

my %agent;
sub from($addr) {
	return $agent{$addr} //= HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 },
	    timeout => 10, max_redirect => 0, keep_alive => 0, local_address => $addr, agent => 'opsd-test/1');
}
# What nginx answers $addr on /console/, a static path opsd never sees: "200" or "403 forbidden".
sub edge($addr) {
	my $r = http(GET => '/console/', agent => from($addr));
	return $r->{status} . ($r->{status} == 200 ? '' : ' ' . ((($r->{json} // {})->{error} // {})->{code} // '-'));
}
sub slurp_file($path) { open my $fh, '<', $path or return undef; local $/; return scalar <$fh> }
sub add(%body) { return http(POST => '/security/blocklist', session => $admin, json => \%body) }
sub del($id) { return http(DELETE => "/security/blocklist/$id", session => $admin) }
sub entry($id) {
	my $r = http(GET => '/security/blocklist?limit=500', session => $admin);
	my ($e) = grep { $_->{id} eq $id } @{ ($r->{json} // {})->{items} // [] };
	return $e;
}
sub nginx_status() {
	my $s = http(GET => '/status')->{json} // {};
	my ($e) = grep { ($_->{file} // '') eq 'blocklist' } @{ $s->{nginxApply} // [] };
	return $e // {};
}
sub metric($name) {
	my ($v) = http(GET => '/metrics')->{body} =~ /^\Q$name\E\{file="blocklist"\} (\S+)$/m;
	return $v;
}
# Seconds until $code is true (polling every 0.1 s), or undef after $max.
sub within($max, $code) {
	my $t0 = time;
	return wait_until($max, $code, 0.1) ? time - $t0 : undef;
}
# Seconds until nginx answers $addr $want three times running (during a reload an old nginx
# worker may still answer for a moment), or undef after $max.
sub settles($max, $addr, $want) {
	my $n = 0;
	return within($max, sub { $n = edge($addr) eq $want ? $n + 1 : 0; $n >= 3 });
}

# ---- the nginx process: the master's user, in sync from the start
{
	my @kids = grep { (proc_title($_) // '') =~ /^opsd: nginx\b/ } children_of(master_pid());
	is scalar(@kids), 1, 'the master runs one child titled "opsd: nginx"';
	is proc_uids($kids[0] // 0)->{uid}[1], 0, '  it keeps root, the user opsd was started as (the workers drop to www-data)';
	ok within(10, sub { (nginx_status()->{state} // '') eq 'in_sync' }), '/status: nginxApply blocklist in_sync';
	my $s = nginx_status();
	is_deeply [@$s{qw(file failures lastError lastErrorAt)}], ['blocklist', 0, undef, undef], '  no failure so far';
	my $t0 = time;
	ok defined within(20, sub { my $at = nginx_status()->{lastSuccessAt}; $at && rfc3339_epoch($at) > $t0 }),
	    '  lastSuccessAt moves on (a pass each second)';
	is metric('opsd_nginx_apply_failures_total'), 0, 'opsd_nginx_apply_failures_total{file="blocklist"} 0';
	$t0 = time;
	ok defined within(20, sub { (metric('opsd_nginx_apply_last_success_timestamp_seconds') // 0) > $t0 }),
	    'opsd_nginx_apply_last_success_timestamp_seconds moves on too';
	like slurp_file($file) // '', qr/^# GENERATED from the ip_blocklist table/m, 'the include is the rendered one';
	is edge('127.0.0.5'), '200', '127.0.0.5 gets /console/ before any entry';
}

# ---- a steady loop of requests through everything below: none may fail
my $loop_file = var_dir() . '/../load.txt';
my $stop_file = var_dir() . '/../load.stop';
my $loader = fork // die "fork: $!";
if ($loader == 0) {
	my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, keep_alive => 1, timeout => 30);
	open my $out, '>', $loop_file or _exit(2);
	$out->autoflush(1);
	until (-e $stop_file) {
		for my $path ('/console/', '/auth/me', '/healthz') {
			my $r = http(GET => $path, agent => $ua, session => $admin);
			my $body = $r->{status} == 200 ? '' : substr($r->{body} // '', 0, 120) =~ s/\s+/ /gr;
			printf {$out} "%d %.3f %s %s\n", $r->{status}, time, $path, $body;
		}
		sleep 0.02;
	}
	_exit(0);
}

# ---- add: nginx's 403, without opsctl; the entry says it is applied
my %id;
{
	my $r = add(cidr => '127.0.0.5', reason => 'test: credential stuffing');
	is $r->{status}, 201, 'POST /security/blocklist 127.0.0.5 → 201' or diag $r->{body};
	$id{5} = ($r->{json} // {})->{id};
	is_deeply [@{ ($r->{json} // {})->{nginx} // {} }{qw(applied appliedAt)}], [JSON::PP::false, undef],
	    'the answer says nginx has not applied it yet';
	my $dt = settles(20, '127.0.0.5', '403 forbidden');
	ok defined $dt, sprintf('nginx refuses 127.0.0.5 on /console/ (after %.1fs)', $dt // -1);
	check_error(http(GET => '/healthz', agent => from('127.0.0.5')), 403, 'forbidden', "  nginx's JSON 403 on every path");
	is edge('127.0.0.6'), '200', '  other addresses still pass';
	is nginx_pid(), $nginx, '  nginx was reloaded, not restarted';
	like slurp_file($file), qr/^deny 127\.0\.0\.5\/32;  # test: credential stuffing$/m, '  the include has the deny line';
	ok within(20, sub { (entry($id{5}) // {})->{nginx}{applied} }), 'GET /security/blocklist: nginx.applied turns true';
	my $e = entry($id{5}) // {};
	is_deeply [@{ $e->{nginx} // {} }{qw(hosts hostsApplied)}], [1, 1], '  on the one host that applies the list';
	ok $e->{nginx}{appliedAt} && rfc3339_epoch($e->{nginx}{appliedAt}) >= rfc3339_epoch($e->{createdAt}) - 1,
	    '  appliedAt is after createdAt';
	my $s = nginx_status();
	ok $s->{lastReloadAt} && rfc3339_epoch($s->{lastReloadAt}) >= rfc3339_epoch($e->{createdAt}) - 1,
	    '/status: lastReloadAt moved with it';
	my ($host) = db_rows("SELECT host, state, failures FROM nginx_apply_hosts WHERE file = 'blocklist'");
	is_deeply [@{ $host // {} }{qw(state failures)}], ['in_sync', 0], 'nginx_apply_hosts: this host, in_sync';
	is db_count("SELECT COUNT(*) FROM ip_blocklist_nginx WHERE host = '$host->{host}'"), 1,
	    'ip_blocklist_nginx: the entry, applied on this host';
}

# ---- several hosts: an entry is applied once every host that applies the list has it
{
	ok defined mysql("INSERT INTO nginx_apply_hosts (host, file, checked_at, state, failures)"
	    . " VALUES ('other-host.test', 'blocklist', NOW(3), 'in_sync', 0)"), 'another host reports in';
	my $e = entry($id{5}) // {};
	is_deeply [@{ $e->{nginx} // {} }{qw(applied appliedAt hosts hostsApplied)}], [JSON::PP::false, undef, 2, 1],
	    '  the entry is applied on 1 of 2 hosts: not applied';
	mysql("INSERT INTO ip_blocklist_nginx (entry_id, host, applied_at) SELECT id, 'other-host.test', NOW(3)"
	    . " FROM ip_blocklist WHERE cidr = '127.0.0.5/32'");
	$e = entry($id{5}) // {};
	is_deeply [@{ $e->{nginx} // {} }{qw(applied hosts hostsApplied)}], [JSON::PP::true, 2, 2], '  once it has it too: applied';
	mysql("UPDATE nginx_apply_hosts SET checked_at = NOW(3) - INTERVAL 2 MINUTE WHERE host = 'other-host.test'");
	$e = entry($id{5}) // {};
	is_deeply [@{ $e->{nginx} // {} }{qw(applied hosts)}], [JSON::PP::true, 1], '  a host silent for a minute no longer counts';
	mysql("DELETE FROM nginx_apply_hosts WHERE host = 'other-host.test'");
}

# ---- remove: allowed again
{
	is del($id{5})->{status}, 200, 'DELETE the 127.0.0.5 entry';
	my $dt = settles(20, '127.0.0.5', '200');
	ok defined $dt, sprintf('nginx serves 127.0.0.5 again (after %.1fs)', $dt // -1);
	unlike slurp_file($file), qr/127\.0\.0\.5/, '  the deny line is gone';
	is db_count('SELECT COUNT(*) FROM ip_blocklist_nginx'), 0, '  and its ip_blocklist_nginx rows with the entry';
}

# ---- an expiry: refused while the entry lives, let in again after expiresAt by itself
{
	my $r = add(cidr => '127.0.0.6', reason => 'test: expires soon', expiresAt => rfc3339_at(time + 15));
	is $r->{status}, 201, 'POST 127.0.0.6 expiring in 15 s' or diag $r->{body};
	my $exp = rfc3339_epoch(($r->{json} // {})->{expiresAt}) // 0;
	ok defined(settles(15, '127.0.0.6', '403 forbidden')) && time() < $exp, '  nginx refuses it while it lives';
	like slurp_file($file), qr/^deny 127\.0\.0\.6\/32;  # test: expires soon \(until /m, '  its deny line says until when';
	# every answer from here on counts: the first 200 must come after expiresAt
	my $answered;
	my $free = wait_until($exp + 10 - time, sub { my $e = edge('127.0.0.6'); $answered = time; $e eq '200' }, 0.1);
	ok $free, sprintf('nginx serves 127.0.0.6 again within 10 s of expiresAt (%.1fs after)', ($answered // 0) - $exp);
	cmp_ok $answered // 0, '>=', $exp, '  and refused it until expiresAt';
	unlike slurp_file($file), qr/127\.0\.0\.6/, '  the deny line is gone';
}

# ---- nginx -t fails: the previous include stays, nginx keeps serving, the failure shows
{
	my $before = slurp_file($file);
	my $broken = var_dir() . '/nginx/server.d/zz-broken.conf';
	open my $fh, '>', $broken or die "$broken: $!";
	print $fh "this_is_not_a_directive on;\n";
	close $fh;
	my $r = add(cidr => '127.0.0.7', reason => 'test: while nginx -t fails');
	is $r->{status}, 201, 'with a broken server.d file, POST 127.0.0.7 → 201' or diag $r->{body};
	$id{7} = ($r->{json} // {})->{id};
	ok within(20, sub { (nginx_status()->{state} // '') eq 'failing' }), '/status: nginxApply blocklist failing';
	my $s = nginx_status();
	like $s->{lastError} // '', qr/nginx -t failed: .*unknown directive "this_is_not_a_directive".*the previous .*opsd-blocklist\.conf is back/,
	    '  lastError: nginx -t\'s own line, the previous file is back' or diag explain $s;
	ok $s->{lastErrorAt} && abs(rfc3339_epoch($s->{lastErrorAt}) - time) < 10, '  lastErrorAt is now';
	cmp_ok $s->{failures}, '>=', 1, '  failures counted';
	cmp_ok metric('opsd_nginx_apply_failures_total') // 0, '>=', 1, 'opsd_nginx_apply_failures_total{file="blocklist"} moved';
	is slurp_file($file), $before, 'the include is byte for byte the previous one';
	ok !(grep { /\.opsd-blocklist\.conf\./ } glob(var_dir() . '/nginx/.*')), '  no temporary file left behind';
	is edge('127.0.0.7'), '200', 'nginx still serves, with the previous list (127.0.0.7 not denied there)';
	check_error(http(GET => '/auth/me', agent => from('127.0.0.7')), 403, 'blocked', '  opsd itself blocks it already');
	is nginx_pid(), $nginx, '  the same nginx master';
	is_deeply [@{ (entry($id{7}) // {})->{nginx} // {} }{qw(applied hostsApplied)}], [JSON::PP::false, 0],
	    '  the entry says nginx has not applied it';
	ok within(30, sub { (db_rows("SELECT state FROM nginx_apply_hosts WHERE file = 'blocklist'"))[0]{state} eq 'failing' }),
	    'nginx_apply_hosts says failing';
	my ($row) = db_rows("SELECT last_error FROM nginx_apply_hosts WHERE file = 'blocklist'");
	like $row->{last_error} // '', qr/this_is_not_a_directive/, '  with the error';
	ok index(logs('opsd.log'), '"event":"nginx_apply_failed"') >= 0, 'opsd.log has nginx_apply_failed';

	unlink $broken or die "$broken: $!";
	my $dt = settles(30, '127.0.0.7', '403 forbidden');
	ok defined $dt, sprintf('fixed: nginx refuses 127.0.0.7 (after %.1fs; retried every 5 s)', $dt // -1);
	$s = nginx_status();
	is $s->{state}, 'in_sync', '/status: in_sync again';
	like $s->{lastError} // '', qr/this_is_not_a_directive/, '  the last error stays on record';
	ok within(20, sub { (entry($id{7}) // {})->{nginx}{applied} }), '  the entry is applied';
	my $failures = metric('opsd_nginx_apply_failures_total');
	sleep 1.5;
	is metric('opsd_nginx_apply_failures_total'), $failures, '  the failures counter stops moving';
}

# ---- upstream firewalls: the active list in their syntax
{
	my $r = add(cidr => '2001:db8::/32', reason => 'test: IPv6 range');
	is $r->{status}, 201, 'POST 2001:db8::/32';
	$id{v6} = ($r->{json} // {})->{id};
	my %want = (
		plain => qr/\A127\.0\.0\.7\/32\n2001:db8::\/32\n\z/,
		nft => qr/^table inet opsd_blocklist \{\n.*elements = \{ 127\.0\.0\.7\/32 \}.*elements = \{ 2001:db8::\/32 \}.*ip saddr \@v4 drop\n\t\tip6 saddr \@v6 drop\n/ms,
		iptables => qr/^\*filter\n:OPSD-BLOCKLIST - \[0:0\]\n-A OPSD-BLOCKLIST -s 127\.0\.0\.7\/32 -j DROP\nCOMMIT\n\z/m,
		ip6tables => qr/^\*filter\n:OPSD-BLOCKLIST - \[0:0\]\n-A OPSD-BLOCKLIST -s 2001:db8::\/32 -j DROP\nCOMMIT\n\z/m,
	);
	for my $f (sort keys %want) {
		my $t = http(GET => "/security/blocklist?format=$f", session => $admin);
		is $t->{status}, 200, "GET /security/blocklist?format=$f → 200";
		like $t->{headers}{'content-type'} // '', qr{^text/plain; charset=utf-8$}, '  text/plain';
		like $t->{body}, $want{$f}, "  the list in $f syntax" or diag $t->{body};
		my ($rc, $out, $err) = opsctl('blocklist', 'list', '--format', $f);
		is $rc, 0, "opsctl blocklist list --format $f exits 0" or diag $err;
		my $strip = sub ($s) { join "\n", sort grep { !/^#/ } split /\n/, $s };
		is $strip->($out), $strip->($t->{body}), '  the same lines as the API (comments aside)';
		# the tools themselves check it where they are installed (a dry run: nothing loaded)
		my %check = (nft => ['nft', '-c', '-f'], iptables => ['iptables-restore', '--test', '--noflush'],
		    ip6tables => ['ip6tables-restore', '--test', '--noflush']);
		my $argv = $check{$f};
		my ($dir) = grep { $argv && -x "$_/$argv->[0]" } qw(/usr/sbin /sbin /usr/bin);
		SKIP: {
			skip "$f: " . ($argv ? "no $argv->[0] here" : 'no tool to check it'), 1 unless $dir;
			my $file = stack()->{tmp} . "/blocklist.$f";
			open my $fh, '>', $file or die "$file: $!";
			print {$fh} $t->{body};
			close $fh;
			my $c = run_cmd(cmd => ["$dir/$argv->[0]", @$argv[1 .. $#$argv], $f eq 'nft' ? ($file) : ()],
			    stdin_file => $file, timeout => 30, tag => "check-$f");
			is $c->{rc}, 0, "  @{ $check{$f} } accepts it" or diag "$c->{out}$c->{err}";
		}
	}
	check_error(http(GET => '/security/blocklist?format=csv', session => $admin), 400, 'validation_failed', 'format=csv');
	my $bad = http(GET => '/security/blocklist?format=csv', session => $admin);
	ok exists(((($bad->{json} // {})->{error} // {})->{details} // {})->{fields}{format}), '  names the field format';
	check_error(http(GET => '/security/blocklist?format=plain&limit=5', session => $admin), 400, 'validation_failed',
	    'format=plain with limit (the text formats hold the whole list)');
	is http(GET => '/security/blocklist?format=json&limit=1', session => $admin)->{status}, 200, 'format=json pages as before';
	my $officer = create_user(role => 'compliance_officer');
	my $os = login($officer->{email}, $officer->{password});
	check_error(http(GET => '/security/blocklist?format=plain', session => $os), 403, 'forbidden',
	    'a compliance_officer (no security.blocklist) may not read it');
	my ($rc, undef, $err) = opsctl('blocklist', 'list', '--format', 'pf');
	is $rc, 2, 'opsctl blocklist list --format pf exits 2';
	like $err, qr/--format must be/, '  and says why';
}

# ---- opsctl blocklist sync-nginx still works (hosts that prefer it)
{
	my ($rc, $out, $err) = opsctl('blocklist', 'sync-nginx');
	is $rc, 0, 'opsctl blocklist sync-nginx exits 0' or diag "$out$err";
	like $out, qr/^2 entries: kept .*opsd-blocklist\.conf; nginx -t ok; reloaded nginx \(SIGHUP to pid $nginx\)$/m,
	    '  the file was already current: tested and reloaded';
	is edge('127.0.0.7'), '403 forbidden', '  nginx still refuses 127.0.0.7';
	is nginx_status()->{state}, 'in_sync', '  the nginx process still finds it in sync';
}

# ---- the loop: every request succeeded through every reload
{
	# as many rounds as the check below wants, however slow this machine
	wait_until(120, sub { open my $in, '<', $loop_file or return 0; my @l = grep { /\n\z/ } <$in>; @l >= 300 }, 0.2);
	open my $fh, '>', $stop_file or die $!;
	close $fh;
	waitpid $loader, 0;
	open my $in, '<', $loop_file or die "$loop_file: $!";
	my (@fail, $n);
	while (<$in>) {
		$n++;
		push @fail, $_ unless /^200 /;
	}
	cmp_ok $n, '>=', 300, "the loop sent $n requests (/console/, /auth/me, /healthz) meanwhile";
	is scalar(@fail), 0, '  none failed across the nginx reloads' or diag join '', @fail[0 .. ($#fail > 9 ? 9 : $#fail)];
	my $reloads = grep { ($_->{event} // '') eq 'nginx_applied' && ($_->{msg} // '') =~ /reloaded nginx/ }
	    log_records('opsd.log');
	cmp_ok $reloads, '>=', 5, "  nginx was reloaded $reloads times (nginx_applied in opsd.log)";
}

del($_) for grep { $_ } @id{7, 'v6'};
finish();
