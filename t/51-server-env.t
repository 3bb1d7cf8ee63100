#!/usr/bin/perl
# script/server keeps the operator's edits (README "The two commands"): after
# the first start $OPSD_VAR/opsd.env is the configuration. Edited by hand
# (LEGAL_ENFORCE, opsd's buckets, nginx's API rate, a comment, a line opsd
# does not know), the edits are in force after a restart that does not set
# them; a bad value from the shell is refused and the file left as it was;
# variables set in the shell win, are written back in place and said on
# stderr (a secret by name only), also on a running stack; the file stays 0600;
# script/render-nginx run by hand renders the kept OPSD_NGINX_* values; and
# no opsd process of the stack nor opsctl can be dumped (core limit 0, not
# dumpable).
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OpsdTest;

start_stack(env => { OPSD_WORKERS => 2 });
my $var = var_dir();
my $envf = "$var/opsd.env";
my $limits = "$var/nginx/opsd-limits.conf";

sub env() { return parse_env_file($envf) // {} }
sub mode_is_0600($when) { is((stat $envf)[2] & 07777, 0600, "$when: opsd.env is mode 0600") }
sub enforced() {
	my $s = login(admin_email(), admin_password());
	my $r = http(GET => '/legal/acceptance/status', session => $s);
	is $r->{status}, 200, '  GET /legal/acceptance/status answers 200' or diag $r->{body};
	return ($r->{json} // {})->{enforced};
}
sub lines_naming($text, $name) { return grep { /\b\Q$name\E\b/ } split /\n/, $text }
sub rate_rendered($rate) {
	like slurp($limits) // '', qr/zone=opsd_api:10m rate=\Q$rate\E;/, "  the rendered nginx configuration has rate=$rate";
}

# ---- the first start writes the file, nginx's variables too
{
	mode_is_0600('first start');
	my $e = env();
	is $e->{OPSD_NGINX_API_RATE}, '10000r/s', 'OPSD_NGINX_API_RATE given to script/server is kept in opsd.env';
	is $e->{OPSD_HTTPS_PORT}, https_port(), 'and OPSD_HTTPS_PORT';
	is $e->{OPSD_WORKERS}, 2, 'and opsd\'s own variables';
	my $err = slurp(stack()->{tmp} . '/server-start.err') // '';
	like $err, qr/wrote \Q$envf\E/, 'script/server says it wrote opsd.env';
}

# ---- an operator edits opsd.env by hand and restarts without those variables
my $COMMENT = '# INC-42: tightened by alice, keep until 2026-12-01';
my $UNKNOWN = q{OPSD_OPERATOR_NOTE='not a variable opsd knows'};
{
	my $text = slurp($envf);
	ok $text =~ s/^OPSD_RATELIMIT_USER_PER_MIN=.*$/OPSD_RATELIMIT_USER_PER_MIN=6/m,
	    'opsd.env has OPSD_RATELIMIT_USER_PER_MIN (script/server\'s 0); set it to 6';
	ok $text =~ s/^OPSD_NGINX_API_RATE=.*$/OPSD_NGINX_API_RATE="7r\/m"   # per address/m,
	    'and OPSD_NGINX_API_RATE; set it to 7r/m';
	$text .= "$COMMENT\n\nexport LEGAL_ENFORCE=1\nOPSD_RATELIMIT_BURST='3'\n$UNKNOWN\n";
	open my $fh, '>', $envf or die "$envf: $!";
	print {$fh} $text;
	close $fh;
	mode_is_0600('edited by hand');
}
restart_stack(from_file => ['OPSD_NGINX_API_RATE']);
{
	my $err = stack()->{last_start}{err} // '';
	unlike $err, qr/set from the environment/, 'the restart overrides nothing' or diag $err;
	my $text = slurp($envf) // '';
	like $text, qr/^\Q$COMMENT\E$/m, 'the comment is kept';
	like $text, qr/^\Q$UNKNOWN\E$/m, 'the line opsd does not know is kept';
	like $text, qr/^export LEGAL_ENFORCE=1$/m, 'the edited lines are kept as written';
	mode_is_0600('after the restart');
	ok enforced(), 'LEGAL_ENFORCE=1 from opsd.env is in force (enforced: true)';
	rate_rendered('7r/m');

	my $s = login(admin_email(), admin_password());
	my @r = map { http(GET => '/auth/me', session => $s) } 1 .. 6;
	my @lim = grep { $_->{status} == 429 } @r;
	ok @lim >= 2, 'opsd\'s bucket from opsd.env (6/min, burst 3) answers 429 (' . scalar(@lim) . ' of 6)';
	check_error($lim[0] // {}, 429, 'rate_limited', '  over the limit');
	is(($lim[0]{json}{error}{details}{layer} // ''), 'opsd', '  from opsd');
	is $lim[0]{headers}{'ratelimit-limit'}, 3, '  RateLimit-Limit is the burst of opsd.env';
}

# ---- bad values from the shell are refused before anything is written
{
	my $before = slurp($envf);
	my %env = %{ stack()->{env} };
	my $stop = run_cmd(cmd => ['script/server', 'stop'], env => \%env, tag => 'bad-stop', timeout => 120);
	is $stop->{rc}, 0, 'script/server stop';
	for my $c ([OPSD_NGINX_API_RATE => 'fast'], [OPSD_WORKERS => 'many']) {
		my ($k, $v) = @$c;
		my $r = run_cmd(cmd => ['script/server', 'start'], env => { %env, $k => $v }, tag => "bad-$k", timeout => 300);
		isnt $r->{rc}, 0, "$k=$v: script/server start fails";
		is scalar(grep { /\bready\b/ } split /\n/, $r->{out}), 0, '  and prints no ready line';
		ok scalar(lines_naming($r->{err}, $k)), "  a line names $k" or diag $r->{err};
		is slurp($envf), $before, '  opsd.env is left as it was';
	}
}

# ---- the shell wins, is written back and said, a secret by name only
my $old_secret = env()->{SESSION_SECRET};
my $new_secret = sensitive('t/51 SESSION_SECRET', 'srvenv-' . join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 40));
my $smtp_pass = sensitive('t/51 SMTP_PASS', 'smtp-Pass-' . join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 20));
restart_stack(env => { LEGAL_ENFORCE => 0, OPSD_NGINX_API_RATE => '9000r/s', SESSION_SECRET => $new_secret,
    SMTP_USER => 'mailer', SMTP_PASS => $smtp_pass, OPSD_RATELIMIT_USER_PER_MIN => 0 });
{
	my $err = stack()->{last_start}{err} // '';
	my %said = (
		LEGAL_ENFORCE => qr/^script\/server: \Q$envf\E: LEGAL_ENFORCE='0' \(set from the environment; was '1'\)$/,
		OPSD_NGINX_API_RATE => qr/: OPSD_NGINX_API_RATE='9000r\/s' \(set from the environment; was '7r\/m'\)$/,
		SMTP_USER => qr/: SMTP_USER='mailer' \(set from the environment\)$/,
		OPSD_RATELIMIT_USER_PER_MIN => qr/: OPSD_RATELIMIT_USER_PER_MIN='0' \(set from the environment; was '6'\)$/,
		SMTP_PASS => qr/: SMTP_PASS \(set from the environment\)$/,
		SESSION_SECRET => qr/: SESSION_SECRET \(set from the environment\)$/,
	);
	for my $k (sort keys %said) {
		my @l = lines_naming($err, $k);
		is scalar(@l), 1, "stderr has one line about $k" or diag $err;
		like $l[0] // '', $said{$k}, "  it says so: " . ($l[0] // '');
	}
	is scalar(grep { /set from the environment/ } split /\n/, $err), scalar(keys %said), '  and none about the unchanged ones';
	my $db_pw = (env()->{OPSD_DB_URI} // '') =~ m{://[^:]*:([^@]+)@} ? $1 : undef;
	ok $db_pw, '(opsd.env has the database password)';
	for my $s (grep { defined } $smtp_pass, $new_secret, $old_secret, $db_pw) {
		ok index($err, $s) < 0, '  no secret value on stderr';
	}
	my $e = env();
	is $e->{LEGAL_ENFORCE}, 0, 'opsd.env now has LEGAL_ENFORCE=0';
	is $e->{SMTP_PASS}, $smtp_pass, '  and SMTP_PASS';
	is $e->{SESSION_SECRET}, $new_secret, '  and the new SESSION_SECRET';
	is $e->{OPSD_NGINX_API_RATE}, '9000r/s', '  and OPSD_NGINX_API_RATE';
	is $e->{OPSD_RATELIMIT_BURST}, 3, '  the edits the shell did not touch stay';
	my $text = slurp($envf) // '';
	is scalar(grep { /^(?:export )?LEGAL_ENFORCE=/ } split /\n/, $text), 1, '  LEGAL_ENFORCE\'s line was replaced, not added';
	like $text, qr/^\Q$COMMENT\E$/m, '  the comment is kept';
	like $text, qr/^\Q$UNKNOWN\E$/m, '  the unknown line is kept';
	mode_is_0600('written back');
	ok !enforced(), 'LEGAL_ENFORCE=0 from the shell is in force (enforced: false)';
	rate_rendered('9000r/s');

	# script/render-nginx by hand, with no OPSD_NGINX_* set, reads the kept ones
	my $r = run_cmd(cmd => ['script/render-nginx', $var], env => { PATH => $ENV{PATH} }, tag => 'render-by-hand');
	is $r->{rc}, 0, 'script/render-nginx $OPSD_VAR by hand exits 0' or diag $r->{err};
	rate_rendered('9000r/s');
}

# ---- a change on a running stack: written back, opsd reloaded, nothing restarted
{
	my $master = master_pid();
	my $r = run_cmd(cmd => ['script/server', 'start'], env => { %{ stack()->{env} }, LEGAL_ENFORCE => 1 },
	    tag => 'live-start', timeout => 300);
	is $r->{rc}, 0, 'LEGAL_ENFORCE=1 script/server start on the running stack exits 0' or diag $r->{err};
	is $r->{out}, 'opsd ready: ' . base_url() . "/\n", '  and prints the ready line';
	is scalar(lines_naming($r->{err}, 'LEGAL_ENFORCE')), 1, '  one stderr line says LEGAL_ENFORCE was set';
	is env()->{LEGAL_ENFORCE}, 1, '  opsd.env has it';
	is master_pid(), $master, '  the same opsd master runs (reloaded, not restarted)';
	ok wait_until(15, sub { enforced() }, 0.5), '  and LEGAL_ENFORCE=1 is in force';
	mode_is_0600('live change');
}

# ---- no opsd process can be dumped (README "Hardening"): each has a core
# limit of 0, and one running as OPSD_USER is not dumpable: that user
# cannot read its /proc/PID/environ, while the same probe reads the
# environ of a dumpable process of that user (its own shell).
{
	my @procs = map { [proc_title($_) // '?', $_] } (master_pid(), children_of(master_pid()));
	my %kinds = map { ($_->[0] =~ /^opsd(?:: (\w+))?/ ? ($1 // 'master') : '?') => 1 } @procs;
	ok $kinds{$_}, "an opsd $_ process runs" for qw(master worker jobs nginx);
	for my $p (@procs) {
		my ($title, $pid) = @$p;
		like slurp("/proc/$pid/limits") // '', qr/^Max core file size\s+0\s+0\s/m, "$title ($pid): core file size limit 0";
		my $ids = proc_uids($pid) // next;
		my ($uid, $gid) = ($ids->{uid}[0], $ids->{gid}[0]);
		next if $uid == 0; # root keeps CAP_SYS_PTRACE here: the probe cannot tell
		my $r = run_cmd(cmd => ['setpriv', "--reuid=$uid", "--regid=$gid", '--clear-groups', '--inh-caps=-all',
		    '--bounding-set=-all', 'sh', '-c', 'cat /proc/$$/environ >/dev/null || exit 2; cat "$1" >/dev/null 2>&1 && exit 1; exit 0',
		    'probe', "/proc/$pid/environ"], env => { PATH => $ENV{PATH} }, tag => "dumpable-$pid");
		is $r->{rc}, 0, "$title ($pid, uid $uid): not dumpable (its uid cannot read /proc/$pid/environ; rc 2: the probe failed, 1: readable)"
		    or diag $r->{err};
	}
}

# ---- opsctl too: it reads the database's password and the data keys.
# Held at its password prompt (stdin a pipe nobody writes), its core limit is 0.
{
	pipe(my $rd, my $wr) or die "pipe: $!";
	my $opsctl = opsctl_bin();    # the build's (OPSD_BUILD), named before the child's %ENV is cleared
	my $pid = fork // die "fork: $!";
	if (!$pid) {
		close $wr;
		open STDIN, '<&', $rd or exit 127;
		open STDOUT, '>', '/dev/null';
		open STDERR, '>', stack()->{tmp} . '/opsctl-core.err';
		%ENV = (PATH => $ENV{PATH}, OPSD_ENV_FILE => "$var/opsd.env");
		exec $opsctl, qw(user create --email core-dump@example.test --role member --password-stdin);
		exit 127;
	}
	close $rd;
	my $limits = sub { slurp("/proc/$pid/limits") // '' };
	ok wait_until(20, sub { (proc_title($pid) // '') =~ /opsctl/ && $limits->() =~ /^Max core file size\s+0\s+0\s/m }, 0.2),
	    "opsctl ($pid) waiting for its password: core file size limit 0" or diag slurp(stack()->{tmp} . "/opsctl-core.err");
	kill 'TERM', $pid;
	close $wr;
	waitpid $pid, 0;
}

finish();
