#!/usr/bin/perl
# The console's Monitoring screen (README "Runbook 6", "In the console") in
# chromium: t/browser/monitoring.mjs. While a platform_admin has the screen
# open, the script makes traffic (200s and 404s signed in, a burst of
# anonymous requests over opsd's per-address limit, a test email that fails
# — no SMTP peer, one attempt — and one suppressed by test mode) and checks
# that the page charts non-zero request and 429 rates, shows the pool with
# the stack's worker count, that OpsdRateLimitedSpike and
# OpsdEmailSendFailures fire while OpsdWorkersCrashing, OpsdHighErrorRate and
# OpsdRequestTimeouts stay quiet, that a bad reading interval is shown next
# to its field and that reading stops when the screen is left; a compliance
# user (no system.status) has no menu row, a security_admin has one, the
# superadmin sees a migration waiting at ready_for_cutover. Then, against
# the server: /metrics read before and after moved at least as much as the
# page counted (which is at least the traffic made), GET /status has the
# worker count the page showed, the outbox holds the failed and the
# suppressed message, GET /migration lists the migration the page listed.
#
# Needs node, chromium and t/browser's packages (OpsdTest::Browser).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;
use OpsdTest::Email;
use OpsdTest::Migration;

browser_ready();

my $WORKERS = 3;
start_stack(env => {
	OPSD_WORKERS => $WORKERS,
	# opsd's per-address bucket for anonymous callers, so a burst gets 429s
	# (users and tokens stay unlimited, as script/server has them)
	OPSD_RATELIMIT_IP_PER_MIN => 120, OPSD_RATELIMIT_BURST => 10,
	SMTP_SERVER => 'localhost', SMTP_PORT => 9, SMTP_SECURE => 'none', SMTP_FROM => 'opsd@example.test',
	SMTP_TEST_MODE => 1, TEST_EMAIL_ALLOWLIST => '@allowed.test',
	OPSD_SMTP_RETRY_BASE_S => 1, OPSD_SMTP_MAX_ATTEMPTS => 1 });

my $admin = create_user(role => 'platform_admin');
my $security = create_user(role => 'security_admin');
my $compliance = create_user(role => 'compliance');
ok $_->{id}, "$_->{roles}[0] created" for $admin, $security, $compliance;
my %MAIL = (failing => 'fail-' . time . '@allowed.test', other => 'nobody-' . time . '@elsewhere.test');

# a migration in flight: rehearsal-free, waiting at ready_for_cutover
my $super = admin_session();
my $org = create_org();
my $start = migration_start($super, orgId => $org->{id}, direction => 'shared_to_dedicated', reason => 'console monitoring');
is $start->{status}, 202, 'a migration starts (202)' or diag $start->{body};
my $mig = migration_wait($super, $org->{id}, qr/^ready_for_cutover$/, 60);
is $mig->{status}, 'ready_for_cutover', 'it waits at ready_for_cutover' or diag explain $mig;

