#!/usr/bin/perl
# SMTP credentials rotated on a live stack (README "Runbook 7" step 3) while a
# loop queues test messages and reads, against a real SMTP peer (STARTTLS,
# AUTH) whose accepted credentials are changed as a relay's would be:
#   A. the README's procedure: the relay accepts the old and the new password,
#      SMTP_PASS gets the new one, SIGHUP, the old jobs process leaves, the
#      relay drops the old one;
#   B. a relay that switches at once: messages refused at AUTH before the
#      reload are failed, and the reload that changes SMTP_PASS queues them
#      again (email.retry_requested by the system);
#   C. the reload lands while the old jobs process is inside AUTH (the peer
#      holds it) and the peer already refuses its password: the message goes
#      back to the queue, due at once, and its successor sends it;
#   D. outside a rotation an AUTH refusal still fails at once (runbook 5), a
#      reload that leaves the SMTP settings alone does not retry it, one that
#      changes them does;
#   E. after that rotation the jobs process crashes (kill -9) and the master
#      starts another with the same settings: a message refused at AUTH under
#      the new settings is not queued again (only failures from while the
#      replaced settings were in force are), until a reload changes them.
# Every message queued before, during and after is delivered exactly once,
# none ends failed, no request of the loop failed, no password in log/.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $TAG = run_tag();
my @PW = map { sensitive("SMTP password $_", "Smtp-$_-$TAG-" . int(rand 1e9)) } 1 .. 6;
my $USER = 'opsd-mailer';
my $ca = make_test_ca();
my $authf = email_tmp_dir() . "/credentials-$TAG";
sub peer_accepts(@pw) {
	my $delay = ref $pw[-1] eq 'HASH' ? pop(@pw)->{delay_ms} : 0;
	open my $fh, '>', "$authf.tmp" or die "$authf: $!";
	print {$fh} map { "$USER:$_\n" } @pw;
	print {$fh} "delay $delay\n" if $delay;
	close $fh;
	rename "$authf.tmp", $authf or die "$authf: $!";
}
peer_accepts($PW[0]);
my $peer = start_smtp_peer(tls => $ca, auth_file => $authf);
start_stack(env => { OPSD_WORKERS => 2,
    %{ smtp_env($peer, $ca, SMTP_USER => $USER, SMTP_PASS => $PW[0]) } });
my $var = var_dir();
my $envf = "$var/opsd.env";

