#!/usr/bin/perl
# Fault drills on the jobs process (README "Runbook 5", "The tenant migration engine" in
# doc/architecture.md), against a relay played by this file (a small SMTP responder whose
# behaviour the test switches: answer, hold a session before or after accepting a message,
# or accept connections and never answer):
#   A. kill -9 of the jobs process while the relay holds a message before accepting it:
#      the master starts another, which takes the dead process's claims back at once (not
#      after the claim's lease) and delivers every message exactly once;
#   B. kill -9 after the relay accepted a message and before it answers QUIT: the outcome
#      was recorded at the relay's 250 (the end of the documented window), so the
#      successor does not send it again; once with DATA and once with a relay offering
#      CHUNKING (libESMTP then sends the message with BDAT, its protocol monitor off);
#   C. a relay that accepts and never answers while a tenant migration copies: the
#      migration goes on (the stalled session holds only the outbox's thread); kill -9
#      of the jobs process mid-copy, then SIGHUP and SIGUSR1 to the master: the copy
#      resumes from its checkpoint, the migration completes with the target holding
#      exactly the source's rows, and the message held all along is delivered once when
#      the relay answers again.
# No request of a loop running beside it all fails.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use Socket qw(MSG_PEEK);
use IO::Select;
use POSIX qw(WNOHANG);
use File::Temp qw(tempdir);
use OpsdTest;