sub metrics() {
	my $r = http(GET => '/metrics');
	my %m;
	for (split /\n/, $r->{body} // '') {
		next if /^#/ || !/^(\w+)(\{[^}]*\})? (\S+)$/;
		$m{ $1 . ($2 // '') } = $3;
	}
	return \%m;
}
sub total($m, $name, $re = qr/./) {
	my $n = 0;
	for (keys %$m) { $n += $m->{$_} if /^\Q$name\E(?:\{|$)/ && $_ =~ $re }
	return $n;
}
my $API = qr/route="(?!(?:metrics|status|healthz|readyz)")/;

my $before = metrics();
my $claims_file = stack()->{tmp} . '/monitoring-claims.json';
my $screens = browser_run('monitoring.mjs', TIMEOUT => 300,
	CONSOLE_ADMIN_EMAIL => $admin->{email}, CONSOLE_ADMIN_PASSWORD => $admin->{password},
	CONSOLE_SECURITY_EMAIL => $security->{email}, CONSOLE_SECURITY_PASSWORD => $security->{password},
	CONSOLE_COMPLIANCE_EMAIL => $compliance->{email}, CONSOLE_COMPLIANCE_PASSWORD => $compliance->{password},
	CONSOLE_SUPER_EMAIL => admin_email(), CONSOLE_SUPER_PASSWORD => admin_password(),
	CONSOLE_WORKERS => $WORKERS, CONSOLE_MIG_ORG => $org->{id},
	CONSOLE_MAIL_FAILING => $MAIL{failing}, CONSOLE_MAIL_OTHER => $MAIL{other},
	CONSOLE_MON_CLAIMS => $claims_file);
my $after = metrics();

# what the page claimed, against the server
my $c = json_decode(do { local $/; open my $fh, '<', $claims_file or die "$claims_file: $!"; <$fh> } // '{}') // {};
my $p = $c->{page} // {};
ok $p->{requestsTotal}, 'the browser run wrote what the page showed' or diag explain $c;
my %moved = (
	requests => total($after, 'opsd_http_requests_total', $API) - total($before, 'opsd_http_requests_total', $API),
	limited => total($after, 'opsd_rate_limited_total') - total($before, 'opsd_rate_limited_total'),
	limited_opsd => total($after, 'opsd_rate_limited_total', qr/layer="opsd"/) - total($before, 'opsd_rate_limited_total', qr/layer="opsd"/),
	failed => total($after, 'opsd_emails_total', qr/outcome="failed"/) - total($before, 'opsd_emails_total', qr/outcome="failed"/),
	suppressed => total($after, 'opsd_emails_total', qr/outcome="suppressed"/) - total($before, 'opsd_emails_total', qr/outcome="suppressed"/),
);
note explain { moved => \%moved, claims => $c };
my $made = ($c->{n200} // 0) + ($c->{n404} // 0) + ($c->{n429} // 0);
ok $p->{requestsTotal} >= $made && $moved{requests} >= $p->{requestsTotal},
    "API requests: the traffic made ($made) <= the page's count ($p->{requestsTotal}) <= /metrics' increase ($moved{requests})";
ok $c->{n429} && $p->{limitedTotal} >= $c->{n429} && $moved{limited} >= $p->{limitedTotal},
    "429s: the burst's ($c->{n429}) <= the page's ($p->{limitedTotal}) <= /metrics' increase ($moved{limited})";
ok $p->{limitedOpsd} >= $c->{n429} && $moved{limited_opsd} >= $p->{limitedOpsd},
    "  all in the opsd layer ($p->{limitedOpsd}, /metrics $moved{limited_opsd})";
ok $p->{emailsFailed} >= 1 && $moved{failed} >= $p->{emailsFailed}, "emails failed: page $p->{emailsFailed}, /metrics $moved{failed}";
ok $p->{emailsSuppressed} >= 1 && $moved{suppressed} >= $p->{emailsSuppressed},
    "emails suppressed: page $p->{emailsSuppressed}, /metrics $moved{suppressed}";

my $st = http(GET => '/status');
is j($st)->{totalProcesses}, $WORKERS, "GET /status: $WORKERS workers";
is $c->{workersShown}, j($st)->{totalProcesses}, '  as the page showed';
is j($st)->{maxChildren}, $c->{workersMax}, '  and the same maximum';

my $ob = http(GET => '/email/outbox?limit=100', session => login($admin->{email}, $admin->{password}));
my %outbox = map { ($_->{to} => $_->{status}) } items($ob);
is $outbox{ $MAIL{failing} }, 'failed', 'the outbox: the allowlisted message failed (no SMTP peer)';
is $outbox{ $MAIL{other} }, 'suppressed', '  the other one was suppressed';

my $list = migration_list($super, status => 'ready_for_cutover');
my ($m) = grep { $_->{orgId} eq $org->{id} } items($list);
ok $m, 'GET /migration?status=ready_for_cutover lists the migration the page listed' or diag $list->{body};
is $c->{migrationStatus}, 'ready_for_cutover', '  with the status the page showed';
my $ab = migration_abort($super, orgId => $org->{id}, reason => 'console monitoring test done');
is $ab->{status}, 202, 'abort it (202)';
is migration_wait($super, $org->{id}, qr/^aborted$/, 60)->{status}, 'aborted', '  it ends aborted';

ok -s "$screens/monitoring-firing-1280x800.png" && -s "$screens/monitoring-firing-390x844.png",
    'Monitoring screenshots written at both sizes';

finish();
