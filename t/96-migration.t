#!/usr/bin/perl
# Tenant migration end to end (README "Runbook 3"), real
# MariaDB, both directions:
#  - writers: an org with 1,500 contacts (bulk INSERT plus API), projects and
#    offices; two forked writer processes insert, update and delete the
#    org's contacts through the API throughout copy, catch-up and cut-over
#    (retrying 503 org_migrating, which must carry Retry-After) and record
#    what they believe; a reader process reads untouched records all along.
#    shared_to_dedicated (chunkSize 50) → ready_for_cutover → finalize →
#    completed; then the target equals the writers' beliefs row for row (the
#    untouched rows, projects and offices byte for byte), the source holds
#    none of the org's rows, freezeMs is small, no read failed. Then the same
#    back (dedicated_to_shared) with the writers again.
#  - dry run: completed, dryRun, report (rows per table, checksums,
#    durationMs, rowsPerSecond), the target database gone, the source
#    unchanged, migration.started/progress (bounded)/dry_run_completed.
#  - the cut-over rehearsed (finalize with dryRun), both directions, with
#    the runbook's literal requests (start with orgId, direction, chunkSize and
#    dbName, no reason): at ready_for_cutover, after writes, the report
#    (every change since the snapshot replayed, every chunk verified,
#    expectedFreezeMs); nothing switched: still ready_for_cutover, the org
#    row as it was, a row changed behind opsd's back in the source is what
#    the API reads, a write lands in the source and nothing is frozen; then
#    a real finalize completes and the target holds exactly the source's
#    rows; the way back the same.
#  - SIGKILL of the jobs process mid-copy: a new one resumes from the
#    checkpoint (rows_copied never falls back), verifies, finalizes; the
#    target equals the source's rows.
#  - abort at ready_for_cutover, at catching_up (the catch-up held on a
#    target row lock), at verifying (the target's offices table locked), at
#    pending (jobs process SIGSTOPped), at copying (throttled): aborted, the
#    target database gone, the source intact (rows, count, checksum),
#    capture_changes 0, writes work.
#  - legal hold: 409 legal_hold; overrideLegalHold → audited, moved, the
#    org's and a record's hold intact after finalize.
#  - a target refusing connections: 400 target_unreachable, nothing
#    recorded; a target lost before finalize (its user dropped): finalize
#    400 target_unreachable, nothing switched, writes work; abort cleans up
#    once the target is back.
#  - metrics: opsd_migrations_total{status="completed"} (+1 per finalize),
#    opsd_migration_rows_copied_total.
#  - throttling (restart with OPSD_MIGRATION_MAX_THREADS_RUNNING=0): status
#    throttled with a Threads_running reason, no row copied; abort.
# Assertions that show a bug of the engine say "BUG" in their diagnostics.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use List::Util qw(min max);
use POSIX qw(_exit WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use OpsdTest;

my $T0 = time;
my $R = join '', map { ('a' .. 'z')[rand 26] } 1 .. 6;
start_stack(env => { OPSD_WORKERS => 6 });
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin logs in' or BAIL_OUT('no superadmin session');
my $SOCK = var_dir() . '/run/mysqld.sock';
my @TABLES = qw(contacts projects offices);
my @KIDS;   # forked helpers still running (killed if the test dies)

# ============================================================ helpers
sub sql1($sql) { my $v = mysql($sql) // return undef; chomp $v; return $v }
sub uuid_of($h) { $h = lc $h; return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20) }
sub schema_exists($db) { return db_count("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db'") == 1 }
sub elapsed() { return sprintf '%.0fs', time - $T0 }

sub mig_start(%b) { return migration_start($admin, reason => "test $R", %b, timeout => 60) }
sub mig_finalize($org) { return migration_finalize($admin, orgId => $org->{id}, timeout => 60) }
sub mig_abort($org, $why = "abort $R") {
	return migration_abort($admin, orgId => $org->{id}, reason => $why, timeout => 60);
}
sub mig_status($org) {
	my $r = migration_status($admin, $org->{id}, timeout => 20);
	return $r->{status} == 200 ? j($r) : { httpStatus => $r->{status}, body => $r->{body} };
}
my %TERMINAL = map { $_ => 1 } qw(completed aborted failed);
# Polls the status until it matches $want (or a terminal status, or the
# timeout); $tl (arrayref) collects [time, status, phase] at each change.
sub wait_mig($org, $want, $timeout, $tl = undef) {
	my $end = time + $timeout;
	my $doc = {};
	while (1) {
		$doc = mig_status($org);
		my $st = $doc->{status} // '';
		my $ph = $doc->{phase} // '';
		push @$tl, [time, $st, $ph] if $tl && (!@$tl || $tl->[-1][1] ne $st || $tl->[-1][2] ne $ph);
		return $doc if $st =~ $want || $TERMINAL{$st} || time > $end;
		sleep 0.05;
	}
}
sub brief($d) {
	return join ' ', map { "$_=" . (ref $d->{$_} ? json_encode($d->{$_}) : $d->{$_} // 'null') }
	    grep { exists $d->{$_} } qw(status phase rowsCopied rowsTotal throttled throttleReason error changelog);
}

# The columns of a tenant table (the same on both sides: sql/tenant).
sub cols($table) {
	state %c;
	return @{ $c{$table} //= [map { [split /\t/] } grep { length } split /\n/,
	    mysql("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'opsd'"
	    . " AND TABLE_NAME = '$table' ORDER BY ORDINAL_POSITION") // ''] };
}
# Every row of an org in db.table, all columns (binary ones as hex), as
# {id hex => the row's text}; undef when the query fails.
sub org_rows($db, $table, $org) {
	my $list = join ', ', map { $_->[1] =~ /binary|blob/ ? "LOWER(HEX(`$_->[0]`))" : "`$_->[0]`" } cols($table);
	my $out = mysql("SELECT LOWER(HEX(id)), $list FROM `$db`.`$table` WHERE org_id = UNHEX('" . org_hex($org) . "') ORDER BY id")
	    // return undef;
	return { map { my ($id, $rest) = split /\t/, $_, 2; ($id => $rest) } grep { length } split /\n/, $out };
}
sub snapshot($db, $org) { return { map { $_ => org_rows($db, $_, $org) } @TABLES } }
# COUNT and a BIT_XOR of CRC32 over every column of the org's rows.
sub checksum($db, $table, $org) {
	my $cat = join ', ', map { $_->[1] =~ /binary|blob/ ? "IFNULL(HEX(`$_->[0]`), '~')" : "IFNULL(`$_->[0]`, '~')" } cols($table);
	return sql1("SELECT CONCAT(COUNT(*), ':', BIT_XOR(CRC32(CONCAT_WS('|', $cat)))) FROM `$db`.`$table`"
	    . " WHERE org_id = UNHEX('" . org_hex($org) . "')") // 'error';
}
sub checksums($db, $org) { return { map { $_ => checksum($db, $_, $org) } @TABLES } }
sub org_count($db, $table, $org) { return db_count("SELECT COUNT(*) FROM `$db`.`$table` WHERE org_id = UNHEX('" . org_hex($org) . "')") }
# id hex => [name, email] of the org's contacts in db
sub names_emails($db, $org) {
	my $out = mysql("SELECT LOWER(HEX(id)), IFNULL(name, ''), IFNULL(email, '') FROM `$db`.contacts WHERE org_id = UNHEX('"
	    . org_hex($org) . "')") // return undef;
	return { map { my ($id, $n, $e) = split /\t/, $_, -1; ($id => [$n, $e]) } grep { length } split /\n/, $out };
}
sub org_row($org) {
	my ($r) = db_rows("SELECT db_mode, capture_changes, write_frozen_until, legal_hold, dedicated_target IS NOT NULL AS has_target"
	    . " FROM orgs WHERE id = UNHEX('" . org_hex($org) . "')");
	return $r // {};
}
sub audit_actions($org) {
	my $out = mysql("SELECT action FROM audit_events WHERE org_id = UNHEX('" . org_hex($org) . "') AND action LIKE 'migration.%' ORDER BY seq") // '';
	return [grep { length } split /\n/, $out];
}
sub count_of($list, $action) { return scalar grep { $_ eq $action } @$list }
sub mig_tables($org) {
	return { map { $_->{table_name} => $_ } db_rows("SELECT t.table_name, t.rows_total, t.rows_copied, t.copy_done, t.verify_done"
	    . " FROM migration_tables t JOIN migrations m ON m.id = t.migration_id WHERE m.org_id = UNHEX('" . org_hex($org) . "')"
	    . " AND m.active_org IS NOT NULL") };
}
sub rows_copied($org) {
	return db_count("SELECT IFNULL(SUM(t.rows_copied), 0) FROM migration_tables t JOIN migrations m ON m.id = t.migration_id"
	    . " WHERE m.org_id = UNHEX('" . org_hex($org) . "') AND m.active_org IS NOT NULL");
}
sub metrics() {
	my $r = http(GET => '/metrics');
	my %m;
	$m{completed} = $1 + 0 if $r->{body} =~ /^opsd_migrations_total\{status="completed"\} (\d+)$/m;
	$m{rows} = $1 + 0 if $r->{body} =~ /^opsd_migration_rows_copied_total (\d+)$/m;
	$m{status} = $r->{status};
	return \%m;
}

# An org with $n bulk contacts (plus $api of each entity through the API).
sub make_org($label, $n, %o) {
	my $org = create_org(name => "Mig $label $R", slug => "mig-$label-$R");
	ok $org->{id}, "org $label created" or BAIL_OUT("cannot create org $label");
	if ($n) {
		my $c = bulk_insert_contacts($org, $n, tag => "$label$R");
		is $c, $n, "  $n contacts inserted into org $label";
	}
	for my $e (@TABLES) {
		for my $i (1 .. ($o{api} // 0)) {
			my %f = $e eq 'contacts' ? (name => "Api Contact $i $label", email => "api$i.$label$R\@example.test", phone => "+1 555 01$i")
			    : $e eq 'projects' ? (name => "Project $i $label", clientName => "Client $i", budget => 1000 + $i, status => 'active')
			    : (name => "Office $i $label", address => "$i Main St", managerName => "Manager $i");
			my $r = tenant_create($admin, $org, $e, \%f);
			$r->{status} == 201 or diag "create $e in $label: $r->{status} $r->{body}";
		}
	}
	return $org;
}

# A MariaDB session held open as root (a lock the engine must wait for):
# the statements run, then 'held' is printed; release() ends the session.
sub hold_session($sql) {
	state $n = 0;
	my $out = stack()->{tmp} . '/hold-' . ++$n . '.out';
	pipe(my $rd, my $wr) or die "pipe: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $wr;
		open STDIN, '<&', $rd or _exit(127);
		open STDOUT, '>', $out or _exit(127);
		open STDERR, '>', "$out.err" or _exit(127);
		exec 'mariadb', '--no-defaults', "--socket=$SOCK", '-uroot', '-N', '-B', '--unbuffered', 'opsd' or _exit(127);
	}
	close $rd;
	$wr->autoflush(1);
	print {$wr} "$sql;\nSELECT 'held';\n";
	my $ok = wait_until(10, sub { (slurp($out) // '') =~ /held/ }, 0.02);
	diag 'hold_session: ' . (slurp("$out.err") // '') unless $ok;
	return { fh => $wr, pid => $pid, ok => $ok, out => $out };
}
sub release($h) {
	my $fh = delete $h->{fh} or return;
	print {$fh} "ROLLBACK;\nUNLOCK TABLES;\nquit\n";
	close $fh;
	wait_until(10, sub { waitpid($h->{pid}, WNOHANG) == $h->{pid} }, 0.02) or kill 'KILL', $h->{pid};
}

my $MAIN_PID = $$;
# Runs $code with the jobs process stopped (SIGSTOP … SIGCONT, also when
# $code dies): the engine stays where it is while a test sets a trap.
sub with_jobs_stopped($code) {
	my $j = jobs_pid() or return fail('no jobs process to stop');
	kill 'STOP', $j;
	my @r = eval { $code->() };
	my $err = $@;
	kill 'CONT', $j;
	die $err if $err;
	return @r;
}
sub kid(@pids) { push @KIDS, @pids }
# forked helpers must not outlive a test that dies (this END runs before the
# harness stops the stack)
END { kill 'KILL', grep { $_ } @KIDS if $$ == $MAIN_PID && @KIDS }

# ============================================================ 1. writers and readers, both directions
#
# Each writer owns its ids (the rows it creates plus a pool of existing
# ones), so what it believes about them is exact: id → [name, email], or
# deleted. A write answered 503 org_migrating was not made (the freeze is
# checked before any write) and is retried after 0.1 s (Retry-After is
# checked, then retried sooner to probe the edges of the freeze); any other
# non-2xx is an uncertain outcome and is reported.

sub writer_main($wid, $org, $s, $pool, $out, $stop) {
	my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 60, keep_alive => 1,
	    agent => "opsd-writer/$wid");
	srand($$ ^ int(time * 1000));
	my (%belief, %uncertain, @maybe_created, @anomalies, @ops, @r503);
	my @alive = @$pool;
	my $seq = 0;
	my $path = "/orgs/$org->{id}/contacts";
	my $send = sub ($m, $p, $body) {
		my $t0 = time;
		while (1) {
			my $r = http($m, $p, (defined $body ? (json => $body) : ()), session => $s, agent => $ua);
			my $code = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH' ? $r->{json}{error}{code} // '' : '';
			if ($r->{status} == 503 && $code eq 'org_migrating') {
				push @r503, [time, $r->{headers}{'retry-after'}];
				return $r if time - $t0 > 60;
				sleep 0.1;
				next;
			}
			return $r;
		}
	};
	my $short = sub ($r) { return "$r->{status} " . substr($r->{body} // '', 0, 200) };
	until (-e $stop) {
		my $x = rand;
		$seq++;
		if (!@alive || $x < 0.4) {
			my ($name, $email) = ("W$wid-$seq new $R", "w$wid.n$seq.$R\@writer.example");
			my $r = $send->(POST => $path, { name => $name, email => $email });
			push @ops, [time, 'create', $r->{status}];
			if ($r->{status} == 201 && ref $r->{json} eq 'HASH' && $r->{json}{id}) {
				my $id = norm_id($r->{json}{id});
				$belief{$id} = [$name, $email];
				push @alive, $id;
				push @anomalies, "create $id answered 201 with name " . ($r->{json}{name} // 'null') . " (sent $name)"
				    if ($r->{json}{name} // '') ne $name;
			} else {
				push @maybe_created, { name => $name, email => $email, answer => $short->($r) };
			}
		} elsif ($x < 0.8) {
			my $id = $alive[rand @alive];
			my ($name, $email) = ("W$wid-$seq upd $R", "w$wid.u$seq.$R\@writer.example");
			my $r = $send->(PATCH => "$path/" . uuid_of($id), { name => $name, email => $email });
			push @ops, [time, 'update', $r->{status}];
			if ($r->{status} == 200) {
				$belief{$id} = [$name, $email];
				push @anomalies, "update $id answered 200 with name " . ($r->{json}{name} // 'null') . " (sent $name): a stale reply"
				    if (j($r)->{name} // '') ne $name;
			} else {
				$uncertain{$id} = { op => 'update', to => [$name, $email], answer => $short->($r) };
				@alive = grep { $_ ne $id } @alive;
			}
		} else {
			my $i = int rand @alive;
			my $id = splice @alive, $i, 1;
			my $r = $send->(DELETE => "$path/" . uuid_of($id), undef);
			push @ops, [time, 'delete', $r->{status}];
			if ($r->{status} == 200) {
				$belief{$id} = 'deleted';
			} else {
				$uncertain{$id} = { op => 'delete', answer => $short->($r) };
			}
		}
	}
	open my $fh, '>', $out or _exit(3);
	print {$fh} json_encode({ belief => \%belief, uncertain => \%uncertain, maybe_created => \@maybe_created,
	    anomalies => \@anomalies, ops => \@ops, r503 => \@r503 });
	close $fh;
	_exit(0);
}

sub reader_main($org, $s, $expect, $out, $stop) {
	my $ua = HTTP::Tiny->new(verify_SSL => 0, SSL_options => { SSL_verify_mode => 0 }, timeout => 60, keep_alive => 1,
	    agent => 'opsd-reader');
	srand($$ ^ int(time * 1000));
	my @ids = keys %$expect;
	my (@fails, @reads);
	my $n = 0;
	until (-e $stop) {
		$n++;
		my ($r, $what);
		if ($n % 4 == 0) {
			$what = 'list';
			$r = http(GET => "/orgs/$org->{id}/contacts?limit=25", session => $s, agent => $ua);
			push @fails, [time, $what, $r->{status}, substr($r->{body}, 0, 200)]
			    unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && ref $r->{json}{items} eq 'ARRAY' && @{ $r->{json}{items} } == 25;
		} elsif ($n % 4 == 2) {
			$what = 'projects';
			$r = http(GET => "/orgs/$org->{id}/projects", session => $s, agent => $ua);
			push @fails, [time, $what, $r->{status}, substr($r->{body}, 0, 200)] unless $r->{status} == 200;
		} else {
			my $id = $ids[rand @ids];
			$what = "get $id";
			$r = http(GET => "/orgs/$org->{id}/contacts/" . uuid_of($id), session => $s, agent => $ua);
			push @fails, [time, $what, $r->{status}, substr($r->{body}, 0, 200)]
			    unless $r->{status} == 200 && (j($r)->{name} // '') eq $expect->{$id};
		}
		push @reads, [time, $r->{status}, $what =~ /^get/ ? 'get' : $what];
	}
	open my $fh, '>', $out or _exit(3);
	print {$fh} json_encode({ fails => \@fails, reads => \@reads });
	close $fh;
	_exit(0);
}

sub fork_child($code) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval { $code->(); 1 } or print STDERR "child $$ died: $@";
		_exit(1);
	}
	kid($pid);
	return $pid;
}

# What the list failures above have shown so far (diagnostics only).
my $LIST_BUG = 'GET /orgs/:orgId/<entity> of an org whose rows are in a dedicated database answers 200'
    . ' {"items":[]}: api_tenant_list (src/api/tenant.c) routes the org (tenant_org_or_reply fills t.db) but'
    . ' reply_id_list (src/api/common.c) runs the query on r->db, the shared database; GET by id uses t.db and works.';

my $W = make_org('w', 1470, api => 30);
my $w_writer = create_user(role => 'org_admin', org => $W);
my $w_reader = create_user(role => 'member', org => $W);
my $w_ws = login($w_writer->{email}, $w_writer->{password});
my $w_rs = login($w_reader->{email}, $w_reader->{password});
ok $w_ws->{cookie} && $w_rs->{cookie}, 'an org_admin (writers) and a member (reader) of the org log in';
my %UNTOUCHED;   # id hex → 1: rows no writer ever touches (compared byte for byte)
{
	my $ids = org_row_ids('contacts', $W);
	my @sorted = sort @$ids;
	$UNTOUCHED{$_} = 1 for @sorted[0 .. 999];
}
is scalar(keys %UNTOUCHED), 1000, '1,000 of the 1,500 contacts are never touched by a writer';

# One direction with the writers and the reader running throughout.
sub writer_phase($dir, $src_db) {
	my $label = $dir;
	my $before = snapshot($src_db, $W);
	my $ne = names_emails($src_db, $W);
	is scalar(keys %{ $before->{contacts} // {} }), scalar(keys %$ne), "$label: the source has the org's contacts ("
	    . scalar(keys %$ne) . ')';
	cmp_ok scalar(keys %{ $before->{projects} // {} }), '>=', 30, "$label: and its projects and offices";
	# the writers' pools: existing rows they may change, 150 each at most
	my @mutable = grep { !$UNTOUCHED{$_} } sort keys %$ne;
	my @pool1 = @mutable[grep { $_ % 2 == 0 } 0 .. $#mutable];
	my @pool2 = @mutable[grep { $_ % 2 == 1 } 0 .. $#mutable];
	splice(@pool1, 150) if @pool1 > 150;
	splice(@pool2, 150) if @pool2 > 150;
	my %reader_expect = map { $_ => $ne->{$_}[0] } keys %UNTOUCHED;
	my $dir_tmp = stack()->{tmp};
	my $stop = "$dir_tmp/stop-$dir";
	unlink $stop;
	my @w = map { my ($i, $p) = @$_; fork_child(sub { writer_main($i, $W, $w_ws, $p, "$dir_tmp/writer$i-$dir.json", $stop) }) }
	    ([1, \@pool1], [2, \@pool2]);
	my $rd = fork_child(sub { reader_main($W, $w_rs, \%reader_expect, "$dir_tmp/reader-$dir.json", $stop) });
	sleep 1;

	my @tl;
	my %t;
	$t{start} = time;
	my $s = mig_start(orgId => $W->{id}, direction => $dir, chunkSize => 50);
	status_is $s, 202, "$label: POST /migration/start 202";
	is j($s)->{status}, 'pending', "  status pending";
	my $d = wait_mig($W, qr/^ready_for_cutover$/, 90, \@tl);
	is $d->{status}, 'ready_for_cutover', sprintf('%s: ready_for_cutover (%.1fs)', $label, time - $t{start})
	    or diag brief($d);
	$t{ready} = time;
	is_deeply [map { $_->{match} ? 1 : 0 } @{ $d->{verification}{tables} // [] }], [1, 1, 1],
	    "  verification: every table matches" or diag json_encode($d->{verification});
	sleep 2;   # writes while ready_for_cutover: the engine keeps catching up
	$t{finalize} = time;
	my $f = mig_finalize($W);
	status_is $f, 202, "$label: POST /migration/finalize 202";
	like j($f)->{status} // '', qr/^(?:cutting_over|completed)$/, '  status cutting_over';
	$d = wait_mig($W, qr/^completed$/, 60, \@tl);
	$t{done} = time;
	is $d->{status}, 'completed', sprintf('%s: completed (cut-over %.1fs)', $label, $t{done} - $t{finalize}) or diag brief($d);
	sleep 1;
	open my $sf, '>', $stop or die;
	close $sf;
	for my $pid (@w, $rd) {
		my $gone = wait_until(90, sub { waitpid($pid, WNOHANG) == $pid }, 0.05);
		ok $gone, "  helper $pid stopped" or kill 'KILL', $pid;
	}
	@KIDS = grep { my $k = $_; !grep { $_ == $k } (@w, $rd) } @KIDS;
	note "$label timeline: " . join(' → ', map { sprintf '%s%s@%.2f', $_->[1], $_->[2] ? "/$_->[2]" : '', $_->[0] - $t{start} } @tl);

	# ---- the status document
	ok defined $d->{freezeMs}, "$label: freezeMs is set (" . ($d->{freezeMs} // 'null') . ' ms)';
	cmp_ok $d->{freezeMs} // 1e9, '<', 5000, '  and small (the write freeze lasts seconds at most)';
	cmp_ok $d->{freezeMs} // -1, '>=', 0, '  and not negative';
	ok $d->{verification}{ok} && $d->{verification}{final}, '  the final verification is ok' or diag json_encode($d->{verification});
	my $cl = $d->{changelog} // {};
	cmp_ok $cl->{applied} // 0, '>', $cl->{snapshot} // 1e18, "  captured changes were replayed (changelog " . json_encode($cl) . ')';
	is $d->{error}, undef, '  no error';

	# ---- what the helpers saw
	my (%belief, %uncertain, @maybe, @anom, @ops, @r503);
	for my $i (1, 2) {
		my $res = json_decode(slurp("$dir_tmp/writer$i-$dir.json") // '');
		ok ref $res eq 'HASH', "$label: writer $i reported" or next;
		%belief = (%belief, %{ $res->{belief} });
		%uncertain = (%uncertain, %{ $res->{uncertain} });
		push @maybe, @{ $res->{maybe_created} };
		push @anom, @{ $res->{anomalies} };
		push @ops, @{ $res->{ops} };
		push @r503, @{ $res->{r503} };
	}
	my $rres = json_decode(slurp("$dir_tmp/reader-$dir.json") // '') // {};
	my $in = sub ($from, $to) { grep { $_->[0] > $from && $_->[0] <= $to && $_->[2] =~ /^2/ } @ops };
	my @copy_w = $in->($t{start}, $t{ready});
	my @ready_w = $in->($t{ready}, $t{finalize});
	my @cut_w = $in->($t{finalize}, $t{done});
	note sprintf '%s: %d writes (%d 2xx), %d during copy/catch-up/verify, %d while ready, %d during the cut-over, %d answers 503 org_migrating',
	    $label, scalar @ops, scalar(grep { $_->[2] =~ /^2/ } @ops), scalar @copy_w, scalar @ready_w, scalar @cut_w, scalar @r503;
	cmp_ok scalar(@copy_w), '>', 0, "$label: writes succeeded between the start and ready_for_cutover (copy, catch-up)";
	cmp_ok scalar(@ready_w), '>', 0, "$label: writes succeeded while ready_for_cutover";
	cmp_ok scalar(@cut_w), '>', 0, "$label: writes succeeded between finalize and completed";
	my @bad503 = grep { !defined $_->[1] || $_->[1] !~ /^[1-9]\d*$/ || $_->[1] > 30 } @r503;
	ok !@bad503, "$label: every 503 org_migrating carried Retry-After in seconds (" . scalar(@r503) . ' seen)'
	    or diag json_encode(\@bad503);
	if (@r503) {
		my ($first, $last) = (min(map { $_->[0] } @r503), max(map { $_->[0] } @r503));
		note sprintf '%s: 503s seen from %.2fs to %.2fs after finalize (a window of %.0f ms; freezeMs %s)', $label,
		    $first - $t{finalize}, $last - $t{finalize}, ($last - $first) * 1000, $d->{freezeMs} // 'null';
		ok !grep({ $_->[0] < $t{finalize} || $_->[0] > $t{done} + 0.5 } @r503), "$label: 503 org_migrating only during the cut-over"
		    or diag json_encode([map { $_->[0] - $t{finalize} } @r503]);
	}
	ok !@anom, "$label: no write was answered with stale data" or diag "BUG: " . join("\n", @anom);
	ok !%uncertain && !@maybe, "$label: every write had a clear answer (2xx, or 503 org_migrating then 2xx)"
	    or diag 'BUG: uncertain outcomes: ' . json_encode({ uncertain => \%uncertain, maybe_created => \@maybe });
	my @rf = @{ $rres->{fails} // [] };
	my @rd = @{ $rres->{reads} // [] };
	my @cut_reads = grep { $_->[0] > $t{finalize} && $_->[0] <= $t{done} } @rd;
	cmp_ok scalar(@rd), '>', 50, "$label: the reader read all along (" . scalar(@rd) . ' reads, ' . scalar(@cut_reads)
	    . ' during the cut-over)';
	my @rf_get = grep { $_->[1] !~ /^(?:list|projects)$/ } @rf;
	my @rf_list = grep { $_->[1] =~ /^(?:list|projects)$/ } @rf;
	ok !@rf_get, "$label: no GET of a record failed or returned other data, the cut-over included"
	    or diag 'BUG: ' . json_encode([@rf_get[0 .. ($#rf_get < 9 ? $#rf_get : 9)]]);
	ok !@rf_list, "$label: no list page failed or came back short, the cut-over included"
	    or diag sprintf("BUG: %d of %d list reads failed, from %.2fs to %.2fs after the start (switch at %.2fs); first: %s. %s",
	    scalar @rf_list, scalar(grep { $_->[2] ne 'get' } @rd), min(map { $_->[0] } @rf_list) - $t{start}, max(map { $_->[0] } @rf_list) - $t{start},
	    ($t{done} - $t{start}), json_encode($rf_list[0]), $LIST_BUG);

	# ---- the databases
	my $dst_db = $dir eq 'shared_to_dedicated' ? $d->{dbName} : 'opsd';
	ok $dst_db && schema_exists($dst_db), "$label: the target database $dst_db exists";
	my %expect = map { $_ => $ne->{$_} } keys %$ne;
	for my $id (keys %belief) {
		if (ref $belief{$id}) { $expect{$id} = $belief{$id} } else { delete $expect{$id} }
	}
	my $got = names_emails($dst_db, $W) // {};
	my @missing = grep { !$got->{$_} && !$uncertain{$_} } sort keys %expect;
	my @extra = grep { !$expect{$_} && !$uncertain{$_} } sort keys %$got;
	my @diff = grep { $got->{$_} && $expect{$_} && !$uncertain{$_} && join("\t", @{ $got->{$_} }) ne join("\t", @{ $expect{$_} }) }
	    sort keys %expect;
	is scalar(keys %$got), scalar(keys %expect), "$label: the target has as many contacts as the writers believe ("
	    . scalar(keys %expect) . ')' unless %uncertain;
	ok !@missing, "$label: no contact the writers believe in is missing from the target"
	    or diag 'BUG: missing ' . scalar(@missing) . ': ' . join(' ', @missing[0 .. ($#missing < 9 ? $#missing : 9)]);
	ok !@extra, "$label: the target has no contact the writers deleted or never made"
	    or diag 'BUG: extra ' . scalar(@extra) . ': ' . json_encode([map { [$_, $got->{$_}] } @extra[0 .. ($#extra < 9 ? $#extra : 9)]]);
	ok !@diff, "$label: every contact has the name and email the writers last wrote"
	    or diag 'BUG: ' . json_encode([map { [$_, $got->{$_}, $expect{$_}] } @diff[0 .. ($#diff < 9 ? $#diff : 9)]]);
	my $after = snapshot($dst_db, $W);
	my @changed = grep { ($after->{contacts}{$_} // 'gone') ne $before->{contacts}{$_} } grep { $UNTOUCHED{$_} } keys %{ $before->{contacts} };
	ok !@changed, "$label: the 1,000 untouched contacts are in the target byte for byte (every column)"
	    or diag 'BUG: ' . join("\n", map { "$_: before $before->{contacts}{$_}\n  after " . ($after->{contacts}{$_} // 'gone') } @changed[0 .. 2]);
	is_deeply $after->{projects}, $before->{projects}, "$label: projects identical in the target (every column)";
	is_deeply $after->{offices}, $before->{offices}, "$label: offices identical in the target (every column)";
	for my $t (@TABLES, 'tenant_changelog') {
		is org_count($src_db, $t, $W), 0, "$label: the source ($src_db.$t) holds none of the org's rows";
	}
	my $o = org_row($W);
	is $o->{db_mode}, $dir eq 'shared_to_dedicated' ? 'dedicated' : 'shared', "$label: orgs.db_mode $o->{db_mode}";
	is $o->{capture_changes}, 0, '  capture_changes 0';
	is $o->{write_frozen_until}, undef, '  write_frozen_until NULL';
	my $api = tenant_list_all($admin, $W, 'contacts', limit => 500);
	is scalar(@{ $api->{items} }), scalar(keys %$got), "$label: GET /orgs/:id/contacts lists them all"
	    or diag 'BUG: ' . json_encode($api->{errors}) . " $LIST_BUG";
	my $w = tenant_create($w_ws, $W, 'contacts', { name => "After $dir $R" });
	status_is $w, 201, "$label: a write after the migration works";
	is org_count($dst_db, 'contacts', $W), scalar(keys %$got) + 1, '  and lands in the target';
	my $acts = audit_actions($W);
	ok count_of($acts, 'migration.finalized') >= 1 && count_of($acts, 'migration.ready_for_cutover') >= 1,
	    "$label: audit has migration.ready_for_cutover and migration.finalized" or diag "@$acts";
	return $d;
}

note '---- 1. writers, shared_to_dedicated (' . elapsed() . ')';
my $d1 = writer_phase('shared_to_dedicated', 'opsd');
my $W_DB = $d1->{dbName} // 'none';
note '---- 1. writers, dedicated_to_shared (' . elapsed() . ')';
my $d2 = writer_phase('dedicated_to_shared', $W_DB);

# ============================================================ 2. dry run
note '---- 2. dry run (' . elapsed() . ')';
{
	my $D = make_org('d', 600, api => 4);
	my $before = snapshot('opsd', $D);
	my $sum = checksums('opsd', $D);
	my $s = mig_start(orgId => $D->{id}, direction => 'shared_to_dedicated', chunkSize => 50, dryRun => 1);
	status_is $s, 202, 'dry run: start 202';
	is j($s)->{dryRun}, JSON::PP::true, '  dryRun true';
	my $db = j($s)->{dbName} // 'none';
	my $d = wait_mig($D, qr/^completed$/, 60);
	is $d->{status}, 'completed', 'dry run: completed' or diag brief($d);
	is $d->{dryRun}, JSON::PP::true, '  dryRun true';
	my $rep = $d->{report} // {};
	ok ref $rep eq 'HASH' && %$rep, '  has a report' or diag json_encode($d);
	my %by = map { $_->{table} => $_ } @{ $rep->{tables} // [] };
	is_deeply { map { $_ => $by{$_}{sourceRows} } @TABLES }, { contacts => 604, projects => 4, offices => 4 },
	    '  report: rows per table (source)' or diag json_encode($rep);
	is_deeply { map { $_ => $by{$_}{targetRows} } @TABLES }, { contacts => 604, projects => 4, offices => 4 }, '  report: rows per table (target)';
	ok !grep({ !defined $by{$_}{sourceChecksum} || $by{$_}{sourceChecksum} !~ /^[0-9a-f]{16}$/
	    || ($by{$_}{sourceChecksum} // '') ne ($by{$_}{targetChecksum} // '') } @TABLES), '  report: checksums per table, source = target'
	    or diag json_encode($rep->{tables});
	like $rep->{durationMs} // '', qr/^\d+$/, "  report: durationMs ($rep->{durationMs})";
	cmp_ok $rep->{rowsPerSecond} // 0, '>', 0, "  report: rowsPerSecond ($rep->{rowsPerSecond})";
	is $rep->{rowsCopied}, 612, '  report: rowsCopied 612';
	ok !schema_exists($db), "dry run: the target database $db does not exist afterwards";
	is_deeply snapshot('opsd', $D), $before, 'dry run: the source is unchanged, row for row';
	is_deeply checksums('opsd', $D), $sum, '  (counts and checksums too)';
	my $o = org_row($D);
	is_deeply [$o->{db_mode}, $o->{capture_changes}, $o->{write_frozen_until}], ['shared', 0, undef],
	    '  the org stays shared, capture off, not frozen';
	my $acts = audit_actions($D);
	is count_of($acts, 'migration.started'), 1, 'dry run: audit migration.started';
	my $np = count_of($acts, 'migration.progress');
	ok $np >= 1 && $np <= 12, "dry run: audit migration.progress, bounded ($np events for 13 chunks)"
	    or diag "audit: @$acts" . ($np ? '' : '. BUG: progress_audit (src/migration/copy.c) writes the event through'
	    . ' transition() with status and phase NULL; transition_fn\'s "UPDATE migrations SET status = IFNULL(?, status),'
	    . ' phase = IFNULL(?, phase), ... WHERE id = ? AND status = ?" then changes nothing, MariaDB reports 0 affected'
	    . ' rows (no CLIENT_FOUND_ROWS), the step counts as "lost" and neither migration.progress nor'
	    . ' progress_pct_audited is written: no progress event is ever audited.');
	is count_of($acts, 'migration.dry_run_completed'), 1, 'dry run: audit migration.dry_run_completed';
	is count_of($acts, 'migration.finalized'), 0, '  and no migration.finalized';
	status_is tenant_create($admin, $D, 'contacts', { name => "After dry run $R" }), 201, 'dry run: the org is writable';
	is org_count('opsd', 'contacts', $D), 605, '  (in the shared database)';
}

# ============================================================ 2b. the cut-over rehearsed
# At ready_for_cutover: finalize with dryRun answers the report and
# switches nothing; a real finalize afterwards works. $src_db holds the
# org's rows before the cut-over.
sub rehearsal_checks($org, $label, $src_db, $writes) {
	my $o_before = org_row($org);
	my $acts_before = audit_actions($org);
	my $f = migration_finalize($admin, orgId => $org->{id}, dryRun => 1, timeout => 60);
	status_is $f, 200, "$label: finalize {orgId, dryRun: true} 200";
	my $rep = j($f);
	ok $rep->{ok} && !$rep->{switched} && ($rep->{status} // '') eq 'ready_for_cutover',
	    "$label: the report: ok, switched false, ready_for_cutover" or diag $f->{body};
	my %st = map { $_->{step} => $_ } @{ $rep->{steps} // [] };
	ok $st{connect}{ok} && $st{catch_up}{ok} && $st{verify}{ok}, "$label: connect, catch_up and verify ok";
	cmp_ok $st{catch_up}{changesReplayed} // 0, '>=', $writes,
	    "  every change since the snapshot replayed ($st{catch_up}{changesReplayed} for $writes writes)";
	is $st{verify}{chunksMismatched}, 0, "  every chunk verified ($st{verify}{chunks}), none differs";
	my %by = map { $_->{table} => $_ } @{ $rep->{verification}{tables} // [] };
	is_deeply { map { $_ => $by{$_}{targetRows} } @TABLES }, { map { $_ => org_count($src_db, $_, $org) } @TABLES },
	    "  the target has the source's row counts";
	ok !grep({ !$by{$_}{match} } @TABLES), '  and checksums';
	like $rep->{expectedFreezeMs} // '', qr/^\d+$/, "  expectedFreezeMs $rep->{expectedFreezeMs}";
	my $d = mig_status($org);
	is_deeply [$d->{status}, $d->{phase}, $d->{freezeMs}], ['ready_for_cutover', undef, undef],
	    "$label: still ready_for_cutover, no phase, no freeze";
	is_deeply org_row($org), $o_before, "$label: the org row as it was (mode, capture on, not frozen, target)";
	is $o_before->{capture_changes}, 1, '  (capture still on)';
	# reads come from the source: a row changed there behind opsd's back
	my ($cid) = sort keys %{ names_emails($src_db, $org) // {} };
	my $old = sql1("SELECT IFNULL(notes, '') FROM `$src_db`.contacts WHERE id = UNHEX('$cid')");
	ok defined mysql("UPDATE `$src_db`.contacts SET notes = 'only in the source $R' WHERE id = UNHEX('$cid')"),
	    "$label: a contact changed in the source behind opsd's back";
	is j(tenant_get($admin, $org, 'contacts', uuid_of($cid)))->{notes}, "only in the source $R",
	    '  the API reads it from the source';
	mysql("UPDATE `$src_db`.contacts SET notes = " . ($old eq '' ? 'NULL' : "'$old'") . " WHERE id = UNHEX('$cid')");
	my $n = org_count($src_db, 'contacts', $org);
	status_is tenant_create($admin, $org, 'contacts', { name => "After the rehearsal $R" }), 201,
	    "$label: a write after the rehearsal: 201 (not frozen)";
	is org_count($src_db, 'contacts', $org), $n + 1, '  it lands in the source';
	my $acts = audit_actions($org);
	is_deeply [map { count_of($acts, "migration.$_") - count_of($acts_before, "migration.$_") }
	    qw(finalize_requested finalize_rehearsed finalized cutover_refused)],
	    [1, 1, 0, 0], "$label: audit migration.finalize_requested and migration.finalize_rehearsed, nothing finalized"
	    or diag "@$acts";
	return $rep;
}

note '---- 2b. the cut-over rehearsed, both directions, literal requests (' . elapsed() . ')';
{
	my $H = make_org('r', 800, api => 3);
	my $db = "org_reh_$R";
	for my $dir ('shared_to_dedicated', 'dedicated_to_shared') {
		my ($src, $dst) = $dir eq 'shared_to_dedicated' ? ('opsd', $db) : ($db, 'opsd');
		my %body = (orgId => $H->{id}, direction => $dir, chunkSize => 100,
		    $dir eq 'shared_to_dedicated' ? (dbName => $db) : ());
		my $s = migration_start($admin, %body, timeout => 60);
		status_is $s, 202, "rehearsal $dir: start with exactly " . join(', ', sort keys %body) . ' (no reason): 202';
		is j($s)->{reason}, undef, '  reason null';
		my $d = wait_mig($H, qr/^ready_for_cutover$/, 60);
		is $d->{status}, 'ready_for_cutover', "rehearsal $dir: ready_for_cutover" or diag brief($d);
		# writes after the snapshot: the rehearsal's catch-up replays them
		my @ids = sort keys %{ names_emails($src, $H) // {} };
		my $writes = 0;
		for my $i (0 .. 9) {
			$writes++ if tenant_patch($admin, $H, 'contacts', uuid_of($ids[$i]), { notes => "rehearsed $i $R" })->{status} == 200;
			$writes++ if tenant_create($admin, $H, 'contacts', { name => "Rehearsal $i $R" })->{status} == 201;
		}
		is $writes, 20, "rehearsal $dir: 20 writes while ready_for_cutover";
		ok wait_until(10, sub { (mig_status($H)->{changelog}{pending} // 0) == 0 }, 0.1), '  caught up by the engine'
		    if $dir eq 'shared_to_dedicated';
		my $rep = rehearsal_checks($H, "rehearsal $dir", $src, $writes);
		my $before = snapshot($src, $H);
		my $f = mig_finalize($H);
		status_is $f, 202, "rehearsal $dir: then the real finalize 202";
		$d = wait_mig($H, qr/^completed$/, 60);
		is $d->{status}, 'completed', "rehearsal $dir: completed" or diag brief($d);
		note "rehearsal $dir: expectedFreezeMs $rep->{expectedFreezeMs}, freezeMs " . ($d->{freezeMs} // 'null');
		ok defined $d->{freezeMs}, '  freezeMs set';
		is_deeply snapshot($dst, $H), $before, "rehearsal $dir: the target holds exactly the source's rows, every column";
		is org_count($src, 'contacts', $H), 0, '  the source none';
		is org_row($H)->{db_mode}, $dir eq 'shared_to_dedicated' ? 'dedicated' : 'shared', "  orgs.db_mode switched";
		is $d->{report}{expectedFreezeMs}, $rep->{expectedFreezeMs}, '  the status keeps the rehearsal\'s report';
	}
}

# ============================================================ 3. SIGKILL of the jobs process mid-copy
note '---- 3. kill -9 of the jobs process mid-copy (' . elapsed() . ')';
{
	my $K = make_org('k', 6000, api => 3);
	my $before = snapshot('opsd', $K);
	my $s = mig_start(orgId => $K->{id}, direction => 'shared_to_dedicated', chunkSize => 10);
	status_is $s, 202, 'kill: start 202 (6,003 contacts, chunkSize 10)';
	my $total = 6009;
	my $mid = wait_until(30, sub { my $n = rows_copied($K); $n >= 800 ? $n : 0 }, 0.02);
	my $jobs = jobs_pid();
	my $title = proc_title($jobs // 0) // '?';
	ok $mid && $mid < $total - 500, "kill: the copy is under way ($mid rows copied)";
	ok $jobs && kill('KILL', $jobs), "kill -9 the jobs process ($jobs, \"$title\")";
	sleep 0.3;
	my $at_kill = rows_copied($K);
	my $st = mig_status($K);
	is $st->{status}, 'copying', "  the migration is copying ($at_kill rows copied when the process died)";
	my $new = wait_until(10, sub { my $j = jobs_pid(); $j && $j != $jobs ? $j : undef });
	ok $new, 'the master starts a new jobs process' . ($new ? " ($new)" : '');
	ok wait_until(5, sub { grep { ($_->{event} // '') eq 'child_died' && ($_->{childPid} // 0) == $jobs } log_records('opsd.log') }),
	    '  log child_died for the killed one';
	# never back to 0: sample until ready
	my ($min_after, @samples) = (1e9);
	my $t0 = time;
	my $d;
	while (time - $t0 < 60) {
		my $n = rows_copied($K);
		push @samples, $n;
		$min_after = $n if $n < $min_after && $n >= 0;
		$d = mig_status($K);
		last if ($d->{status} // '') ne 'copying';
		sleep 0.1;
	}
	cmp_ok $min_after, '>=', $at_kill, "kill: rows_copied never fell back after the kill (lowest $min_after, at the kill $at_kill)";
	$d = wait_mig($K, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', sprintf('kill: the new jobs process resumed and reached ready_for_cutover (%.1fs after the kill)', time - $t0)
	    or diag brief($d);
	my $lease = sql1("SELECT lease_holder FROM migrations WHERE org_id = UNHEX('" . org_hex($K) . "') AND active_org IS NOT NULL") // '';
	like $lease, qr/:$new$/, "  the new jobs process holds the lease ($lease)" if $new;
	my %tb = map { $_->{table} => $_ } @{ $d->{tables} // [] };
	cmp_ok $tb{contacts}{rowsCopied} // 0, '<=', 6003 + 10, "  contacts rowsCopied $tb{contacts}{rowsCopied} of 6003: resumed"
	    . ' from the checkpoint (at most one chunk copied twice), not restarted';
	cmp_ok $tb{contacts}{rowsCopied} // 0, '>=', 6003, '  and all copied';
	my %v = map { $_->{table} => $_ } @{ $d->{verification}{tables} // [] };
	ok $d->{verification}{ok} && ($v{contacts}{sourceRows} // 0) == 6003 && ($v{contacts}{targetRows} // 0) == 6003,
	    '  verification ok: 6,003 contacts on both sides, checksums equal' or diag json_encode($d->{verification});
	my $m1 = metrics();
	status_is mig_finalize($K), 202, 'kill: finalize 202';
	$d = wait_mig($K, qr/^completed$/, 60);
	is $d->{status}, 'completed', 'kill: completed' or diag brief($d);
	is_deeply snapshot($d->{dbName}, $K), $before, 'kill: the target holds exactly the source rows, every column';
	is org_count('opsd', 'contacts', $K), 0, '  and the source none';
	my $m2 = metrics();
	is $m2->{completed} - $m1->{completed}, 1, 'metrics: one finalize adds exactly 1 to opsd_migrations_total{status="completed"}'
	    or diag "BUG: +" . ($m2->{completed} - $m1->{completed}) . ': before 95d6061 step_cutting_over counted "completed" at'
	    . ' the switch (metrics_migration) and again in the transition to completed (src/migration/state.c)';
}

# ============================================================ 4. abort at each state
# Afterwards: aborted, the target database gone, the source intact (rows,
# count, checksum), capture_changes 0, not frozen, writes work.
sub abort_checks($org, $label, $before, $sums, $db, %o) {
	my $d = wait_mig($org, qr/^aborted$/, $o{wait} // 15);
	my $aborted = is $d->{status}, 'aborted', "$label: aborted";
	unless ($aborted) {
		diag(($o{bug} ? $o{bug}->() : 'BUG: ') . ' status now: ' . brief($d) . '; audit: ' . join(' ', @{ audit_actions($org) }));
		note "$label: the checks that need the abort to have ended are skipped";
	}
	if ($aborted || $o{always}) {
		ok !schema_exists($db), "$label: the target database $db is gone" or diag brief($d);
		my $o = org_row($org);
		is_deeply [$o->{db_mode}, $o->{capture_changes}, $o->{write_frozen_until}], ['shared', 0, undef],
		    "$label: the org stays shared, capture_changes 0, not frozen";
	}
	is_deeply snapshot('opsd', $org), $before, "$label: the source rows are intact, every column";
	is_deeply checksums('opsd', $org), $sums, "$label: counts and checksums unchanged (" . join(' ', map { "$_ $sums->{$_}" } @TABLES) . ')';
	my $w = tenant_create($admin, $org, 'contacts', { name => "After abort $R" });
	status_is $w, 201, "$label: writes work";
	is org_count('opsd', 'contacts', $org), ($sums->{contacts} =~ /^(\d+)/)[0] + 1, '  (in the shared database)';
	if ($aborted) {
		my $acts = audit_actions($org);
		ok count_of($acts, 'migration.abort_requested') >= 1 && count_of($acts, 'migration.aborted') >= 1,
		    "$label: audit migration.abort_requested and migration.aborted" or diag "@$acts";
	}
	return $d;
}

note '---- 4a. abort at ready_for_cutover (' . elapsed() . ')';
{
	my $A = make_org('a', 300, api => 2);
	my ($before, $sums) = (snapshot('opsd', $A), checksums('opsd', $A));
	my $s = mig_start(orgId => $A->{id}, direction => 'shared_to_dedicated', chunkSize => 50);
	status_is $s, 202, 'abort at ready: start 202';
	my $db = j($s)->{dbName};
	my $d = wait_mig($A, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', 'abort at ready: ready_for_cutover';
	ok schema_exists($db), "  the target database $db exists";
	my $a = mig_abort($A);
	status_is $a, 202, 'abort at ready: POST /migration/abort 202';
	like j($a)->{status} // '', qr/^abort(?:ing|ed)$/, '  status aborting';
	abort_checks($A, 'abort at ready', $before, $sums, $db);
	check_error(mig_abort($A), 409, 'conflict', 'abort at ready: a second abort');
}

note '---- 4b. abort at catching_up (the catch-up waits on a target row lock) (' . elapsed() . ')';
{
	my $C = make_org('c', 3000, api => 2);
	my $s = mig_start(orgId => $C->{id}, direction => 'shared_to_dedicated', chunkSize => 10);
	status_is $s, 202, 'abort at catching_up: start 202 (3,002 contacts, chunkSize 10)';
	my $db = j($s)->{dbName};
	ok wait_until(30, sub { rows_copied($C) >= 300 }, 0.01), '  the copy is under way';
	my $lock;
	with_jobs_stopped(sub {
		my ($first) = sort @{ org_row_ids('contacts', $C) };
		is db_count("SELECT COUNT(*) FROM `$db`.contacts WHERE id = UNHEX('$first')"), 1,
		    '  (jobs process stopped) its first contact is already in the target';
		my $p = tenant_patch($admin, $C, 'contacts', uuid_of($first), { notes => "changed during the copy $R" });
		status_is $p, 200, '  a PATCH of that contact during the copy (captured for the catch-up) 200';
		$lock = hold_session("BEGIN; SELECT id FROM `$db`.contacts WHERE id = UNHEX('$first') FOR UPDATE");
		ok $lock->{ok}, '  a root session holds that row locked in the target';
		my $now = mig_status($C);
		is $now->{status}, 'copying', '  the migration is still copying' or diag brief($now);
		unlike sql1("SELECT IFNULL(notes, '') FROM `$db`.contacts WHERE id = UNHEX('$first')") // '', qr/changed during the copy/,
		    '  the change is not in the target yet: the catch-up will wait on the lock';
	});
	my $d = wait_mig($C, qr/^catching_up$/, 30);
	is $d->{status}, 'catching_up', 'abort at catching_up: the migration waits in catching_up' or diag brief($d);
	sleep 0.5;
	my $before = snapshot('opsd', $C);
	my $sums = checksums('opsd', $C);
	my $a = mig_abort($C);
	status_is $a, 202, 'abort at catching_up: POST /migration/abort 202';
	is j($a)->{status}, 'aborting', '  status aborting';
	release($lock);
	$d = abort_checks($C, 'abort at catching_up', $before, $sums, $db, wait => 8,
	    bug => sub { 'BUG (lost abort): POST /migration/abort answered 202 aborting, then the transition of the engine'
	    . ' step that was in flight (step_catching_up → verifying) overwrote "aborting"; a transition must apply only'
	    . ' from the status its step read (src/migration/state.c transition_fn). Seen before 95d6061.' });
	if (!$TERMINAL{ $d->{status} // '' }) {
		my $w = wait_mig($C, qr/^ready_for_cutover$/, 30);
		($before, $sums) = (snapshot('opsd', $C), checksums('opsd', $C));
		status_is mig_abort($C), 202, 'abort at catching_up: abort again (now ' . ($w->{status} // '?') . ') 202';
		abort_checks($C, 'abort at catching_up, second abort', $before, $sums, $db);
	}
}

note '---- 4c. abort at verifying (the target\'s offices locked) (' . elapsed() . ')';
{
	my $V = make_org('v', 1000, api => 3);
	my ($before, $sums) = (snapshot('opsd', $V), checksums('opsd', $V));
	# chunks of one row: the contacts' thousand chunks (copied after the
	# offices, smallest table first) leave a second or more between the
	# offices' copy and the verifying step to stop the jobs process in
	my $s = mig_start(orgId => $V->{id}, direction => 'shared_to_dedicated', chunkSize => 1);
	status_is $s, 202, 'abort at verifying: start 202';
	my $db = j($s)->{dbName};
	ok wait_until(30, sub { my $o = mig_tables($V)->{offices}; $o && $o->{copy_done} }, 0.005), '  the offices are copied';
	my $lock;
	with_jobs_stopped(sub {
		my $t = mig_tables($V);
		is $t->{offices}{verify_done} // 0, 0, '  (jobs process stopped) the offices are not verified yet';
		$lock = hold_session("LOCK TABLES `$db`.offices WRITE");
		ok $lock->{ok}, '  a root session holds the target\'s offices table locked';
	});
	ok wait_until(30, sub { my $t = mig_tables($V); ($t->{contacts}{verify_done} // 0) == 1 }, 0.05),
	    '  the verification reached the offices';
	sleep 0.5;
	my $d = mig_status($V);
	is $d->{status}, 'verifying', 'abort at verifying: the migration waits in verifying' or diag brief($d);
	my $a = mig_abort($V);
	status_is $a, 202, 'abort at verifying: POST /migration/abort 202';
	release($lock);
	abort_checks($V, 'abort at verifying', $before, $sums, $db);
}

note '---- 4d. abort at pending (the jobs process stopped) (' . elapsed() . ')';
{
	my $P = make_org('p', 200, api => 1);
	my ($before, $sums) = (snapshot('opsd', $P), checksums('opsd', $P));
	my $jobs = jobs_pid();
	ok $jobs && kill('STOP', $jobs), "SIGSTOP the jobs process ($jobs)";
	my $s = mig_start(orgId => $P->{id}, direction => 'shared_to_dedicated', chunkSize => 50);
	my $a;
	my $st;
	{
		local $@;
		eval {
			status_is $s, 202, 'abort at pending: start 202';
			sleep 0.7;
			$st = mig_status($P);
			is $st->{status}, 'pending', '  it stays pending while the engine is stopped';
			$a = mig_abort($P);
			1;
		};
	}
	kill 'CONT', $jobs;
	$a //= { status => 0, body => 'the abort was not sent', headers => {} };
	status_is $a, 202, 'abort at pending: POST /migration/abort 202';
	is j($a)->{status}, 'aborting', '  status aborting';
	abort_checks($P, 'abort at pending', $before, $sums, j($s)->{dbName} // 'none', wait => 10, always => 1,
	    bug => sub { 'BUG (stuck in aborting): the target database was never created, and cleaning it up must then'
	    . ' be a no-op (src/migration/cleanup.c clean_target); before 95d6061 connect_ends failed on the missing database'
	    . ' and step_aborting returned -1 on every pass, for ever.' });
}

# ============================================================ 5. legal hold
note '---- 5. legal hold (' . elapsed() . ')';
{
	my $H = make_org('h', 200, api => 2);
	my $comp = login_role('compliance');
	my ($held) = sort @{ org_row_ids('contacts', $H) };
	my $r = legal_hold($comp, entity => 'contacts', ids => [uuid_of($held)], hold => 1, reason => "Case $R");
	status_is $r, 200, 'legal hold: a contact of the org held';
	$r = legal_hold($comp, entity => 'orgs', ids => [$H->{id}], hold => 1, reason => "Regulator $R");
	status_is $r, 200, 'legal hold: the org held';
	my $n = db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($H) . "')");
	check_error(mig_start(orgId => $H->{id}, direction => 'shared_to_dedicated', chunkSize => 50), 409, 'legal_hold',
	    'legal hold: start without override');
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($H) . "')"), $n, '  nothing recorded';
	my $s = mig_start(orgId => $H->{id}, direction => 'shared_to_dedicated', chunkSize => 50, overrideLegalHold => 1,
	    reason => "court-approved move $R");
	status_is $s, 202, 'legal hold: start with overrideLegalHold 202';
	is j($s)->{overrideLegalHold}, JSON::PP::true, '  overrideLegalHold true in the status';
	my @ov = db_rows("SELECT action, payload FROM audit_events WHERE org_id = UNHEX('" . org_hex($H) . "') AND action = 'migration.legal_hold_override'");
	is scalar(@ov), 1, '  audit migration.legal_hold_override';
	like $ov[0]{payload} // '', qr/court-approved move/, '  with the reason';
	my $d = wait_mig($H, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', 'legal hold: ready_for_cutover' or diag brief($d);
	status_is mig_finalize($H), 202, 'legal hold: finalize 202';
	$d = wait_mig($H, qr/^completed$/, 60);
	is $d->{status}, 'completed', 'legal hold: completed' or diag brief($d);
	my $db = $d->{dbName};
	is org_count('opsd', 'contacts', $H), 0, '  the source holds none of its rows';
	is org_count($db, 'contacts', $H), 202, '  the target all of them';
	is j(http(GET => "/orgs/$H->{id}", session => $admin))->{legalHold}, JSON::PP::true, 'legal hold: GET /orgs/:id still legalHold true';
	is org_row($H)->{legal_hold}, 1, '  (orgs.legal_hold 1)';
	my ($row) = db_rows("SELECT legal_hold, legal_hold_reason FROM `$db`.contacts WHERE id = UNHEX('$held')");
	is_deeply [$row->{legal_hold}, $row->{legal_hold_reason}], [1, "Case $R"], 'legal hold: the held contact is held in the target, with its reason';
	my $g = tenant_get($admin, $H, 'contacts', uuid_of($held));
	is j($g)->{legalHold}, JSON::PP::true, 'legal hold: GET /orgs/:id/contacts/:id shows legalHold true' or diag $g->{body};
	my $c = compliance_record($comp, 'contacts', uuid_of($held));
	status_is $c, 200, 'legal hold: GET /compliance/records/contacts/:id 200 (the record lives in the dedicated database)';
	is j($c)->{legalHold}, JSON::PP::true, '  legalHold true';
	check_error(tenant_patch($admin, $H, 'contacts', uuid_of($held), { name => 'changed' }), 409, 'legal_hold',
	    'legal hold: the moved record still refuses a PATCH');
}
sub login_role($role) {
	state %s;
	return $s{$role} //= do { my $u = create_user(role => $role); login($u->{email}, $u->{password}) };
}

# ============================================================ 6. targets unreachable and lost
note '---- 6. a target refusing connections, a target lost before finalize (' . elapsed() . ')';
{
	my $U = make_org('u', 20);
	my $r = mig_start(orgId => $U->{id}, direction => 'shared_to_dedicated', targetUri => 'mysql://x:y@127.0.0.1:1/db');
	check_error($r, 400, 'target_unreachable', 'unreachable target: start');
	ok length(j($r)->{error}{details}{reason} // ''), '  details.reason says why: ' . (j($r)->{error}{details}{reason} // 'none');
	is db_count("SELECT COUNT(*) FROM migrations WHERE org_id = UNHEX('" . org_hex($U) . "')"), 0, '  no migrations row';
	is_deeply audit_actions($U), [], '  no migration.* audit event';
	is mig_status($U)->{httpStatus}, 404, '  GET /migration/status 404';
	ok !schema_exists('db'), '  no database created';

	my $L = make_org('l', 300, api => 2);
	my $pw = "MigPw${R}x9";
	ok defined mysql("CREATE USER 'mig'\@'localhost' IDENTIFIED BY '$pw'", "GRANT ALL ON `org_lost`.* TO 'mig'\@'localhost'"),
	    'lost target: a MariaDB user with rights on org_lost only';
	my $uri = "mysql://mig:$pw\@localhost/org_lost?socket=$SOCK";
	my $s = mig_start(orgId => $L->{id}, direction => 'shared_to_dedicated', chunkSize => 50, targetUri => $uri, dbName => 'org_lost');
	status_is $s, 202, 'lost target: start with that targetUri 202';
	unlike $s->{body}, qr/\Q$pw\E/, '  the password is not in the answer';
	my $d = wait_mig($L, qr/^ready_for_cutover$/, 60);
	is $d->{status}, 'ready_for_cutover', 'lost target: ready_for_cutover' or diag brief($d);
	ok schema_exists('org_lost'), '  org_lost exists';
	ok defined mysql("DROP USER 'mig'\@'localhost'"), 'lost target: DROP USER mig';
	my $before = snapshot('opsd', $L);
	my $f = mig_finalize($L);
	check_error($f, 400, 'target_unreachable', 'lost target: finalize');
	unlike $f->{body}, qr/\Q$pw\E/, '  no password in the answer';
	note 'finalize refusal: ' . (j($f)->{error}{details}{reason} // 'no details.reason');
	sleep 1;
	$d = mig_status($L);
	is $d->{status}, 'ready_for_cutover', 'lost target: still ready_for_cutover (nothing switched)' or diag brief($d);
	my $o = org_row($L);
	is_deeply [$o->{db_mode}, $o->{has_target}, $o->{write_frozen_until}], ['shared', 0, undef], '  orgs.db_mode shared, no dedicated target, not frozen';
	is count_of(audit_actions($L), 'migration.finalize_requested'), 0, '  no migration.finalize_requested audited';
	is_deeply snapshot('opsd', $L), $before, '  the source rows are intact';
	my $w = tenant_create($admin, $L, 'contacts', { name => "After lost $R" });
	status_is $w, 201, 'lost target: writes still work';
	is org_count('opsd', 'contacts', $L), 303, '  (in the shared database)';
	my $a = mig_abort($L, 'target lost');
	status_is $a, 202, 'lost target: abort 202';
	$d = wait_mig($L, qr/^aborted$/, 6);
	note "lost target, abort while the target is unreachable: status $d->{status}, error " . ($d->{error} // 'null');
	ok $d->{status} eq 'aborted' || ($d->{status} eq 'aborting' && ($d->{error} // '') =~ /target/),
	    'lost target: the abort either ends or waits in aborting with an error naming the target' or diag brief($d);
	unlike json_encode($d), qr/\Q$pw\E/, '  no password in the status';
	if ($d->{status} eq 'aborting') {
		ok schema_exists('org_lost'), '  (org_lost is still there: the engine cannot reach it to drop it)';
		ok defined mysql("CREATE USER 'mig'\@'localhost' IDENTIFIED BY '$pw'", "GRANT ALL ON `org_lost`.* TO 'mig'\@'localhost'"),
		    'lost target: the user is back';
		$d = wait_mig($L, qr/^aborted$/, 15);
		is $d->{status}, 'aborted', 'lost target: the abort completes once the target answers' or diag brief($d);
	}
	ok !schema_exists('org_lost'), 'lost target: org_lost dropped';
	is org_count('opsd', 'contacts', $L), 303, '  the source still has every row';
	my $all = audit_text() // '';
	ok index($all, $pw) < 0, '  the password is nowhere in audit_events';
	ok !find_in_logs({ password => $pw }), '  nor in any log';
}

# ============================================================ 7. metrics
note '---- 7. metrics (' . elapsed() . ')';
{
	my $m = metrics();
	is $m->{status}, 200, 'GET /metrics 200';
	cmp_ok $m->{completed} // 0, '>', 0, "opsd_migrations_total{status=\"completed\"} > 0 ($m->{completed})";
	cmp_ok $m->{rows} // 0, '>=', 1500 * 2 + 6000 + 600, "opsd_migration_rows_copied_total counts the copies ($m->{rows})";
}

# ============================================================ 8. throttling
note '---- 8. throttling with OPSD_MIGRATION_MAX_THREADS_RUNNING=0 (' . elapsed() . ')';
restart_stack(env => { OPSD_MIGRATION_MAX_THREADS_RUNNING => 0 });
$admin = admin_session(fresh => 1);
{
	my $T = make_org('t', 300, api => 1);
	my ($before, $sums) = (snapshot('opsd', $T), checksums('opsd', $T));
	my $s = mig_start(orgId => $T->{id}, direction => 'shared_to_dedicated', chunkSize => 50);
	status_is $s, 202, 'throttled: start 202';
	my $db = j($s)->{dbName};
	my $d = wait_mig($T, qr/^copying$/, 30);
	ok wait_until(10, sub { $d = mig_status($T); $d->{throttled} }, 0.2), 'throttled: status throttled true' or diag brief($d);
	like $d->{throttleReason} // '', qr/Threads_running/, "  throttleReason: " . ($d->{throttleReason} // 'null');
	sleep 2;
	$d = mig_status($T);
	is $d->{status}, 'copying', 'throttled: still copying after 2 s';
	is $d->{rowsCopied}, 0, '  no row copied';
	is $d->{rowsTotal}, 303, '  of 303 (301 contacts, a project, an office)';
	is $d->{etaSeconds}, undef, '  no ETA';
	cmp_ok $d->{rowsPerSecond} // -1, '==', 0, '  0 rows/s';
	ok schema_exists($db), "  the target database $db was created";
	my $a = mig_abort($T);
	status_is $a, 202, 'abort at copying (throttled): POST /migration/abort 202';
	abort_checks($T, 'abort at copying', $before, $sums, $db);
}

note 'total ' . elapsed();
finish();