my $T0 = time;
my $R = run_tag();
my $MAIN = $$;
my $dir = tempdir('opsd-drill-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $MODE = "$dir/mode";
my $EVENTS = "$dir/events";
my $CHUNKING = "$dir/chunking";   # present: EHLO lists CHUNKING

# ------------------------------------------------------------ the relay
# Modes (read at each step of each session):
#   serve        answers like a relay: 220, 250 ..., 354, 250 after the message, 221;
#   hold-data    takes the whole message, then answers nothing until the mode changes;
#   hold-quit    accepts the message (250), then never answers QUIT until the mode changes;
#   stall        greets, then never answers until the mode changes.
# events: one line per fact, "event<TAB>message id<TAB>pid": accepted (250 sent for the
# message), dropped (the client left before the message was accepted), held, stalled,
# bdat (the message came as BDAT chunks, the last one marked LAST).
sub mode_set($m) { open my $f, '>', "$MODE.tmp" or die $!; print {$f} $m; close $f; rename "$MODE.tmp", $MODE or die $! }
sub mode() { open my $f, '<', $MODE or return 'serve'; local $/; my $m = <$f> // 'serve'; return $m }
sub event($what, $id = '') {
	open my $f, '>>', $EVENTS or return;
	syswrite $f, "$what\t$id\t$$\n";
	close $f;
}
sub events($what, $id = undef) {
	open my $f, '<', $EVENTS or return 0;
	my $n = 0;
	while (<$f>) {
		chomp;
		my ($e, $i) = split /\t/;
		$n++ if $e eq $what && (!defined $id || lc($i // '') eq lc $id);
	}
	return $n;
}

# Waits while the mode is $held; false when the client left meanwhile.
sub hold($c, $held) {
	my $sel = IO::Select->new($c);
	while (mode() eq $held) {
		next unless $sel->can_read(0.05);
		# peeked, not read: what the client sent is answered once the hold ends
		my $buf = '';
		return 0 if !defined recv($c, $buf, 1, MSG_PEEK) || $buf eq '';   # the client is gone
		sleep 0.05;
	}
	return 1;
}

# The end of the message's data (after "." or BDAT ... LAST): the relay holds or accepts it.
sub data_end($c, $id) {
	if (mode() eq 'hold-data') {
		event('held', $id);
		hold($c, 'hold-data') or do { event('dropped', $id); return 0 };
	}
	print $c "250 2.0.0 queued as $id\r\n";
	event('accepted', $id);
	return 1;
}

sub session($c) {
	$c->autoflush(1);
	print $c "220 drill.test ESMTP\r\n";
	my $id = '';
	if (mode() eq 'stall') {
		event('stalled');
		hold($c, 'stall') or return event('dropped', 'stalled');
	}
	while (defined(my $l = <$c>)) {
		if ($l =~ /^(EHLO|HELO)/i) {
			print $c "250-drill.test\r\n", (-e $CHUNKING ? "250-CHUNKING\r\n" : ''), "250 8BITMIME\r\n";
		} elsif ($l =~ /^BDAT (\d+)( LAST)?\r\n$/i) {
			my ($n, $last, $chunk) = ($1, $2, '');
			while (length $chunk < $n) {
				my $got = read($c, $chunk, $n - length $chunk, length $chunk);
				return event('dropped', $id) if !$got;
			}
			$id = $1 if !$id && $chunk =~ /^Message-Id:\s*<([0-9a-f-]{36})@/im;
			if (!$last) {
				print $c "250 2.0.0 $n octets\r\n";
				next;
			}
			event('bdat', $id);
			data_end($c, $id) or return;
		} elsif ($l =~ /^(MAIL|RCPT|RSET|NOOP)/i) {
			print $c "250 ok\r\n";
		} elsif ($l =~ /^DATA/i) {
			print $c "354 go on\r\n";
			while (defined(my $d = <$c>)) {
				last if $d eq ".\r\n";
				$id = $1 if !$id && $d =~ /^Message-Id:\s*<([0-9a-f-]{36})@/i;
			}
			data_end($c, $id) or return;
		} elsif ($l =~ /^QUIT/i) {
			if (mode() eq 'hold-quit') {
				event('quit-held', $id);
				hold($c, 'hold-quit') or return;
			}
			print $c "221 bye\r\n";
			return;
		} else {
			print $c "502 what\r\n";
		}
	}
}

my $listen = IO::Socket::INET->new(Listen => 32, LocalAddr => '127.0.0.1', LocalPort => 0,
    Proto => 'tcp', ReuseAddr => 1) or die "relay: $!";
my $RELAY_PORT = $listen->sockport;
mode_set('serve');
my $relay = fork // die "fork: $!";
if (!$relay) {
	POSIX::setpgid(0, 0);   # the relay and its sessions: one group to stop
	$SIG{CHLD} = 'IGNORE';
	while (1) {
		my $c = $listen->accept or next;
		my $k = fork;
		if (defined $k && !$k) { session($c); exit 0 }
		close $c;
	}
}
close $listen;
POSIX::setpgid($relay, $relay);
END { if ($$ == $MAIN && $relay) { local $?; kill 'KILL', -$relay; waitpid $relay, 0 } }

start_stack(env => {
	OPSD_WORKERS => 2,
	SMTP_SERVER => '127.0.0.1', SMTP_PORT => $RELAY_PORT, SMTP_SECURE => 'none',
	SMTP_FROM => 'opsd@example.test', SMTP_TEST_MODE => 1, TEST_EMAIL_ALLOWLIST => '@allowed.test',
	OPSD_SMTP_RETRY_BASE_S => 1, OPSD_SMTP_MAX_ATTEMPTS => 20,
});
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in';
my $loop = request_loop(pause => 0.2, steps => [
	{ label => 'healthz', method => 'GET', path => '/healthz' },
	{ label => 'me', method => 'GET', path => '/auth/me', session => $admin },
]);

sub elapsed() { return sprintf '%.1fs', time - $T0 }
sub queue($label) {
	my $r = email_test_post("$label-$R\@allowed.test");
	is $r->{status}, 202, "$label: POST /email/test 202" or diag $r->{body};
	return lc(j($r)->{id} // '');
}
sub sent_once($id, $label, $timeout = 20) {
	my $row = wait_outbox_row($id, $timeout, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', "$label: the outbox says sent" or outbox_diag($id);
	is events('accepted', $id), 1, "$label: the relay accepted it exactly once";
}
sub new_jobs($old) {
	return wait_until(15, sub { my $j = jobs_pid(); $j && $j != $old ? $j : undef });
}

note '---- baseline (' . elapsed() . ')';
sent_once(queue('baseline'), 'baseline');

note '---- A. kill -9 while the relay holds a message before accepting it (' . elapsed() . ')';
{
	mode_set('hold-data');
	my @ids = map { queue("a$_") } 1 .. 3;
	ok wait_until(15, sub { events('held') >= 1 }), 'A: the relay holds a message, its data received';
	my $jobs = jobs_pid();
	ok $jobs && kill('KILL', $jobs), "A: kill -9 the jobs process ($jobs)";
	my $t = time;
	my $new = new_jobs($jobs);
	ok $new, "A: the master started another jobs process ($new)";
	ok wait_until(10, sub { events('dropped') >= 1 }), 'A: the relay saw the client leave before it accepted the message';
	mode_set('serve');
	sent_once($_, "A: message $_") for @ids;
	note sprintf 'A: all sent %.1f s after the kill (the claim lease is 30 minutes)', time - $t;
	ok wait_until(5, sub { grep { ($_->{event} // '') eq 'email_claim_reclaimed' } log_records('opsd.log') }),
	    'A: the log says the dead process\'s claims were queued again (email_claim_reclaimed)';
}

sub drill_b($b, $chunking) {
	note "---- $b. kill -9 after the relay accepted, before it answers QUIT"
	    . ($chunking ? ', the message sent with BDAT (' : ' (') . elapsed() . ')';
	if ($chunking) { open my $f, '>', $CHUNKING or die $! } else { unlink $CHUNKING }
	mode_set('hold-quit');
	my $id = queue(lc $b);
	ok wait_until(15, sub { events('quit-held', $id) >= 1 }), "$b: the relay accepted the message and holds QUIT";
	is events('bdat', $id), $chunking ? 1 : 0, "$b: the message came " . ($chunking ? 'as BDAT chunks' : 'after DATA');
	my $row = wait_outbox_row($id, 10, sub ($r) { $r->{status} eq 'sent' });
	is $row->{status}, 'sent', "$b: the outbox says sent while the session is still open (recorded at the relay's 250)"
	    or outbox_diag($id);
	my $jobs = jobs_pid();
	ok $jobs && kill('KILL', $jobs), "$b: kill -9 the jobs process before QUIT is answered ($jobs)";
	ok new_jobs($jobs), "$b: the master started another jobs process";
	mode_set('serve');
	sleep 2;   # the successor's first passes over the outbox
	is outbox_row($id)->{status}, 'sent', "$b: still sent";
	is events('accepted', $id), 1, "$b: the relay got it once: the window closes at its 250, not at the session's end";
	unlink $CHUNKING;
}
drill_b('B', 0);
drill_b('B2', 1);

note '---- C. a relay that never answers, a migration, kill -9 mid-copy, SIGHUP, SIGUSR1 (' . elapsed() . ')';
{
	my $org = create_org(name => "Drill $R", slug => "drill-$R");
	ok $org->{id}, 'C: an org';
	is bulk_insert_contacts($org, 2000, tag => "drill$R"), 2000, 'C: 2,000 contacts in the shared database';
	my $before = org_snapshot_in('opsd', $org);
	mode_set('stall');
	my $id = queue('c');
	ok wait_until(15, sub { events('stalled') >= 1 }), 'C: the relay greets and then says nothing';
	my $s = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated',
	    dbName => "org_drill_$R", chunkSize => 10, reason => "drill $R", timeout => 60);
	is $s->{status}, 202, 'C: migration start 202 (chunks of 10 rows)' or diag $s->{body};
	my $copied = sub { db_count("SELECT IFNULL(SUM(t.rows_copied), 0) FROM migration_tables t JOIN migrations m"
	    . " ON m.id = t.migration_id WHERE m.org_id = UNHEX('" . org_hex($org) . "') AND m.active_org IS NOT NULL") };
	my $mid = wait_until(30, sub { my $n = $copied->(); $n >= 500 ? $n : 0 }, 0.05);
	ok $mid, "C: the copy goes on while the relay holds the outbox's session ($mid rows)";
	is outbox_row($id)->{status}, 'sending', 'C: the message is still in the stalled session';
	my $jobs = jobs_pid();
	ok $jobs && kill('KILL', $jobs), "C: kill -9 the jobs process mid-copy ($jobs)";
	my $at_kill = $copied->();
	ok new_jobs($jobs), 'C: the master started another jobs process';
	ok kill('HUP', master_pid()), 'C: SIGHUP to the master';
	sleep 1;
	ok kill('USR1', master_pid()), 'C: SIGUSR1 to the master';
	my $d = migration_wait($admin, $org->{id}, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', 'C: the copy resumed and the migration is ready for cut-over'
	    or diag json_encode($d);
	my %t = map { $_->{table} => $_ } @{ $d->{tables} // [] };
	cmp_ok $t{contacts}{rowsCopied} // 0, '<=', 2000 + 10, "C: resumed from the checkpoint ($at_kill rows at the kill,"
	    . " $t{contacts}{rowsCopied} in all: at most one chunk twice)";
	ok $d->{verification}{ok}, 'C: its verification is ok' or diag json_encode($d->{verification});
	ok events('accepted', $id) == 0, 'C: the message was not delivered while the relay said nothing';
	mode_set('serve');
	is migration_finalize($admin, orgId => $org->{id}, timeout => 60)->{status}, 202, 'C: finalize 202';
	$d = migration_wait($admin, $org->{id}, qr/^completed$/, 60);
	is $d->{status}, 'completed', 'C: completed' or diag json_encode($d);
	is_deeply org_snapshot_in("org_drill_$R", $org), $before, 'C: the target holds exactly the source\'s rows';
	sent_once($id, 'C: the stalled message', 60);
}

my $l = $loop->stop;
is scalar @{ $l->{failed} }, 0, "no request of the loop beside the drills failed ($l->{total} requests)";
is db_count("SELECT COUNT(*) FROM email_outbox WHERE status <> 'sent' AND to_addr LIKE '%-$R\@allowed.test'"), 0,
    'every message of the drills ended sent';
note 'elapsed ' . elapsed();
finish();
