#!/usr/bin/perl
# What operators change with "edit opsd.env, SIGHUP" (README "The process
# model and signals"), each in force from the first request or message after
# the reload, while a signed-in user's loop of reads, a write and queued mail
# runs through every reload without a failed request:
#   LEGAL_ENFORCE on (a member who has not accepted the published document
#   gets 403 legal_acceptance_required; /legal/acceptance/status says
#   enforced) and off
#   again (the member passes);
#   opsd's rate limits tightened (OPSD_RATELIMIT_USER_PER_MIN, _TOKEN_PER_MIN,
#   _IP_PER_MIN, _BURST: the next answer carries the new RateLimit-Limit, a
#   burst of a user, of an API token and of an anonymous address is refused
#   429 with details.layer opsd) and relaxed (no RateLimit-* header, nothing
#   refused);
#   the SMTP settings (SMTP_PORT to another relay, SMTP_FROM): the next
#   message goes to the new relay with the new sender, nothing more to the
#   old one, and every message of the loop arrives exactly once.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use OpsdTest;

my $TAG = run_tag();
my $relay_a = start_smtp_peer(no_starttls => 1);
my $relay_b = start_smtp_peer(no_starttls => 1);
start_stack(env => { OPSD_WORKERS => 2, LEGAL_ENFORCE => 0,
    %{ smtp_env($relay_a, undef, SMTP_SECURE => 'none') } });

my $admin = admin_session();
my $org = create_org();
my $member = create_user(role => 'member', org => $org);
my $other = create_user(role => 'member', org => $org);
my $ms = login_ok($member, 'the member');
my $os = login_ok($other, 'another member (rate limits)');
my $tok = j(http(POST => '/auth/tokens', session => $os, json => { name => "sighup-$TAG", scopes => ['tenant.read'] }))->{token};
ok $tok, 'the other member has an API token';
status_is legal_publish($admin, type => 'privacy', version => "p-$TAG", content => "Privacy $TAG\n"), 201,
    'a privacy policy is published';
status_is legal_accept($admin, 'privacy', "p-$TAG"), 200, 'the superadmin (the loop\'s user) accepts it; the member does not';

