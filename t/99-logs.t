#!/usr/bin/env perl
# The logs of the whole integration run (item 5). Runs last (prove
# takes t/ in order) over what the other tests left in OPSD_TEST_ARCHIVE
# (script/test sets it; t/lib/OpsdTest.pm fills it):
#   <test>-<n>/        the log/ files of a stack, copied when it stopped
#                      (each byte once, also across restarts)
#   <test>.sensitive   JSON lines {label, value}: secrets and PII that test
#                      used (passwords, session secrets, data keys, API
#                      tokens, cookies, emails, names, phone numbers ...)
# Checks:
#   1. every line of opsd.log* is a JSON object with "time" (RFC 3339),
#      "level" (debug, info, warn, error) and "event" (a non-empty string);
#   2. every request-scoped opsd line has "requestId" (see below);
#   3. every line of nginx-access.log* is a JSON object with "time"
#      (RFC 3339, $time_iso8601), "level", "event" and "request_id" ($request_id; the
#      log_format opsd_json of conf/nginx/nginx.conf);
#   4. no registered value appears in any archived file (nginx-error.log
#      too): as it was registered (UTF-8), lower-cased when it is an email
#      address, JSON-escaped and percent-encoded when those differ.
#
# Request-scoped opsd lines: opsd sets the request id when a worker starts
# handling a request and clears it after the "request"/"slow_request" line
# (src/server/worker.c handle()), and log.c adds "requestId" to every line
# in between. So a line is request-scoped when its event is "request" or
# "slow_request", or it comes from a worker ("role":"worker") and its event
# is not one of the worker's own lifecycle events, which are logged outside
# a request: worker_start_failed, worker_recycle, fcgi_rejected,
# fcgi_peer_refused, accept_failed, db_connect_failed (also logged when
# the worker connects at start), stopping, stopped, log_reopened,
# log_reopen_failed. Lines of the master ("request_timeout" names the
# request it killed in timedOutRequestId) and of the jobs process are not.
#
# Values shorter than 6 characters are not searched for (too common; the
# count is reported).
#
# Run by hand without OPSD_TEST_ARCHIVE, or with a missing or empty archive,
# the file is skipped (saying why). Under script/test, which sets
# OPSD_TEST_ARCHIVE_REQUIRED=1 next to OPSD_TEST_ARCHIVE, the check must not
# switch itself off: a missing archive, one that is not a directory or holds
# no stack's logs, or no registered value fails instead. And when
# script/test runs the whole suite (PROVE_ARGS unset, or nothing in it but t/
# and options that change the output only), every other t/*.t that starts a
# stack must have left its logs (<test>-<n>/ with files in it) and its
# <test>.sensitive file in the archive.
use v5.36;
use lib 't/lib';
use Encode qw(encode_utf8);
use FindBin;
use File::Basename qw(basename);
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);
use OpsdTest qw(json_decode json_encode rfc3339_epoch uri_escape_all slurp whole_run);

