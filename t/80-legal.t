#!/usr/bin/perl
# Legal documents (README "Runbook 1") with LEGAL_ENFORCE unset:
# POST /legal (fields, 409 duplicate_version, permissions, bad input that
# leaves nothing behind, 413), the public GET /legal/:type with ETag and 304
# and the new version on every worker right after a publish, versions
# (paged; an unknown type 404, with or without a cursor), one version, the line diff, a scheduled version that becomes current by itself,
# acceptance (status, 409/404, twice harmless, IP and user agent recorded),
# the report (counts of active users, paging, permissions), audit events
# (legal.updated without the content, legal.accepted), notify: true through
# the outbox to a real SMTP peer (test mode and the allowlist), and
# `opsctl legal publish`. GET /legal, public: every type with its current
# version (null while only scheduled ones exist) and its scheduled ones in
# order, before and after a scheduled version takes effect, an empty list
# before any publish, 405 for other methods. Enforcement itself is
# t/81-legal-enforce.t.
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(encode_utf8);
use File::Temp qw(tempfile);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
my $RAND = join '', map { ('a' .. 'z')[rand 26] } 1 .. 8;
my $ca = make_test_ca();
my $peer = start_smtp_peer(tls => $ca);
# 4 workers: "the next GET on every worker" must mean something
start_stack(env => { OPSD_WORKERS => 4, %{ smtp_env($peer, $ca) } });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my $ETAG = qr/^(?:W\/)?"[^"]+"$/;
my $SHA = qr/^[0-9a-f]{64}$/;

