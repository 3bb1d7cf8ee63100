#!/usr/bin/perl
# /metrics (README "Runbook 6", runbook 6). Traffic of every kind (successes, 404s, a
# 401, a 400, a failed login, a legal publish and acceptance, a legal hold set
# and released, a PII strip), then a scrape over HTTPS from loopback whose
# every line must parse as the Prometheus text format 0.0.4: HELP and TYPE
# once per family and before its samples, naming conventions (_total
# counters, base units), bounded label sets, no duplicate series, cumulative
# histograms ending at +Inf = _count. The counters moved exactly as the
# traffic implies; `promtool check metrics` finds nothing to say; the shipped
# Prometheus configuration and alert rules pass promtool. Audit events are
# counted in the database: `opsctl legal publish`, `opsctl sessions flush`
# and `opsctl blocklist add` on the host move opsd_audit_events_total too,
# and while MariaDB is down that family alone is left out of the scrape.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack();

my $PROMTOOL = (grep { -x "$_/promtool" } split /:/, $ENV{PATH} // '')[0];
$PROMTOOL &&= "$PROMTOOL/promtool";

# ---------------------------------------------------------------- the parser

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LNAME = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $VALUE = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN)/;

# {name => {help, type, samples => [{name, labels => {..}, value}]}} and
# a list of problems, each naming the line.
sub parse_metrics($text) {
	my (%fam, @order, @bad, %series, $cur);
	my $n = 0;
	push @bad, 'the body does not end with a newline' unless $text =~ /\n\z/;
	for my $line (split /\n/, $text) {
		$n++;
		my $where = "line $n: $line";
		if ($line =~ /^#/) {
			if ($line =~ /^# (HELP|TYPE) ($NAME) (.*)$/) {
				my ($kw, $name, $rest) = ($1, $2, $3);
				my $f = $fam{$name} //= do { push @order, $name; { name => $name, samples => [] } };
				if (@{ $f->{samples} }) {
					push @bad, "$where: $kw after the family's samples";
				}
				if ($kw eq 'HELP') {
					push @bad, "$where: a second HELP for $name" if defined $f->{help};
					push @bad, "$where: HELP text with an invalid escape" if $rest =~ /\\(?![\\n])/;
					push @bad, "$where: empty HELP" if $rest eq '';
					$f->{help} = $rest;
				} else {
					push @bad, "$where: a second TYPE for $name" if defined $f->{type};
					push @bad, "$where: unknown type '$rest'" unless $rest =~ /^(?:counter|gauge|histogram|summary|untyped)$/;
					$f->{type} = $rest;
				}
				push @bad, "$where: family $name comes back after another family"
				    if defined $cur && $cur ne $name && $f->{closed};
				$fam{$cur}{closed} = 1 if defined $cur && $cur ne $name;
				$cur = $name;
			} else {
				push @bad, "$where: a comment that is neither HELP nor TYPE";
			}
			next;
		}
		if ($line eq '') {
			push @bad, "$where: empty line";
			next;
		}
		unless ($line =~ /^($NAME)(\{.*\})? ($VALUE)(?: (-?[0-9]+))?$/) {
			push @bad, "$where: not name{labels} value";
			next;
		}
		my ($name, $lab, $value) = ($1, $2 // '', $3);
		my %labels;
		if (length $lab) {
			my $body = substr($lab, 1, -1);
			my $ok = 1;
			while (length $body) {
				if ($body =~ s/^($LNAME)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//) {
					my ($k, $v) = ($1, $2);
					push @bad, "$where: label $k twice" if exists $labels{$k};
					$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
					$labels{$k} = $v;
				} else {
					$ok = 0;
					last;
				}
			}
			unless ($ok) {
				push @bad, "$where: malformed labels";
				next;
			}
		}
		# the family this sample belongs to: the current one
		my $f = defined $cur ? $fam{$cur} : undef;
		my $type = $f ? $f->{type} // '' : '';
		my $belongs = $f && ($name eq $cur
		    || ($type eq 'histogram' && $name =~ /^\Q$cur\E_(?:bucket|sum|count)$/)
		    || ($type eq 'summary' && $name =~ /^\Q$cur\E_(?:sum|count)$/));
		if (!$belongs) {
			push @bad, "$where: sample outside its family (current family: " . ($cur // 'none') . ')';
			next;
		}
		push @bad, "$where: no HELP before the first sample of $cur" unless defined $f->{help};
		push @bad, "$where: no TYPE before the first sample of $cur" unless defined $f->{type};
		push @bad, "$where: $cur is a histogram: bare name" if $type eq 'histogram' && $name eq $cur;
		my $key = $name . '{' . join(',', map { "$_=\"$labels{$_}\"" } sort keys %labels) . '}';
		push @bad, "$where: duplicate series $key" if $series{$key}++;
		push @{ $f->{samples} }, { name => $name, labels => \%labels, value => $value, key => $key };
	}
	push @bad, "family $_ has HELP/TYPE but no sample" for grep { !@{ $fam{$_}{samples} } } @order;
	return (\%fam, \@bad, \@order);
}

# Prometheus naming: opsd_ prefix, snake case, _total exactly on counters,
# base units (seconds, bytes), histogram buckets cumulative and ending at
# +Inf equal to _count, with a _sum.
sub check_conventions($fam) {
	my @bad;
	for my $name (sort keys %$fam) {
		my $f = $fam->{$name};
		my $type = $f->{type} // '';
		push @bad, "$name: not opsd_snake_case" unless $name =~ /^opsd_[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
		push @bad, "$name: a counter must end in _total" if $type eq 'counter' && $name !~ /_total$/;
		push @bad, "$name: only counters end in _total" if $type ne 'counter' && $name =~ /_total$/;
		push @bad, "$name: not a base unit" if $name =~ /_(?:ms|us|ns|milliseconds|microseconds|minutes|hours|days|kb|mb|kilobytes|megabytes|percent)(?:_|$)/;
		push @bad, "$name: a histogram of durations is in _seconds" if $type eq 'histogram' && $name =~ /duration/ && $name !~ /_seconds$/;
		for my $s (@{ $f->{samples} }) {
			for my $k (keys %{ $s->{labels} }) {
				push @bad, "$s->{key}: label name $k is not snake case" unless $k =~ /^[a-z][a-z0-9_]*$/;
			}
			push @bad, "$s->{key}: a counter below 0" if $type eq 'counter' && $s->{value} =~ /^-|NaN/;
		}
		next unless $type eq 'histogram';
		my %groups;
		for my $s (@{ $f->{samples} }) {
			my %l = %{ $s->{labels} };
			my $le = delete $l{le};
			my $g = join(',', map { "$_=$l{$_}" } sort keys %l);
			my $part = $s->{name} =~ /_(bucket|sum|count)$/ ? $1 : '?';
			if ($part eq 'bucket') {
				if (!defined $le) { push @bad, "$s->{key}: a bucket without le"; next }
				push @{ $groups{$g}{buckets} }, [$le, $s->{value}];
			} else {
				push @bad, "$s->{key}: le on _$part" if defined $le;
				$groups{$g}{$part} = $s->{value};
			}
		}
		for my $g (sort keys %groups) {
			my $x = $groups{$g};
			my @b = @{ $x->{buckets} // [] };
			my $what = "$name\{$g}";
			push @bad, "$what: no buckets" unless @b;
			push @bad, "$what: no _sum" unless defined $x->{sum};
			push @bad, "$what: no _count" unless defined $x->{count};
			next unless @b;
			push @bad, "$what: the last bucket is le=\"$b[-1][0]\", not +Inf" unless $b[-1][0] eq '+Inf';
			my ($prev_le, $prev_v) = (-9**9**9, 0);
			for my $b (@b) {
				my $le = $b->[0] eq '+Inf' ? 9**9**9 : $b->[0];
				push @bad, "$what: le=\"$b->[0]\" is not a number" unless $b->[0] eq '+Inf' || $b->[0] =~ /^$VALUE$/;
				push @bad, "$what: le=\"$b->[0]\" is not above the previous bucket" unless $le > $prev_le;
				push @bad, "$what: le=\"$b->[0]\" has $b->[1] < $prev_v (not cumulative)" if $b->[1] < $prev_v;
				($prev_le, $prev_v) = ($le, $b->[1]);
			}
			push @bad, "$what: +Inf bucket $b[-1][1] != _count " . ($x->{count} // 'none')
			    if defined $x->{count} && $b[-1][1] != $x->{count};
			push @bad, "$what: _sum below 0" if defined $x->{sum} && $x->{sum} < 0;
		}
	}
	return @bad;
}

sub scrape($label) {
	my $m = http(GET => '/metrics');
	is $m->{status}, 200, "$label: GET /metrics from loopback 200" or diag $m->{body};
	like $m->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4; charset=utf-8$},
	    "$label: Content-Type text/plain; version=0.0.4";
	my ($fam, $bad, $order) = parse_metrics($m->{body});
	ok !@$bad, "$label: every line parses; HELP and TYPE once per family, before its samples; no duplicate series"
	    or diag join "\n", @$bad[0 .. ($#$bad > 19 ? 19 : $#$bad)];
	my @conv = check_conventions($fam);
	ok !@conv, "$label: naming conventions and histogram invariants hold"
	    or diag join "\n", @conv[0 .. ($#conv > 19 ? 19 : $#conv)];
	my %v;
	for my $f (values %$fam) {
		$v{ $_->{key} } = $_->{value} for @{ $f->{samples} };
	}
	return { body => $m->{body}, fam => $fam, order => $order, v => \%v };
}

# The value of one series: name and labels (absent: undef).
sub val($s, $name, %l) {
	my $key = $name . '{' . join(',', map { "$_=\"$l{$_}\"" } sort keys %l) . '}';
	return $s->{v}{$key};
}
sub delta($s0, $s1, $name, %l) { return (val($s1, $name, %l) // 0) - (val($s0, $name, %l) // 0) }

# Distinct values of one label across a family's samples.
sub label_values($s, $family, $label) {
	my %seen;
	$seen{ $_->{labels}{$label} }++ for grep { exists $_->{labels}{$label} } @{ $s->{fam}{$family}{samples} // [] };
	return sort keys %seen;
}

# ---------------------------------------------------------------- before any traffic

my ($rc, $routes_json) = opsctl('routes', '--all');   # a test stack serves the test-only routes too
is $rc, 0, 'opsctl routes exits 0';
my $routes = json_decode($routes_json) // [];
my $nroutes = scalar @$routes;
ok $nroutes > 10, "the route table has $nroutes routes";

my @AUDIT_ACTIONS = qw(legal.updated legal.accepted compliance.pii_stripped compliance.legal_hold_set
    compliance.legal_hold_released compliance.archived compliance.exported security.sessions_flushed
    security.rate_limited security.blocklist_added security.blocklist_removed migration.started
    migration.finalized migration.aborted migration.failed audit.purged);

my $m0 = scrape('first scrape');
{
	my $fam = $m0->{fam};
	for my $f (qw(opsd_http_requests_total opsd_http_request_duration_seconds opsd_rate_limited_total
	    opsd_workers opsd_workers_max opsd_max_children_reached_total opsd_accepted_requests_total
	    opsd_migrations_total opsd_migration_rows_copied_total opsd_emails_total opsd_audit_events_total)) {
		ok $fam->{$f} && @{ $fam->{$f}{samples} }, "family $f (README runbook 6) is there";
	}
	# Fixed label sets are rendered in full, zeros included: increase() in
	# the alert rules needs the series before its first event.
	for my $a (@AUDIT_ACTIONS) {
		ok defined val($m0, 'opsd_audit_events_total', action => $a),
		    "opsd_audit_events_total{action=\"$a\"} is there before any such event";
	}
	is_deeply [label_values($m0, 'opsd_emails_total', 'outcome')], [qw(failed retry sent suppressed)],
	    'opsd_emails_total: every outcome';
	is_deeply [label_values($m0, 'opsd_migrations_total', 'status')],
	    [sort qw(pending copying catching_up verifying ready_for_cutover cutting_over completed aborting aborted failed)],
	    'opsd_migrations_total: every status of the migration state machine'
	    or diag join ' ', label_values($m0, 'opsd_migrations_total', 'status');
	is_deeply [label_values($m0, 'opsd_rate_limited_total', 'layer')], [qw(nginx opsd)],
	    'opsd_rate_limited_total: both layers';
	my @rl = @{ $fam->{opsd_rate_limited_total}{samples} // [] };
	is scalar(@rl), 2 * ($nroutes + 1), 'opsd_rate_limited_total: one series per layer and route, plus unmatched';
	is val($m0, 'opsd_rate_limited_total', layer => 'opsd', route => 'auth_login'), 0,
	    'opsd_rate_limited_total{layer="opsd",route="auth_login"} starts at 0';
	my $workers = 0;
	$workers += $_->{value} for @{ $fam->{opsd_workers}{samples} // [] };
	is $workers, scalar(worker_pids()), 'opsd_workers over every state = the worker processes';
	my $start = val($m0, 'opsd_start_time_seconds');
	ok defined $start && abs($start - time) < 3600, 'opsd_start_time_seconds is the master\'s start, in seconds';
}

# audit_events rows per action, to compare with the counters
sub audit_counts() {
	my %n = map { split /\t/ } split /\n/, mysql('SELECT action, COUNT(*) FROM audit_events GROUP BY action') // '';
	return \%n;
}
my $rows0 = audit_counts();

# ---------------------------------------------------------------- traffic

my %expect;   # "route status" => requests made
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin is signed in';
$expect{'auth_login 200'}++;
my $req = sub ($route, $res, $want) {
	is $res->{status}, $want, "traffic: $route answers $want" or diag $res->{body};
	$expect{"$route $res->{status}"}++;
	return $res;
};

$req->(healthz => http(GET => '/healthz'), 200) for 1 .. 3;
$req->(readyz => http(GET => '/readyz'), 200);
$req->(unmatched => http(GET => '/no/such/path'), 404) for 1 .. 2;
$req->(users_list => http(GET => '/users'), 401);
$req->(test_echo => http(POST => '/__test/echo', json => { message => '' }), 400);
$req->(auth_login => http(POST => '/auth/login', json => { email => admin_email(), password => 'not-the-password' }), 401);
$req->(orgs_get => http(GET => '/orgs/' . uuid7_like(), session => $admin), 404);
$req->(legal_publish => legal_publish($admin, type => 'privacy', version => 'v-metrics-1',
    content => "Privacy policy for the metrics test.\n"), 201);
$req->(legal_accept => legal_accept($admin, 'privacy', 'v-metrics-1'), 200);

my $org = create_org();
$expect{'orgs_create 201'}++;
my @contacts;
for my $i (1 .. 2) {
	my $r = $req->(contacts_create => tenant_create($admin, $org->{id}, 'contacts', {
	    name => sensitive("contact name $i", "Metrics Person $i"),
	    email => sensitive("contact email $i", "metrics.person.$i\@example.test") }), 201);
	push @contacts, $r->{json}{id};
}
$req->(compliance_hold => legal_hold($admin, entity => 'contacts', ids => [$contacts[0]], hold => 1,
    reason => 'metrics test hold'), 200);
$req->(compliance_hold => legal_hold($admin, entity => 'contacts', ids => [$contacts[0]], hold => 0,
    reason => 'metrics test release'), 200);
$req->(compliance_strip => strip_pii($admin, entity => 'contacts', ids => [$contacts[1]],
    reason => 'metrics test DSR'), 200);

# ---------------------------------------------------------------- after

my $m1 = scrape('second scrape');

# The first scrape's own request is counted once its answer is written.
is delta($m0, $m1, 'opsd_http_requests_total', route => 'metrics', status => '200'), 1,
    'the first scrape is counted: metrics 200 +1';
for my $k (sort keys %expect) {
	my ($route, $status) = split / /, $k;
	is delta($m0, $m1, 'opsd_http_requests_total', route => $route, status => $status), $expect{$k},
	    "opsd_http_requests_total{route=\"$route\",status=\"$status\"} +$expect{$k}";
}
is delta($m0, $m1, 'opsd_http_request_duration_seconds_count', route => 'healthz'), 3,
    'the latency histogram counted the 3 healthz requests';
ok delta($m0, $m1, 'opsd_http_request_duration_seconds_sum', route => 'healthz') > 0,
    'and their durations';

# Every route's histogram _count equals its requests over all statuses.
{
	my (%req, %cnt, @diff);
	for my $s (@{ $m1->{fam}{opsd_http_requests_total}{samples} }) {
		$req{ $s->{labels}{route} } += $s->{value};
	}
	for my $s (grep { $_->{name} =~ /_count$/ } @{ $m1->{fam}{opsd_http_request_duration_seconds}{samples} }) {
		$cnt{ $s->{labels}{route} } = $s->{value};
	}
	for my $r (sort keys %{ { %req, %cnt } }) {
		push @diff, "$r: requests " . ($req{$r} // 0) . ', histogram ' . ($cnt{$r} // 0)
		    if ($req{$r} // 0) != ($cnt{$r} // 0);
	}
	ok !@diff, 'per route, requests by status add up to the histogram _count' or diag join "\n", @diff;
}

my %audit_delta = ('legal.updated' => 1, 'legal.accepted' => 1, 'compliance.legal_hold_set' => 1,
    'compliance.legal_hold_released' => 1, 'compliance.pii_stripped' => 1, 'auth.login_failed' => 1);
for my $a (@AUDIT_ACTIONS, 'auth.login_failed') {
	is delta($m0, $m1, 'opsd_audit_events_total', action => $a), $audit_delta{$a} // 0,
	    "opsd_audit_events_total{action=\"$a\"} +" . ($audit_delta{$a} // 0);
}
# the counters agree with the audit log itself
{
	my $rows1 = audit_counts();
	for my $a (sort keys %audit_delta) {
		is(($rows1->{$a} // 0) - ($rows0->{$a} // 0), delta($m0, $m1, 'opsd_audit_events_total', action => $a),
		    "audit_events gained as many $a rows as the counter");
	}
}

cmp_ok delta($m0, $m1, 'opsd_accepted_requests_total'), '>=', 20, 'opsd_accepted_requests_total grew with the traffic';
is delta($m0, $m1, 'opsd_rate_limited_total', layer => 'opsd', route => 'users_list'), 0, 'no 429 was counted';

# Counters never go down; no series disappeared.
{
	my @down;
	for my $f (grep { ($m0->{fam}{$_}{type} // '') =~ /^(?:counter|histogram)$/ } keys %{ $m0->{fam} }) {
		for my $s (@{ $m0->{fam}{$f}{samples} }) {
			my $now = $m1->{v}{ $s->{key} };
			push @down, "$s->{key}: gone" unless defined $now;
			push @down, "$s->{key}: $s->{value} -> $now" if defined $now && $now < $s->{value};
		}
	}
	ok !@down, 'no counter went down and no series disappeared between the scrapes' or diag join "\n", @down;
}

# Bounded label sets: every label value comes from a fixed list or the route table.
{
	my @bad;
	for my $f (sort keys %{ $m1->{fam} }) {
		for my $s (@{ $m1->{fam}{$f}{samples} }) {
			for my $k (keys %{ $s->{labels} }) {
				my $v = $s->{labels}{$k};
				my $want = $k eq 'le' ? qr/^(?:$VALUE|\+Inf)$/
				    : $k eq 'status' && $f eq 'opsd_http_requests_total' ? qr/^(?:[1-5][0-9][0-9]|other)$/
				    : qr/^[a-z][a-z0-9_.]*$/;
				push @bad, "$s->{key}: $k" if $v !~ $want;
			}
		}
	}
	ok !@bad, 'label values are route names, HTTP status codes, bucket bounds or fixed words'
	    or diag join "\n", @bad;
	my @r = label_values($m1, 'opsd_http_requests_total', 'route');
	ok @r <= $nroutes + 1, 'at most one route label value per route (+ unmatched): ' . scalar(@r);
	my @actions = label_values($m1, 'opsd_audit_events_total', 'action');
	ok @actions <= 32 && !grep({ !/^[a-z_]+\.[a-z_]+$/ } @actions),
	    'opsd_audit_events_total: a fixed table of action names (' . scalar(@actions) . ')' or diag "@actions";
	is_deeply [label_values($m0, 'opsd_audit_events_total', 'action')], \@actions,
	    'the same actions in both scrapes';
}

# ---------------------------------------------------------------- promtool

SKIP: {
	skip 'promtool is not installed (Debian package prometheus; script/test installs it)', 6 unless $PROMTOOL;
	my $file = stack()->{tmp} . '/metrics.txt';
	open my $fh, '>', $file or die "$file: $!";
	print {$fh} $m1->{body};
	close $fh;
	my $r = run_cmd(cmd => [$PROMTOOL, 'check', 'metrics'], stdin_file => $file, tag => 'promtool-metrics');
	is $r->{rc}, 0, 'promtool check metrics exits 0' or diag "$r->{out}$r->{err}";
	is "$r->{out}$r->{err}", '', 'promtool check metrics has no lint advice' or diag "$r->{out}$r->{err}";

	my $c = run_cmd(cmd => [$PROMTOOL, 'check', 'rules', 'conf/prometheus/alerts.yml'], tag => 'promtool-rules');
	is $c->{rc}, 0, 'promtool check rules conf/prometheus/alerts.yml' or diag "$c->{out}$c->{err}";
	my $p = run_cmd(cmd => [$PROMTOOL, 'check', 'config', 'conf/prometheus/prometheus.yml'], tag => 'promtool-config');
	is $p->{rc}, 0, 'promtool check config conf/prometheus/prometheus.yml (loads alerts.yml)' or diag "$p->{out}$p->{err}";
	like $p->{out}, qr/1 rule files found/, 'prometheus.yml loads the rule file' or diag $p->{out};
	my $t = run_cmd(cmd => [$PROMTOOL, 'test', 'rules', 't/prometheus/alerts_test.yml'], tag => 'promtool-test');
	is $t->{rc}, 0, 'promtool test rules t/prometheus/alerts_test.yml' or diag "$t->{out}$t->{err}";
}

# Every metric the alert rules use exists in a real scrape (a renamed metric
# would silently never fire).
{
	my $rules = do { local (@ARGV, $/) = (repo_root() . '/conf/prometheus/alerts.yml'); <> } // '';
	my %used = map { $_ => 1 } $rules =~ /\b(opsd_[a-z0-9_]+)/g;
	my %have;
	for my $f (values %{ $m1->{fam} }) { $have{ $_->{name} } = 1 for @{ $f->{samples} } }
	my @missing = grep { !$have{$_} } sort keys %used;
	ok %used && !@missing, 'every opsd_* metric of alerts.yml is in the scrape' or diag "missing: @missing";
}

# ---------------------------------------------------------------- opsctl's events

# Events written by opsctl on the host (not by a worker) are counted as well:
# the counter is a row per action in audit_action_counts, updated in the
# transaction of the event, whoever writes it.
{
	my $m2 = scrape('before opsctl');
	my $doc = stack()->{tmp} . '/privacy-opsctl.md';
	open my $fh, '>', $doc or die "$doc: $!";
	print {$fh} "Privacy policy published from the host.\n";
	close $fh;
	my @runs = (
	    ['legal.updated', 'legal', 'publish', '--type', 'privacy', '--version', 'v-metrics-cli', '--file', $doc],
	    ['security.sessions_flushed', 'sessions', 'flush', '--user', uuid7_like()],
	    ['security.blocklist_added', 'blocklist', 'add', '--cidr', '198.51.100.0/24', '--reason', 'metrics test'],
	);
	for my $run (@runs) {
		my ($action, @args) = @$run;
		my ($rc, $out, $err) = opsctl(@args);
		is $rc, 0, "opsctl @args[0, 1] exits 0" or diag "$out$err";
	}
	my $m3 = scrape('after opsctl');
	for my $a (@AUDIT_ACTIONS) {
		my $want = (grep { $_->[0] eq $a } @runs) ? 1 : 0;
		is delta($m2, $m3, 'opsd_audit_events_total', action => $a), $want,
		    "opsctl on the host: opsd_audit_events_total{action=\"$a\"} +$want";
	}
	my %db = map { split /\t/ } split /\n/, mysql('SELECT action, n FROM audit_action_counts') // '';
	my @off = grep { ($db{$_} // 0) != (val($m3, 'opsd_audit_events_total', action => $_) // -1) } @AUDIT_ACTIONS;
	ok !@off, 'every exported series shows its row of audit_action_counts' or diag "differ: @off";
	is audit_count('legal.updated', "actor_label = 'cli:root'"), 1, 'the publish is in the audit log as cli:root';

	# MariaDB down: the scrape still answers; the audit family (read from the
	# database) is left out rather than shown stale, everything else stays.
	stop_mysql();
	my $down = http(GET => '/metrics');
	is $down->{status}, 200, 'MariaDB down: GET /metrics from loopback still 200';
	my ($fam, $bad) = parse_metrics($down->{body} // '');
	ok !@$bad, 'MariaDB down: every line parses' or diag join "\n", @$bad;
	ok !$fam->{opsd_audit_events_total}, 'MariaDB down: opsd_audit_events_total is left out';
	ok $fam->{opsd_http_requests_total} && $fam->{opsd_emails_total} && $fam->{opsd_workers},
	    'MariaDB down: the other families are there';
	start_mysql();
	my $back;
	wait_until(60, sub { $back = http(GET => '/metrics'); ($back->{body} // '') =~ /^opsd_audit_events_total\{/m });
	is val({ v => { map { /^(\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $back->{body} // '' } },
	    'opsd_audit_events_total', action => 'legal.updated'), val($m3, 'opsd_audit_events_total', action => 'legal.updated'),
	    'MariaDB back: the family returns with the same values';
}

finish();
