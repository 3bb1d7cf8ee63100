#!/usr/bin/perl
# The public legal documents served by nginx from files (README "Runbook 1"):
# after a publish, $OPSD_VAR/www-legal/<type>.json and .json.gz hold the
# answer, and GET /legal/<type> comes from the file (nginx's access log has
# no upstream for it) with the same body bytes and headers as opsd's answer
# (a query string still reaches opsd), except for what nginx adds: its own
# ETag, Last-Modified and Vary. 304 for If-None-Match and If-Modified-Since,
# gzip for Accept-Encoding, HEAD, Range ignored as opsd does. A second
# publish within the same second is served at once, with another ETag; a
# scheduled version's file appears when it takes effect; opsctl's publish
# too. A deleted file is written again; a missing directory sends the read
# to opsd (200, same bytes); a stray file is removed. Paths with tricks
# (dot segments, escapes, encoded slashes, other methods, the lock file)
# always reach opsd and never read a file. Two hosts on one database: a
# publish on A is served from B's own file within a second or so.
use v5.36;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(encode_utf8);
use Fcntl qw(O_CREAT O_EXCL O_WRONLY);
use File::Path qw(remove_tree);
use File::Temp qw(tempfile);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;
use OpsdTest::Hosts;

start_stack(env => { OPSD_WORKERS => 2 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or diag $admin->{res}{body};
my $DIR = var_dir() . '/www-legal';
{
	# made by opsd's master before it drops root, for the jobs process and nginx's workers
	my @st = stat $DIR;
	ok @st && ($st[2] & 07777) == 0755, 'opsd made $OPSD_VAR/www-legal, mode 0755';
	is scalar(getpwuid($st[4] // -1)) // '', $> == 0 ? 'www-data' : scalar(getpwuid($>)), '  owned by OPSD_USER';
}

sub read_file($path) { open my $fh, '<:raw', $path or return undef; local $/; return scalar <$fh> }

# 'file' when nginx answered from disk, 'opsd' when it passed the request on
# (the access log line of the answer's request id), '?' when not found.
sub served_by($r, $log = sub { logs('nginx-access.log') }) {
	my $rid = $r->{headers}{'x-request-id'} // return '?';
	for (1 .. 40) {
		for my $line (reverse split /\n/, $log->()) {
			my $d = json_decode($line);
			next unless ref $d eq 'HASH' && ($d->{request_id} // '') eq $rid;
			return length($d->{upstream_status} // '') ? 'opsd' : 'file';
		}
		sleep 0.05;
	}
	return '?';
}

# The headers a client compares: everything but the ones that differ by
# nature (the request id, the date) or that nginx adds for files.
my %PER_REQUEST = map { $_ => 1 } qw(x-request-id date);
my %NGINX_FILE = map { $_ => 1 } qw(etag last-modified vary accept-ranges);
sub comparable($r) {
	my $h = $r->{headers};
	return { map { $_ => $h->{$_} } grep { !$PER_REQUEST{$_} && !$NGINX_FILE{$_} } keys %$h };
}

# ============================================================ before any publish
{
	my $r = legal_get('privacy');
	status_is $r, 404, 'GET /legal/privacy before any publish: 404';
	is served_by($r), 'opsd', '  answered by opsd (no file)';
	ok -d $DIR, "$DIR exists";
	my @st = stat $DIR;
	is $st[4], (getpwnam('www-data'))[2], '  owned by www-data (opsd writes it, nginx reads it)';
	is $st[2] & 07777, 0755, '  mode 0755';
}

# ============================================================ publish v1: the file, served by nginx
my $T1 = "Privacy policy — Datenschutz ü\nline a\n";
my ($file_v1, $etag1, $lm1);
{
	status_is legal_publish($admin, type => 'privacy', version => 'v1', content => $T1), 201, 'publish privacy v1';
	# the very next read, no wait
	my $r = legal_get('privacy');
	status_is $r, 200, 'GET /legal/privacy right after the publish answered: 200';
	is served_by($r), 'file', '  served by nginx from the file';
	is j($r)->{version}, 'v1', '  v1';
	$file_v1 = read_file("$DIR/privacy.json");
	is $r->{body}, $file_v1, '  the body is the file privacy.json, byte for byte';
	my $gz = read_file("$DIR/privacy.json.gz") // '';
	my $plain;
	gunzip(\$gz, \$plain) or diag $GunzipError;
	is $plain, $file_v1, 'privacy.json.gz gunzips to the same bytes';
	my @st = stat "$DIR/privacy.json";
	is $st[2] & 07777, 0644, 'privacy.json is mode 0644';
	my $o = http(GET => '/legal/privacy?from=opsd');
	status_is $o, 200, 'GET /legal/privacy?from=opsd (a query string): 200';
	is served_by($o), 'opsd', '  answered by opsd';
	is $o->{body}, $r->{body}, '  the same body bytes as the file';
	is_deeply comparable($r), comparable($o), '  the same headers but ETag, Last-Modified and Vary (nginx\'s, for files)'
	    or diag explain [comparable($r), comparable($o)];
	is $r->{headers}{'content-type'}, 'application/json', '  Content-Type application/json';
	is $r->{headers}{'cache-control'}, 'no-cache', '  Cache-Control no-cache';
	like $r->{headers}{'content-security-policy'} // '', qr/default-src 'none'/, '  the CSP of every API answer';
	is $r->{headers}{'strict-transport-security'}, $o->{headers}{'strict-transport-security'}, '  HSTS';
	is $r->{headers}{vary}, 'Accept-Encoding', '  Vary: Accept-Encoding (there is a gzip variant)';
	$etag1 = $r->{headers}{etag};
	$lm1 = $r->{headers}{'last-modified'};
	like $etag1 // '', qr/^"[0-9a-f]+-[0-9a-f]+"$/, "  nginx's ETag (\"mtime-size\"; opsd's is the document id)";
	ok $lm1, '  a Last-Modified';

	my $n = http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag1 // '"x"' });
	is $n->{status}, 304, 'If-None-Match with its ETag: 304';
	is served_by($n), 'file', '  from nginx';
	is $n->{headers}{'cache-control'}, 'no-cache', '  with Cache-Control no-cache';
	is http(GET => '/legal/privacy', headers => { 'If-Modified-Since' => $lm1 // 'x' })->{status}, 304,
	    'If-Modified-Since with its Last-Modified: 304';
	is http(GET => '/legal/privacy', headers => { 'If-None-Match' => '"other"' })->{status}, 200, 'another ETag: 200';

	my $g = http(GET => '/legal/privacy', headers => { 'Accept-Encoding' => 'gzip' });
	is $g->{headers}{'content-encoding'}, 'gzip', 'Accept-Encoding: gzip gets the .gz';
	my $unz;
	gunzip(\$g->{body}, \$unz);
	is $unz, $file_v1, '  which decodes to the same bytes';
	my $h = http(HEAD => '/legal/privacy');
	is $h->{status}, 200, 'HEAD: 200';
	is $h->{body}, '', '  no body';
	is $h->{headers}{'content-length'}, length $file_v1, '  Content-Length of the document';
	my $rg = http(GET => '/legal/privacy', headers => { Range => 'bytes=0-9' });
	is $rg->{status}, 200, 'Range: bytes=0-9 gets the whole document (200), as from opsd';
	is $rg->{body}, $file_v1, '  every byte';
}

# ============================================================ v2 in the same second: no stale read, a new ETag
{
	(my $t2 = $T1) =~ s/line a/line b/;   # the same length: only the time tells the ETags apart
	status_is legal_publish($admin, type => 'privacy', version => 'v2', content => $t2), 201, 'publish privacy v2 at once';
	my @r = map { legal_get('privacy') } 1 .. 6;
	is_deeply [map { j($_)->{version} // $_->{status} } @r], [('v2') x 6], 'the 6 reads right after the answer: v2';
	is_deeply [grep { $_ ne 'file' } map { served_by($_) } @r], [], '  all from the file';
	isnt $r[0]{headers}{etag}, $etag1, "  an ETag other than v1's";
	is http(GET => '/legal/privacy', headers => { 'If-None-Match' => $etag1 // '"x"' })->{status}, 200,
	    "If-None-Match with v1's ETag: 200";
	is $r[0]{body}, http(GET => '/legal/privacy?x')->{body}, '  the body opsd answers';
}

# ============================================================ the bad paths never read a file
{
	# a bait file beside the documents: no request may reach it
	open my $fh, '>', "$DIR/bait.txt" or die $!;
	print {$fh} "bait\n";
	close $fh;
	for my $p ('/legal/..%2fprivacy', '/legal/%2e%2e%2fnginx%2fnginx.conf', '/legal/privacy.json',
		'/legal/privacy.json.gz', '/legal/.lock', '/legal/bait.txt', '/legal/x/../privacy', '/legal//privacy',
		'/legal/./privacy', '/legal/PRIVACY', '/legal/..', '/legal/%70rivacy', '/legal/privacy?',
		'/legal/' . ('a' x 33)) {
		my $r = http(GET => $p);
		is served_by($r), 'opsd', "GET $p reaches opsd ($r->{status})";
		unlike $r->{body}, qr/bait|server \{|^\x1f\x8b/, '  and no file content';
	}
	# nginx itself refuses a NUL, before any location (as it always did)
	my $nul = http(GET => '/legal/privacy%00');
	is $nul->{status}, 400, 'GET /legal/privacy%00: 400 from nginx';
	is j($nul)->{error}{code}, 'bad_request', '  the JSON envelope, no file content';
	my $p = http(POST => '/legal/privacy', json => {});
	is served_by($p), 'opsd', "POST /legal/privacy reaches opsd ($p->{status})";
	is $p->{status}, 405, '  405 as before';
	is http(GET => '/legal/%70rivacy')->{body}, read_file("$DIR/privacy.json"), 'GET /legal/%70rivacy: opsd answers the same document';
	unlink "$DIR/bait.txt";
}

# ============================================================ a deleted file, a missing directory, a stray file
{
	my $want = read_file("$DIR/privacy.json");
	unlink "$DIR/privacy.json", "$DIR/privacy.json.gz";
	my $r = legal_get('privacy');
	status_is $r, 200, 'privacy.json deleted: GET /legal/privacy 200';
	is $r->{body}, $want, '  the same bytes (from opsd, or the file already written again)';
	ok wait_until(5, sub { defined(my $s = read_file("$DIR/privacy.json")) }), 'the jobs process writes the file again';
	is read_file("$DIR/privacy.json"), $want, '  with the same bytes';
	ok wait_until(5, sub { -e "$DIR/privacy.json.gz" }), '  and the .gz';

	# Where the jobs process may make the directory (its user can write
	# OPSD_VAR: tests not run as root) it does so within a tick: a plain file
	# in its place keeps it away while nginx finds nothing there, and what it
	# made in the meantime gives way to the original on the way back.
	rename $DIR, "$DIR.off" or die "rename: $!";
	until (sysopen my $fh, $DIR, O_WRONLY | O_CREAT | O_EXCL) {
		die "$DIR: $!" unless $!{EEXIST};
		remove_tree($DIR);
	}
	my $m = legal_get('privacy');
	status_is $m, 200, 'the directory gone: GET /legal/privacy 200';
	is served_by($m), 'opsd', '  from opsd';
	is $m->{body}, $want, '  the same bytes';
	unlink $DIR or die "unlink $DIR: $!";
	until (rename "$DIR.off", $DIR) {
		die "rename back: $!" unless -d $DIR;
		remove_tree($DIR);
	}

	open my $fh, '>', "$DIR/stray.json" or die $!;
	print {$fh} "{}\n";
	close $fh;
	ok wait_until(5, sub { !-e "$DIR/stray.json" }), 'a file of a type without a document is removed';
	my $s = legal_get('stray');
	is $s->{status}, 404, '  GET /legal/stray: 404';
}

# ============================================================ a scheduled version; opsctl
{
	my $at = int(time) + 3;
	my @t = gmtime $at;
	my $iso = sprintf '%04d-%02d-%02dT%02d:%02d:%02dZ', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
	status_is legal_publish($admin, type => 'privacy', version => 'v3', content => "v3\n", effectiveAt => $iso), 201,
	    "publish privacy v3 effective at $iso";
	is j(legal_get('privacy'))->{version}, 'v2', '  until then the file is v2';
	ok wait_until(10, sub { (j(legal_get('privacy'))->{version} // '') eq 'v3' }, 0.1), 'v3 is served once it takes effect';
	cmp_ok time, '>=', $at - 0.1, '  not before its time';
	my $r = legal_get('privacy');
	is served_by($r), 'file', '  from the file';
	is $r->{body}, http(GET => '/legal/privacy?x')->{body}, "  with opsd's bytes";

	my ($fh, $path) = tempfile(UNLINK => 1);
	print {$fh} "Terms from the host\n";
	close $fh;
	my ($rc, $out, $err) = opsctl('legal', 'publish', '--type', 'terms', '--version', 't1', '--file', $path);
	is $rc, 0, 'opsctl legal publish terms' or diag "$out$err";
	my $t = legal_get('terms');
	is j($t)->{version}, 't1', '  GET /legal/terms right after: t1';
	is served_by($t), 'file', '  from the file opsctl wrote';
}

# ============================================================ a second host
{
	my $b = start_host();
	my $bdir = "$b->{var}/www-legal";
	ok wait_until(10, sub { -e "$bdir/privacy.json" }), "host B's jobs process writes its files from the database";
	is read_file("$bdir/privacy.json"), read_file("$DIR/privacy.json"), '  the same bytes as host A';
	is((stat "$bdir/privacy.json")[9], (stat "$DIR/privacy.json")[9], '  and the same time (one ETag on both hosts)');
	status_is legal_publish($admin, type => 'privacy', version => 'v4', content => "v4 from host A\n"), 201,
	    'publish privacy v4 on host A';
	my $t0 = time;
	my $seen = wait_until(10, sub { (j(http_on($b, GET => '/legal/privacy'))->{version} // '') eq 'v4' }, 0.05);
	ok $seen, sprintf('host B serves v4 (after %.2f s)', time - $t0);
	my $r = http_on($b, GET => '/legal/privacy');
	is served_by($r, sub { host_logs($b, 'nginx-access.log') }), 'file', "  from host B's own file";
	is $r->{body}, legal_get('privacy')->{body}, "  the same bytes as host A's answer";
	is $r->{headers}{etag}, legal_get('privacy')->{headers}{etag}, '  and the same ETag';
	stop_host($b);
}

finish();
