package OpsdTest::Browser;

# ---------------------------------------------------------------- the console in a browser
#
#   browser_ready();                        # skip_all without chromium; npm ci if needed
#   my $dir = browser_run('console.mjs', CONSOLE_ADMIN_EMAIL => …);
#
# A script under t/browser/ (its shared parts in t/browser/lib.mjs) prints
# "ok - name" / "not ok - name" lines and "# " diagnostics; browser_run
# turns each into a test here, checks the script reported something and
# exited 0, and answers the screenshot directory. Credentials go through
# the environment only, never on a command line. Screenshots go under
# $OPSD_TEST_ARCHIVE/console-screens/ when archiving (t/99-logs.t scans
# them), else a temporary directory.
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use Test::More ();
use File::Temp qw(tempdir);

our @EXPORT;
BEGIN { @EXPORT = qw(browser_ready browser_run console_screens) }
use OpsdTest qw(repo_root run_cmd base_url);

sub tools() { repo_root() . '/t/browser' }

# script/test runs `npm ci` in t/browser; run by hand, this does it when
# node_modules is missing.
sub browser_ready() {
	Test::More::plan(skip_all => 'no /usr/bin/chromium (script/test installs it)') unless -x '/usr/bin/chromium';
	my $t = tools();
	return if -d "$t/node_modules/playwright-core" && -d "$t/node_modules/axe-core";
	my $r = run_cmd(cmd => ['npm', 'ci', '--no-audit', '--no-fund', '--prefix', $t],
	    env => { %ENV, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD => 1 }, timeout => 600);
	Test::More::BAIL_OUT("npm ci in t/browser: rc $r->{rc}\n$r->{err}") if $r->{rc};
}

my $screens;
sub console_screens() {
	$screens //= $ENV{OPSD_TEST_ARCHIVE} ? "$ENV{OPSD_TEST_ARCHIVE}/console-screens"
	    : tempdir('opsd-console-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	return $screens;
}

sub browser_run($script, %env) {
	my $r = run_cmd(cmd => ['node', tools() . "/$script"], timeout => $env{TIMEOUT} // 180, tag => $script =~ s/\.mjs$//r,
	    env => { %ENV, CONSOLE_URL => base_url(), CONSOLE_SCREENS => console_screens(), %env });
	my $seen = 0;
	for my $line (split /\n/, $r->{out}) {
		if ($line =~ /^(not )?ok - (.*)$/) { Test::More::ok(!$1, $2); $seen++ }
		elsif ($line =~ /^# (.*)$/) { Test::More::diag($1) }
	}
	Test::More::ok($seen >= 5, "$script reported its checks ($seen)");
	Test::More::is($r->{rc}, 0, "$script exits 0") or Test::More::diag($r->{err});
	return console_screens();
}

1;