# $h has every key of @$want and none of @$not (other extra keys are tolerated)
# (with $name: as a test)
sub has_keys($h, $want, $not = [], $name = undef) {
	my @miss = ref $h eq 'HASH' ? grep { !exists $h->{$_} } @$want : ('(not an object)');
	my @bad = ref $h eq 'HASH' ? grep { exists $h->{$_} } @$not : ();
	my $ok = !@miss && !@bad;
	ok $ok, $name if defined $name;
	diag 'missing: ' . join(' ', @miss) . '; must not have: ' . join(' ', @bad) unless $ok;
	return $ok;
}
sub doc_count() { my $n = mysql('SELECT COUNT(*) FROM legal_documents') // return -1; chomp $n; return $n + 0 }
# version => {sha, effectiveAt} of a type, without the current flags (they move with time)
sub version_set($type) { return { map { $_->{version} => [$_->{contentSha256}, $_->{effectiveAt}] } @{ legal_versions($type) } } }
sub qs(%q) { return join '&', map { "$_=" . uri_escape_all($q{$_}) } sort keys %q }
sub active_user_emails() {
	my $out = mysql('SELECT email FROM users WHERE disabled_at IS NULL AND service = 0 ORDER BY email') // return ();
	return grep { length } split /\n/, $out;
}
sub active_user_count() { return scalar(active_user_emails()) }
# GET /legal (no credentials) as {type => [current version or undef, [scheduled versions]]}
sub legal_index() {
	my $r = http(GET => '/legal');
	return { map { $_->{type} => [($_->{current} // {})->{version}, [map { $_->{version} } @{ $_->{scheduled} // [] }]] }
	    @{ j($r)->{items} // [] } };
}

# The texts: a marker in each so no log or audit payload may carry them;
# non-ASCII to check UTF-8 end to end.
my $MARK = "secret-clause-$RAND";
my %TEXT = (
	v1 => "Privacy policy v1 — Datenschutzerklärung ü\nline a\nline b ($MARK-1)\nline c\n",
	v2 => "Privacy policy v2 — Datenschutzerklärung ü\nline a\nline B ($MARK-2)\nline c\nline d 日本\n",
	v3 => "Privacy policy v3 ($MARK-3)\n",
);

# ============================================================ nothing published yet
check_error(legal_get('privacy'), 404, undef, 'GET /legal/privacy before any publish');
{
	my $r = http(GET => '/legal');
	status_is $r, 200, 'GET /legal before any publish, without credentials: 200';
	is_deeply j($r), { items => [], nextCursor => undef }, '  no types';
	check_error(http(DELETE => '/legal'), 405, 'method_not_allowed', 'DELETE /legal');
	like http(PUT => '/legal')->{headers}{allow} // '', qr/^(?=.*GET)(?=.*POST)/, '  PUT /legal: Allow names GET and POST';
}
check_error(legal_get('Bad_Type'), 404, undef, 'GET /legal/:type with a malformed type');
check_error(legal_publish(undef, type => 'privacy', version => 'v0', content => 'x'), 401, 'unauthenticated',
    'POST /legal without credentials');

# ============================================================ publish v1, read it
my %DOC;   # version => POST response JSON
my $t_v1 = time;
{
	my $r = legal_publish($admin, type => 'privacy', version => 'v1', content => $TEXT{v1});
	status_is $r, 201, 'POST /legal privacy v1 as superadmin 201';
	my $d = $DOC{v1} = j($r);
	has_keys($d, [qw(type version effectiveAt contentSha256 publishedAt current notify)], ['content'],
	    'the response has type, version, effectiveAt, contentSha256, publishedAt, current, notify (not the content)')
	    or diag $r->{body};
	is $d->{type}, 'privacy', 'type';
	is $d->{version}, 'v1', 'version';
	is lc($d->{contentSha256} // ''), sha256_utf8($TEXT{v1}), 'contentSha256 = SHA-256 of the UTF-8 content';
	is $d->{current}, JSON::PP::true, 'current true (no effectiveAt: now)';
	is $d->{notify}, JSON::PP::false, 'notify false by default';
	for my $k (qw(effectiveAt publishedAt)) {
		my $e = rfc3339_epoch($d->{$k});
		ok defined $e, "$k is RFC 3339" or diag $d->{$k} // 'undef';
		cmp_ok abs(($e // 0) - $t_v1), '<', 60, "$k is now";
	}
}

my ($etag1);
{
	my $r = legal_get('privacy');
	status_is $r, 200, 'GET /legal/privacy anonymous 200';
	my $d = j($r);
	is_deeply [sort keys %$d], [sort qw(type version content effectiveAt contentSha256 publishedAt)],
	    'GET /legal/:type has exactly type, version, content, effectiveAt, contentSha256, publishedAt' or diag $r->{body};
	is $d->{version}, 'v1', 'version v1';
	is $d->{content}, $TEXT{v1}, 'content round-trips exactly (UTF-8, newlines)';
	is $d->{contentSha256}, $DOC{v1}{contentSha256}, 'contentSha256 as published';
	is $d->{effectiveAt}, $DOC{v1}{effectiveAt}, 'effectiveAt as published';
	$etag1 = $r->{headers}{etag};
	like $etag1 // '', $ETAG, 'ETag header is a quoted string' or diag "ETag: " . ($etag1 // 'none');

	my $n = http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag1 // '"none"' });
	is $n->{status}, 304, 'If-None-Match with that ETag → 304' or diag $n->{body};
	is $n->{body}, '', '304 has no body';
	my $other = http(GET => '/legal/privacy', headers => { 'If-None-Match' => '"not-the-etag"' });
	status_is $other, 200, 'If-None-Match with another ETag → 200';
	is j($other)->{version}, 'v1', '(with the document)';
	# warm every worker's idea of "current" (4 workers) before the next publish
	my @v = map { j(legal_get('privacy'))->{version} // 'none' } 1 .. 16;
	is_deeply [grep { $_ ne 'v1' } @v], [], '16 more GETs all return v1';
}

# ============================================================ permissions
my $org = create_org();
ok $org->{id}, 'an org' or diag $org->{res}{body};
my $member = create_user(role => 'member', org => $org);
my $member_s = login($member->{email}, $member->{password});
ok $member_s->{cookie}, 'a member logs in' or diag $member_s->{res}{body};
my $orgadm = create_user(role => 'org_admin', org => $org);
my $orgadm_s = login($orgadm->{email}, $orgadm->{password});
my $pa = create_user(role => 'platform_admin');
my $pa_s = login($pa->{email}, $pa->{password});
ok $pa_s->{cookie}, 'a platform_admin logs in' or diag $pa_s->{res}{body};
my $comp = create_user(role => 'compliance');
my $comp_s = login($comp->{email}, $comp->{password});
{
	my $before = doc_count();
	check_error(legal_publish($member_s, type => 'privacy', version => 'vm', content => 'by a member'), 403, 'forbidden',
	    'POST /legal as member');
	check_error(legal_publish($comp_s, type => 'privacy', version => 'vc', content => 'by compliance'), 403, 'forbidden',
	    'POST /legal as compliance (legal.report only)');
	check_error(legal_publish($orgadm_s, type => 'privacy', version => 'vo', content => 'by org_admin'), 403, 'forbidden',
	    'POST /legal as org_admin');
	is doc_count(), $before, 'nothing was written by the refused publishes';
}

# ============================================================ v2 by a platform_admin: every worker sees it at once
{
	my $r = legal_publish($pa_s, type => 'privacy', version => 'v2', content => $TEXT{v2});
	status_is $r, 201, 'POST /legal privacy v2 as platform_admin 201 (runbook 1 roles)';
	$DOC{v2} = j($r);
	is $DOC{v2}{current}, JSON::PP::true, 'v2 current true';
	my @got = map { my $g = legal_get('privacy'); [j($g)->{version} // "status $g->{status}", $g->{headers}{etag} // ''] } 1 .. 10;
	is_deeply [grep { $_->[0] ne 'v2' } @got], [], 'the 10 GETs right after the publish all return v2 (every worker)'
	    or diag join ', ', map { $_->[0] } @got;
	my %etags = map { $_->[1] => 1 } @got;
	is scalar(keys %etags), 1, 'one ETag for v2 across workers' or diag join ' ', keys %etags;
	my ($etag2) = keys %etags;
	like $etag2 // '', $ETAG, 'v2 ETag is a quoted string';
	isnt $etag2, $etag1, "v2's ETag differs from v1's";
	my $old = http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag1 // '"x"' });
	status_is $old, 200, "If-None-Match with v1's ETag after v2 → 200";
	is j($old)->{version}, 'v2', '(returning v2)';
	is j($old)->{content}, $TEXT{v2}, 'v2 content';
	my @n = map { http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag2 // '"x"' })->{status} } 1 .. 8;
	is_deeply [grep { $_ != 304 } @n], [], "If-None-Match with v2's ETag → 304 (8 times: on every worker)" or diag "@n";
}

# ============================================================ versions, one version, diff
{
	my $r = http(GET => '/legal/privacy/versions');
	status_is $r, 200, 'GET /legal/privacy/versions anonymous 200';
	my @it = @{ j($r)->{items} // [] };
	is_deeply [map { $_->{version} } @it], [qw(v2 v1)], 'versions newest first' or diag $r->{body};
	is_deeply [map { $_->{current} } @it], [JSON::PP::true, JSON::PP::false], 'current flags: v2 true, v1 false';
	ok !grep({ !has_keys($_, [qw(version effectiveAt contentSha256 publishedAt current)], ['content']) } @it),
	    'each item: version, effectiveAt, contentSha256, publishedAt, current (no content)' or diag $r->{body};
	is $it[1]{contentSha256}, $DOC{v1}{contentSha256}, "v1's item has v1's hash";

	# paged like every list: ?limit=, the next page after the cursor, bad cursors refused
	my $p1 = http(GET => '/legal/privacy/versions?limit=1');
	status_is $p1, 200, 'GET /legal/privacy/versions?limit=1 200';
	is_deeply [map { $_->{version} } items($p1)], ['v2'], '  the first page: v2';
	ok j($p1)->{nextCursor}, '  with a nextCursor' or diag $p1->{body};
	my $p2 = http(GET => '/legal/privacy/versions?limit=1&cursor=' . (j($p1)->{nextCursor} // ''));
	is_deeply [map { $_->{version} } items($p2)], ['v1'], '  the next page: v1' or diag $p2->{body};
	ok exists j($p2)->{nextCursor} && !defined j($p2)->{nextCursor}, '  the last page: nextCursor null';
	require MIME::Base64;
	my %bad = (garbage => 'not-a-cursor!', 'a cursor of another list' => MIME::Base64::encode_base64url('users:' . uuid7_like()),
	    'a cursor of this list with no time' => MIME::Base64::encode_base64url('legal_versions:' . uuid7_like()),
	    'a cursor of this list with a bad id' => MIME::Base64::encode_base64url('legal_versions:2026-01-01T00:00:00.000Z|nope'));
	for my $name (sort keys %bad) {
		my $b = http(GET => "/legal/privacy/versions?cursor=$bad{$name}");
		check_error($b, 400, 'validation_failed', "versions: $name refused");
		fields_named($b, 'cursor');
	}
	check_error(http(GET => '/legal/privacy/versions?limit=0'), 400, 'validation_failed', 'versions: limit=0 refused');

	my $one = http(GET => '/legal/privacy/versions/v1');
	status_is $one, 200, 'GET /legal/privacy/versions/v1 200';
	is j($one)->{version}, 'v1', 'version v1';
	is j($one)->{content}, $TEXT{v1}, "v1's content (not the current one)";
	is j($one)->{type}, 'privacy', 'type';
	check_error(http(GET => '/legal/privacy/versions/nope'), 404, undef, 'GET /legal/privacy/versions/unknown');
	check_error(http(GET => '/legal/nosuchtype/versions/v1'), 404, undef, 'a version of an unknown type');
	check_error(http(GET => '/legal/nosuchtype/versions'), 404, 'not_found', 'GET /legal/unknown/versions: 404');
	# a valid cursor (of privacy's list) does not turn an unknown type into an empty page
	check_error(http(GET => '/legal/nosuchtype/versions?limit=1&cursor=' . (j($p1)->{nextCursor} // '')), 404, 'not_found',
	    'GET /legal/unknown/versions with a cursor of this list: 404');
	# a known type past its last version: an empty page
	my $p3 = http(GET => '/legal/privacy/versions?limit=1&cursor='
	    . MIME::Base64::encode_base64url('legal_versions:2000-01-01T00:00:00.000Z|' . uuid7_like()));
	status_is $p3, 200, 'GET /legal/privacy/versions past its oldest version: 200';
	is_deeply [items($p3)], [], '  an empty page' or diag $p3->{body};
}
{
	my $r = http(GET => '/legal/privacy/diff?' . qs(from => 'v1', to => 'v2'));
	status_is $r, 200, 'GET /legal/privacy/diff?from=v1&to=v2 200';
	my $d = j($r);
	is $d->{type}, 'privacy', 'diff: type';
	is $d->{from}, 'v1', 'diff: from';
	is $d->{to}, 'v2', 'diff: to';
	my @ops = ref $d->{diff} eq 'ARRAY' ? @{ $d->{diff} } : ();
	ok @ops, 'diff is a non-empty array' or diag $r->{body};
	my @bad = grep { ref ne 'HASH' || !defined $_->{op} || $_->{op} !~ /^[=+-]$/ || !defined $_->{line} || ref $_->{line} } @ops;
	ok !@bad, 'every entry is {op: "="|"+"|"-", line: string}' or diag $r->{body};
	# assumption: "line" is the line's text without its newline (tolerated either way)
	my $line = sub ($o) { my $l = $o->{line} // ''; $l =~ s/\r?\n\z//; $l };
	my @old = map { $line->($_) } grep { ($_->{op} // '') =~ /^[=-]$/ } @ops;
	my @new = map { $line->($_) } grep { ($_->{op} // '') =~ /^[=+]$/ } @ops;
	is_deeply \@old, [split /\n/, $TEXT{v1}], '"=" and "-" lines in order rebuild v1';
	is_deeply \@new, [split /\n/, $TEXT{v2}], '"=" and "+" lines in order rebuild v2';
	my @plus = map { $line->($_) } grep { ($_->{op} // '') eq '+' } @ops;
	my @minus = map { $line->($_) } grep { ($_->{op} // '') eq '-' } @ops;
	is_deeply [sort @plus], [sort("Privacy policy v2 — Datenschutzerklärung ü", "line B ($MARK-2)", 'line d 日本')],
	    '"+" lines are exactly the added ones' or diag $r->{body};
	is_deeply [sort @minus], [sort("Privacy policy v1 — Datenschutzerklärung ü", "line b ($MARK-1)")],
	    '"-" lines are exactly the removed ones' or diag $r->{body};
	ok((grep { $_->{op} eq '=' && $line->($_) eq 'line a' } @ops) && (grep { $_->{op} eq '=' && $line->($_) eq 'line c' } @ops),
	    'unchanged lines are "="');
	my $u = $d->{unified} // '';
	like $u, qr/\A--- v1\n\+\+\+ v2\n\@\@ [^\n]*\@\@/, 'unified starts "--- v1\n+++ v2\n@@ … @@"' or diag $u;
	like $u, qr/^-line b \(\Q$MARK\E-1\)$/m, 'unified has the "-" line';
	like $u, qr/^\+line B \(\Q$MARK\E-2\)$/m, 'unified has a "+" line';
	like $u, qr/^\+line d 日本$/m, 'unified has the added last line (UTF-8)';
	like $u, qr/^ line a$/m, 'unified has context lines with a leading space';

	my $same = http(GET => '/legal/privacy/diff?' . qs(from => 'v2', to => 'v2'));
	status_is $same, 200, 'diff of a version with itself 200';
	ok !grep({ ($_->{op} // '') ne '=' } @{ j($same)->{diff} // [] }), '(only "=" lines)';

	check_error(http(GET => '/legal/privacy/diff?' . qs(from => 'v1', to => 'nope')), 404, undef, 'diff to an unknown version');
	check_error(http(GET => '/legal/privacy/diff?' . qs(from => 'nope', to => 'v2')), 404, undef, 'diff from an unknown version');
	check_error(http(GET => '/legal/nosuchtype/diff?' . qs(from => 'v1', to => 'v2')), 404, undef, 'diff of an unknown type');
	check_error(http(GET => '/legal/privacy/diff?from=v1'), 400, undef, 'diff without to');
	check_error(http(GET => '/legal/privacy/diff?to=v2'), 400, undef, 'diff without from');
	check_error(http(GET => '/legal/privacy/diff'), 400, undef, 'diff without from and to');
}

# ============================================================ duplicate and bad input: nothing written
{
	my $set = version_set('privacy');
	my $n = doc_count();
	my $dup = legal_publish($admin, type => 'privacy', version => 'v1', content => 'another text');
	check_error($dup, 409, 'duplicate_version', 'POST /legal with an existing type+version');

	my @cases = (
		[{ type => 'Bad Type', version => 'x1', content => 'x' }, 'type', 'type "Bad Type"'],
		[{ type => '1abc', version => 'x1', content => 'x' }, 'type', 'type "1abc"'],
		[{ type => 'a' x 40, version => 'x1', content => 'x' }, 'type', 'type of 40 chars'],
		[{ type => '', version => 'x1', content => 'x' }, 'type', 'type ""'],
		[{ type => 5, version => 'x1', content => 'x' }, 'type', 'type a number'],
		[{ version => 'x1', content => 'x' }, 'type', 'no type'],
		[{ type => 'privacy', version => '', content => 'x' }, 'version', 'version ""'],
		[{ type => 'privacy', version => 'v' x 70, content => 'x' }, 'version', 'version of 70 chars'],
		[{ type => 'privacy', version => 'a b', content => 'x' }, 'version', 'version "a b"'],
		[{ type => 'privacy', version => '.v', content => 'x' }, 'version', 'version ".v"'],
		[{ type => 'privacy', content => 'x' }, 'version', 'no version'],
		[{ type => 'privacy', version => 'x1', content => '' }, 'content', 'content ""'],
		[{ type => 'privacy', version => 'x1', content => 42 }, 'content', 'content a number'],
		[{ type => 'privacy', version => 'x1', content => ['x'] }, 'content', 'content an array'],
		[{ type => 'privacy', version => 'x1' }, 'content', 'no content'],
		[{ type => 'privacy', version => 'x1', content => 'x', effectiveAt => rfc3339_at(time - 3600) },
		    'effectiveAt', 'effectiveAt one hour ago'],
		[{ type => 'privacy', version => 'x1', content => 'x', effectiveAt => 'tomorrow' }, 'effectiveAt', 'effectiveAt "tomorrow"'],
		[{ type => 'privacy', version => 'x1', content => 'x', effectiveAt => '2099-13-40T99:00:00Z' }, 'effectiveAt',
		    'effectiveAt out of range'],
		[{ type => 'privacy', version => 'x1', content => 'x', effectiveAt => '9999-12-31T23:59:59-01:00' }, 'effectiveAt',
		    'effectiveAt moved past year 9999 by its offset'],
		[{ type => 'privacy', version => 'x1', content => 'x', effectiveAt => 4102444800 }, 'effectiveAt', 'effectiveAt a number'],
		[{ type => 'privacy', version => 'x1', content => 'x', notify => 'yes' }, 'notify', 'notify "yes"'],
		[{ type => 'privacy', version => 'x1', content => 'x', extra => 1 }, 'extra', 'an unknown field'],
	);
	for my $c (@cases) {
		my ($body, $field, $name) = @$c;
		my $r = http(POST => '/legal', json => $body, session => $admin);
		check_error($r, 400, 'validation_failed', "POST /legal with $name");
		fields_named($r, $field);
	}
	check_error(http(POST => '/legal', session => $admin, headers => { 'Content-Type' => 'application/json' },
	    body => encode_utf8('{"type":"privacy","version":"x1","content":"') . "bad \xff\xfe bytes" . '"}'),
	    400, 'invalid_json', 'POST /legal with invalid UTF-8 in the body');
	check_error(http(POST => '/legal', session => $admin, headers => { 'Content-Type' => 'application/json' },
	    body => '{"type":"privacy","version":"x1",'), 400, 'invalid_json', 'POST /legal with truncated JSON');
	check_error(http(POST => '/legal', session => $admin, json => [1, 2]), 400, undef, 'POST /legal with an array body');
	my $big = 'x' x (1024 * 1024 + 10);
	check_error(http(POST => '/legal', session => $admin, json => { type => 'privacy', version => 'x1', content => $big }),
	    413, 'payload_too_large', 'POST /legal with a body over 1 MiB');
	check_error(http(POST => '/legal', json => { type => 'privacy', version => 'x1', content => 'x' }, session => $admin,
	    csrf => undef), 403, 'csrf_failed', 'POST /legal with the cookie but no CSRF token');

	is_deeply version_set('privacy'), $set, 'after the duplicate and every bad input the versions list is unchanged';
	is doc_count(), $n, 'and legal_documents has no new row';
	is j(legal_get('privacy'))->{version}, 'v2', 'GET /legal/privacy still v2';
}

# ============================================================ a large document (just under the 1 MiB body limit)
{
	my $content = join '', map { sprintf("clause %06d: %s\n", $_, 'é' x 20) } 1 .. 18000;   # ~0.96 MiB of UTF-8
	cmp_ok length(json_encode({ type => 'bigdoc', version => '1.0', content => $content })), '<', 1024 * 1024,
	    '(the big document fits in a 1 MiB body)';
	my $r = legal_publish($admin, type => 'bigdoc', version => '1.0', content => $content);
	status_is $r, 201, 'POST /legal with ~0.96 MiB of UTF-8 content 201';
	my $g = legal_get('bigdoc');
	status_is $g, 200, 'GET /legal/bigdoc 200';
	ok j($g)->{content} eq $content, 'the big content round-trips exactly';
	is j($g)->{contentSha256}, sha256_utf8($content), 'and its SHA-256 matches';
}

# ============================================================ a scheduled version becomes current by itself
{
	my $eff = int(time) + 5;   # 4 to 5 s ahead
	my $r = legal_publish($admin, type => 'privacy', version => 'v3', content => $TEXT{v3}, effectiveAt => rfc3339_at($eff));
	status_is $r, 201, 'POST /legal v3 with effectiveAt in ~4 s 201';
	$DOC{v3} = j($r);
	is $DOC{v3}{current}, JSON::PP::false, 'v3 current false (scheduled)';
	is rfc3339_epoch($DOC{v3}{effectiveAt}), $eff, 'effectiveAt as given' or diag $DOC{v3}{effectiveAt};
	my $g = legal_get('privacy');
	is j($g)->{version}, 'v2', 'GET /legal/privacy still v2 before effectiveAt';
	my $etag2 = $g->{headers}{etag};
	my @it = @{ legal_versions('privacy') };
	is_deeply [map { $_->{version} } @it], [qw(v3 v2 v1)], 'versions: the scheduled v3 first (newest effectiveAt)';
	is_deeply [map { $_->{current} } @it], [JSON::PP::false, JSON::PP::true, JSON::PP::false],
	    'current flags: v3 false, v2 true, v1 false';
	my $idx = http(GET => '/legal');
	my ($p) = grep { $_->{type} eq 'privacy' } @{ j($idx)->{items} // [] };
	is_deeply [($p->{current} // {})->{version}, [map { $_->{version} } @{ $p->{scheduled} // [] }]], ['v2', ['v3']],
	    'GET /legal: privacy current v2, v3 scheduled' or diag $idx->{body};
	is(($p->{scheduled}[0] // {})->{effectiveAt}, $DOC{v3}{effectiveAt}, '  with its effectiveAt');
	ok !grep({ !has_keys($_, [qw(version effectiveAt contentSha256 publishedAt)], ['content']) } $p->{current}, @{ $p->{scheduled} // [] }),
	    '  each version: version, effectiveAt, contentSha256, publishedAt (no content)';
	ok(time < $eff, 'still before effectiveAt') or diag 'the checks above took too long to prove anything';

	sleep 0.1 while time < $eff + 0.3;
	my @v = map { j(legal_get('privacy'))->{version} // 'none' } 1 .. 10;
	is_deeply [grep { $_ ne 'v3' } @v], [], 'after effectiveAt every GET returns v3 with no other action (10 GETs)'
	    or diag "@v";
	my $n = http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag2 // '"x"' });
	status_is $n, 200, "If-None-Match with v2's ETag after v3 became current → 200";
	is j($n)->{version}, 'v3', '(v3)';
	isnt $n->{headers}{etag}, $etag2, 'a new ETag';
	@it = @{ legal_versions('privacy') };
	is_deeply [map { $_->{current} } @it], [JSON::PP::true, JSON::PP::false, JSON::PP::false], 'versions: now v3 current';
	is_deeply legal_index()->{privacy}, ['v3', []], 'GET /legal: privacy current v3, nothing scheduled';
}
my $CUR = 'v3';

# ============================================================ acceptance
my $accepted_at;
{
	my $s = legal_status($member_s);
	status_is $s, 200, 'GET /legal/acceptance/status as member 200';
	my $d = j($s);
	is $d->{enforced}, JSON::PP::false, 'enforced false (LEGAL_ENFORCE unset)';
	my @p = grep { ($_->{type} // '') eq 'privacy' } @{ $d->{pending} // [] };
	is scalar(@p), 1, 'pending lists privacy once' or diag $s->{body};
	is $p[0]{version}, $CUR, 'pending privacy is the current version';
	is rfc3339_epoch($p[0]{effectiveAt}), rfc3339_epoch($DOC{v3}{effectiveAt}), 'with its effectiveAt';
	ok((grep { ($_->{type} // '') eq 'bigdoc' && $_->{version} eq '1.0' } @{ $d->{pending} // [] }), 'bigdoc 1.0 pending too');
	is_deeply $d->{accepted}, [], 'accepted is empty';
	check_error(legal_status(undef), 401, 'unauthenticated', 'acceptance/status without credentials');

	check_error(legal_accept($member_s, 'privacy', 'v1'), 409, 'conflict', 'accepting v1 (exists, not current)');
	check_error(legal_accept($member_s, 'privacy', 'v2'), 409, 'conflict', 'accepting v2 (exists, not current)');
	check_error(legal_accept($member_s, 'privacy', 'nope'), 404, undef, 'accepting an unknown version');
	check_error(legal_accept($member_s, 'nosuchtype', 'v1'), 404, undef, 'accepting an unknown type');
	check_error(http(POST => '/legal/acceptance', json => { type => 'privacy' }, session => $member_s), 400,
	    'validation_failed', 'acceptance without version');
	check_error(http(POST => '/legal/acceptance', json => { type => 'privacy', version => $CUR, x => 1 }, session => $member_s),
	    400, 'validation_failed', 'acceptance with an unknown field');
	check_error(legal_accept($member_s, 'privacy', $CUR, csrf => undef), 403, 'csrf_failed', 'acceptance without CSRF token');
	check_error(http(POST => '/legal/acceptance', json => { type => 'privacy', version => $CUR }), 401, 'unauthenticated',
	    'acceptance without credentials');
	is mysql('SELECT COUNT(*) FROM legal_acceptances') // '', "0\n", 'no acceptance recorded by the refused requests';

	my $a = legal_accept($member_s, 'privacy', $CUR);
	status_is $a, 200, "POST /legal/acceptance privacy $CUR 200";
	is_deeply [sort keys %{ j($a) }], [sort qw(type version acceptedAt)], 'the answer: type, version, acceptedAt' or diag $a->{body};
	is j($a)->{type}, 'privacy', 'type';
	is j($a)->{version}, $CUR, 'version';
	$accepted_at = j($a)->{acceptedAt};
	cmp_ok abs((rfc3339_epoch($accepted_at) // 0) - time), '<', 60, 'acceptedAt is now (RFC 3339)';
	my $rid = $a->{headers}{'x-request-id'};
	sleep 1.1;   # a second acceptance must not move acceptedAt even at second precision
	my $again = legal_accept($member_s, 'privacy', $CUR);
	status_is $again, 200, 'accepting the same again 200 (harmless)';
	is j($again)->{acceptedAt}, $accepted_at, 'with the first acceptedAt';

	my $row = mysql("SELECT COUNT(*), MAX(ip), MAX(user_agent) FROM legal_acceptances a JOIN legal_documents d ON d.id = a.document_id"
	    . " WHERE d.type = 'privacy' AND d.version = '$CUR'") // '';
	chomp $row;
	my ($cnt, $ip, $ua) = split /\t/, $row;
	is $cnt, 1, 'one legal_acceptances row';
	like $ip // '', qr/^(?:::ffff:)?127\.0\.0\.1$/, 'it records the client IP';
	like $ua // '', qr/^opsd-test\/1/, 'it records the user agent';

	my $s2 = j(legal_status($member_s));
	ok !grep({ ($_->{type} // '') eq 'privacy' } @{ $s2->{pending} // [] }), 'status: privacy no longer pending';
	my @acc = grep { ($_->{type} // '') eq 'privacy' } @{ $s2->{accepted} // [] };
	is scalar(@acc), 1, 'status: privacy accepted';
	is $acc[0]{version}, $CUR, '(the current version)';
	is $acc[0]{acceptedAt}, $accepted_at, '(with acceptedAt)';
	ok((grep { ($_->{type} // '') eq 'bigdoc' } @{ $s2->{pending} // [] }), 'bigdoc still pending');

	# LEGAL_ENFORCE unset: nothing is blocked although documents are pending
	status_is http(GET => '/users', session => $orgadm_s), 200, 'org_admin with pending documents: GET /users 200 (not enforced)';
	status_is http(GET => "/orgs/$org->{id}", session => $orgadm_s), 200, 'GET /orgs/:id 200';

	my @au = grep { $_->{request_id} && $rid && $_->{request_id} eq $rid } audit_rows('legal.accepted');
	is scalar(@au), 1, 'audit legal.accepted with the request id of the acceptance';
	is_deeply { map { $_ => audit_payload($au[0] // {})->{$_} } qw(type version) }, { type => 'privacy', version => $CUR },
	    'legal.accepted payload {type, version}';
}

# ============================================================ report
{
	my $more1 = create_user(role => 'member', org => $org);
	my $more2 = create_user(role => 'org_admin', org => $org);
	my $dis = create_user(role => 'member', org => $org);
	status_is http(PATCH => "/users/$dis->{id}", json => { disabled => JSON::PP::true }, session => $admin), 200,
	    'a disabled user';
	my $svc = create_user(role => 'member', org => $org, service => 1);
	ok $svc->{id}, 'a service user' or diag $svc->{res}{body};
	my @act = map { lc } active_user_emails();
	my $active = @act;
	my %act = map { $_ => 1 } @act;
	my @known = map { lc } (admin_email(), map { $_->{email} } $member, $orgadm, $pa, $comp, $more1, $more2);
	is_deeply [grep { !$act{$_} } @known], [], 'our 7 active users are active in the database';
	ok !$act{ lc $dis->{email} } && !$act{ lc $svc->{email} }, '(the disabled and the service user are not)';

	my $r = http(GET => '/legal/acceptance/report?type=privacy', session => $admin);
	status_is $r, 200, 'GET /legal/acceptance/report?type=privacy as superadmin 200';
	my $d = j($r);
	is $d->{type}, 'privacy', 'type';
	is $d->{version}, $CUR, 'version defaults to the current one';
	is $d->{accepted}, 1, 'accepted 1 (the member)';
	is $d->{pending}, $active - 1, 'pending = active users - accepted' or diag $r->{body};
	my @first = @{ ($d->{pendingUsers} // {})->{items} // [] };
	is_deeply [sort keys %{ $first[0] // {} }], [sort qw(id email name orgId)], 'pendingUsers items: id, email, name, orgId';

	my (@ids, $cursor, %seen_cursor, @page_bad);
	my $pages = 0;
	while ($pages < 20) {
		my $p = http(GET => '/legal/acceptance/report?' . qs(type => 'privacy', limit => 1, (defined $cursor ? (cursor => $cursor) : ())),
		    session => $admin);
		$pages++;
		if ($p->{status} != 200) { push @page_bad, "page $pages: $p->{status} $p->{body}"; last }
		my $it = (j($p)->{pendingUsers} // {})->{items} // [];
		push @page_bad, "page $pages: " . scalar(@$it) . " items" if @$it > 1;
		push @ids, map { $_->{id} } @$it;
		$cursor = (j($p)->{pendingUsers} // {})->{nextCursor};
		last if !defined $cursor || $seen_cursor{$cursor}++;
	}
	ok !@page_bad, "limit=1: every page 200 with at most one item ($pages pages)" or diag join "\n", @page_bad;
	cmp_ok $pages, '>=', $active - 1, 'one page per pending user';
	my %u;
	is scalar(grep { !$u{$_}++ } @ids), $active - 1, 'paging with limit=1 yields every pending user once' or diag "@ids";
	is scalar(@ids), $active - 1, '(no duplicates)';
	ok !grep({ $_ eq $member->{id} } @ids), 'the member who accepted is not pending';
	ok !grep({ $_ eq $dis->{id} } @ids), 'the disabled user is not counted';
	ok !grep({ $_ eq ($svc->{id} // '') } @ids), 'the service user is not counted';
	ok((grep { $_ eq $more1->{id} } @ids) && (grep { $_ eq $pa->{id} } @ids), 'the others are');

	my $v1 = j(http(GET => '/legal/acceptance/report?' . qs(type => 'privacy', version => 'v1'), session => $admin));
	is $v1->{version}, 'v1', 'report for version=v1';
	is $v1->{accepted}, 0, 'v1: accepted 0';
	is $v1->{pending}, $active, 'v1: every active user pending';

	status_is http(GET => '/legal/acceptance/report?type=privacy', session => $comp_s), 200, 'report as compliance 200';
	status_is http(GET => '/legal/acceptance/report?type=privacy', session => $pa_s), 200, 'report as platform_admin 200';
	check_error(http(GET => '/legal/acceptance/report?type=privacy', session => $member_s), 403, 'forbidden', 'report as member');
	check_error(http(GET => '/legal/acceptance/report?type=privacy', session => $orgadm_s), 403, 'forbidden', 'report as org_admin');
	check_error(http(GET => '/legal/acceptance/report?type=privacy'), 401, 'unauthenticated', 'report without credentials');
	check_error(http(GET => '/legal/acceptance/report?' . qs(type => 'privacy', version => 'nope'), session => $admin), 404, undef,
	    'report of an unknown version');
}

# ============================================================ audit: legal.updated, never the content
{
	my @u = audit_rows('legal.updated');
	my %by = map { (audit_payload($_)->{type} // '') . ' ' . (audit_payload($_)->{version} // '') => $_ } @u;
	for my $v (qw(v1 v2 v3)) {
		my $a = $by{"privacy $v"};
		ok $a, "audit legal.updated for privacy $v" or next;
		my $p = audit_payload($a);
		ok has_keys($p, [qw(type version effectiveAt contentSha256)], ['content']),
		    "privacy $v payload: type, version, effectiveAt, contentSha256 (no content)" or diag $a->{payload};
		is rfc3339_epoch($p->{effectiveAt}), rfc3339_epoch($DOC{$v}{effectiveAt}), "privacy $v payload effectiveAt";
		is lc($p->{contentSha256} // ''), sha256_utf8($TEXT{$v}), "privacy $v payload contentSha256";
	}
	ok $by{'bigdoc 1.0'}, 'audit legal.updated for bigdoc 1.0';
	is scalar(grep { (audit_payload($_)->{type} // '') eq 'privacy' } @u), 3, 'exactly 3 legal.updated for privacy (no refused publish audited)';
	my @leak = grep { index($_->{payload} // '', $MARK) >= 0 || index($_->{payload} // '', 'clause 0000') >= 0 } @u;
	ok !@leak, 'no legal.updated payload contains document text';
	my $all = mysql("SELECT COUNT(*) FROM audit_events WHERE payload LIKE '%$MARK%'") // '';
	is $all, "0\n", 'no audit event at all contains document text';
	my @hits = find_in_logs({ 'document text' => $MARK });
	ok !@hits, 'no log file contains document text' or diag "@hits";
}

# ============================================================ notify: one email per active user through the outbox
{
	my @allowed = map { create_user(role => 'member', org => $org, email => "legal-$_-$RAND\@allowed.test") } 1 .. 2;
	my $plain = create_user(role => 'member', org => $org, email => "legal-plain-$RAND\@example.test");
	ok $_->{id}, "created $_->{email}" for @allowed, $plain;
	my @emails = map { lc } active_user_emails();
	my $is_allowed = sub ($e) { $e =~ /\@allowed\.test$/i || lc $e eq 'allowed@example.test' };
	my @want_sent = grep { $is_allowed->($_) } @emails;
	my @want_supp = grep { !$is_allowed->($_) } @emails;
	is scalar(@want_sent), 2, 'two active users are allowlisted' or diag "@emails";
	cmp_ok scalar(@want_supp), '>=', 8, 'the others are not';
	is scalar(outbox_rows("kind = 'legal_notice'")), 0, 'no legal_notice in the outbox before';

	my $t0 = time;
	my $r = legal_publish($admin, type => 'terms', version => 'v1', content => "Terms v1 ($MARK-t)\n", notify => 1);
	status_is $r, 201, 'POST /legal terms v1 notify:true 201';
	is j($r)->{notify}, JSON::PP::true, 'notify true echoed';
	cmp_ok $r->{elapsed}, '<', 3, sprintf('the POST answered quickly (%.2f s; the mails go out later)', $r->{elapsed});

	my $subject = 'Updated terms: version v1';
	my $done = wait_until(20, sub {
		my @rows = outbox_rows("kind = 'legal_notice'");
		@rows >= @emails && !grep { $_->{status} !~ /^(?:sent|suppressed|failed)$/ } @rows;
	}, 0.2);
	my @rows = outbox_rows("kind = 'legal_notice'");
	ok $done, sprintf('within 20 s the outbox has a settled legal_notice row per active user (%d rows, %.1f s)',
	    scalar @rows, time - $t0) or diag json_encode(\@rows);
	sleep 1;   # nothing more may come (no doubles, no disabled or service user)
	@rows = outbox_rows("kind = 'legal_notice'");
	my %by;
	push @{ $by{ lc $_->{to_addr} } }, $_ for @rows;
	is_deeply [sort keys %by], [sort @emails], 'exactly the active users got a row (not the disabled, not the service user)'
	    or diag json_encode([sort keys %by]);
	is scalar(@rows), scalar(@emails), 'one row each';
	ok !grep({ ($_->{subject} // '') ne $subject } @rows), qq(every subject is "$subject") or diag json_encode(\@rows);
	for my $e (@want_sent) {
		is(($by{$e}[0] // {})->{status}, 'sent', "$e (allowlisted): sent");
	}
	my @bad_supp = grep { (($by{$_}[0] // {})->{status} // '') ne 'suppressed' } @want_supp;
	ok !@bad_supp, 'every non-allowlisted user: suppressed (test mode)' or diag "@bad_supp";
	for my $e (@want_sent) {
		my @m = $peer->wait_messages(1, 10, to => $e);
		is scalar(@m), 1, "the peer received exactly one message for $e" or diag $peer->state_text;
		is(($m[0] // {})->{headers}{subject}, $subject, "its Subject is \"$subject\"");
	}
	my @leaked = grep { my $m = $_; !grep { $is_allowed->($_) } @{ $m->{rcpt_tos} // [] } } $peer->messages;
	ok !@leaked, 'nothing reached the peer for a non-allowlisted address' or diag $peer->state_text;
	is scalar($peer->messages), scalar(@want_sent), 'the peer got only the allowlisted notices';
}

# ============================================================ opsctl legal publish
{
	my ($fh, $file) = tempfile('opsd-legal-XXXXXX', TMPDIR => 1, UNLINK => 1);
	my $text = "Cookie policy 1 — ü ($MARK-c)\nsecond line\n";
	print {$fh} encode_utf8($text);
	close $fh;
	chmod 0644, $file;
	my ($rc, $out, $err) = opsctl(qw(legal publish --type cookies --version 1 --file), $file);
	is $rc, 0, 'opsctl legal publish --type cookies --version 1 --file F exits 0' or diag "out: $out\nerr: $err";
	like $out, qr/^published cookies 1 \(current\)$/m, 'it prints "published cookies 1 (current)"' or diag $out;
	my $g = legal_get('cookies');
	status_is $g, 200, 'GET /legal/cookies 200';
	is j($g)->{content}, $text, "GET /legal/cookies returns the file's content";
	is j($g)->{version}, '1', 'version 1';

	($rc, $out, $err) = opsctl(qw(legal publish --type cookies --version 1 --file), $file);
	is $rc, 1, 'the same again exits 1' or diag "out: $out\nerr: $err";
	like "$out$err", qr/duplicate version/, 'it says "duplicate version"';

	my $later = rfc3339_at(time + 3600);
	($rc, $out, $err) = opsctl(qw(legal publish --type cookies --version 2 --file), $file, '--effective-at', $later);
	is $rc, 0, 'opsctl legal publish --effective-at in an hour exits 0' or diag "out: $out\nerr: $err";
	like $out, qr/^published cookies 2 \(scheduled for [^)]+\)$/m, 'it prints "published cookies 2 (scheduled for …)"' or diag $out;
	is j(legal_get('cookies'))->{version}, '1', 'GET /legal/cookies still returns 1';
	ok scalar(audit_rows('legal.updated')) >= 7, 'opsctl publishes are audited too (legal.updated)';

	# GET /legal: the types, their current and scheduled versions
	my $r = legal_publish($admin, type => 'cookies', version => '3', content => 'c3', effectiveAt => rfc3339_at(time + 7200));
	status_is $r, 201, 'cookies 3 scheduled in two hours';
	$r = legal_publish($admin, type => 'dpa', version => 'd1', content => 'd1', effectiveAt => rfc3339_at(time + 7200));
	status_is $r, 201, 'dpa d1, the first of its type, scheduled in two hours';
	$r = http(GET => '/legal');
	status_is $r, 200, 'GET /legal without credentials: 200';
	my @types = grep { length } split /\n/, mysql('SELECT DISTINCT type FROM legal_documents ORDER BY type') // '';
	is_deeply [map { $_->{type} } @{ j($r)->{items} // [] }], \@types, '  every type, by name (' . join(' ', @types) . ')';
	my $idx = legal_index();
	is_deeply { map { $_ => $idx->{$_} } qw(bigdoc cookies dpa privacy) }, { bigdoc => ['1.0', []], cookies => ['1', ['2', '3']],
	    dpa => [undef, ['d1']], privacy => ['v3', []] }, '  current and scheduled versions (soonest first); dpa has no current one yet'
	    or diag $r->{body};
	my ($c) = grep { $_->{type} eq 'cookies' } @{ j($r)->{items} // [] };
	is_deeply [map { $_->{effectiveAt} } @{ $c->{scheduled} // [] }], [sort map { $_->{effectiveAt} } @{ $c->{scheduled} // [] }],
	    '  scheduled in effectiveAt order';
	ok exists j($r)->{nextCursor} && !defined j($r)->{nextCursor}, '  nextCursor null';
	unlike $r->{body}, qr/\Q$MARK\E|"content"/, '  no document text';
	my $m = http(GET => '/legal', session => $member_s);
	is_deeply j($m), j($r), '  the same for a signed-in member';
}

finish();
