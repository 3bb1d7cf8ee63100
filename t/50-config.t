#!/usr/bin/perl
# Configuration checks (README "Configuration"): opsd --check-config names every bad
# variable on its own line and never prints a secret; env-file permissions;
# the rendered nginx conf passes nginx -t; opsctl db status/migrate against
# the running stack, and an edited migration is MODIFIED.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Path qw(make_path);
use Test::More;
use OpsdTest;

# Variables given to script/server must reach opsd (through opsd.env).
start_stack(env => { OPSD_WORKERS => 2, OPSD_SLOWLOG_MS => 1234, SESSION_IDLE_MIN => 17,
    OPSD_AUDIT_RETENTION_DAYS => 99 });
my $var = var_dir();
my $tmp = "$var/..";
my $envfile = "$var/opsd.env";
my $opsd = opsd_bin();
my $opsctl = opsctl_bin();
ok -x $opsd, "opsd binary at $opsd";
ok -x $opsctl, "opsctl binary at $opsctl";

# ---- $OPSD_VAR layout and secrets at rest
{
	ok -f $envfile, 'opsd.env exists';
	is((stat $envfile)[2] & 07777, 0600, 'opsd.env has mode 0600');
	for my $f (grep { -e "$var/$_" } qw(session-secret admin-password db-password tls/key.pem)) {
		is((stat "$var/$f")[2] & 077, 0, "$f is not readable by group or others");
	}
	my $e = parse_env_file($envfile) // {};
	is $e->{OPSD_SLOWLOG_MS}, 1234, 'OPSD_SLOWLOG_MS given to script/server reaches opsd.env';
	is $e->{SESSION_IDLE_MIN}, 17, 'SESSION_IDLE_MIN reaches opsd.env';
	is $e->{OPSD_AUDIT_RETENTION_DAYS}, 99, 'OPSD_AUDIT_RETENTION_DAYS reaches opsd.env';
	is $e->{OPSD_WORKERS}, 2, 'OPSD_WORKERS reaches opsd.env';
	is scalar(worker_pids()), 2, 'and opsd runs with it (2 workers)';
	ok $e->{OPSD_DB_URI}, 'opsd.env has OPSD_DB_URI';

	# no secret of the stack appears in any log
	my @secrets = grep { defined && length >= 8 } ($e->{SESSION_SECRET},
	    ($e->{OPSD_DB_URI} // '') =~ m{^mysql://[^:]*:([^@]+)@});
	http(GET => '/readyz');
	my @leaks;
	opendir(my $dh, "$var/log") or die;
	for my $f (grep { -f "$var/log/$_" } readdir $dh) {
		open my $fh, '<', "$var/log/$f" or next;
		local $/;
		my $s = <$fh>;
		push @leaks, $f for grep { index($s, $_) >= 0 } @secrets;
	}
	ok @secrets >= 2, 'found the session secret and the DB password to look for';
	ok !@leaks, 'no log contains the session secret or the DB password' or diag "in: @leaks";
}

# The configuration of the running stack, as a plain environment (no env file).
my %base = (PATH => $ENV{PATH}, %{ parse_env_file($envfile) // {} });
delete $base{OPSD_ENV_FILE};

sub check_config(%env) {
	return run_cmd(cmd => [$opsd, '--check-config'], env => { %env }, tag => 'check-config', timeout => 30);
}
sub lines_naming($r, $var) { return grep { /\b\Q$var\E\b/ } split /\n/, "$r->{out}$r->{err}" }

{
	my $r = check_config(%base);
	is $r->{rc}, 0, "opsd --check-config accepts the running stack's configuration" or diag $r->{err};
	my $v = run_cmd(cmd => [$opsd, '--version'], tag => 'opsd-version');
	is $v->{rc}, 0, 'opsd --version exits 0';
	like $v->{out}, qr/^opsd \S+/, 'opsd --version prints its version';
	my $bad = run_cmd(cmd => [$opsd, '--no-such-flag'], tag => 'opsd-bad-flag');
	isnt $bad->{rc}, 0, 'opsd with an unknown argument exits non-zero';
}

# ---- one bad variable at a time: non-zero, one line naming it
my @cases = (
	[{ OPSD_WORKERS => 'abc' }, 'OPSD_WORKERS', 'OPSD_WORKERS=abc'],
	[{ OPSD_WORKERS => '0' }, 'OPSD_WORKERS', 'OPSD_WORKERS=0'],
	[{ OPSD_PM => 'bogus' }, 'OPSD_PM', 'OPSD_PM=bogus'],
	[{ OPSD_ENV => 'staging' }, 'OPSD_ENV', 'OPSD_ENV=staging'],
	[{ OPSD_ENV => 'production', SESSION_SECRET => undef }, 'SESSION_SECRET', 'production without SESSION_SECRET'],
	[{ OPSD_ENV => 'production', OPSD_DATA_KEY => undef }, 'OPSD_DATA_KEY', 'production without OPSD_DATA_KEY'],
	[{ OPSD_DATA_KEY_PREVIOUS => 'not-a-KEYLEAK-991' }, 'OPSD_DATA_KEY_PREVIOUS', 'OPSD_DATA_KEY_PREVIOUS not a key'],
	[{ OPSD_DATA_KEY => undef, OPSD_DATA_KEY_PREVIOUS => '00' x 32 }, 'OPSD_DATA_KEY_PREVIOUS', 'OPSD_DATA_KEY_PREVIOUS without OPSD_DATA_KEY'],
	[{ SESSION_SECRET => 'short-S3CRET-xyz' }, 'SESSION_SECRET', 'SESSION_SECRET shorter than 32 bytes'],
	[{ SMTP_PORT => '465' }, 'SMTP_PORT', 'SMTP_PORT=465 (implicit TLS)'],
	[{ SMTP_SECURE => 'tls' }, 'SMTP_SECURE', 'SMTP_SECURE=tls'],
	[{ OPSD_DB_URI => undef }, 'OPSD_DB_URI', 'OPSD_DB_URI missing'],
	[{ OPSD_DB_URI => 'postgres://u:dbpass-LEAK-991@db/x' }, 'OPSD_DB_URI', 'OPSD_DB_URI with another scheme'],
	[{ OPSD_DB_URI => 'mysql://u:dbpass-LEAK-992@db:99999/x' }, 'OPSD_DB_URI', 'OPSD_DB_URI with port 99999'],
	[{ OPSD_REQUEST_TIMEOUT => 'soon' }, 'OPSD_REQUEST_TIMEOUT', 'OPSD_REQUEST_TIMEOUT=soon'],
	[{ OPSD_MAX_REQUESTS => '-5' }, 'OPSD_MAX_REQUESTS', 'OPSD_MAX_REQUESTS=-5'],
);
for my $c (@cases) {
	my ($over, $name, $label) = @$c;
	my %env = (%base, %$over);
	delete $env{$_} for grep { !defined $env{$_} } keys %env;
	my $r = check_config(%env);
	isnt $r->{rc}, 0, "$label: --check-config exits non-zero";
	my @l = lines_naming($r, $name);
	is scalar(@l), 1, "$label: exactly one line names $name" or diag "$r->{out}$r->{err}";
	for my $secret (grep { defined } $over->{SESSION_SECRET}, $base{SESSION_SECRET}, $base{OPSD_DATA_KEY},
	    ($over->{OPSD_DB_URI} // '') =~ /(dbpass-LEAK-\d+)/, ($over->{OPSD_DATA_KEY_PREVIOUS} // '') =~ /(KEYLEAK-\d+)/) {
		unlike "$r->{out}$r->{err}", qr/\Q$secret\E/, "$label: the output does not contain a secret value";
	}
}
{
	my $r = check_config(%base, SMTP_PORT => '465');
	like join("\n", lines_naming($r, 'SMTP_PORT')), qr/465|implicit|TLS/i, 'SMTP_PORT=465: the line says why';
}

# ---- several problems at once
{
	my %env = (%base, OPSD_WORKERS => 'abc', OPSD_PM => 'bogus', SMTP_PORT => '465',
	    OPSD_ENV => 'production', SMTP_PASS => 'smtp-PASS-value-42', SMTP_USER => 'mailer');
	delete @env{qw(SESSION_SECRET OPSD_DB_URI)};
	my $r = check_config(%env);
	isnt $r->{rc}, 0, 'several problems: non-zero exit';
	my $all = "$r->{out}$r->{err}";
	for my $v (qw(OPSD_WORKERS OPSD_PM SMTP_PORT SESSION_SECRET OPSD_DB_URI)) {
		is scalar(lines_naming($r, $v)), 1, "several problems: one line names $v";
	}
	unlike $all, qr/smtp-PASS-value-42/, 'SMTP_PASS is never printed';
	unlike $all, qr/\Q$base{SESSION_SECRET}\E/, 'SESSION_SECRET is never printed' if $base{SESSION_SECRET};
	note $all;
}

# ---- the env file: wins over the environment, refused when readable by others
{
	my $secret = 'S' x 24 . '-file-secret-value-0123456789';
	my %file = (%base, SESSION_SECRET => $secret);
	delete $file{PATH};
	my $text = join '', map { "$_='$file{$_}'\n" } sort grep { $file{$_} !~ /'/ } keys %file;
	my $f = "$tmp/perm.env";
	for my $mode (0644, 0640, 0604) {
		open my $fh, '>', $f or die;
		print {$fh} $text;
		close $fh;
		chmod $mode, $f;
		my $r = check_config(PATH => $ENV{PATH}, OPSD_ENV_FILE => $f);
		isnt $r->{rc}, 0, sprintf('an env file with a secret and mode %04o is refused', $mode);
		like "$r->{out}$r->{err}", qr/\Q$f\E|readable|permission|mode/i, sprintf('mode %04o: the message names the file or the problem', $mode)
		    or diag "$r->{out}$r->{err}";
		unlike "$r->{out}$r->{err}", qr/\Q$secret\E/, sprintf('mode %04o: the secret is not printed', $mode);
	}
	chmod 0600, $f;
	my $r = check_config(PATH => $ENV{PATH}, OPSD_ENV_FILE => $f);
	is $r->{rc}, 0, 'the same file with mode 0600 is accepted' or diag $r->{err};

	# without a secret in it, a readable file is fine
	my $plain = "$tmp/plain.env";
	open my $fh, '>', $plain or die;
	print {$fh} "# no secrets here\nexport OPSD_WORKERS=3\nOPSD_PM=\"static\"\n";
	close $fh;
	chmod 0644, $plain;
	$r = check_config(%base, OPSD_ENV_FILE => $plain);
	is $r->{rc}, 0, 'a 0644 env file without secrets is accepted' or diag $r->{err};

	# the file wins over the environment
	$r = check_config(%base, OPSD_WORKERS => 'abc', OPSD_ENV_FILE => $plain);
	is $r->{rc}, 0, 'OPSD_WORKERS=3 in the file overrides OPSD_WORKERS=abc in the environment' or diag $r->{err};
	open $fh, '>', $plain or die;
	print {$fh} "OPSD_WORKERS=abc\n";
	close $fh;
	$r = check_config(%base, OPSD_WORKERS => '3', OPSD_ENV_FILE => $plain);
	isnt $r->{rc}, 0, 'OPSD_WORKERS=abc in the file overrides a good value in the environment';
	is scalar(lines_naming($r, 'OPSD_WORKERS')), 1, 'and is reported';

	$r = check_config(%base, OPSD_ENV_FILE => "$tmp/does-not-exist.env");
	isnt $r->{rc}, 0, 'a missing OPSD_ENV_FILE is an error';
	like "$r->{out}$r->{err}", qr/does-not-exist\.env|OPSD_ENV_FILE/, 'and the message names it';
}

# ---- nginx -t on the rendered conf
{
	my $conf = "$var/nginx/nginx.conf";
	ok -f $conf, 'the rendered nginx.conf exists';
	my $r = run_cmd(cmd => ['nginx', '-t', '-c', $conf], tag => 'nginx-t');
	is $r->{rc}, 0, "nginx -t -c $conf passes" or diag $r->{err};
	like $r->{err}, qr/test is successful/, 'nginx says the test is successful';
	my @left;
	opendir(my $dh, "$var/nginx") or die;
	for my $f (grep { /\.conf$/ } readdir $dh) {
		open my $fh, '<', "$var/nginx/$f" or next;
		while (<$fh>) { push @left, "$f: $_" if /^[^#]*\@[A-Z_]+\@/ }
	}
	ok !@left, 'no @PLACEHOLDER@ is left in the rendered conf' or diag @left;
}

# ---- opsctl
my %ctl_env = (PATH => $ENV{PATH}, OPSD_ENV_FILE => $envfile);
sub opsctl_run($env, @args) {
	return run_cmd(cmd => [$opsctl, @args], env => $env, tag => 'opsctl', timeout => 60);
}
{
	my $h = opsctl_run(\%ctl_env, 'help');
	is $h->{rc}, 0, 'opsctl help exits 0';
	like $h->{out} . $h->{err}, qr/db migrate/, 'opsctl help lists db migrate';
	like $h->{out} . $h->{err}, qr/db status/, 'opsctl help lists db status';
	my $u = opsctl_run(\%ctl_env, 'no-such-command');
	isnt $u->{rc}, 0, 'an unknown opsctl command exits non-zero';

	my $applied = mysql('SELECT COUNT(*) FROM schema_migrations') // '';
	chomp $applied;
	ok $applied >= 2, "schema_migrations has the applied files ($applied)";

	my $s = opsctl_run(\%ctl_env, 'db', 'status');
	is $s->{rc}, 0, 'OPSD_ENV_FILE=$VAR/opsd.env opsctl db status exits 0' or diag $s->{err};
	like $s->{out}, qr{^control/0001_init\.sql\s+applied$}m, 'control/0001_init.sql applied';
	like $s->{out}, qr{^tenant/0001_init\.sql\s+applied$}m, 'tenant/0001_init.sql applied';
	my $n = () = $s->{out} =~ /\bapplied$/mg;
	is $n, $applied, 'the applied lines match schema_migrations (same database)';

	my $s2 = opsctl_run({ %base }, 'db', 'status');
	is $s2->{rc}, 0, 'opsctl db status with the same configuration in the environment';

	my $m = opsctl_run(\%ctl_env, 'db', 'migrate');
	is $m->{rc}, 0, 'opsctl db migrate on a current schema exits 0' or diag $m->{err};
	is((mysql('SELECT COUNT(*) FROM schema_migrations') // '') =~ s/\s+//gr, $applied, 'and applies nothing twice');

	# Galera replicates InnoDB tables only, and a table without a primary key badly
	# (README "Running on several hosts"): every table of the schema has both.
	my $tables = mysql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
	    . " AND TABLE_TYPE = 'BASE TABLE'") // '';
	$tables =~ s/\s+//g;
	cmp_ok $tables, '>=', 25, "the schema has its tables ($tables)";
	is mysql("SELECT GROUP_CONCAT(t.TABLE_NAME) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = DATABASE()"
	    . " AND t.TABLE_TYPE = 'BASE TABLE' AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c"
	    . " WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY')"),
	    "NULL\n", 'every table has a primary key';
	is mysql("SELECT GROUP_CONCAT(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
	    . " AND TABLE_TYPE = 'BASE TABLE' AND ENGINE <> 'InnoDB'"), "NULL\n", 'every table is InnoDB';

	# The migration lock is a row of schema_lock (it works on every node of a Galera
	# cluster, unlike GET_LOCK): released after a run; a row left by a process of this
	# host that is gone, or one that expired, is taken over rather than waited for.
	is((mysql('SELECT COUNT(*) FROM schema_lock') // '') =~ s/\s+//gr, 0, 'opsctl db migrate released its lock row');
	my $host = `hostname` =~ s/\s+//gr;
	my $dead = fork // die; exit 0 unless $dead; waitpid $dead, 0;
	my $ns = (stat '/proc/self/ns/pid')[1] . '-' . (`cat /proc/sys/kernel/random/boot_id` =~ s/[-\s]//gr);
	for my $case (["$host:$ns:$dead", 'UTC_TIMESTAMP(3) + INTERVAL 1 HOUR', 'held by a gone process of this host'],
	    ['elsewhere:1-0:42', 'UTC_TIMESTAMP(3) - INTERVAL 1 SECOND', 'held by another host, expired']) {
		mysql("INSERT INTO schema_lock (id, holder, taken_at, expires_at) VALUES (1, '$case->[0]', UTC_TIMESTAMP(3), $case->[1])");
		my $t = opsctl_run(\%ctl_env, 'db', 'migrate');
		is $t->{rc}, 0, "opsctl db migrate takes over a lock $case->[2]" or diag $t->{err};
		is((mysql('SELECT COUNT(*) FROM schema_lock') // '') =~ s/\s+//gr, 0, '  and releases it');
	}

	my $nodb = opsctl_run({ PATH => $ENV{PATH}, OPSD_VAR => $var }, 'db', 'status');
	isnt $nodb->{rc}, 0, 'opsctl without OPSD_DB_URI exits non-zero';
	like $nodb->{err}, qr/OPSD_DB_URI/, 'and names OPSD_DB_URI';
}

# ---- an edited, already-applied migration
sub copy_tree($from, $to) {
	for my $set (qw(control tenant)) {
		make_path("$to/$set");
		opendir(my $dh, "$from/$set") or die "$from/$set: $!";
		copy("$from/$set/$_", "$to/$set/$_") or die $! for grep { -f "$from/$set/$_" } readdir $dh;
	}
}
{
	my $src = $base{OPSD_SQL_DIR} // repo_root() . '/sql';
	my $mod = "$tmp/sql-modified";
	copy_tree($src, $mod);
	open my $fh, '>>', "$mod/control/0001_init.sql" or die;
	print {$fh} "\n-- an edit after the file was applied\n";
	close $fh;
	my $before = mysql('SELECT COUNT(*) FROM schema_migrations');
	my $s = opsctl_run({ %base, OPSD_SQL_DIR => $mod }, 'db', 'status');
	is $s->{rc}, 1, 'opsctl db status exits 1 when an applied file was edited';
	like $s->{out} . $s->{err}, qr{control/0001_init\.sql\s+MODIFIED}, 'and says control/0001_init.sql MODIFIED'
	    or diag "$s->{out}$s->{err}";
	like $s->{out}, qr{^tenant/0001_init\.sql\s+applied$}m, 'the untouched tenant file is still applied';
	my $m = opsctl_run({ %base, OPSD_SQL_DIR => $mod }, 'db', 'migrate');
	isnt $m->{rc}, 0, 'opsctl db migrate refuses to run with a MODIFIED file';
	is mysql('SELECT COUNT(*) FROM schema_migrations'), $before, 'schema_migrations is untouched';

	my $pend = "$tmp/sql-pending";
	copy_tree($src, $pend);
	open $fh, '>', "$pend/control/9999_pending.sql" or die;
	print {$fh} "CREATE TABLE t_pending_probe (id INT PRIMARY KEY);\n";
	close $fh;
	$s = opsctl_run({ %base, OPSD_SQL_DIR => $pend }, 'db', 'status');
	is $s->{rc}, 1, 'opsctl db status exits 1 with a pending file';
	like $s->{out}, qr{^control/9999_pending\.sql\s+pending$}m, 'and lists it as pending' or diag $s->{out};

	my $again = opsctl_run(\%ctl_env, 'db', 'status');
	is $again->{rc}, 0, 'with the real sql/ the status is clean again';
}

finish();
