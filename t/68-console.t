#!/usr/bin/perl
# The admin console (www/console/, README "The console") in a real browser:
# t/browser/console.mjs drives Debian's chromium through playwright-core
# and checks each screen with axe-core. It signs in through the form (from
# a deep link, and comes back to it), publishes a terms version on the
# Legal screen (a missing field shown next to it, a duplicate refused in
# words), reads the acceptance report, searches the audit log for legal.*
# (CSV link, a bad filter next to its field), verifies the chain as a
# compliance officer and checks that a member sees neither the publish
# form nor the Audit menu. A session ended under the operator's feet (401)
# brings the sign-in form and then the same screen; a 429 (answered by the
# test) shows its Retry-After. With LEGAL_ENFORCE=1, each of them is shown
# the new terms after sign-in and accepts with the keyboard (three
# legal.accepted). On every screen: no console error, no CSP
# violation, no serious or critical axe violation, screenshots at 1280×800
# and 390×844 under $OPSD_TEST_ARCHIVE/console-screens/ (else a temporary
# directory). Then, through the API: GET /legal/terms answers the version
# published in the browser, and the audit log holds its legal.updated.
#
# Needs node, chromium and t/browser's packages: script/test runs `npm ci`
# there; run by hand, this file runs it when node_modules is missing.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use OpsdTest;
use OpsdTest::Audit;

my $TOOLS = repo_root() . '/t/browser';
plan skip_all => 'no /usr/bin/chromium (script/test installs it)' unless -x '/usr/bin/chromium';

unless (-d "$TOOLS/node_modules/playwright-core" && -d "$TOOLS/node_modules/axe-core") {
	my $r = run_cmd(cmd => ['npm', 'ci', '--no-audit', '--no-fund', '--prefix', $TOOLS],
	    env => { %ENV, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD => 1 }, timeout => 600);
	BAIL_OUT("npm ci in t/browser: rc $r->{rc}\n$r->{err}") if $r->{rc};
}

start_stack(env => { LEGAL_ENFORCE => 1 });
my $admin = create_user(role => 'platform_admin');
my $officer = create_user(role => 'compliance_officer');
my $org = create_org();
my $member = create_user(role => 'member', org => $org);
ok $_->{id}, "$_->{roles}[0] created" for $admin, $officer, $member;

my $version = 'console-' . time;
my $screens = $ENV{OPSD_TEST_ARCHIVE} ? "$ENV{OPSD_TEST_ARCHIVE}/console-screens"
    : tempdir('opsd-console-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# credentials through the environment only, never on a command line
my $r = run_cmd(cmd => ['node', "$TOOLS/console.mjs"], timeout => 120, tag => 'console', env => {
	%ENV,
	CONSOLE_URL => base_url(),
	CONSOLE_ADMIN_EMAIL => $admin->{email}, CONSOLE_ADMIN_PASSWORD => $admin->{password},
	CONSOLE_OFFICER_EMAIL => $officer->{email}, CONSOLE_OFFICER_PASSWORD => $officer->{password},
	CONSOLE_MEMBER_EMAIL => $member->{email}, CONSOLE_MEMBER_PASSWORD => $member->{password},
	CONSOLE_TERMS_VERSION => $version,
	CONSOLE_SCREENS => $screens,
});
my $seen = 0;
for my $line (split /\n/, $r->{out}) {
	if ($line =~ /^(not )?ok - (.*)$/) { ok !$1, $2; $seen++ }
	elsif ($line =~ /^# (.*)$/) { diag $1 }
}
ok $seen >= 20, "the browser script reported its checks ($seen)";
is $r->{rc}, 0, 'console.mjs exits 0' or diag $r->{err};

# what the browser did, seen through the API
my $doc = http(GET => '/legal/terms');
is $doc->{status}, 200, 'GET /legal/terms 200';
is j($doc)->{version}, $version, 'GET /legal/terms answers the version published in the console';
ok scalar(grep { (audit_payload($_)->{version} // '') eq $version } audit_rows('legal.updated')),
    'the audit log holds its legal.updated';
my %accepted = map { (audit_payload($_)->{version} // '') eq $version ? ($_->{actor_id} // $_->{actorId} // '' => 1) : () }
    audit_rows('legal.accepted');
is scalar(keys %accepted), 3, 'three legal.accepted of that version (through the gate)'
    or diag explain [audit_rows('legal.accepted')];
ok -s "$screens/legal-1280x800.png" && -s "$screens/legal-390x844.png", 'screenshots written at both sizes';

finish();