my $T0 = time;
my $ROOT = $ENV{OPSD_TEST_ARCHIVE};
my $REQUIRED = ($ENV{OPSD_TEST_ARCHIVE_REQUIRED} // '') !~ /^0?\z/;

# Nothing to check: skipped when run by hand, a failure under script/test.
sub no_archive($why) {
	plan skip_all => $why unless $REQUIRED;
	fail "the run's log archive can be checked (OPSD_TEST_ARCHIVE_REQUIRED=1): $why";
	diag 'script/test archives the logs of every stack of the run in OPSD_TEST_ARCHIVE for this check;'
	    . ' without them no log of the run is checked for secrets and PII';
	done_testing();
	exit;
}

no_archive('OPSD_TEST_ARCHIVE is not set: no archive of the run\'s logs to check'
    . ' (script/test sets it; a test run by hand has nothing to look at)')
    unless defined $ROOT && length $ROOT;
no_archive("OPSD_TEST_ARCHIVE=$ROOT does not exist") unless -e $ROOT;
no_archive("OPSD_TEST_ARCHIVE=$ROOT is not a directory") unless -d $ROOT;

opendir(my $dh, $ROOT) or BAIL_OUT("cannot read $ROOT: $!");
my @entries = sort grep { !/^\./ } readdir $dh;
closedir $dh;
my @dirs = grep { -d "$ROOT/$_" } @entries;
my @sens = grep { /\.sensitive\z/ && -f "$ROOT/$_" } @entries;
no_archive("OPSD_TEST_ARCHIVE=$ROOT is empty: no test of this run archived its logs") unless @dirs;

use constant MIN_LEN => 6;
my @LEVELS = qw(debug info warn error);
my %LEVEL = map { $_ => 1 } @LEVELS;
my %WORKER_LIFECYCLE = map { $_ => 1 } qw(worker_start_failed worker_recycle fcgi_rejected
	fcgi_peer_refused accept_failed db_connect_failed db_previous_credentials db_failover stopping stopped log_reopened log_reopen_failed);
my $RFC3339 = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;

sub short($s) { return length $s > 300 ? substr($s, 0, 300) . '...' : $s }
sub first(@l) { return @l > 10 ? (@l[0 .. 9], '... and ' . (@l - 10) . ' more') : @l }

# ---------------------------------------------------------------- the registered values
my %VALUE;       # value (characters) => "label (test)"
my @reg_bad;
for my $f (@sens) {
	(my $test = $f) =~ s/\.sensitive\z//;
	my $n = 0;
	for my $line (split /\n/, slurp("$ROOT/$f") // '') {
		$n++;
		next unless length $line;
		my $r = json_decode($line);
		if (ref $r ne 'HASH' || !defined $r->{value} || ref $r->{value} || !defined $r->{label}) {
			push @reg_bad, "$f line $n: " . short($line);
			next;
		}
		$VALUE{ $r->{value} } //= "$r->{label} ($test)";
	}
}
ok !@reg_bad, 'every line of the *.sensitive files is {label, value}' or diag join "\n", first(@reg_bad);
my @short = grep { length $_ < MIN_LEN } keys %VALUE;
delete @VALUE{@short};
cmp_ok scalar(keys %VALUE), '>', 0, sprintf('%d values registered by %d test file(s) (%d shorter than %d characters left out)',
    scalar(keys %VALUE), scalar(@sens), scalar(@short), MIN_LEN);

# ---------------------------------------------------------------- every test file of a whole run
SKIP: {
	skip 'not under script/test (OPSD_TEST_ARCHIVE_REQUIRED unset): which files ran is not known', 2 unless $REQUIRED;
	skip "PROVE_ARGS=$ENV{PROVE_ARGS} narrows the run: not every t/*.t ran", 2 unless whole_run();
	my $me = basename($0);
	my @expected;   # the archive names (as test_name() makes them) of the files that start a stack
	for my $t (sort glob("$FindBin::Bin/*.t")) {
		next if basename($t) eq $me;
		next unless (slurp($t) // '') =~ /^\s*start_stack\s*\(/m;
		(my $name = basename($t)) =~ s/\.t\z//;
		$name =~ s/[^A-Za-z0-9._-]/_/g;
		push @expected, $name;
	}
	my %logs;   # test name => files archived
	for my $d (@dirs) {
		next unless $d =~ /\A(.+)-\d+\z/;
		opendir(my $fh, "$ROOT/$d") or next;
		$logs{$1} += grep { !/^\./ && -f "$ROOT/$d/$_" } readdir $fh;
		closedir $fh;
	}
	my %sens = map { s/\.sensitive\z//r => 1 } @sens;
	my @no_logs = grep { !$logs{$_} } @expected;
	my @no_sens = grep { !$sens{$_} } @expected;
	ok @expected && !@no_logs, sprintf('every other t/*.t that starts a stack archived its logs (%d files)', scalar @expected)
	    or diag 'no <test>-<n>/ with files in it for: ' . join(' ', @no_logs);
	ok @expected && !@no_sens, 'and registered its secrets (<test>.sensitive)'
	    or diag 'no <test>.sensitive for: ' . join(' ', @no_sens);
}

# The byte strings to look for, each naming its value's label.
my %NEEDLE;
my $JSON_ESC = JSON::PP->new->allow_nonref;   # characters in, characters out: escapes only " \ and controls
for my $v (keys %VALUE) {
	my $bytes = encode_utf8($v);
	my @forms = ([$bytes, '']);
	push @forms, [encode_utf8(lc $v), ' (lower-cased)'] if $v =~ /\@/ && lc $v ne $v;
	my $esc = encode_utf8(substr($JSON_ESC->encode($v), 1, -1));
	push @forms, [$esc, ' (JSON-escaped)'] if $esc ne $bytes;
	my $pct = uri_escape_all($bytes);
	push @forms, [$pct, ' (percent-encoded)'] if $pct ne $bytes;
	$NEEDLE{ $_->[0] } //= $VALUE{$v} . $_->[1] for @forms;
}
# One alternation (perl compiles it to a trie): each file is scanned once.
my @needles = sort { length $b <=> length $a || $a cmp $b } keys %NEEDLE;
my $ALT = @needles ? join('|', map { quotemeta } @needles) : '(?!)';
my $RE = qr/($ALT)/;
# control: the matcher finds each search string as itself
my @missed = grep { !($_ =~ /\A$RE/ && $1 eq $_) } @needles;
ok !@missed, sprintf('(control: the matcher finds each of the %d search strings)', scalar @needles)
    or diag join "\n", map { $NEEDLE{$_} } first(@missed);

# ---------------------------------------------------------------- the archived files
my %count = (files => 0, bytes => 0, lines => 0, opsd => 0, nginx => 0, request_scoped => 0, other => 0);
my (@not_json, @no_time, @no_level, @no_event, @no_rid, @nginx_not_json, @nginx_no_time, @nginx_no_level, @nginx_no_rid, @hits);

sub where($rel, $n) { return "$rel:$n" }

for my $d (@dirs) {
	opendir(my $fh, "$ROOT/$d") or next;
	my @files = sort grep { !/^\./ && -f "$ROOT/$d/$_" } readdir $fh;
	closedir $fh;
	for my $f (@files) {
		my $rel = "$d/$f";
		my $data = slurp("$ROOT/$rel") // next;
		$count{files}++;
		$count{bytes} += length $data;
		my $kind = $f =~ /^opsd\.log/ ? 'opsd' : $f =~ /^nginx-access\.log/ ? 'nginx' : 'other';
		my @lines = split /\n/, $data;
		$count{lines} += @lines;
		$count{$kind} += @lines;

		# sensitive values: one pass over the whole file, line numbers only for hits
		if (@needles) {
			while ($data =~ /$RE/g) {
				my ($hit, $end) = ($1, pos $data);
				if (@hits >= 50) { push @hits, "$rel: $NEEDLE{$hit}"; next }
				my $start = $end - length $hit;
				my $ln = 1 + (substr($data, 0, $start) =~ tr/\n//);
				my $line = $lines[$ln - 1] // '';
				(my $shown = $line) =~ s/\Q$hit\E/<<$NEEDLE{$hit}>>/g;
				push @hits, where($rel, $ln) . ": $NEEDLE{$hit}\n    " . short($shown);
			}
		}
		next if $kind eq 'other';

		my $n = 0;
		for my $line (@lines) {
			$n++;
			my $r = json_decode($line);
			if ($kind eq 'nginx') {
				if (ref $r ne 'HASH') { push @nginx_not_json, where($rel, $n) . ': ' . short($line); next }
				push @nginx_no_time, where($rel, $n) . ': time ' . ($r->{time} // 'missing')
				    unless defined $r->{time} && !ref $r->{time} && $r->{time} =~ $RFC3339 && defined rfc3339_epoch($r->{time});
				push @nginx_no_level, where($rel, $n) . ': ' . short($line)
				    unless ($r->{level} // '') eq 'info' && ($r->{event} // '') eq 'access';
				my $rid = $r->{request_id} // $r->{requestId};
				push @nginx_no_rid, where($rel, $n) . ': ' . short($line)
				    unless defined $rid && !ref $rid && $rid =~ /^[A-Za-z0-9._:-]{1,128}$/;
				next;
			}
			if (ref $r ne 'HASH') { push @not_json, where($rel, $n) . ': ' . short($line); next }
			push @no_time, where($rel, $n) . ': time ' . ($r->{time} // 'missing')
			    unless defined $r->{time} && !ref $r->{time} && $r->{time} =~ $RFC3339 && defined rfc3339_epoch($r->{time});
			push @no_level, where($rel, $n) . ': level ' . ($r->{level} // 'missing')
			    unless defined $r->{level} && !ref $r->{level} && $LEVEL{ $r->{level} };
			my $ev = $r->{event};
			push @no_event, where($rel, $n) . ': ' . short($line) unless defined $ev && !ref $ev && length $ev;
			$ev //= '';
			my $scoped = $ev eq 'request' || $ev eq 'slow_request'
			    || (($r->{role} // '') eq 'worker' && !$WORKER_LIFECYCLE{$ev});
			next unless $scoped;
			$count{request_scoped}++;
			push @no_rid, where($rel, $n) . ': ' . short($line)
			    unless defined $r->{requestId} && !ref $r->{requestId} && length $r->{requestId};
		}
	}
}

cmp_ok $count{opsd}, '>', 0, "the archive has opsd.log lines ($count{opsd} in " . scalar(@dirs) . ' stack archive(s))';
ok !@not_json, "every opsd.log line is a JSON object ($count{opsd} lines)" or diag join "\n", first(@not_json);
ok !@no_time, 'every opsd.log line has an RFC 3339 "time"' or diag join "\n", first(@no_time);
ok !@no_level, "every opsd.log line has a \"level\" (@LEVELS)" or diag join "\n", first(@no_level);
ok !@no_event, 'every opsd.log line has an "event"' or diag join "\n", first(@no_event);
cmp_ok $count{request_scoped}, '>', 0, "request-scoped opsd lines found ($count{request_scoped})";
ok !@no_rid, "every request-scoped opsd line has a \"requestId\" ($count{request_scoped} lines)"
    or diag join "\n", first(@no_rid);
cmp_ok $count{nginx}, '>', 0, "the archive has nginx access log lines ($count{nginx})";
ok !@nginx_not_json, "every nginx access log line is a JSON object ($count{nginx} lines)" or diag join "\n", first(@nginx_not_json);
ok !@nginx_no_time, 'every nginx access log line has an RFC 3339 "time"' or diag join "\n", first(@nginx_no_time);
ok !@nginx_no_rid, 'every nginx access log line has a "request_id"' or diag join "\n", first(@nginx_no_rid);
ok !@nginx_no_level, 'every nginx access log line has "level":"info" and "event":"access"' or diag join "\n", first(@nginx_no_level);
ok !@hits, sprintf('no registered secret or PII in any archived log: %d values (%d search strings) x %d files, %d lines',
    scalar(keys %VALUE), scalar(@needles), $count{files}, $count{lines})
    or diag join "\n", first(@hits);

diag sprintf('t/99-logs: %d stack archive(s), %d files, %d lines (%d opsd, %d nginx access, %d other; %d request-scoped),'
    . ' %.1f MB; %d sensitive values from %d test file(s) (%d short ones skipped); %.1fs',
    scalar(@dirs), $count{files}, $count{lines}, $count{opsd}, $count{nginx}, $count{other}, $count{request_scoped},
    $count{bytes} / 1e6, scalar(keys %VALUE), scalar(@sens), scalar(@short), time - $T0);
done_testing();
