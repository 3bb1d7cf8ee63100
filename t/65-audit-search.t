#!/usr/bin/perl
# Audit search (README "Runbook 4", "identify source"; runbook 2, "confirm"):
# GET /audit's filters — action exact and prefix (action=auth.*), actor (user
# id or label such as cli:root), orgId, targetType, targetId, ip (address or
# CIDR, IPv4 and IPv6, IPv4-mapped addresses), requestId, since/until — each
# alone and combined, checked against the same filter applied here to the
# whole log; keyset pages through a filtered set; format=csv (header,
# RFC 4180 quoting, the same events as JSON); opsctl audit search with the
# same filters (json and csv, exit codes, bad options exit 2); every bad
# value a 400 naming the parameter; the keys MariaDB can use; searching
# writes no audit event; the hash chain still verifies.
#
# Events with other client addresses are real failed logins sent over
# FastCGI straight to opsd's socket with a REMOTE_ADDR and REQUEST_ID of our
# choice (nginx passes only 127.0.0.1 here): written by opsd itself, chained
# like any other event.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Socket qw(inet_pton AF_INET AF_INET6);
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin is signed in';
my $admin_id = ($admin->{user} // {})->{id};
my $TAG = run_tag();

# ---- helpers

sub query_string(%q) { return join '&', map { "$_=" . uri_escape_all($q{$_}) } sort keys %q }
sub audit(%q) {
	my $s = delete $q{as} // $admin;
	my $qs = query_string(%q);
	return http(GET => '/audit' . ($qs ? "?$qs" : ''), session => $s);
}
# Every event of a search, following nextCursor (limit per page).
sub audit_all(%q) {
	my (@items, $cursor, $bad);
	for (1 .. 500) {
		my $r = audit(%q, limit => $q{limit} // 500, defined $cursor ? (cursor => $cursor) : ());
		if ($r->{status} != 200) { $bad = "$r->{status} $r->{body}"; last }
		push @items, items($r);
		$cursor = $r->{json}{nextCursor} // last;
	}
	return $bad ? (undef, $bad) : (\@items, undef);
}
sub ids(@e) { return [map { $_->{id} } @e] }
sub ms($t) { my $e = rfc3339_epoch($t); return defined $e ? int($e * 1000 + 0.5) : undef }

# An address as 16 bytes, IPv4 as IPv4-mapped (undef when not an address).
sub addr16($s) {
	return undef unless defined $s;
	my $v4 = inet_pton(AF_INET, $s);
	return "\0" x 10 . "\xff\xff" . $v4 if defined $v4;
	return inet_pton(AF_INET6, $s);
}
# The reference: does an event's ip lie in $cidr? An IPv4 range (or an
# IPv4-mapped one of at least /96) holds IPv4 and IPv4-mapped addresses; an
# IPv6 range holds only IPv6 ones. Host bits after the prefix do not count.
my $MAPPED = "\0" x 10 . "\xff\xff";
sub in_cidr($ip, $cidr) {
	my ($net, $len) = split m{/}, $cidr;
	my $a = addr16($ip) // return 0;
	my $n = addr16($net) // return 0;
	my $v4_text = $net =~ /^\d+\.\d+\.\d+\.\d+$/;
	$len //= $v4_text ? 32 : 128;
	$len += 96 if $v4_text;
	my $v4 = substr($n, 0, 12) eq $MAPPED && $len >= 96;
	return 0 if ($v4 ? 1 : 0) != (substr($a, 0, 12) eq $MAPPED ? 1 : 0);
	return substr(unpack('B128', $a), 0, $len) eq substr(unpack('B128', $n), 0, $len);
}

# A failed login from $addr with request id $rid, over FastCGI; an unknown
# account each time, so no account reaches the login throttle.
my $LOGINS = 0;
sub login_from($addr, $rid) {
	my $body = json_encode({ email => sprintf('nobody-%s-%d@example.test', $TAG, ++$LOGINS), password => "Wrong-$TAG-pass" });
	my %p = (REQUEST_METHOD => 'POST', REQUEST_URI => '/auth/login', DOCUMENT_URI => '/auth/login', QUERY_STRING => '',
	    REMOTE_ADDR => $addr, SERVER_PROTOCOL => 'HTTP/1.1', REQUEST_ID => $rid, HTTPS => 'on',
	    CONTENT_TYPE => 'application/json', CONTENT_LENGTH => length $body);
	my $r = fcgi_exchange(fcgi_begin() . fcgi_params(1, [map { ($_ => $p{$_}) } sort keys %p])
	    . fcgi_record(5, 1, $body) . fcgi_record(5, 1, ''));
	return $r->{status} // 0;
}

# ---- events to search
my $org = create_org();
ok $org->{id}, 'an org' or diag $org->{res}{body};
my $org_rid = $org->{res}{headers}{'x-request-id'};
ok $org_rid, 'its response has an X-Request-Id';
my $org2 = create_org();
my $u1 = create_user(role => 'member', org => $org);
my $u2 = create_user(role => 'member', org => $org2);
ok $u1->{id} && $u2->{id}, 'two users';
status_is(http(PATCH => "/users/$u1->{id}", session => $admin, json => { disabled => JSON::PP::true }), 200,
    'a user disabled');

my %RID;   # address → the request id of its failed login
my @ADDRS = ('203.0.113.5', '203.0.113.77', '203.0.114.9', '::ffff:203.0.113.9', '2001:db8::5',
    '2001:db8:0:1::7', '2001:db9::1', '198.51.100.200');
for my $i (0 .. $#ADDRS) {
	$RID{ $ADDRS[$i] } = sprintf '%s%024x', $TAG, $i + 1;
	is login_from($ADDRS[$i], $RID{ $ADDRS[$i] }), 401, "a failed login from $ADDRS[$i] (FastCGI)";
}
is login_from('2001:db8::5', "$TAG-second"), 401, 'a second failed login from 2001:db8::5';

# A reason with a comma, quotes and a line break: the payload cell must
# survive CSV quoting.
my $REASON = qq{bots, "$TAG" and a\nsecond line};
my $bl = http(POST => '/security/blocklist', session => $admin, json => { cidr => '192.0.2.0/24', reason => $REASON });
status_is($bl, 201, 'a blocklist entry whose reason has a comma, quotes and a newline');
my $bl_id = j($bl)->{id};

my $cli = 'cli:' . (getpwuid($>))[0];
my ($frc, $fout, $ferr) = opsctl('sessions', 'flush', '--user', $u2->{id});
is $frc, 0, "opsctl sessions flush --user (an event by $cli)" or diag "$fout$ferr";

my ($ALL, $err) = audit_all();
ok $ALL, 'the whole log, page by page' or diag $err;
$ALL //= [];
is scalar(@$ALL), audit_count(), 'as many events as rows';

# ---- each filter alone, and combined, against the same filter applied here
my %REF = (
	action => sub ($e, $v) { $v =~ /^(.*)\*$/ ? index($e->{action}, $1) == 0 : $e->{action} eq $v },
	actor => sub ($e, $v) { ($v =~ /^[0-9a-f-]{36}$/i ? lc($e->{actorId} // '') : $e->{actorLabel} // '') eq lc $v },
	actorId => sub ($e, $v) { lc($e->{actorId} // '') eq lc $v },
	orgId => sub ($e, $v) { ($e->{orgId} // '') eq $v },
	targetType => sub ($e, $v) { ($e->{targetType} // '') eq $v },
	targetId => sub ($e, $v) { ($e->{targetId} // '') eq $v },
	ip => sub ($e, $v) { in_cidr($e->{ip}, $v) },
	requestId => sub ($e, $v) { ($e->{requestId} // '') eq $v },
	since => sub ($e, $v) { ms($e->{occurredAt}) >= ms($v) },
	until => sub ($e, $v) { ms($e->{occurredAt}) < ms($v) },
);
sub expect(%q) {
	return grep { my $e = $_; !grep { !$REF{$_}->($e, $q{$_}) } keys %q } @$ALL;
}
sub search_is($name, %q) {
	my ($got, $bad) = audit_all(%q);
	my @want = expect(%q);
	ok $got, "$name: 200" or return diag $bad;
	is_deeply ids(@$got), ids(@want), "$name: the " . scalar(@want) . ' expected events, newest first'
	    or diag 'got ' . json_encode([map { "$_->{action} $_->{ip}" } @$got]) . "\nwant " . json_encode([map { "$_->{action} $_->{ip}" } @want]);
	return @$got;
}

my $mid = $ALL->[int(@$ALL / 2)]{occurredAt};
my $late = $ALL->[int(@$ALL / 5)]{occurredAt};
my @alone = (
	['action exact', action => 'auth.login_failed'],
	['action prefix auth.*', action => 'auth.*'],
	['action prefix auth.log*', action => 'auth.log*'],
	['action prefix security.*', action => 'security.*'],
	['action prefix of nothing', action => 'nosuch.*'],
	['actor as a user id', actor => $admin_id],
	['actor as a label', actor => $cli],
	['actor anonymous', actor => 'anonymous'],
	['actorId', actorId => $admin_id],
	['orgId', orgId => $org->{id}],
	['targetType', targetType => 'user'],
	['targetId', targetId => $u1->{id}],
	['ip exact IPv4', ip => '203.0.113.5'],
	['ip exact IPv4 (recorded as ::ffff:203.0.113.9)', ip => '203.0.113.9'],
	['ip IPv4 /24', ip => '203.0.113.0/24'],
	['ip IPv4 /16', ip => '203.0.0.0/16'],
	['ip IPv4 with host bits', ip => '203.0.113.200/24'],
	['ip IPv4-mapped spelling', ip => '::ffff:203.0.113.0/120'],
	['ip loopback', ip => '127.0.0.1'],
	['ip 0.0.0.0/0', ip => '0.0.0.0/0'],
	['ip exact IPv6', ip => '2001:db8::5'],
	['ip IPv6 /32', ip => '2001:db8::/32'],
	['ip IPv6 /64', ip => '2001:db8::/64'],
	['ip ::/0 (no IPv4 address)', ip => '::/0'],
	['requestId of a real response', requestId => $org_rid],
	['requestId of a FastCGI login', requestId => $RID{'2001:db8::5'}],
	['since', since => $mid],
	['until', until => $mid],
);
for my $c (@alone) {
	my ($name, %q) = @$c;
	my @got = search_is($name, %q);
	ok @got, "$name: finds something" unless $name =~ /nothing/;
}
{
	my @got = search_is('action and ip', action => 'auth.login_failed', ip => '203.0.113.0/24');
	is_deeply [sort map { $_->{ip} } @got], [sort '203.0.113.5', '203.0.113.77', '::ffff:203.0.113.9'],
	    'auth.login_failed from 203.0.113.0/24: .5, .77 and the mapped .9 (not 203.0.114.9)';
	my @v6 = search_is('prefix and IPv6 range', action => 'auth.*', ip => '2001:db8::/32');
	is scalar(@v6), 3, 'three failed logins from 2001:db8::/32 (not 2001:db9::1)';
	my @one = search_is('ip and requestId', ip => '2001:db8::5', requestId => "$TAG-second");
	is scalar(@one), 1, 'one of the two logins from 2001:db8::5 by its request id';
	search_is('actor and action', actor => $admin_id, action => 'user.*');
	search_is('orgId and action and since', orgId => $org->{id}, action => 'user.created', since => $ALL->[-1]{occurredAt});
	search_is('targetType and targetId', targetType => 'user', targetId => $u1->{id});
	my @dis = search_is('targetType, targetId and exact action', targetType => 'user', targetId => $u1->{id}, action => 'user.disabled');
	is scalar(@dis), 1, 'the disable of that user, once';
	search_is('targetType and targetId that do not go together', targetType => 'org', targetId => $u1->{id});
	search_is('since and until', since => $mid, until => $late);
	search_is('an empty range (since = until)', since => $mid, until => $mid);
	search_is('actor label and action', actor => $cli, action => 'security.sessions_flushed');
	search_is('everything at once', action => 'auth.login_*', actor => 'anonymous', ip => '203.0.113.0/24',
	    requestId => $RID{'203.0.113.77'}, since => $ALL->[-1]{occurredAt}, until => '2999-01-01T00:00:00Z');
	my @prefix = search_is('a prefix is not a substring', action => 'login*');
	is scalar(@prefix), 0, 'action=login* finds nothing (auth.login_failed does not start with it)';
	my @exact = search_is('exact is exact', action => 'auth.login');
	is scalar(@exact), 0, 'action=auth.login finds nothing';
}
{
	my ($cli_ev) = items(audit(actor => $cli, action => 'security.sessions_flushed'));
	is(($cli_ev // {})->{actorLabel}, $cli, "actor=$cli: the opsctl event");
	is(($cli_ev // {})->{actorId}, undef, '  with no actor id');
	is(($cli_ev // {})->{targetId}, $u2->{id}, '  about the flushed user');
	my ($o) = items(audit(requestId => $org_rid, action => 'org.created'));
	is(($o // {})->{targetId}, $org->{id}, "requestId=<the X-Request-Id of POST /orgs>: its org.created");
}

# ---- keyset pages through a filtered set
for my $c (['action=auth.*', action => 'auth.*'], ['ip=2001:db8::/32 or IPv4', ip => '0.0.0.0/0'],
    ['targetType=user', targetType => 'user']) {
	my ($name, %q) = @$c;
	my (@ids, $cursor, $pages, $bad);
	for (1 .. 500) {
		my $r = audit(%q, limit => 2, defined $cursor ? (cursor => $cursor) : ());
		if ($r->{status} != 200) { $bad = "$r->{status} $r->{body}"; last }
		$pages++;
		my @it = items($r);
		$bad = 'a page of more than 2' if @it > 2;
		push @ids, map { $_->{id} } @it;
		$cursor = $r->{json}{nextCursor};
		last unless defined $cursor;
		$bad = 'an empty page with a nextCursor' unless @it;
	}
	ok !$bad, "$name, limit=2: every page 200 with at most 2" or diag $bad;
	my %seen;
	ok !(grep { $seen{$_}++ } @ids), "$name: no event twice over $pages pages";
	is_deeply \@ids, ids(expect(%q)), "$name: the pages in order are the filtered set, no gap";
}
{
	my $p1 = audit(action => 'auth.*', limit => 1);
	my $cur = j($p1)->{nextCursor};
	ok $cur, 'a cursor of a filtered list';
	my @p2 = items(audit(action => 'user.*', limit => 500, cursor => $cur));
	my $after = (items($p1))[0]{id};
	my ($pos) = grep { $ALL->[$_]{id} eq $after } 0 .. $#$ALL;
	is_deeply ids(@p2), ids(grep { $_->{action} =~ /^user\./ } @$ALL[$pos + 1 .. $#$ALL]),
	    'a cursor names a place in the log: with other filters it goes on after that event';
}

# ---- CSV
my @FIELDS = qw(id occurredAt actorId actorLabel orgId action targetType targetId ip requestId payload);
sub csv_is($name, %q) {
	my $r = audit(%q, format => 'csv');
	status_is($r, 200, "$name: format=csv 200");
	like $r->{headers}{'content-type'} // '', qr{^text/csv}, "$name: text/csv";
	like $r->{headers}{'content-disposition'} // '', qr{^attachment; filename="audit-[0-9T-]+Z\.csv"$}, "$name: an attachment";
	my $c = parse_csv($r->{body});
	ok !@{ $c->{errors} }, "$name: RFC 4180 CSV" or diag join "\n", @{ $c->{errors} };
	is_deeply $c->{header}, \@FIELDS, "$name: the header names the JSON fields";
	ok $c->{trailing_crlf} || !length($r->{body}), "$name: CRLF line ends";
	my %qq = %q;
	delete @qq{qw(limit cursor)};
	my @want = expect(%qq);
	@want = @want[0 .. $q{limit} - 1] if $q{limit} && @want > $q{limit};
	my @rows = map { my %h; @h{@FIELDS} = @$_; \%h } @{ $c->{rows} };
	is_deeply [map { $_->{id} } @rows], ids(@want), "$name: the same events as JSON, in order (" . scalar(@want) . ')';
	my @diff;
	for my $i (0 .. $#want) {
		my ($w, $g) = ($want[$i], $rows[$i] // {});
		for my $f (@FIELDS) {
			my $wv = $f eq 'payload' ? $w->{payload} : $w->{$f};
			my $gv = $f eq 'payload' ? json_decode($g->{payload} // '') : ($g->{$f} // '') eq '' ? undef : $g->{$f};
			push @diff, "$w->{id} $f" unless json_encode([$wv]) eq json_encode([$gv]);
		}
	}
	ok !@diff, "$name: every cell equals the JSON value (empty for null, payload as JSON text)" or diag join "\n", @diff[0 .. 9];
	return ($r, $c);
}
csv_is('everything');
csv_is('ip=203.0.113.0/24', ip => '203.0.113.0/24');
csv_is('action=security.*, limit=1', action => 'security.*', limit => 1);
{
	my ($r, $c) = csv_is('the blocklist event', action => 'security.blocklist_added', targetId => $bl_id // 'none');
	my ($row) = @{ $c->{rows} };
	my $payload = json_decode(($row // [])->[-1] // '') // {};
	is $payload->{reason}, $REASON, 'its payload cell decodes to the reason with its comma, quotes and newline';
	ok $c->{quoted}[1][-1], 'the payload cell is quoted';
	my $empty = audit(action => 'nosuch.*', format => 'csv');
	is $empty->{body}, join(',', @FIELDS) . "\r\n", 'no match: the header alone';
	my $cur = j(audit(ip => '2001:db8::/32', limit => 1))->{nextCursor};
	my $rest = parse_csv(audit(ip => '2001:db8::/32', cursor => $cur, format => 'csv')->{body});
	is_deeply [map { $_->[0] } @{ $rest->{rows} }], [map { $_->{id} } (expect(ip => '2001:db8::/32'))[1 .. 2]],
	    'format=csv with a cursor goes on after that event';
}

# ---- bad values: 400 naming the parameter, for each. Over-long values are
# the alphabet over and over, not one letter: a run of "x" holds the
# placeholder passwords other tests register as secrets (t/99 would find
# them in nginx's access log).
sub long_value($n) { return join '', map { chr(97 + $_ % 26) } 0 .. $n - 1 }
for my $c (
	[ip => '203.0.113.0/33'], [ip => '2001:db8::/129'], [ip => '203.0.113.0/'], [ip => 'banana'],
	[ip => '203.0.113'], [ip => '010.0.0.1'], [ip => ''], [ip => '203.0.113.0/24/8'],
	[action => 'compliance.**'], [action => '*.exported'], [action => 'compliance.*.x'], [action => '*'],
	[action => 'compliance.%'], [action => 'Auth.login_failed'], [action => ''], [action => 'a' x 65],
	[actor => 'not a label'], [actor => ''], [actorId => 'cli:root'], [actorId => 'not-a-uuid'],
	[orgId => 'not-a-uuid'], [orgId => ''], [targetType => long_value(33)], [targetId => long_value(65)],
	[targetId => 'a b'], [requestId => long_value(65)], [requestId => ''],
	[since => 'yesterday'], [until => '2026-11-24'], [since => '2026-02-30T00:00:00Z'],
	[limit => 0], [limit => 501], [limit => 'ten'], [cursor => 'not-a-cursor!'], [format => 'xml'],
    ) {
	my ($p, $v) = @$c;
	my $r = audit($p => $v);
	check_error($r, 400, 'validation_failed', "$p=" . substr($v, 0, 20));
	fields_named($r, $p);
}
{
	my $r = audit(since => '2026-02-01T00:00:00Z', until => '2026-01-31T23:59:59.999Z');
	check_error($r, 400, 'validation_failed', 'until before since');
	fields_named($r, 'until');
	$r = audit(format => 'csv', limit => 1000001);
	check_error($r, 400, 'validation_failed', 'format=csv&limit=1000001');
	fields_named($r, 'limit');
	$r = audit(actor => $admin_id, actorId => $admin_id);
	check_error($r, 400, 'validation_failed', 'actor and actorId both');
	fields_named($r, [qw(actor actorId)]);
	$r = audit(actor => 'cli:root', actorId => $admin_id);
	check_error($r, 400, 'validation_failed', 'an actor label and actorId both (not one silently dropped)');
	$r = audit(about => 'not-a-uuid');
	check_error($r, 400, 'validation_failed', 'about=<not a UUID>');
	fields_named($r, 'about');
	$r = http(GET => '/audit?actorid=' . $admin_id, session => $admin);
	check_error($r, 400, 'validation_failed', 'a misspelt filter (actorid)');
	fields_named($r, 'actorid');
	for my $q ('%FF=1', '=x', 'limit=5&%3Cscript%3E=1') {
		$r = http(GET => "/audit?$q", session => $admin);
		check_error($r, 400, 'validation_failed', "an unknown parameter that is not a plain name ($q)");
		fields_named($r, 'query');
	}
	$r = http(GET => '/audit?ip=203.0.113.5&ip=2001:db8::5', session => $admin);
	check_error($r, 400, 'validation_failed', 'ip given twice');
	fields_named($r, 'ip');
	$r = http(GET => '/audit?ip=%zz', session => $admin);
	check_error($r, 400, 'validation_failed', 'a malformed escape');
	fields_named($r, 'ip');
	$r = http(GET => '/audit?ip=203.0.113.0%2F24', session => $admin);
	status_is($r, 200, 'an encoded slash in the CIDR is fine');
	my $cur = j(audit(limit => 1))->{nextCursor};
	check_error(audit(cursor => "$cur!"), 400, 'validation_failed', 'a cursor with a character out of its alphabet');
	my $other = j(http(GET => '/orgs?limit=1', session => $admin))->{nextCursor};
	check_error(audit(cursor => $other), 400, 'validation_failed', "another list's cursor") if $other;
}

# ---- opsctl audit search
sub cli(@a) { my ($rc, $out, $err) = opsctl('audit', 'search', @a); return ($rc, $out, $err) }
{
	my ($rc, $out, $err) = cli('--action', 'auth.*', '--ip', '203.0.113.0/24', '--limit', '500');
	is $rc, 0, 'opsctl audit search --action auth.* --ip 203.0.113.0/24 exits 0' or diag "$out$err";
	my $doc = json_decode($out) // {};
	is_deeply ids(@{ $doc->{items} // [] }), ids(expect(action => 'auth.*', ip => '203.0.113.0/24')),
	    '  the same events as GET /audit';
	ok exists $doc->{nextCursor} && !defined $doc->{nextCursor}, '  nextCursor null: that was all';
	is_deeply $doc->{items}, [items(audit(action => 'auth.*', ip => '203.0.113.0/24', limit => 500))],
	    '  item for item what the API answers';

	my @cases = (
		[['--actor', $cli], { actor => $cli }],
		[['--actor', $admin_id, '--action', 'user.*'], { actor => $admin_id, action => 'user.*' }],
		[['--org', $org->{id}], { orgId => $org->{id} }],
		[['--target-type', 'user', '--target-id', $u1->{id}], { targetType => 'user', targetId => $u1->{id} }],
		[['--ip', '2001:db8::/32'], { ip => '2001:db8::/32' }],
		[['--ip', '203.0.113.9'], { ip => '203.0.113.9' }],
		[['--request-id', $org_rid], { requestId => $org_rid }],
		[['--since', $mid, '--until', $late], { since => $mid, until => $late }],
	);
	for my $c (@cases) {
		my ($args, $q) = @$c;
		my ($rc2, $out2, $err2) = cli(@$args, '--limit', '500');
		my $d = json_decode($out2) // {};
		is $rc2, 0, "opsctl audit search @$args exits 0" or diag "$out2$err2";
		is_deeply ids(@{ $d->{items} // [] }), ids(expect(%$q)), '  the expected events';
	}

	# pages: --limit and --cursor, the API's cursor form
	my (@ids, $cursor);
	for (1 .. 100) {
		my ($rc3, $out3) = cli('--action', 'auth.*', '--limit', '3', defined $cursor ? ('--cursor', $cursor) : ());
		my $d = json_decode($out3) // last;
		push @ids, map { $_->{id} } @{ $d->{items} };
		$cursor = $d->{nextCursor} // last;
	}
	is_deeply \@ids, ids(expect(action => 'auth.*')), 'opsctl --limit 3 --cursor …: every page, no gap, no repeat';
	my $api_cur = j(audit(action => 'auth.*', limit => 3))->{nextCursor};
	my ($rc4, $out4) = cli('--action', 'auth.*', '--limit', '3', '--cursor', $api_cur);
	my ($d4, $api2) = (json_decode($out4) // {}, audit(action => 'auth.*', limit => 3, cursor => $api_cur));
	is_deeply ids(@{ $d4->{items} // [] }), ids(items($api2)), "  the API's cursor works in opsctl";

	my ($rc5, $out5, $err5) = cli('--ip', '203.0.113.0/24', '--format', 'csv');
	is $rc5, 0, 'opsctl audit search --format csv exits 0' or diag $err5;
	is $out5, audit(ip => '203.0.113.0/24', format => 'csv')->{body}, '  byte for byte the CSV of GET /audit';
	my ($rc6, $out6) = cli('--action', 'nosuch.*', '--format', 'csv');
	is $rc6, 0, '  nothing found is not a failure (exit 0)';
	is $out6, join(',', @FIELDS) . "\r\n", '  the header alone';
	my ($rc7, $out7) = cli('--action', 'nosuch.*');
	is_deeply json_decode($out7), { items => [], nextCursor => undef }, '  as JSON: no items';
}
for my $c (
	[['--ip', '203.0.113.0/33'], qr/--ip: .*prefix length/],
	[['--ip', 'banana'], qr/--ip: .*IPv4 or IPv6/],
	[['--action', 'compliance.**'], qr/--action: /],
	[['--actor', 'not a label'], qr/--actor: /],
	[['--org', 'x'], qr/--org: must be a UUID/],
	[['--since', 'yesterday'], qr/--since: .*RFC 3339/],
	[['--since', '2026-02-01T00:00:00Z', '--until', '2026-01-01T00:00:00Z'], qr/--until: must not be before since/],
	[['--limit', '0'], qr/--limit: /],
	[['--limit', '501'], qr/--limit: /],
	[['--format', 'csv', '--limit', '1000001'], qr/--limit: /],
	[['--cursor', 'nope!'], qr/--cursor: /],
	[['--format', 'xml'], qr/--format: must be json or csv/],
	[['--ip', '203.0.113.5', '--ip', '2001:db8::5'], qr/--ip: given twice/],
	[['--actorid', 'x'], qr/unexpected argument/],
	[['--ip'], qr/--ip needs a value/],
	[['203.0.113.5'], qr/unexpected argument/],
    ) {
	my ($args, $re) = @$c;
	my ($rc, $out, $err) = cli(@$args);
	is $rc, 2, "opsctl audit search @$args: exit 2" or diag "$out$err";
	like $err, $re, '  and says why on stderr';
	is $out, '', '  nothing on stdout';
}
{
	my ($rc, $out) = run_cmd(cmd => [opsctl_bin(), 'help'], tag => 'opsctl-help')->@{qw(rc out)};
	like $out, qr/^  audit search\s+\[--action /m, 'opsctl help lists audit search';
}

# ---- the keys MariaDB can use for each filter
{
	my %plan;
	for my $c (['audit_events_ip', "ip_bin BETWEEN UNHEX('00000000000000000000FFFFCB007100') AND UNHEX('00000000000000000000FFFFCB0071FF')"],
	    ['audit_events_target', "target_type = 'user' AND target_id = 'x'"], ['audit_events_target_id', "target_id = 'x'"],
	    ['audit_events_request', "request_id = 'x'"], ['audit_events_actor_label', "actor_label = 'cli:root'"],
	    ['audit_events_action', "action LIKE 'auth.%' ESCAPE '!'"]) {
		my ($key, $where) = @$c;
		my ($row) = db_rows("EXPLAIN SELECT seq FROM audit_events WHERE $where ORDER BY seq DESC LIMIT 50");
		like(($row // {})->{possible_keys} // '', qr/\b\Q$key\E\b/, "WHERE $where can use $key");
	}
	my ($ip_col) = db_rows("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
	    . " AND TABLE_NAME = 'audit_events' AND COLUMN_NAME = 'ip_bin' AND EXTRA LIKE '%VIRTUAL%'");
	is(($ip_col // {})->{n}, 1, 'ip_bin is a virtual column');
	is db_count("SELECT COUNT(*) FROM audit_events WHERE ip = '::ffff:203.0.113.9'"
	    . " AND ip_bin = UNHEX('00000000000000000000FFFFCB007109')"), 1, 'ip_bin holds ::ffff:203.0.113.9 as IPv4-mapped';
	is db_count("SELECT COUNT(*) FROM audit_events WHERE ip = '203.0.113.5'"
	    . " AND ip_bin = UNHEX('00000000000000000000FFFFCB007105')"), 1, 'and 203.0.113.5 the same way';
}

# ---- searching writes nothing to the log, and the chain still verifies
{
	my $before = audit_count();
	audit(action => 'auth.*');
	audit(ip => '203.0.113.0/24', format => 'csv');
	audit(ip => 'banana');
	cli('--ip', '2001:db8::/32');
	cli('--format', 'csv');
	is audit_count(), $before, 'searches (API, CSV, a bad one, opsctl) write no audit event';
	my ($r, $v) = audit_verify();
	is $v->{ok}, JSON::PP::true, 'GET /audit/verify: ok' or diag $r->{body};
	my ($rc, $out) = opsctl('audit', 'verify');
	is $rc, 0, 'opsctl audit verify exits 0' or diag $out;
}

# ---- who may search
{
	my $m = create_user(role => 'member', org => $org);
	my $ms = login($m->{email}, $m->{password});
	check_error(http(GET => '/audit?ip=203.0.113.0/24', session => $ms), 403, 'forbidden', 'a member may not search');
	check_error(http(GET => '/audit?format=csv'), 401, 'unauthenticated', 'nobody may not export');
	my $sa = create_user(role => 'security_admin');
	my $ss = login($sa->{email}, $sa->{password});
	is http(GET => '/audit?ip=203.0.113.0/24&format=csv', session => $ss)->{status}, 200, 'a security_admin searches and exports';
}

finish();
