#!/usr/bin/perl
# The audit log (doc/architecture.md "The audit log"): the events of identity actions,
# GET /audit (newest first, filters, cursor pagination, permissions),
# redacted payloads, and the hash chain: GET /audit/verify and
# `opsctl audit verify` on a clean chain, after a row is altered in MariaDB
# (that row is named), after it is restored (clean again), and after a row is
# deleted (the next row is named).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::Local qw(timegm);
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });

my %NEEDLES;   # label => string that no payload may contain
sub needle($l, $v) { $NEEDLES{$l} = $v if defined $v && length $v; return $v }
sub user_needles($u) {
	needle("email $u->{email}", $u->{email});
	needle("name $u->{name}", $u->{name});
	needle("password $u->{email}", $u->{password});
	return $u;
}
sub session_needles($s, $l) {
	needle("cookie $l", $s->{cookie});
	needle("csrf $l", $s->{csrf});
	return $s;
}
needle('admin email', admin_email());
needle('admin password', admin_password());

# seq and id of every row, in chain order
sub chain_rows() {
	my $out = mysql('SELECT seq, ' . uuid_sql('id') . ', action FROM audit_events ORDER BY seq') // '';
	return map { my @f = split /\t/; { seq => $f[0], id => $f[1], action => $f[2] } } grep { length } split /\n/, $out;
}
sub ms_of($t) {
	my ($y, $mo, $d, $h, $mi, $sec, $frac, $tz) = ($t // '') =~
	    /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|z|[+-]\d\d:\d\d)?$/ or return undef;
	my $s = timegm($sec, $mi, $h, $d, $mo - 1, $y) + ($frac // 0);
	if (defined $tz && $tz =~ /^([+-])(\d\d):(\d\d)$/) { $s -= ($1 eq '-' ? -1 : 1) * ($2 * 3600 + $3 * 60) }
	return int($s * 1000 + 0.5);
}
sub audit($s, %q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } sort keys %q;
	return http(GET => '/audit' . ($qs ? "?$qs" : ''), session => $s);
}

