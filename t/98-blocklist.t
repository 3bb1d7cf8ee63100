#!/usr/bin/perl
# The IP blocklist (README "Runbook 4"): POST/GET/DELETE
# /security/blocklist, enforced by every opsd worker at once (and after a
# reload, and while MariaDB is down), by other hosts' changes within a
# second, expiry and the job that sweeps it, IPv6 and IPv4-mapped clients,
# bad input, roles, audit, opsctl blocklist add|remove|list|sync-nginx and
# nginx's own 403 after a sync (OPSD_NGINX_APPLY=0: nothing applies it by itself).
#
# Clients: the harness talks from 127.0.0.1; other loopback addresses
# (127.0.0.2 …) are "other clients" (HTTP::Tiny local_address). Addresses
# nginx cannot receive (IPv6, documentation ranges) are sent as REMOTE_ADDR
# over FastCGI straight to opsd's socket.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $WORKERS = 3;
# opsd's own layer alone: nginx's copy of the list is applied by hand here (sync-nginx
# below); t/76-blocklist-nginx.t covers the nginx process that applies it by itself.
start_stack(env => { OPSD_PM => 'static', OPSD_WORKERS => $WORKERS, OPSD_NGINX_APPLY => 0 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin is signed in';

# An agent whose connections leave from $addr; a new connection per request,
# so each may land on any nginx and opsd worker.
my %agent;
sub from($addr) {
	return $agent{$addr} //= HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 },
	    timeout => 10, max_redirect => 0, keep_alive => 0, local_address => $addr, agent => 'opsd-test/1');
}
sub get_from($addr, $path, %o) { return http(GET => $path, agent => from($addr), %o) }

# Answers of $n requests from $addr to $path, as "status code" strings.
sub answers($addr, $path, $n) {
	return map { my $r = get_from($addr, $path); "$r->{status} " . (($r->{json} // {})->{error}{code} // '-') } 1 .. $n;
}
sub all_blocked($addr, $path, $n, $name) {
	my @a = answers($addr, $path, $n);
	my @bad = grep { $_ ne '403 blocked' } @a;
	ok !@bad, "$name: $n requests from $addr to $path all get opsd's 403 blocked" or diag join ', ', @a;
}

sub add(%body) { return http(POST => '/security/blocklist', json => \%body, session => delete $body{as} // $admin) }
sub del($id, %o) {
	return http(DELETE => "/security/blocklist/$id", session => $o{as} // $admin,
	    exists $o{json} ? (json => $o{json}) : (), exists $o{body} ? (body => $o{body}, headers => $o{headers}) : ());
}
sub list(%q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { $_ ne 'as' } sort keys %q;
	return http(GET => '/security/blocklist' . ($qs ? "?$qs" : ''), session => $q{as} // $admin);
}
sub list_all() {
	my (@items, $cursor);
	for (1 .. 50) {
		my $r = list(limit => 500, defined $cursor ? (cursor => $cursor) : ());
		return undef unless $r->{status} == 200;
		push @items, @{ $r->{json}{items} };
		$cursor = $r->{json}{nextCursor} // last;
	}
	return \@items;
}
sub row_count() { my $n = mysql('SELECT COUNT(*) FROM ip_blocklist'); chomp($n //= ''); return $n }

# FastCGI straight to opsd with a REMOTE_ADDR of our choice.
sub fcgi_from($addr, $path) {
	my %p = (REQUEST_METHOD => 'GET', REQUEST_URI => $path, DOCUMENT_URI => $path, QUERY_STRING => '',
	    REMOTE_ADDR => $addr, SERVER_PROTOCOL => 'HTTP/1.1', REQUEST_ID => sprintf('%032x', int rand 2**31));
	my $r = fcgi_exchange(fcgi_begin() . fcgi_params(1, [map { ($_ => $p{$_}) } sort keys %p]) . fcgi_record(5, 1, ''));
	my ($body) = ($r->{stdout} // '') =~ /\r?\n\r?\n(.*)\z/s;
	my $j = json_decode($body // '');
	return ($r->{status} // 0) . ' ' . (ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error}{code} : '-');
}

my %entry; # cidr → id

# ---- baseline: nothing is blocked
is get_from('127.0.0.2', '/healthz')->{status}, 200, '127.0.0.2 reaches /healthz before any entry';
is get_from('127.0.0.2', '/auth/me')->{status}, 401, '127.0.0.2 reaches opsd (401 without a session)';
is row_count(), 0, 'ip_blocklist starts empty';
ok !(grep { (proc_title($_) // '') =~ /^opsd: nginx/ } children_of(master_pid())), 'OPSD_NGINX_APPLY=0: no nginx process';
is_deeply((http(GET => '/status')->{json} // {})->{nginxApply}, [], '  and /status says nothing applies the list');

# ---- block 127.0.0.2: enforced at once by every worker
{
	my $r = add(cidr => '127.0.0.2', reason => 'test: credential stuffing (INC-7)');
	is $r->{status}, 201, 'POST /security/blocklist 127.0.0.2 → 201' or diag $r->{body};
	my $e = $r->{json} // {};
	like $e->{id} // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the entry has a UUIDv7 id';
	is $e->{cidr}, '127.0.0.2/32', 'a bare address is stored as /32';
	is $e->{family}, 'ipv4', 'family ipv4';
	is $e->{prefix}, 32, 'prefix 32';
	is $e->{reason}, 'test: credential stuffing (INC-7)', 'the reason as given';
	ok exists $e->{expiresAt} && !defined $e->{expiresAt}, 'expiresAt null: never expires';
	is $e->{createdBy}, $admin->{user}{id}, 'createdBy is the caller';
	like $e->{createdAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'createdAt is RFC 3339';
	$entry{'127.0.0.2/32'} = $e->{id};

	# no sleep: the change counter makes every worker reload on its next request
	my $first = get_from('127.0.0.2', '/auth/me');
	check_error($first, 403, 'blocked', 'the very next request from 127.0.0.2');
	all_blocked('127.0.0.2', '/auth/me', 4 * $WORKERS, 'at once, across the workers');
	all_blocked('127.0.0.2', '/no/such/path', 3, 'unknown paths too');
	all_blocked('127.0.0.2', '/orgs', 3, 'a route that needs a session');
	my $login = http(POST => '/auth/login', agent => from('127.0.0.2'),
	    json => { email => admin_email(), password => admin_password() });
	is "$login->{status} " . (($login->{json} // {})->{error}{code} // '-'), '403 blocked',
	    'POST /auth/login from 127.0.0.2 is refused before the body is read';
	ok !session_set_cookie($login), '… and no session cookie comes back';
	my $rid = $first->{headers}{'x-request-id'};
	ok request_id_logged($rid), "opsd logged the refused request ($rid)";
	my ($line) = grep { ($_->{requestId} // '') eq $rid && ($_->{event} // '') eq 'request' } log_records('opsd.log');
	is_deeply [map { $line->{$_} } qw(status errorCode remoteAddr)], [403, 'blocked', '127.0.0.2'],
	    'the request log line says 403 blocked for 127.0.0.2' or diag explain $line;

	# monitoring on the host keeps working (documented exception)
	is get_from('127.0.0.2', '/healthz')->{status}, 200, 'loopback monitoring: /healthz still answers 127.0.0.2';
	is get_from('127.0.0.2', '/readyz')->{status}, 200, 'loopback monitoring: /readyz still answers 127.0.0.2';

	# other addresses pass
	is get_from('127.0.0.3', '/auth/me')->{status}, 401, '127.0.0.3 is not blocked';
	is http(GET => '/auth/me', session => $admin)->{status}, 200, '127.0.0.1 (the admin) is not blocked';
}

# ---- a change made elsewhere (another host, a direct insert) is seen within a second
{
	ok defined mysql("INSERT INTO ip_blocklist (id, cidr, family, network, prefix, reason, created_by_label)"
	    . " VALUES (UNHEX('0190000000007000800000000000a007'), '127.0.0.7/32', 4,"
	    . " UNHEX('00000000000000000000ffff7f000007'), 32, 'added by another host', 'test')"),
	    'an entry for 127.0.0.7 inserted behind opsd\'s back (no generation bump)';
	my $t0 = time;
	my $blocked = wait_until(5, sub { my @a = answers('127.0.0.7', '/auth/me', $WORKERS); !grep { $_ ne '403 blocked' } @a }, 0.05);
	my $dt = time - $t0;
	ok $blocked, sprintf('every worker blocks 127.0.0.7 after %.2fs', $dt);
	cmp_ok $dt, '<', 3.5, 'within about a second (the cache TTL: 1 s; room for a loaded CI machine)';
	$entry{'127.0.0.7/32'} = '0190000000007000800000000000a007' =~ s/^(.{8})(.{4})(.{4})(.{4})(.{12})$/$1-$2-$3-$4-$5/r;
}

# ---- IPv6, IPv4-mapped clients and non-loopback monitoring (FastCGI by hand)
{
	my $r = add(cidr => '2001:DB8:0::/32', reason => 'test: IPv6 range');
	is $r->{status}, 201, 'POST 2001:DB8:0::/32 → 201' or diag $r->{body};
	is $r->{json}{cidr}, '2001:db8::/32', 'stored in RFC 5952 form';
	is $r->{json}{family}, 'ipv6', 'family ipv6';
	is $r->{json}{prefix}, 32, 'prefix 32';
	$entry{'2001:db8::/32'} = $r->{json}{id};
	$r = add(cidr => '203.0.113.0/24', reason => 'test: documentation range');
	is $r->{status}, 201, 'POST 203.0.113.0/24 → 201' or diag $r->{body};
	$entry{'203.0.113.0/24'} = $r->{json}{id};

	is fcgi_from('2001:db8::7', '/auth/me'), '403 blocked', 'REMOTE_ADDR 2001:db8::7 → 403 blocked';
	is fcgi_from('2001:db8:ffff::1', '/healthz'), '403 blocked', '… on /healthz too (not loopback)';
	is fcgi_from('2001:db9::1', '/healthz'), '200 -', 'REMOTE_ADDR 2001:db9::1 passes';
	is fcgi_from('203.0.113.200', '/metrics'), '403 blocked', 'REMOTE_ADDR 203.0.113.200 → 403 on /metrics';
	is fcgi_from('203.0.114.1', '/healthz'), '200 -', 'REMOTE_ADDR 203.0.114.1 passes';
	is fcgi_from('::ffff:127.0.0.2', '/auth/me'), '403 blocked', 'an IPv4-mapped client ::ffff:127.0.0.2 meets the IPv4 entry';
	is fcgi_from('::ffff:203.0.113.9', '/healthz'), '403 blocked', '::ffff:203.0.113.9 meets 203.0.113.0/24';
	is fcgi_from('::1', '/healthz'), '200 -', '::1 passes';

	my $items = list_all() // [];
	my %by = map { ($_->{cidr} => $_) } @$items;
	ok $by{'2001:db8::/32'}, 'GET /security/blocklist lists the IPv6 range';
	is_deeply [sort keys %by], [sort keys %entry], 'the list holds exactly the active entries';
}

# ---- opsd reload (SIGHUP to the master, as script/server does): still blocked
{
	my $master = master_pid();
	my @w0 = worker_pids();
	ok kill('HUP', $master), "SIGHUP to the opsd master ($master)";
	my $renewed = wait_until(20, sub {
		my @w = worker_pids();
		return @w == $WORKERS && !grep { my $p = $_; grep { $_ == $p } @w0 } @w;
	}, 0.1);
	ok $renewed, 'every worker was replaced by the reload';
	all_blocked('127.0.0.2', '/auth/me', 3 * $WORKERS, 'after the reload');
	all_blocked('127.0.0.7', '/auth/me', $WORKERS, 'after the reload (entry from elsewhere)');
	is get_from('127.0.0.3', '/auth/me')->{status}, 401, 'after the reload 127.0.0.3 still passes';
}

# ---- MariaDB down: the last list stays in force
{
	ok stop_mysql(), 'MariaDB stopped';
	sleep 1.2; # past the cache TTL: every worker tries a reload and fails
	all_blocked('127.0.0.2', '/auth/me', 2 * $WORKERS, 'with MariaDB down');
	my $r = get_from('127.0.0.3', '/auth/me');
	is "$r->{status} " . (($r->{json} // {})->{error}{code} // '-'), '503 unavailable', 'other clients get 503 unavailable';
	ok start_mysql(), 'MariaDB started again';
	ok wait_until(10, sub { http(GET => '/readyz')->{status} == 200 }), 'opsd is ready again';
	all_blocked('127.0.0.2', '/auth/me', $WORKERS, 'after MariaDB is back');
}

# ---- duplicates
{
	for my $c ('127.0.0.2', '127.0.0.2/32', '::ffff:127.0.0.2') {
		my $r = add(cidr => $c, reason => 'again');
		check_error($r, 409, 'conflict', "POST $c again");
		is(($r->{json} // {})->{error}{details}{id}, $entry{'127.0.0.2/32'}, "$c: the conflict names the existing entry");
	}
}

# ---- bad input: 400 with the field named, nothing written, nothing audited
{
	my $rows = row_count();
	my $audits = scalar(audit_rows('security.blocklist_added'));
	my @cases = (
		['malformed: a word', { cidr => 'banana', reason => 'x' }, 'cidr', qr/not an IPv4 or IPv6/],
		['malformed: three parts', { cidr => '10.1.2/8', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: octet 300', { cidr => '300.1.1.1/8', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: two prefixes', { cidr => '10.0.0.0/8/8', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: empty prefix', { cidr => '10.0.0.0/', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: nginx injection', { cidr => '1.2.3.4; allow all', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: zone index', { cidr => 'fe80::1%eth0', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['malformed: empty', { cidr => '', reason => 'x' }, 'cidr', undef],
		['malformed: a number', { cidr => 5, reason => 'x' }, 'cidr', undef],
		['prefix out of range: /33', { cidr => '10.0.0.0/33', reason => 'x' }, 'cidr', qr/prefix length is out of range/],
		['prefix out of range: /129', { cidr => '2001:db8::/129', reason => 'x' }, 'cidr', qr/prefix length is out of range/],
		['prefix out of range: /-1', { cidr => '10.0.0.0/-1', reason => 'x' }, 'cidr', qr/not an IPv4/],
		['host bits set', { cidr => '10.0.0.5/8', reason => 'x' }, 'cidr', qr/10\.0\.0\.0\/8/],
		['missing reason', { cidr => '198.51.100.0/24' }, 'reason', undef],
		['blank reason', { cidr => '198.51.100.0/24', reason => "  \n " }, 'reason', qr/blank/],
		['reason too long', { cidr => '198.51.100.0/24', reason => 'x' x 501 }, 'reason', undef],
		['missing cidr', { reason => 'x' }, 'cidr', undef],
		['expiresAt not RFC 3339', { cidr => '198.51.100.0/24', reason => 'x', expiresAt => 'tomorrow' }, 'expiresAt', qr/RFC 3339/],
		['expiresAt a date only', { cidr => '198.51.100.0/24', reason => 'x', expiresAt => '2099-01-01' }, 'expiresAt', undef],
		['expiresAt in the past', { cidr => '198.51.100.0/24', reason => 'x', expiresAt => '2001-01-01T00:00:00Z' }, 'expiresAt', qr/future/],
		# its offset moves it past 9999-12-31: no DATETIME holds it (was a 500 from MariaDB)
		['expiresAt past year 9999', { cidr => '198.51.100.0/24', reason => 'x', expiresAt => '9999-12-31T23:59:59-01:00' }, 'expiresAt', qr/RFC 3339/],
		['expiresAt now', { cidr => '198.51.100.0/24', reason => 'x', expiresAt => rfc3339_at(time) }, 'expiresAt', qr/future/],
		['own address /32 without force', { cidr => '127.0.0.1', reason => 'x' }, 'cidr', qr/your own address 127\.0\.0\.1.*force/],
		['own address /8 without force', { cidr => '127.0.0.0/8', reason => 'x' }, 'cidr', qr/your own address/],
		['own address as mapped IPv6', { cidr => '::ffff:127.0.0.0/120', reason => 'x' }, 'cidr', qr/your own address/],
		['own address, force false', { cidr => '0.0.0.0/0', reason => 'x', force => JSON::PP::false }, 'cidr', qr/your own address/],
		['force not a boolean', { cidr => '198.51.100.0/24', reason => 'x', force => 'yes' }, 'force', undef],
		['unknown field', { cidr => '198.51.100.0/24', reason => 'x', ttl => 60 }, 'ttl', undef],
	);
	for my $c (@cases) {
		my ($name, $body, $field, $re) = @$c;
		my $r = http(POST => '/security/blocklist', json => $body, session => $admin);
		check_error($r, 400, 'validation_failed', "bad input ($name)");
		my $why = (($r->{json} // {})->{error}{details}{fields} // {})->{$field};
		ok defined $why, "$name: details.fields names $field" or diag $r->{body};
		like $why // '', $re, "$name: the reason explains it" if $re;
	}
	my $r = http(POST => '/security/blocklist', body => '{"cidr":', session => $admin,
	    headers => { 'Content-Type' => 'application/json' });
	check_error($r, 400, 'invalid_json', 'invalid JSON');
	is row_count(), $rows, 'no bad input wrote a row';
	is scalar(audit_rows('security.blocklist_added')), $audits, 'no bad input was audited';

	$r = del('not-a-uuid');
	check_error($r, 404, 'not_found', 'DELETE of a malformed id');
	$r = del(uuid7_like());
	check_error($r, 404, 'not_found', 'DELETE of an unknown id');
	$r = list(limit => 0);
	check_error($r, 400, 'validation_failed', 'GET ?limit=0');
	$r = list(cursor => 'garbage');
	check_error($r, 400, 'validation_failed', 'GET ?cursor=garbage');
}

# ---- who may: superadmin and security_admin (security.blocklist), nobody else
{
	my $roles = contract_roles();
	my $org = create_org();
	my %org_role = (org_admin => 1, member => 1);
	for my $role (sort keys %$roles) {
		next if $role eq 'superadmin';
		my $may = grep { $_ eq 'security.blocklist' } @{ $roles->{$role} };
		my $u = create_user(role => $role, ($org_role{$role} ? (org => $org) : ()));
		my $s = login($u->{email}, $u->{password});
		ok $s->{cookie}, "$role signs in" or next;
		if ($may) {
			my $r = add(as => $s, cidr => '198.51.100.0/24', reason => "test: by $role");
			is $r->{status}, 201, "$role may POST" or diag $r->{body};
			is list(as => $s)->{status}, 200, "$role may GET";
			is del($r->{json}{id} // uuid7_like(), as => $s)->{status}, 200, "$role may DELETE";
			next;
		}
		check_error(add(as => $s, cidr => '198.51.100.0/24', reason => 'x'), 403, 'forbidden', "$role POST");
		check_error(list(as => $s), 403, 'forbidden', "$role GET");
		check_error(del($entry{'127.0.0.2/32'}, as => $s), 403, 'forbidden', "$role DELETE");
	}
	check_error(http(GET => '/security/blocklist'), 401, 'unauthenticated', 'GET without credentials');
	check_error(http(POST => '/security/blocklist', json => { cidr => '198.51.100.0/24', reason => 'x' }),
	    401, 'unauthenticated', 'POST without credentials');
	all_blocked('127.0.0.2', '/auth/me', 2, 'the refused calls changed nothing');
}

# ---- list paging
{
	my $r = list(limit => 1);
	is $r->{status}, 200, 'GET ?limit=1 → 200';
	is scalar(@{ $r->{json}{items} // [] }), 1, 'one item';
	ok defined $r->{json}{nextCursor}, 'a nextCursor';
	my $all = list_all() // [];
	is scalar(@$all), scalar(keys %entry), 'paging through finds every active entry';
	my %seen;
	ok !grep({ $seen{ $_->{id} }++ } @$all), 'no entry twice';
}

# ---- expiry: stops blocking at expiresAt, the job deletes it and audits
my $exp_id;
{
	my $until = rfc3339_at(time + 4);
	my $r = add(cidr => '127.0.0.4/32', reason => 'test: expires soon', expiresAt => $until);
	is $r->{status}, 201, "POST 127.0.0.4 expiresAt $until → 201" or diag $r->{body};
	$exp_id = $r->{json}{id};
	is rfc3339_epoch($r->{json}{expiresAt} // ''), rfc3339_epoch($until), 'expiresAt as given';
	all_blocked('127.0.0.4', '/auth/me', $WORKERS, 'before expiresAt');
	my $free = wait_until(10, sub {
		my @a = answers('127.0.0.4', '/auth/me', $WORKERS);
		return !grep { $_ ne '401 unauthenticated' } @a;
	}, 0.1);
	ok $free, '127.0.0.4 passes once expiresAt is past';
	cmp_ok time, '>=', rfc3339_epoch($until) - 0.01, '… not before';
	ok !grep({ $_->{id} eq $exp_id } @{ list_all() // [] }), 'GET no longer lists the expired entry';
	my $gone = wait_until(30, sub { mysql("SELECT COUNT(*) FROM ip_blocklist WHERE cidr = '127.0.0.4/32'") =~ /^0/ }, 0.5);
	ok $gone, 'the job deleted the expired row';
	my ($ev) = audit_rows('security.blocklist_removed', target_id => $exp_id);
	ok $ev, 'security.blocklist_removed for the expired entry';
	my $p = json_decode($ev->{payload} // '') // {};
	is_deeply [@$p{qw(cidr reason expired)}], ['127.0.0.4/32', 'test: expires soon', JSON::PP::true],
	    'payload: cidr, reason, expired: true' or diag $ev->{payload};
	is $ev->{actor_label}, 'system', 'the job is the actor';
	ok $p->{expiresAt}, 'payload has expiresAt';
}

# ---- opsctl blocklist add | list | remove
{
	my ($rc, $out, $err) = opsctl('blocklist', 'add', '--cidr', '127.0.0.5', '--reason', 'test: from the CLI');
	is $rc, 0, 'opsctl blocklist add exits 0' or diag $err;
	like $out, qr/^blocked 127\.0\.0\.5\/32 \(id ([0-9a-f-]{36})\)/m, 'it prints the range and the id';
	my ($id) = $out =~ /\(id ([0-9a-f-]{36})\)/;
	$entry{'127.0.0.5/32'} = $id;
	my $t0 = time;
	ok wait_until(3, sub { !grep { $_ ne '403 blocked' } answers('127.0.0.5', '/auth/me', $WORKERS) }, 0.05),
	    sprintf('opsd blocks 127.0.0.5 within %.2fs (no shared counter from opsctl: the TTL)', time - $t0);

	($rc, $out, $err) = opsctl('blocklist', 'list');
	is $rc, 0, 'opsctl blocklist list exits 0' or diag $err;
	like $out, qr/^\Q$id\E\s+127\.0\.0\.5\/32\s+never\s+test: from the CLI$/m, 'the list shows the CLI entry';
	($rc, $out, $err) = opsctl('blocklist', 'list', '--json');
	my $j = json_decode($out);
	is ref $j, 'ARRAY', 'opsctl blocklist list --json prints an array' or diag $out;
	is_deeply [sort map { $_->{cidr} } @{ $j // [] }], [sort keys %entry], '… of every active entry';

	my ($ev) = audit_rows('security.blocklist_added', target_id => $id);
	like $ev->{actor_label} // '', qr/^cli:/, 'the CLI add is audited with actor cli:<user>';

	for my $bad (
		[['--cidr', '10.0.0.0/40', '--reason', 'x'], 2, qr/prefix length is out of range/],
		[['--cidr', 'nope', '--reason', 'x'], 2, qr/not an IPv4/],
		[['--cidr', '10.0.0.1/8', '--reason', 'x'], 2, qr/10\.0\.0\.0\/8/],
		[['--cidr', '10.0.0.0/8'], 2, qr/--reason is required/],
		[['--reason', 'x'], 2, qr/--cidr is required/],
		[['--cidr', '10.0.0.0/8', '--reason', 'x', '--expires-at', '2001-01-01T00:00:00Z'], 2, qr/future/],
		[['--cidr', '10.0.0.0/8', '--reason', 'x', '--expire', '1'], 2, qr/unexpected argument/],
		[['--cidr', '127.0.0.5', '--reason', 'x'], 1, qr/already blocked/],
	) {
		my ($args, $want, $re) = @$bad;
		my ($brc, undef, $berr) = opsctl('blocklist', 'add', @$args);
		is $brc, $want, "opsctl blocklist add @$args exits $want";
		like $berr, $re, '… and says why';
	}
	my ($brc, undef, $berr) = opsctl({ env => { SSH_CONNECTION => '192.0.2.10 50000 192.0.2.1 22' } },
	    'blocklist', 'add', '--cidr', '192.0.2.0/24', '--reason', 'x');
	is $brc, 2, 'opsctl refuses to block the SSH client it is typed from';
	like $berr, qr/your own address 192\.0\.2\.10.*--force/, '… and names --force';

	($rc, undef, $err) = opsctl('blocklist', 'remove', '--id', $id, '--reason', ' ');
	is $rc, 2, 'opsctl blocklist remove with a blank --reason exits 2';
	like $err, qr/--reason must be/, '… and says why';
	($rc, $out, $err) = opsctl('blocklist', 'remove', '--id', $id, '--reason', 'INC-9 over');
	is $rc, 0, 'opsctl blocklist remove --reason exits 0' or diag $err;
	delete $entry{'127.0.0.5/32'};
	ok wait_until(3, sub { !grep { $_ ne '401 unauthenticated' } answers('127.0.0.5', '/auth/me', $WORKERS) }, 0.05),
	    '127.0.0.5 passes again within a second';
	($rc, undef, $err) = opsctl('blocklist', 'remove', '--id', $id);
	is $rc, 1, 'removing it again exits 1';
	like $err, qr/no blocklist entry/, '… no such entry';
	($rc, undef, $err) = opsctl('blocklist', 'remove', '--id', 'xyz');
	is $rc, 2, 'a malformed --id exits 2';
	($ev) = audit_rows('security.blocklist_removed', target_id => $id);
	like $ev->{actor_label} // '', qr/^cli:/, 'the CLI remove is audited';
	is((json_decode($ev->{payload} // '') // {})->{removalReason}, 'INC-9 over', '… with its --reason as removalReason');
}

# ---- DELETE: unblocks at once; an optional body {reason} is audited
{
	my $id = $entry{'127.0.0.2/32'};
	my $audits = scalar audit_rows('security.blocklist_removed');
	for my $bad ([{ reason => ' ' }, 'a blank reason', 'reason'], [{ reason => 'r' x 501 }, 'a 501-character reason', 'reason'],
	    [{ reason => 42 }, 'a numeric reason', 'reason'], [{ why => 'x' }, 'an unknown field', 'why']) {
		my $r = del($id, json => $bad->[0]);
		check_error($r, 400, 'validation_failed', "DELETE with $bad->[1]");
		fields_named($r, $bad->[2]);
	}
	check_error(del($id, body => '{"reason":', headers => { 'Content-Type' => 'application/json' }), 400, 'invalid_json',
	    'DELETE with a body that is not JSON');
	check_error(del($id, body => 'reason=x', headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }), 415,
	    'unsupported_media_type', 'DELETE with a form body');
	check_error(del($id, body => '[]', headers => { 'Content-Type' => 'application/json' }), 400, 'invalid_json',
	    'DELETE with a JSON array');
	is scalar(audit_rows('security.blocklist_removed')), $audits, 'no refused DELETE removed or audited anything';
	ok((grep { ($_->{id} // '') eq $id } @{ list_all() // [] }), '  the entry is still listed');
	my $r = del($id, json => { reason => 'false positive: a partner\'s NAT' });
	is $r->{status}, 200, "DELETE /security/blocklist/$id {reason} → 200" or diag $r->{body};
	is_deeply [@{ $r->{json} // {} }{qw(id cidr removed)}], [$id, '127.0.0.2/32', JSON::PP::true],
	    'the answer is the removed entry';
	my @a = answers('127.0.0.2', '/auth/me', 3 * $WORKERS);
	ok !grep({ $_ ne '401 unauthenticated' } @a), '127.0.0.2 passes at once on every worker' or diag join ', ', @a;
	check_error(del($id), 404, 'not_found', 'DELETE again');
	delete $entry{'127.0.0.2/32'};
	is scalar(@{ list_all() // [] }), scalar(keys %entry), 'the list shrank by one';
}

# ---- opsctl blocklist sync-nginx: the rendered include, nginx -t, reload, nginx's own 403
{
	my $file = var_dir() . '/nginx/opsd-blocklist.conf';
	my $conf = var_dir() . '/nginx/nginx.conf';
	my $nginx = nginx_pid();
	my $r = add(cidr => '127.0.0.6/32', reason => "test: nasty; deny all;\n}\n# \"quoted\" 'too' \$x `y` \\ end");
	is $r->{status}, 201, 'an entry for 127.0.0.6 with a reason full of nginx syntax' or diag $r->{body};
	$entry{'127.0.0.6/32'} = $r->{json}{id};
	is get_from('127.0.0.3', '/console/')->{status}, 200, 'before the sync nginx serves /console/ to 127.0.0.3';

	my ($rc, $out, $err) = opsctl('blocklist', 'sync-nginx');
	is $rc, 0, 'opsctl blocklist sync-nginx exits 0' or diag "$out\n$err";
	like $out, qr/nginx -t ok/, 'it ran nginx -t';
	like $out, qr/reloaded nginx \(SIGHUP to pid $nginx\)/, 'it reloaded the running nginx';
	open my $fh, '<', $file or die "$file: $!";
	my $text = do { local $/; <$fh> };
	close $fh;
	like $text, qr/^# GENERATED from the ip_blocklist table: do not edit/m, 'the file says it is generated';
	my @deny = grep { /^deny / } split /\n/, $text;
	is scalar(@deny), scalar(keys %entry), 'one deny line per active entry';
	my @bad = grep { !/^deny [0-9a-f.:]+\/\d{1,3};  # [^;#{}'"\\\$`\n]*$/ } @deny;
	ok !@bad, 'every deny line is "deny CIDR;  # sanitised reason"' or diag join "\n", @bad;
	like $text, qr/^deny 127\.0\.0\.6\/32;  # test: nasty deny all quoted too x y end$/m, 'the nasty reason is defanged';
	like $text, qr/^deny 2001:db8::\/32;  # test: IPv6 range$/m, 'the IPv6 range is there';
	ok !grep({ /^(?!#)/ && !/^deny / } grep { length } split /\n/, $text), 'nothing but comments and deny lines';
	my $t = run_cmd(cmd => ['nginx', '-t', '-q', '-c', $conf, '-p', var_dir() . '/nginx/'], timeout => 30, tag => 'nginx-t');
	is $t->{rc}, 0, 'nginx -t passes on the rendered configuration' or diag $t->{err};
	is nginx_pid(), $nginx, 'nginx was reloaded, not restarted';

	my $res;
	ok wait_until(10, sub { $res = get_from('127.0.0.6', '/console/'); $res->{status} == 403 }, 0.1),
	    'after the reload nginx refuses 127.0.0.6 on /console/ (a path opsd never sees)';
	check_error($res, 403, 'forbidden', "nginx's 403 for 127.0.0.6");
	like $res->{json}{error}{message} // '', qr/blocked/, "… with opsd.conf's JSON error page";
	$res = get_from('127.0.0.6', '/healthz');
	check_error($res, 403, 'forbidden', 'nginx refuses 127.0.0.6 on /healthz too (the edge has no monitoring exception)');
	is get_from('127.0.0.3', '/console/')->{status}, 200, 'other addresses still get /console/';

	# nginx -t failing (a broken file beside the include; an nginx found in
	# PATH is never run): the previous file comes back, nginx is not signalled
	my $broken = var_dir() . '/nginx/server.d/zz-broken.conf';
	open my $sh, '>', $broken or die "$broken: $!";
	print $sh "this_is_not_a_directive on;\n";
	close $sh;
	my $add = add(cidr => '127.0.0.8/32', reason => 'test: never synced');
	is $add->{status}, 201, 'another entry (127.0.0.8)';
	($rc, $out, $err) = opsctl('blocklist', 'sync-nginx');
	unlink $broken or die "$broken: $!";
	is $rc, 1, 'sync-nginx exits 1 when nginx -t fails';
	like $err, qr/nginx -t failed.*previous .* is back/, '… and says the previous file is back';
	open $fh, '<', $file or die "$file: $!";
	my $after = do { local $/; <$fh> };
	close $fh;
	is $after, $text, 'the file is byte for byte the previous one';
	is del($add->{json}{id})->{status}, 200, '127.0.0.8 removed again';
	my @tmp = glob(var_dir() . '/nginx/.opsd-blocklist.conf.*');
	ok !@tmp, 'no temporary file left behind' or diag "@tmp";

	# unblock and sync: nginx lets 127.0.0.6 in again
	is del($entry{'127.0.0.6/32'})->{status}, 200, 'DELETE the 127.0.0.6 entry';
	delete $entry{'127.0.0.6/32'};
	($rc, $out, $err) = opsctl('blocklist', 'sync-nginx');
	is $rc, 0, 'sync-nginx again exits 0' or diag $err;
	ok wait_until(10, sub { get_from('127.0.0.6', '/console/')->{status} == 200 }, 0.1),
	    'after the second sync nginx serves 127.0.0.6 again';
}

# ---- audit
{
	my @added = audit_rows('security.blocklist_added');
	my ($ev) = grep { ($_->{target_id} // '') eq $entry{'2001:db8::/32'} } @added;
	ok $ev, 'security.blocklist_added for the IPv6 range';
	my $p = json_decode($ev->{payload} // '') // {};
	is_deeply $p, { cidr => '2001:db8::/32', reason => 'test: IPv6 range', expiresAt => undef },
	    'payload {cidr, reason, expiresAt}' or diag $ev->{payload};
	is $ev->{target_type}, 'ip_blocklist', 'target type ip_blocklist';
	is $ev->{actor_label}, 'superadmin', 'actor: the superadmin';
	is $ev->{ip}, '127.0.0.1', 'the caller\'s address';
	ok $ev->{request_id}, 'the request id';
	my @removed = audit_rows('security.blocklist_removed', target_id => $entry{'2001:db8::/32'} // 'none');
	is scalar(@removed), 0, 'nothing removed for a live entry';
	my ($rm) = grep { ($_->{target_id} // '') ne $exp_id && ($_->{payload} // '') =~ /127\.0\.0\.2\/32/ }
	    audit_rows('security.blocklist_removed');
	ok $rm, 'security.blocklist_removed for the DELETE of 127.0.0.2';
	my $rp = json_decode($rm->{payload} // '') // {};
	ok !exists $rp->{expired}, 'a removal by hand does not say expired';
	is $rp->{removalReason}, "false positive: a partner's NAT", 'the reason given with the DELETE is removalReason';

	# an e-mail address in a reason never reaches the audit log
	my $r = add(cidr => '198.51.100.77', reason => 'reported by ' . sensitive('email', 'abuse-desk@example.org'));
	is $r->{status}, 201, 'an entry whose reason holds an e-mail address';
	($ev) = audit_rows('security.blocklist_added', target_id => $r->{json}{id});
	unlike $ev->{payload} // '', qr/abuse-desk\@example\.org/, 'the audit payload masks it';
	like $ev->{payload} // '', qr/198\.51\.100\.77\/32/, '… and keeps the address (not PII here)';
	is del($r->{json}{id})->{status}, 200, 'removed again';

	my $v = http(GET => '/audit/verify', session => $admin);
	is $v->{json}{ok}, JSON::PP::true, 'the audit chain verifies' or diag $v->{body};
}

# ---- last: the admin blocks their own address on purpose, then recovers with opsctl
{
	my $r = add(cidr => '127.0.0.1', reason => 'test: lock myself out', force => JSON::PP::true);
	is $r->{status}, 201, 'POST 127.0.0.1 with force: true → 201' or diag $r->{body};
	my $id = $r->{json}{id};
	check_error(http(GET => '/auth/me', session => $admin), 403, 'blocked', 'the admin itself is now blocked');
	check_error(http(GET => '/security/blocklist', session => $admin), 403, 'blocked', '… even from the blocklist API');
	is http(GET => '/healthz')->{status}, 200, 'loopback monitoring still answers 127.0.0.1: /healthz';
	is http(GET => '/readyz')->{status}, 200, '… /readyz';
	is http(GET => '/metrics')->{status}, 200, '… /metrics';
	my ($rc, undef, $err) = opsctl('blocklist', 'remove', '--id', $id);
	is $rc, 0, 'opsctl blocklist remove lifts it' or diag $err;
	ok wait_until(3, sub { http(GET => '/auth/me', session => $admin)->{status} == 200 }, 0.05),
	    'the admin gets in again within a second';
}

finish();
