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
# brings the sign-in form over the screen, then the refused search goes on
# with its filter kept; a 429 (answered by the
# test) shows its Retry-After. With LEGAL_ENFORCE=1, each of them is shown
# the new terms after sign-in and accepts with the keyboard (three
# legal.accepted). On every screen: no console error, no CSP
# violation, no serious or critical axe violation, screenshots at 1280×800
# and 390×844 under $OPSD_TEST_ARCHIVE/console-screens/ (else a temporary
# directory). Then, through the API: GET /legal/terms answers the version
# published in the browser, and the audit log holds its legal.updated.
# Email (runbook 5; no SMTP peer: a closed loopback port, one attempt, so
# an allowlisted message ends failed): the admin sees test mode on and the
# allowlist, sends a test to an allowlisted address (queued) and to another
# (suppressed), a missing To is shown next to its field, the failed filter
# lists a message failed beforehand and Retry queues it again; a member has
# no Email menu. Through the API and the database: the outbox rows and the
# email.retry_requested event. Users and orgs: the admin sees the test
# org, creates a user (a missing name next to its field); a security_admin
# disables and enables it, each confirmed by typing its reason in a
# dialog; checked through GET /users and
# the audit log (user.disabled, user.enabled by the security_admin).
#
# Needs node, chromium and t/browser's packages (OpsdTest::Browser).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;
use OpsdTest::Audit;
use OpsdTest::Email;

browser_ready();

start_stack(env => { LEGAL_ENFORCE => 1,
	SMTP_SERVER => 'localhost', SMTP_PORT => 9, SMTP_SECURE => 'none', SMTP_FROM => 'opsd@example.test',
	SMTP_TEST_MODE => 1, TEST_EMAIL_ALLOWLIST => 'allowed@example.test,@allowed.test',
	OPSD_SMTP_RETRY_BASE_S => 1, OPSD_SMTP_MAX_ATTEMPTS => 1 });
my $admin = create_user(role => 'platform_admin');
my $officer = create_user(role => 'compliance_officer');
my $org = create_org();
my $member = create_user(role => 'member', org => $org);
my $security = create_user(role => 'security_admin');
ok $_->{id}, "$_->{roles}[0] created" for $admin, $officer, $member, $security;
my $new_email = 'console-new-' . time . '@example.test';
my $new_password = 'console-new-pw-' . time . '-' . int(rand(1e9));
sensitive('password of the user created in the console', $new_password);

my $version = 'console-' . time;

# a failed message for the Retry button (nothing listens on port 9)
my %MAIL = (allowed => 'allowed@example.test', other => 'nobody@elsewhere.test', failing => 'fail@allowed.test');
my $failing = email_test_post($MAIL{failing});
is $failing->{status}, 202, 'POST /email/test for the message that will fail: 202';
my $failing_id = j($failing)->{id};
is wait_outbox_row($failing_id, 20, sub ($r) { $r->{status} eq 'failed' })->{status}, 'failed',
    'it ends failed (no SMTP peer)' or outbox_diag($failing_id);
# credentials through the environment only, never on a command line
my $screens = browser_run('console.mjs',
	CONSOLE_ADMIN_EMAIL => $admin->{email}, CONSOLE_ADMIN_PASSWORD => $admin->{password},
	CONSOLE_OFFICER_EMAIL => $officer->{email}, CONSOLE_OFFICER_PASSWORD => $officer->{password},
	CONSOLE_MEMBER_EMAIL => $member->{email}, CONSOLE_MEMBER_PASSWORD => $member->{password},
	CONSOLE_TERMS_VERSION => $version,
	CONSOLE_SECURITY_EMAIL => $security->{email}, CONSOLE_SECURITY_PASSWORD => $security->{password},
	CONSOLE_ORG_NAME => $org->{name}, CONSOLE_NEW_EMAIL => $new_email, CONSOLE_NEW_PASSWORD => $new_password,
	CONSOLE_MAIL_ALLOWED => $MAIL{allowed}, CONSOLE_MAIL_OTHER => $MAIL{other}, CONSOLE_MAIL_FAILING => $MAIL{failing});

# what the browser did, seen through the API
my $doc = http(GET => '/legal/terms');
is $doc->{status}, 200, 'GET /legal/terms 200';
is j($doc)->{version}, $version, 'GET /legal/terms answers the version published in the console';
ok scalar(grep { (audit_payload($_)->{version} // '') eq $version } audit_rows('legal.updated')),
    'the audit log holds its legal.updated';
my %accepted = map { (audit_payload($_)->{version} // '') eq $version ? ($_->{actor_hex} // '' => 1) : () }
    audit_rows('legal.accepted');
is scalar(keys %accepted), 4, 'four legal.accepted of that version (through the gate)'
    or diag explain [audit_rows('legal.accepted')];

# the Email screen's work, through the API (as the platform_admin, who
# accepted the terms in the browser) and the database
my $ob = http(GET => '/email/outbox?limit=100', session => login($admin->{email}, $admin->{password}));
is $ob->{status}, 200, 'GET /email/outbox 200' or diag $ob->{body};
my %st = map { ($_->{to} => $_->{status}) } items($ob);
like $st{$MAIL{allowed}} // '', qr/^(?:queued|sending|failed)$/, 'the allowlisted test message is in the outbox (queued, then tried)';
is $st{$MAIL{other}}, 'suppressed', 'the other address is suppressed';
is scalar(audit_rows('email.retry_requested', target_id => $failing_id)), 1, 'Retry in the console: one email.retry_requested for the failed message';
ok((outbox_row($failing_id) // {})->{attempts} >= 1, 'the retried message is still in the outbox');

# the Users and orgs screen's work, through the API and the audit log
my $users = http(GET => '/users?limit=500', session => login($admin->{email}, $admin->{password}));
my ($new) = grep { ($_->{email} // '') eq $new_email } items($users);
ok $new, 'GET /users lists the user created in the console' or diag $users->{body};
is login($new_email, $new_password)->{status}, 200, 'it signs in with the password given in the console';
is_deeply $new->{roles}, ['platform_admin'], 'with the role given' if $new;
ok !$new->{disabled}, 'enabled again after Disable and Enable' if $new;
my %typed = ('user.disabled' => 'console test containment', 'user.enabled' => 'console test: contained, cleared');
for my $act (qw(user.disabled user.enabled)) {
	my @a = $new ? audit_rows($act, target_id => $new->{id}) : ();
	is scalar(@a), 1, "one $act for it, by the security_admin" or diag explain \@a;
	is $a[0]{actor_hex} // '', uuid_hex($security->{id}), "$act actor is the security_admin" if @a;
	is audit_payload($a[0])->{reason}, $typed{$act}, "$act carries the reason typed in the dialog" if @a;
}
ok -s "$screens/email-1280x800.png" && -s "$screens/email-390x844.png", 'Email screenshots written at both sizes';
ok -s "$screens/legal-1280x800.png" && -s "$screens/legal-390x844.png", 'screenshots written at both sizes';

finish();