# README "Runbook 7" step 3, SMTP credentials: 2. opsd gets the new password
# and reloads; 3. wait until the old jobs process has gone (then the relay
# may drop the old password)
my $SET_PASS = q{perl -i -pe 's/^SMTP_PASS=.*/SMTP_PASS=\x27$ENV{NEW_SMTP_PASS}\x27/' "$ENVF"
reload};
my $WAIT_JOBS = q{MASTER=$(cat "$OPSD_VAR/run/opsd.pid")
until [ "$(ps --ppid "$MASTER" -o args= | grep -c '^opsd: jobs')" = 1 ]; do sleep 1; done};
sub sh($script, $pw = '') {
	my $r = run_cmd(cmd => ['bash', '-euo', 'pipefail', '-c',
	    qq{reload() { kill -HUP "\$(cat "\$OPSD_VAR/run/opsd.pid")"; }\n$script}],
	    env => { %ENV, NEW_SMTP_PASS => $pw, ENVF => $envf, OPSD_VAR => $var }, timeout => 30, tag => 'sh');
	is $r->{rc}, 0, 'the commands run' or diag $r->{err};
}
# Events of an action since the epoch $since: {target, actor, payload, ts}.
sub audits($action, $since) {
	return grep { $_->{ts} >= $since - 1 } map {
		{ target => $_->{target_id}, actor => $_->{actor_label}, payload => json_decode($_->{payload} // '') // {},
		  ts => rfc3339_epoch(($_->{occurred_at} // '') =~ s/ /T/r . 'Z') // 0 } } audit_rows($action);
}
sub failed_at_auth_since($t) {
	return grep { ($_->{last_error} // '') =~ /^auth:/ && $_->{status} eq 'failed' }
	    outbox_rows("updated_at >= FROM_UNIXTIME($t - 1)");
}

my $admin = admin_session();
my $loop = request_loop(pause => 0.4, steps => [
	{ label => 'read', method => 'GET', path => '/auth/me', session => $admin },
	{ label => 'mail', method => 'POST', path => '/email/test', session => $admin,
	  json => sub ($i) { { to => "r-$TAG-$i\@allowed.test" } } },
]);
ok wait_until(15, sub { $peer->count >= 2 }), 'mail flows with the first password';

# ---- A. the overlap: relay accepts both, opsd reloads, the relay drops the old one
{
	peer_accepts(@PW[0, 1]);
	ok reload_opsd(by => sub { sh($SET_PASS, $PW[1]) }), 'A: SMTP_PASS changed and reloaded';
	sh($WAIT_JOBS);
	peer_accepts($PW[1]);
	my $n = $peer->count;
	ok wait_until(15, sub { $peer->count >= $n + 3 }), 'A: mail flows with the new password only';
	is scalar(failed_at_auth_since(0)), 0, 'A: no message failed at AUTH';
}

# ---- B. the relay switches first: failed at AUTH, queued again by the reload
{
	my $t = time;
	peer_accepts($PW[2]);
	ok wait_until(20, sub { failed_at_auth_since($t) >= 2 }, 0.2), 'B: messages fail at AUTH (failed at once) while opsd has the old password';
	my @failed = map { $_->{id} } failed_at_auth_since($t);
	ok reload_opsd(by => sub { sh($SET_PASS, $PW[2]) }), 'B: SMTP_PASS changed and reloaded';
	ok wait_until(20, sub { !grep { (outbox_row($_) // {})->{status} ne 'sent' } @failed }, 0.2),
	    'B: the messages failed at AUTH before the reload are sent' or diag explain [map { outbox_row($_) } @failed];
	my %retried = map { norm_id($_->{target}) => $_ } audits('email.retry_requested', $t);
	is scalar(grep { $retried{ norm_id($_) } } @failed), scalar(@failed), 'B: each was queued again, audited email.retry_requested';
	is scalar(grep { ($retried{ norm_id($_) }{actor} // '') eq 'system' } @failed), scalar(@failed), '  by the system';
	ok wait_until(5, sub { grep { ($_->{event} // '') eq 'email_requeued' } log_records('opsd.log') }), '  and logged (email_requeued)';
}

# ---- C. the reload lands while the old jobs process is inside AUTH
{
	my $t = time;
	my $n = scalar $peer->events(event => 'auth_wait');
	peer_accepts($PW[2], { delay_ms => 2500 });
	ok wait_until(15, sub { $peer->events(event => 'auth_wait') > $n }, 0.02), 'C: the jobs process is held inside AUTH';
	my $old_jobs = jobs_pid();
	ok reload_opsd(by => sub {
		env_file_set(SMTP_PASS => $PW[3]);
		kill 'HUP', master_pid();
		peer_accepts($PW[3]);
	}, timeout => 20), 'C: SMTP_PASS changed, reloaded, and the relay refuses the old password before AUTH is judged';
	my @handed = grep { ($_->{payload}{step} // '') eq 'auth' && $_->{payload}{willRetry} } audits('email.failed', $t);
	ok scalar(@handed), 'C: the old jobs process put the message refused at AUTH back (email.failed, step auth, willRetry)';
	my @ids = map { $_->{target} } @handed;
	ok wait_until(20, sub { !grep { (outbox_row($_) // {})->{status} ne 'sent' } @ids }, 0.2), 'C: its successor sent it';
	ok !pid_alive($old_jobs), 'C: the old jobs process has left';
}

# ---- D. outside a rotation: failed at once; an unrelated reload leaves it, a new password retries it
my $d_msg;
{
	my $t = time;
	peer_accepts($PW[4]);
	ok wait_until(20, sub { failed_at_auth_since($t) >= 1 }, 0.2), 'D: the relay refuses opsd\'s password: failed at AUTH';
	($d_msg) = failed_at_auth_since($t);
	is $d_msg->{attempts}, 1, 'D: after one attempt (runbook 5: AUTH fails at once)';
	ok reload_opsd(by => sub { env_file_set(OPSD_SLOWLOG_MS => 999); kill 'HUP', master_pid() }), 'D: a reload that leaves the SMTP settings alone';
	sleep 3;
	is outbox_row($d_msg->{id})->{status}, 'failed', 'D: the message stays failed';
	ok reload_opsd(by => sub { sh($SET_PASS, $PW[4]) }), 'D: SMTP_PASS changed and reloaded';
	ok wait_until(20, sub { (outbox_row($d_msg->{id}) // {})->{status} eq 'sent' }, 0.2), 'D: now it is sent';
}

# ---- E. a jobs process started again after the rotation re-queues nothing new
{
	my $retries = () = audit_rows('email.retry_requested');
	my $t = time;
	peer_accepts($PW[5]);
	ok wait_until(20, sub { failed_at_auth_since($t) >= 1 }, 0.2), 'E: the relay refuses the password of the last reload: failed at AUTH';
	my ($e_msg) = failed_at_auth_since($t);
	my $jobs = jobs_pid();
	kill 'KILL', $jobs;
	my $new = wait_until(10, sub { my $j = jobs_pid(); $j && $j != $jobs ? $j : undef });
	ok $new, 'E: the master starts another jobs process after kill -9';
	# A crashed sender's claims come back after their 30-minute lease: now.
	mysql("UPDATE email_outbox SET claimed_until = NOW(3) WHERE status = 'sending' AND claimed_by LIKE '%:$jobs'");
	# Its outbox job re-queues before it claims: a message it failed is proof it ran.
	my $since = time;
	ok wait_until(20, sub { grep { ($_->{last_error} // '') =~ /^auth:/ }
	    outbox_rows("status = 'failed' AND updated_at > FROM_UNIXTIME($since)") }, 0.2),
	    'E: the new jobs process has run (it failed a message at AUTH too)';
	my $row = outbox_row($e_msg->{id});
	is "$row->{status}/$row->{attempts}", "failed/$e_msg->{attempts}", 'E: the message refused under the new settings stays failed, no attempt since';
	is scalar(() = audit_rows('email.retry_requested')), $retries, 'E: no email.retry_requested since the rotation';
	ok reload_opsd(by => sub { sh($SET_PASS, $PW[5]) }), 'E: SMTP_PASS changed and reloaded';
	ok wait_until(20, sub { (outbox_row($e_msg->{id}) // {})->{status} eq 'sent' }, 0.2), 'E: now it is sent';
}

sleep 1;
my $sum = $loop->stop;
is scalar(@{ $sum->{failed} }), 0, "no request of the loop failed ($sum->{total} requests)"
    or diag join "\n", @{ $sum->{failed} }[0 .. ($#{ $sum->{failed} } > 19 ? 19 : $#{ $sum->{failed} })];
{
	my @ids = map { $_->{id} } grep { $_->{label} eq 'mail' && $_->{id} } @{ $sum->{rows} };
	my @tos = map { "r-$TAG-$_->{round}\@allowed.test" } grep { $_->{label} eq 'mail' && $_->{ok} } @{ $sum->{rows} };
	cmp_ok scalar(@ids), '>=', 20, scalar(@ids) . ' messages queued by the loop';
	ok wait_until(40, sub { !grep { (outbox_row($_) // {})->{status} ne 'sent' } @ids }, 0.25),
	    'every message queued before, during and after the rotations is sent'
	    or diag join ' ', map { (outbox_row($_) // {})->{status} // 'none' } @ids;
	my @not_once = grep { scalar($peer->messages_to($_)) != 1 } @tos;
	is scalar(@not_once), 0, 'each arrived exactly once at the relay'
	    or OpsdTest::late_diag(map { "arrived " . scalar($peer->messages_to($_)) . " times: $_" } @not_once);
	is scalar(grep { $_->{status} eq 'failed' } outbox_rows()), 0, 'no message is left failed';
	my @users = map { $_->{auth_user} // '' } $peer->messages;
	is scalar(grep { $_ ne $USER } @users), 0, 'every message was sent authenticated as SMTP_USER';
}
{
	my $all = join '', map { logs($_) } qw(opsd.log nginx-error.log);
	ok !grep({ index($all, $_) >= 0 } @PW), 'no SMTP password appears in log/';
	my $audit = mysql('SELECT payload FROM audit_events') // '';
	ok !grep({ index($audit, $_) >= 0 } @PW), 'nor in an audit payload';
}

finish();
