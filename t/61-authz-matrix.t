#!/usr/bin/perl
# The route × role matrix (README "Identity, sessions and roles"), generated from
# `opsctl routes` and `opsctl roles`: every route is called as nobody, as one
# user of each role (session cookie + CSRF) and with a one-scope API token of
# each role, and the answer is 401 / 403 / "allowed" (anything but 401 and
# 403: 400, 404, 409 … are fine, the body is "{}" and ids are made up) as the
# permission table says.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });

my @UNSAFE = qw(POST PUT PATCH DELETE);
my %UNSAFE = map { $_ => 1 } @UNSAFE;
my %KNOWN_PERM = map { $_ => 1 } contract_permissions();

# ---- the tables, from opsctl
my ($rc, $out, $err) = opsctl('routes');
is $rc, 0, 'opsctl routes exits 0' or diag $err;
my $routes = json_decode($out);
is ref $routes, 'ARRAY', 'opsctl routes prints a JSON array' or diag $out;
$routes = [] unless ref $routes eq 'ARRAY';
($rc, $out, $err) = opsctl('roles');
is $rc, 0, 'opsctl roles exits 0' or diag $err;
my $roles = json_decode($out);
is ref $roles, 'HASH', 'opsctl roles prints a JSON object' or diag $out;
$roles = {} unless ref $roles eq 'HASH';
my %have = map { $_ => { map { $_ => 1 } @{ $roles->{$_} // [] } } } keys %$roles;

is_deeply { map { $_ => [sort @{ $roles->{$_} }] } keys %$roles }, contract_roles(),
    "opsctl roles equals the contract's role → permission table";

{
	my @bad;
	for my $r (@$routes) {
		my $name = ($r->{method} // '?') . ' ' . ($r->{pattern} // '?');
		push @bad, "$name: no method/pattern" unless defined $r->{method} && defined $r->{pattern};
		push @bad, "$name: permission " . ($r->{permission} // '') . ' is not a known permission'
		    if defined $r->{permission} && !$KNOWN_PERM{ $r->{permission} };
		for my $k (qw(public testOnly csrf)) {
			push @bad, "$name: $k is not a JSON boolean" unless JSON::PP::is_bool($r->{$k});
		}
		push @bad, "$name: public but needs a permission" if $r->{public} && defined $r->{permission};
		push @bad, "$name: an unsafe authenticated route without csrf"
		    if $UNSAFE{ $r->{method} // '' } && !$r->{public} && !$r->{csrf};
		push @bad, "$name: csrf on a safe method" if !$UNSAFE{ $r->{method} // '' } && $r->{csrf};
	}
	ok !@bad, 'every route entry is well-formed' or diag join "\n", @bad;
	my %seen;
	my @dups = grep { $seen{$_}++ } map { "$_->{method} $_->{pattern}" } @$routes;
	ok !@dups, 'no route appears twice' or diag "@dups";
}

# The routes of this issue must be in the table with these permissions
# (undef: any authenticated principal; 'PUBLIC': no authentication).
my %expect = (
	'POST /auth/login' => 'PUBLIC', 'POST /auth/logout' => undef, 'GET /auth/me' => undef,
	'POST /auth/password' => undef, 'POST /auth/tokens' => undef, 'GET /auth/tokens' => undef,
	'DELETE /auth/tokens/:id' => undef,
	'POST /users' => 'users.manage', 'GET /users' => 'users.read', 'GET /users/:id' => 'users.read',
	'PATCH /users/:id' => 'users.manage',
	'POST /orgs' => 'orgs.manage', 'GET /orgs' => 'orgs.read', 'GET /orgs/:id' => 'orgs.read',
	'POST /security/sessions/flush' => 'security.sessions_flush',
	'GET /audit' => 'audit.read', 'GET /audit/verify' => 'audit.verify',
	'GET /healthz' => 'PUBLIC', 'GET /readyz' => 'PUBLIC',
);
{
	my %by = map { ("$_->{method} $_->{pattern}" => $_) } @$routes;
	for my $k (sort keys %expect) {
		my $r = $by{$k};
		ok $r, "opsctl routes lists $k" or next;
		if (($expect{$k} // '') eq 'PUBLIC') {
			ok $r->{public} && !defined $r->{permission}, "$k is public";
		} else {
			ok !$r->{public}, "$k needs authentication";
			is $r->{permission}, $expect{$k}, "$k needs " . ($expect{$k} // 'no particular permission');
		}
	}
}

# ---- one user per role, logged in
my $org = create_org();
ok $org->{id}, 'an org for the org roles' or diag $org->{res}{body};
my %ORG_ROLE = (org_admin => 1, member => 1);
my (%user, %sess);
for my $role (sort keys %{ contract_roles() }) {
	my $u = create_user(role => $role, ($ORG_ROLE{$role} ? (org => $org) : ()));
	ok $u->{id}, "created a $role" or next;
	my $s = login($u->{email}, $u->{password});
	ok $s->{cookie}, "$role logs in" or do { diag $s->{res}{body}; next };
	my $me = http(GET => '/auth/me', session => $s);
	is_deeply [sort @{ ($me->{json} // {})->{permissions} // [] }], [sort @{ $roles->{$role} // [] }],
	    "/auth/me of $role lists the permissions of opsctl roles" or diag $me->{body};
	($user{$role}, $sess{$role}) = ($u, $s);
}
my @ROLES = sort keys %sess;

# ---- the routes we call
my (@calls, @skipped);
for my $r (@$routes) {
	my $k = "$r->{method} $r->{pattern}";
	if ($r->{testOnly}) { push @skipped, "$k (testOnly: exists only with OPSD_ENV=test)"; next }
	# Logout would end the very session the next rows use; login takes no
	# credentials (public), and its {} would only count as failed attempts for
	# the throttle. Both are covered by t/60-auth.t.
	if ($k eq 'POST /auth/logout' || $k eq 'POST /auth/login') { push @skipped, "$k (covered by t/60-auth.t)"; next }
	push @calls, $r;
}
note "not in the matrix: $_" for @skipped;
ok((grep { "$_->{method} $_->{pattern}" eq 'POST /security/sessions/flush' } @calls),
    'the matrix includes POST /security/sessions/flush (its {} body flushes nothing: 400)');

sub path_of($r) {
	my $p = $r->{pattern};
	$p =~ s{:orgId\b}{$org->{id} // uuid7_like()}ge;
	$p =~ s{:[A-Za-z_][A-Za-z0-9_]*}{uuid7_like()}ge;
	return $p;
}
sub call($r, %auth) {
	my %o = %auth;
	if ($UNSAFE{ $r->{method} }) {
		$o{body} = '{}';
		$o{headers} = { 'Content-Type' => 'application/json' };
	}
	return http($r->{method}, path_of($r), %o);
}

# expected: 'allowed' | 401 | 403. Routes marked "loopback" (/status,
# /metrics) need no credentials from the host itself, and every request of
# this test comes from 127.0.0.1 through nginx: they are checked off-loopback
# further down, straight through opsd's FastCGI socket.
sub expect_for($r, $perms) {
	return 'allowed' if $r->{public} || $r->{loopback};
	return 401 unless $perms;
	return 'allowed' unless defined $r->{permission};
	return $perms->{ $r->{permission} } ? 'allowed' : 403;
}
sub verdict_ok($want, $res) {
	my $st = $res->{status};
	return $st != 401 && $st != 403 && $st != 500 && $st != 599 if $want eq 'allowed';   # 500 is never fine
	return 0 unless $st == $want;
	my $code = ref $res->{json} eq 'HASH' && ref $res->{json}{error} eq 'HASH' ? $res->{json}{error}{code} // '' : '';
	return $code eq ($want == 401 ? 'unauthenticated' : 'forbidden');
}

my (%grid, @fail);
sub cell($r, $who, $want, $res) {
	my $k = "$r->{method} $r->{pattern}";
	my $ok = verdict_ok($want, $res);
	$grid{$k}{$who} = $res->{status} . ($ok ? '' : '!');
	push @fail, sprintf('%-40s %-22s want %-7s got %s %s', $k, $who, $want, $res->{status}, substr($res->{body} // '', 0, 160))
	    unless $ok;
	ok $ok, "$k as $who: want $want, got $res->{status}";
}

# ---- sessions: nobody and each role
for my $r (@calls) {
	cell($r, 'nobody', expect_for($r, undef), call($r));
	for my $role (@ROLES) {
		cell($r, $role, expect_for($r, $have{$role}), call($r, session => $sess{$role}));
	}
}
# every session is still alive after the walk (nothing in the matrix logs out or flushes)
for my $role (@ROLES) {
	is http(GET => '/auth/me', session => $sess{$role})->{status}, 200, "the session of $role survived the matrix";
}

# ---- one-scope tokens of each role. Routes without a permission are left out
# here: some are session-only (POST /auth/tokens, /auth/password) and may
# refuse a token either way.
my %needed = map { ($_->{permission} => 1) } grep { defined $_->{permission} } @calls;
for my $role (@ROLES) {
	my @mine = sort keys %{ $have{$role} };
	my ($scope) = (grep({ $needed{$_} } @mine), @mine);
	next unless $scope;
	my $t = http(POST => '/auth/tokens', session => $sess{$role}, json => { name => "matrix $role", scopes => [$scope] });
	is $t->{status}, 201, "$role: token with scope $scope" or do { diag $t->{body}; next };
	my $tok = ($t->{json} // {})->{token};
	my $who = "$role token[$scope]";
	for my $r (@calls) {
		next if !$r->{public} && !defined $r->{permission};
		my $want = $r->{public} || $r->{loopback} ? 'allowed' : $r->{permission} eq $scope ? 'allowed' : 403;
		cell($r, $who, $want, call($r, bearer => $tok));
	}
}

# ---- loopback routes from elsewhere: FastCGI straight to opsd with another
# REMOTE_ADDR (nginx would pass the client's), as nobody and as each role
{
	my @lb = grep { $_->{loopback} && !$_->{public} } @calls;
	for my $r (@lb) {
		my $fcgi = sub ($cookie) { return fcgi_http($r->{method}, path_of($r), remote_addr => '203.0.113.7', cookie => $cookie) };
		my $want_perm = defined $r->{permission} ? $r->{permission} : undef;
		cell($r, 'nobody@203.0.113.7', $want_perm ? 401 : 'allowed', $fcgi->(undef));
		for my $role (@ROLES) {
			my $want = !$want_perm || $have{$role}{$want_perm} ? 'allowed' : 403;
			cell($r, "$role\@203.0.113.7", $want, $fcgi->($sess{$role}{cookie}));
		}
	}
}

if (@fail) {
	diag "matrix failures:\n" . join("\n", @fail);
	my @cols = ('nobody', @ROLES);
	my %abbr = (nobody => 'none', superadmin => 'super', platform_admin => 'plat', compliance => 'comp',
	    compliance_officer => 'c_off', security_admin => 'sec', org_admin => 'o_adm', member => 'memb');
	my $t = sprintf("%-40s %-24s %s\n", 'route', 'permission', join(' ', map { sprintf '%-5s', $abbr{$_} // $_ } @cols));
	for my $r (@calls) {
		my $k = "$r->{method} $r->{pattern}";
		$t .= sprintf("%-40s %-24s %s\n", $k, $r->{public} ? '(public)' : $r->{permission} // '(any)',
		    join(' ', map { sprintf '%-5s', $grid{$k}{$_} // '-' } @cols));
	}
	diag "status by route and role (! = wrong):\n$t";
}

finish();