# ---- actions
my $admin = session_needles(admin_session(), 'admin');
my $admin_id = ($admin->{user} // {})->{id};
my $org = create_org();
ok $org->{id}, 'org created' or diag $org->{res}{body};
my $org_rid = $org->{res}{headers}{'x-request-id'};
my $pa = user_needles(create_user(role => 'platform_admin', name => 'Audit Zebra Name'));
my $mem = user_needles(create_user(role => 'member', org => $org));
my $mem2 = user_needles(create_user(role => 'member', org => $org));
my $victim = user_needles(create_user(role => 'member', org => $org));
my $comp = user_needles(create_user(role => 'compliance'));
my $coff = user_needles(create_user(role => 'compliance_officer'));
ok $pa->{id} && $mem->{id} && $mem2->{id} && $comp->{id} && $coff->{id}, 'users created';

my $pa_s = session_needles(login($pa->{email}, $pa->{password}), 'pa');
is $pa_s->{status}, 200, 'login ok (auth.login_succeeded)';
my $fail = http(POST => '/auth/login', json => { email => $mem->{email}, password => needle('wrong pw', 'Wrong-pass-audit-1') });
is $fail->{status}, 401, 'login with a wrong password (auth.login_failed)';
my $unk = 'unknown-audit@example.test';
needle('unknown email', $unk);
is http(POST => '/auth/login', json => { email => $unk, password => 'Wrong-pass-audit-2' })->{status}, 401, 'login of an unknown email';
for my $i (1 .. 6) { http(POST => '/auth/login', json => { email => $victim->{email}, password => "Wrong-pass-audit-t$i" }) }
is http(POST => '/auth/login', json => { email => $victim->{email}, password => $victim->{password} })->{status}, 429,
    'throttled login (auth.login_throttled)';

my $t = http(POST => '/auth/tokens', session => $pa_s, json => { name => 'audit token', scopes => ['users.read'] });
is $t->{status}, 201, 'token created (auth.token_created)' or diag $t->{body};
my $tok_id = ($t->{json} // {})->{id};
needle('api token', ($t->{json} // {})->{token});
is http(DELETE => "/auth/tokens/" . ($tok_id // 'x'), session => $pa_s)->{status}, 200, 'token revoked (auth.token_revoked)';

is http(PATCH => "/users/$mem->{id}", session => $admin, json => { name => needle('new name', 'Renamed Audit Person') })->{status}, 200,
    'user renamed (user.updated)';
is http(PATCH => "/users/$mem2->{id}", session => $admin, json => { roles => ['org_admin'] })->{status}, 200,
    'user roles changed (user.updated)';
is http(PATCH => "/users/$mem->{id}", session => $admin, json => { disabled => JSON::PP::true })->{status}, 200,
    'user disabled (user.disabled)';

my $m2s = session_needles(login($mem2->{email}, $mem2->{password}), 'mem2');
my $flush = http(POST => '/security/sessions/flush', session => $admin, json => { scope => 'user', id => $mem2->{id} });
is $flush->{status}, 200, 'sessions flushed for one user (security.sessions_flushed)' or diag $flush->{body};

my $pw_new = needle('new password', 'New-audit-password-42x');
my $pw = http(POST => '/auth/password', session => $pa_s, json => { currentPassword => $pa->{password}, newPassword => $pw_new });
is $pw->{status}, 200, 'password changed (auth.password_changed)';
my $pa_c = session_set_cookie($pw);
my $pa_s2 = session_needles({ cookie => $pa_c ? $pa_c->{value} : undef, csrf => ($pw->{json} // {})->{csrfToken} }, 'pa after pw');
is http(POST => '/auth/logout', session => $pa_s2)->{status}, 200, 'logout (auth.logout)';

my $comp_s = session_needles(login($comp->{email}, $comp->{password}), 'compliance');
my $coff_s = session_needles(login($coff->{email}, $coff->{password}), 'compliance_officer');
my $org2 = user_needles(create_user(role => 'member', org => $org));
my $org2_s = session_needles(login($org2->{email}, $org2->{password}), 'member');

# ---- GET /audit: everything, newest first
my $all = audit($admin, limit => 500);
is $all->{status}, 200, 'GET /audit 200' or diag $all->{body};
my @all = items($all);
ok exists(($all->{json} // {})->{nextCursor}), 'the list has nextCursor';
my %by_action;
push @{ $by_action{ $_->{action} // '' } }, $_ for @all;
for my $a (qw(auth.login_succeeded auth.login_failed auth.login_throttled auth.logout auth.password_changed
    auth.token_created auth.token_revoked user.created user.updated user.disabled org.created security.sessions_flushed)) {
	ok $by_action{$a}, "GET /audit lists $a";
}
{
	my @missing;
	for my $e (@all) {
		my @m = grep { !exists $e->{$_} } qw(id occurredAt actorId actorLabel orgId action targetType targetId ip requestId payload);
		push @missing, ($e->{id} // '?') . ": @m" if @m;
	}
	ok !@missing, 'every item has id occurredAt actorId actorLabel orgId action targetType targetId ip requestId payload'
	    or diag join "\n", @missing[0 .. ($#missing < 5 ? $#missing : 5)];
	ok !(grep { ref $_->{payload} ne 'HASH' } @all), 'payload is a JSON object';
	my %seq = map { $_->{id} => $_->{seq} } chain_rows();
	my @s = map { $seq{ $_->{id} // '' } // -1 } @all;
	ok !(grep { $_ < 0 } @s), 'every listed id is a row of audit_events (id as UUID string)';
	ok !(grep { $s[$_] <= $s[$_ + 1] } 0 .. $#s - 1), 'newest first (seq strictly decreasing)' or diag "@s";
	my @ms = map { ms_of($_->{occurredAt}) // -1 } @all;
	ok !(grep { $_ < 0 } @ms), 'occurredAt is RFC 3339';
	ok !(grep { $ms[$_] < $ms[$_ + 1] } 0 .. $#ms - 1), 'occurredAt never increases down the list';
	is scalar(@all), audit_count(), 'limit=500 returns every event';
}
{
	my ($oc) = grep { ($_->{targetId} // '') eq ($org->{id} // '-') } @{ $by_action{'org.created'} // [] };
	ok $oc, 'org.created names the org as targetId' or diag json_encode($by_action{'org.created'});
	$oc //= {};
	is $oc->{actorId}, $admin_id, 'org.created: actorId is the admin';
	ok length($oc->{actorLabel} // ''), 'org.created: actorLabel set';
	is $oc->{requestId}, $org_rid, "org.created: requestId is the request's X-Request-Id";
	is $oc->{ip}, '127.0.0.1', 'org.created: ip';
	my %created = map { ($_->{targetId} // '') => 1 } @{ $by_action{'user.created'} // [] };
	ok !(grep { !$created{$_} } map { $_->{id} } $pa, $mem, $mem2, $comp, $coff), 'user.created for each user, targetId = the user';
	ok((grep { ($_->{targetId} // '') eq $mem->{id} } @{ $by_action{'user.disabled'} // [] }), 'user.disabled targets the user');
	ok((grep { ($_->{targetId} // '') eq ($tok_id // '-') } @{ $by_action{'auth.token_created'} // [] }),
	    'auth.token_created targets the token id');
	ok((grep { ($_->{actorId} // '') eq $pa->{id} || ($_->{targetId} // '') eq $pa->{id} } @{ $by_action{'auth.login_succeeded'} // [] }),
	    "auth.login_succeeded names the user (actor or target)");
	my ($fl) = @{ $by_action{'security.sessions_flushed'} // [] };
	is(($fl // {})->{payload}{scope}, 'user', 'security.sessions_flushed payload has the scope');
}

# ---- no email, name, password, token, cookie or CSRF token in any payload
{
	my @hits;
	for my $e (@all) {
		my $p = json_encode($e->{payload} // {});
		push @hits, map { "$e->{action}: $_" } grep { index($p, $NEEDLES{$_}) >= 0 } sort keys %NEEDLES;
		push @hits, "$e->{action}: something shaped like an email: $p" if $p =~ /[\w.+-]+\@[\w-]+\.[\w.-]+/;
	}
	ok !@hits, 'no payload carries an email, a name, a password, a token, a cookie or a CSRF token' or diag join "\n", @hits;
	my $raw = mysql('SELECT payload FROM audit_events') // '';
	my @raw_hits = grep { index($raw, $NEEDLES{$_}) >= 0 } sort keys %NEEDLES;
	ok !@raw_hits, 'nor does the stored payload column' or diag join "\n", @raw_hits;
}

# ---- filters
{
	my @uc = items(audit($admin, action => 'user.created', limit => 500));
	ok @uc >= 5 && !(grep { $_->{action} ne 'user.created' } @uc), 'action=user.created: only user.created (' . scalar(@uc) . ')';
	is scalar(@uc), scalar(@{ $by_action{'user.created'} // [] }), 'action=: as many as in the full list';

	my @pa = items(audit($admin, actorId => $pa->{id}, limit => 500));
	ok @pa && !(grep { ($_->{actorId} // '') ne $pa->{id} } @pa), 'actorId=: only that actor (' . scalar(@pa) . ')';
	ok((grep { $_->{action} eq 'auth.token_revoked' } @pa), 'actorId=: includes their token revocation');

	my @org = items(audit($admin, orgId => $org->{id}, limit => 500));
	ok @org && !(grep { ($_->{orgId} // '') ne $org->{id} } @org), 'orgId=: only that org (' . scalar(@org) . ')';

	my $mid = $all[int(@all / 2)];
	my $T = ms_of($mid->{occurredAt}) // 0;
	my @since = items(audit($admin, since => $mid->{occurredAt}, limit => 500));
	my @until = items(audit($admin, until => $mid->{occurredAt}, limit => 500));
	ok @since && !(grep { (ms_of($_->{occurredAt}) // 0) < $T } @since), "since=$mid->{occurredAt}: nothing older";
	ok @until && !(grep { (ms_of($_->{occurredAt}) // 0) > $T } @until), "until=: nothing newer";
	my %in = map { $_->{id} => 1 } @since, @until;
	ok !(grep { !$in{ $_->{id} } } @all), 'since= and until= together cover every event';
	is scalar(grep { (ms_of($_->{occurredAt}) // 0) > $T } @since), scalar(grep { (ms_of($_->{occurredAt}) // 0) > $T } @all),
	    'since=: every newer event';
	my @both = items(audit($admin, since => $mid->{occurredAt}, until => $mid->{occurredAt}, limit => 500));
	ok !(grep { (ms_of($_->{occurredAt}) // 0) != $T } @both), 'since=until=T: only events at T';

	my @combo = items(audit($admin, action => 'auth.token_created', actorId => $pa->{id}));
	is scalar(@combo), 1, 'action= and actorId= combine';

	check_error(audit($admin, limit => 501), 400, 'validation_failed', 'limit=501');
	check_error(audit($admin, limit => 0), 400, 'validation_failed', 'limit=0');
	check_error(audit($admin, limit => 'ten'), 400, 'validation_failed', 'limit=ten');
	check_error(audit($admin, since => 'yesterday'), 400, 'validation_failed', 'since=yesterday');
	check_error(audit($admin, cursor => 'not-a-cursor!'), 400, 'validation_failed', 'a forged cursor');
}

# ---- cursor pagination: limit=2 walks every page
{
	my (@ids, $cursor, $pages, $bad);
	for (1 .. 1000) {
		my $r = audit($admin, limit => 2, (defined $cursor ? (cursor => $cursor) : ()));
		if ($r->{status} != 200) { $bad = "$r->{status} $r->{body}"; last }
		$pages++;
		my @it = items($r);
		$bad = 'a page with more than 2 items' if @it > 2;
		push @ids, map { $_->{id} } @it;
		$cursor = $r->{json}{nextCursor};
		last unless defined $cursor;
		$bad = 'an empty page with a nextCursor' unless @it;
	}
	ok !$bad, 'every page is 200 with at most 2 items' or diag $bad;
	my %seen;
	my @dups = grep { $seen{$_}++ } @ids;
	ok !@dups, "no id twice over $pages pages" or diag "@dups";
	is_deeply \@ids, [map { $_->{id} } @all], 'the pages, in order, equal the full list';
}

# ---- who may read
check_error(http(GET => '/audit', session => $org2_s), 403, 'forbidden', 'GET /audit as a member');
check_error(http(GET => '/audit'), 401, 'unauthenticated', 'GET /audit as nobody');
is http(GET => '/audit', session => $comp_s)->{status}, 200, 'GET /audit as compliance (audit.read)';
check_error(http(GET => '/audit/verify', session => $comp_s), 403, 'forbidden', 'GET /audit/verify as compliance (no audit.verify)');
check_error(http(GET => '/audit/verify', session => $org2_s), 403, 'forbidden', 'GET /audit/verify as a member');

# ---- the chain
{
	my $before = audit_count();
	my ($r, $j) = audit_verify($coff_s);
	is $r->{status}, 200, 'GET /audit/verify as compliance_officer 200' or diag $r->{body};
	is $j->{ok}, JSON::PP::true, 'a clean chain: ok true' or diag $r->{body};
	my $after = audit_count();
	ok defined $j->{checked} && $j->{checked} >= $before && $j->{checked} <= $after, "checked = the row count ($before)"
	    or diag $r->{body};
	my ($rc, $out, $err) = opsctl('audit', 'verify');
	is $rc, 0, 'opsctl audit verify exits 0 on a clean chain' or diag "$out$err";
	like $out, qr/^ok: (\d+) events checked$/m, 'and prints "ok: N events checked"';
	my ($n) = $out =~ /^ok: (\d+) events/m;
	ok defined $n && $n >= $before, 'N counts every event';
}

sub expect_broken($row, $what) {
	my ($r, $j) = audit_verify();
	is $r->{status}, 200, "$what: /audit/verify 200";
	is $j->{ok}, JSON::PP::false, "$what: ok false" or diag $r->{body};
	is $j->{firstBrokenId}, $row->{id}, "$what: firstBrokenId is event seq $row->{seq}" or diag $r->{body};
	my ($rc, $out, $err) = opsctl('audit', 'verify', '--full');
	is $rc, 1, "$what: opsctl audit verify exits 1" or diag "$out$err";
	like $out, qr/^broken: first bad event \Q$row->{id}\E \(seq $row->{seq}\)$/m, "$what: opsctl names $row->{id}"
	    or diag "$out$err";
}
sub expect_clean($what) {
	my ($r, $j) = audit_verify();
	is $j->{ok}, JSON::PP::true, "$what: ok true again" or diag $r->{body};
	my ($rc, $out, $err) = opsctl('audit', 'verify', '--full');
	is $rc, 0, "$what: opsctl audit verify exits 0" or diag "$out$err";
}
{
	my @rows = chain_rows();
	ok @rows >= 10, 'enough events for the tamper tests (' . scalar(@rows) . ')';
	my $mid = $rows[int(@rows / 2)];
	my $orig = mysql("SELECT HEX(payload) FROM audit_events WHERE seq = $mid->{seq}") // '';
	chomp $orig;
	ok length $orig, "saved the payload of seq $mid->{seq}";
	ok defined mysql(qq{UPDATE audit_events SET payload = '{"x":1}' WHERE seq = $mid->{seq}}), 'altered one payload in MariaDB';
	expect_broken($mid, 'payload altered');
	mysql("UPDATE audit_events SET payload = UNHEX('$orig') WHERE seq = $mid->{seq}");
	expect_clean('payload restored');

	my $other = $rows[int(@rows / 3)];
	my $label = mysql("SELECT HEX(actor_label) FROM audit_events WHERE seq = $other->{seq}") // '';
	chomp $label;
	mysql("UPDATE audit_events SET actor_label = CONCAT(IFNULL(actor_label, ''), '-x') WHERE seq = $other->{seq}");
	expect_broken($other, 'actor_label altered');
	mysql("UPDATE audit_events SET actor_label = " . ($label ne 'NULL' ? "UNHEX('$label')" : 'NULL') . " WHERE seq = $other->{seq}");
	expect_clean('actor_label restored');

	my $del = $rows[int(@rows / 4)];
	my ($next) = grep { $_->{seq} > $del->{seq} } @rows;
	ok defined mysql("DELETE FROM audit_events WHERE seq = $del->{seq}"), "deleted seq $del->{seq}";
	expect_broken($next, 'a row deleted in the middle');

	# new events still append (the chain continues from the stored head)
	my $c = create_org();
	ok $c->{id}, 'the API still works with a broken chain (org created)';
	my ($r, $j) = audit_verify();
	is $j->{firstBrokenId}, $next->{id}, 'the first break is still reported after new events';
}

finish();
