package OpsdTest::Prom;

# ---------------------------------------------------------------- alert rules on real counters
#
#   my ($expr, $for) = alert_rule('OpsdSecurityAction');   # from conf/prometheus/alerts.yml
#   promtool_fires('OpsdSecurityAction', by => ['action'],
#       series => { 'opsd_audit_events_total{action="security.sessions_flushed"}' => [3, 4] },
#       fire => [{ action => 'security.sessions_flushed' }]);
#
# promtool_fires checks a rule of README "Runbook 6" against counter values a
# test read from /metrics before and after an action: each series holds its
# "before" value for five minutes, then its "after" value. The rule's
# expression (count by the given labels) must give nothing before, exactly the
# label sets of `fire` one minute after the change, and nothing once its
# 10-minute window has passed. The series get the job and instance labels
# Prometheus adds (conf/prometheus/prometheus.yml).
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);

our @EXPORT;
BEGIN { @EXPORT = qw(alert_rule promtool_fires) }
use OpsdTest qw(repo_root slurp stack https_port run_cmd);

# The rule $name of conf/prometheus/alerts.yml: its expr (one line) and for.
sub alert_rule($name) {
	my ($expr, $for, $in);
	for (split /\n/, slurp(repo_root() . '/conf/prometheus/alerts.yml') // '') {
		if (/^\s*-\s*alert:\s*(\S+)/) { last if $in; $in = $1 eq $name; next }
		next unless $in;
		$expr = $1 if /^\s*expr:\s*(\S.*?)\s*$/;
		$for = $1 if /^\s*for:\s*(\S+)/;
	}
	return ($expr, $for);
}

sub _labels(%l) { return '{' . join(', ', map { qq{$_="$l{$_}"} } sort keys %l) . '}' }

sub promtool_fires($name, %o) {
	my $promtool = (grep { -x "$_/promtool" } split /:/, $ENV{PATH} // '')[0];
	SKIP: {
		unless ($promtool) {
			# script/test installs it: there, its absence is a failure
			return Test::More::fail('promtool is installed (Debian package prometheus)')
			    if $ENV{OPSD_TEST_ARCHIVE_REQUIRED};
			Test::More::skip('promtool is not installed (Debian package prometheus; script/test installs it)', 3);
		}
		my ($expr, $for) = alert_rule($name);
		Test::More::ok($expr && $expr !~ /^[|>]/, "alerts.yml: $name has a one-line expr") or return;
		Test::More::is($for, '0m', "  $name fires without waiting (for: 0m)");
		my $inst = '127.0.0.1:' . https_port();
		my $series = join '', map {
			my ($metric, $labels) = /^(\w+)\{(.*)\}$/ or die "series $_: metric{labels} expected";
			my ($before, $after) = @{ $o{series}{$_} };
			"      - series: '$metric\{job=\"opsd\",instance=\"$inst\",$labels}'\n"
			    . "        values: \"${before}x4 ${after}x10\"\n"
		} sort keys %{ $o{series} };
		my $by = join ', ', @{ $o{by} };
		(my $q = "count by ($by) ($expr)") =~ s/'/''/g;
		my $fire = join '', map { "          - labels: '" . _labels(%$_) . "'\n            value: 1\n" }
		    @{ $o{fire} };
		my $yml = "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n$series"
		    . "    promql_expr_test:\n"
		    . "      - expr: '$q'\n        eval_time: 4m\n        exp_samples: []\n"
		    . "      - expr: '$q'\n        eval_time: 6m\n        exp_samples:\n$fire"
		    . "      - expr: '$q'\n        eval_time: 16m\n        exp_samples: []\n";
		my $file = stack()->{tmp} . "/$name-test.yml";
		open my $fh, '>', $file or die "$file: $!";
		print {$fh} $yml;
		close $fh;
		my $r = run_cmd(cmd => ["$promtool/promtool", 'test', 'rules', $file], tag => "promtool-$name");
		Test::More::is($r->{rc}, 0, "promtool: $name fires on the values /metrics showed, only then"
		    . ' and only for ' . join(' ', map { _labels(%$_) } @{ $o{fire} }))
		    or Test::More::diag("$r->{out}$r->{err}\n$yml");
	}
}

1;