my $contacts = "/orgs/$org->{id}/contacts";
sub reload_with(%set) {
	my $what = join ' ', map { "$_=" . ($set{$_} // '(unset)') } sort keys %set;
	env_file_set(%set);
	ok reload_opsd(), "SIGHUP with $what: every worker and the jobs process replaced";
}
# n requests at once (forked clients, each its own connection): the answers'
# "status layer" (layer: details.layer of a refusal, else -)
sub burst($n, $send) {
	my $dir = var_dir() . '/..';
	my @kids;
	for my $k (1 .. $n) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $r = $send->();
			my $layer = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
			    ? $r->{json}{error}{details}{layer} // '-' : '-';
			open my $o, '>', "$dir/burst-$k" or POSIX::_exit(2);
			print {$o} "$r->{status} $layer";
			close $o;
			POSIX::_exit(0);
		}
		push @kids, $pid;
	}
	waitpid $_, 0 for @kids;
	return map { slurp("$dir/burst-$_") // '0 -' } 1 .. $n;
}
sub passed(@a) { return scalar grep { /^200 / } @a }
sub refused_by_opsd(@a) { return scalar grep { /^429 opsd$/ } @a }
sub anon() { return fcgi_http(GET => '/legal', remote_addr => '203.0.113.74') }

# A round, then 1.5 s of pause: within the tightened user limit below.
my $loop = request_loop(pause => 1.5, steps => [
	{ label => 'me', method => 'GET', path => '/auth/me', session => $admin },
	{ label => 'contacts', method => 'GET', path => "$contacts?limit=3", session => $admin },
	{ label => 'mail', method => 'POST', path => '/email/test', session => $admin, every => 2,
	  json => sub ($i) { { to => "l-$TAG-$i\@allowed.test" } } },
]);

# ---- LEGAL_ENFORCE on and off
is http(GET => $contacts, session => $ms)->{status}, 200, 'LEGAL_ENFORCE=0: the member reads the contacts';
is j(legal_status($ms))->{enforced}, JSON::PP::false, 'GET /legal/acceptance/status: enforced false';
reload_with(LEGAL_ENFORCE => 1);
check_error(http(GET => $contacts, session => $ms), 403, 'legal_acceptance_required',
    'LEGAL_ENFORCE=1: the member\'s next request');
is j(legal_status($ms))->{enforced}, JSON::PP::true, 'GET /legal/acceptance/status: enforced true, the document pending';
is http(GET => $contacts, session => $admin)->{status}, 200, 'the superadmin, who accepted, passes';
reload_with(LEGAL_ENFORCE => 0);
is http(GET => $contacts, session => $ms)->{status}, 200, 'LEGAL_ENFORCE=0 again: the member\'s next request passes';
is j(legal_status($ms))->{enforced}, JSON::PP::false, 'GET /legal/acceptance/status: enforced false';

# ---- opsd's rate limits tightened and relaxed
my $as_user = sub { http(GET => '/auth/me', session => $os, fresh => 1) };
my $as_token = sub { http(GET => $contacts, bearer => $tok, fresh => 1) };
{
	my @s = burst(20, $as_user);
	is passed(@s), 20, 'limits off (the test stack\'s 0): 20 requests of a user at once pass';
	ok !defined http(GET => '/auth/me', session => $os)->{headers}{'ratelimit-limit'}, '  with no RateLimit-Limit';
}
# Buckets of 5 that refill slowly, so that what a burst gets hardly depends on how
# fast this machine sends it: 5 and 2 more a second for a user (of 30 at once, 10
# or more are refused unless they take over 7 s), 5 and one more every 10 s for a
# token and an address. The loop's user sends at most 3 requests a round of 1.5 s
# and more, 2.5 on average: its own bucket gets 3 back a round and never runs dry.
reload_with(OPSD_RATELIMIT_USER_PER_MIN => 120, OPSD_RATELIMIT_TOKEN_PER_MIN => 6,
    OPSD_RATELIMIT_IP_PER_MIN => 6, OPSD_RATELIMIT_BURST => 5);
{
	my $r = http(GET => '/auth/me', session => $os);
	is $r->{status}, 200, 'tightened: the user\'s next request passes';
	is $r->{headers}{'ratelimit-limit'}, 5, '  and carries RateLimit-Limit 5 (the new burst)';
	sleep 1;   # the bucket full again: it refills 2 a second
	my $t0 = time;
	my @s = burst(30, $as_user);
	cmp_ok refused_by_opsd(@s), '>=', 10, sprintf('a user\'s 30 requests at once (sent in %.1fs): refused 429 by opsd past the burst (%d)',
	    time - $t0, refused_by_opsd(@s))
	    or diag "@s";
	cmp_ok passed(@s), '>=', 5, '  the burst of 5 passes';
	my @t = burst(10, $as_token);
	cmp_ok refused_by_opsd(@t), '>=', 3, 'an API token\'s 10 at once: refused past its burst' or diag "@t";
	cmp_ok passed(@t), '>=', 5, '  its burst passes';
	my @a = burst(10, \&anon);
	cmp_ok refused_by_opsd(@a), '>=', 3, 'an anonymous address\'s 10 at once: refused past its burst' or diag "@a";
	cmp_ok passed(@a), '>=', 5, '  its burst passes';
	is http(GET => $contacts, session => $admin)->{status}, 200, 'the loop\'s user is not held back';
}
reload_with(map { ($_ => 0) } qw(OPSD_RATELIMIT_USER_PER_MIN OPSD_RATELIMIT_TOKEN_PER_MIN OPSD_RATELIMIT_IP_PER_MIN));
{
	my $r = http(GET => '/auth/me', session => $os);
	is $r->{status}, 200, 'relaxed: the user\'s next request passes at once';
	ok !defined $r->{headers}{'ratelimit-limit'}, '  with no RateLimit-Limit';
	is passed(burst(20, $as_user)), 20, '  20 at once pass';
	is passed(burst(10, $as_token)), 10, '  the token\'s 10 pass';
	is passed(burst(10, \&anon)), 10, '  the anonymous address\'s 10 pass';
}

# ---- the SMTP settings: another relay and sender
{
	my $r = email_test_post("before-$TAG\@allowed.test");
	my $before = wait_outbox_row($r->{json}{id}, 20, sub ($row) { $row->{status} eq 'sent' });
	is $before->{status}, 'sent', 'a message before the change is sent';
	is scalar($relay_a->messages_to("before-$TAG\@allowed.test")), 1, '  through relay A';
	reload_with(SMTP_PORT => $relay_b->port, SMTP_FROM => "ops-$TAG\@example.test");
	my $n_a = $relay_a->count;
	$r = email_test_post("after-$TAG\@allowed.test");
	my $after = wait_outbox_row($r->{json}{id}, 20, sub ($row) { $row->{status} eq 'sent' });
	is $after->{status}, 'sent', 'the next message after the reload is sent';
	my @b = $relay_b->messages_to("after-$TAG\@allowed.test");
	is scalar(@b), 1, '  through relay B (the new SMTP_PORT)';
	is $b[0]{mail_from}, "ops-$TAG\@example.test", '  from the new SMTP_FROM';
	is scalar($relay_a->messages_to("after-$TAG\@allowed.test")), 0, '  and not through relay A';
	sleep 1.5;
	is $relay_a->count, $n_a, 'relay A gets nothing after the reload';
}

# enough mail from the loop for the checks below, however slow this machine
wait_until(90, sub { 5 <= grep { $_->{label} eq 'mail' && $_->{id} } $loop->rows }, 0.2);
my $sum = $loop->stop;
is scalar(@{ $sum->{failed} }), 0, "no request of the loop failed across the reloads ($sum->{total} requests)"
    or diag join "\n", @{ $sum->{failed} }[0 .. ($#{ $sum->{failed} } > 19 ? 19 : $#{ $sum->{failed} })];
cmp_ok scalar(grep { ($_->{event} // '') eq 'reload' } log_records('opsd.log')), '>=', 5, 'five reloads happened under the loop';
{
	my @ids = map { $_->{id} } grep { $_->{label} eq 'mail' && $_->{id} } @{ $sum->{rows} };
	my @tos = map { "l-$TAG-$_->{round}\@allowed.test" } grep { $_->{label} eq 'mail' } @{ $sum->{rows} };
	cmp_ok scalar(@ids), '>=', 5, scalar(@ids) . ' messages queued by the loop';
	ok wait_until(30, sub { !grep { (outbox_row($_) // {})->{status} ne 'sent' } @ids }, 0.25), 'every one is sent';
	my @not_once = grep { $relay_a->messages_to($_) + $relay_b->messages_to($_) != 1 } @tos;
	is scalar(@not_once), 0, 'each arrived exactly once (at relay A or B)' or diag "@not_once";
}

finish();
