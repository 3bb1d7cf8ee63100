package OpsdTest::Audit;

# ---------------------------------------------------------------- audit_events
#
#   my @rows = audit_rows('email.sent', target_id => $id);   # every column, by name
#   unlike audit_text(), qr/\Q$secret/;                      # every event as one text
#   my $n = audit_count('compliance.%');                      # LIKE with a %
#   my @ev = audit_payloads('compliance.exported');           # rows with p, the payload decoded
#   my ($r, $v) = audit_verify($session);                     # GET /audit/verify
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use Test::More ();

our @EXPORT;
BEGIN { @EXPORT = qw(audit_rows audit_text audit_count audit_payloads audit_payload audit_verify) }
use OpsdTest qw(var_dir run_cmd mysql db_rows db_count json_decode http j admin_session);

# audit_events rows of one action (all columns the table has, by name; NULL
# as undef); target_id => ID keeps those about one target. The binary uuid
# columns also come as uppercase hex in actor_hex and org_hex: the client's
# batch output escapes bytes such as tab, newline, NUL and backslash, so the
# raw column cannot be compared byte for byte.
sub audit_rows($action, %o) {
	my $sock = OpsdTest::mysql_sock();
	my $where = 'action = ' . OpsdTest::_sql_str($action);
	if (defined $o{target_id}) {
		my $t = $o{target_id};
		$where .= ' AND (target_id = ' . OpsdTest::_sql_str($t) . (($t =~ s/-//gr) =~ /^[0-9a-fA-F]{32}$/
		    ? " OR HEX(target_id) = '" . uc($t =~ s/-//gr) . "'" : '') . ')';
	}
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-B', 'opsd', '-e',
	    "SELECT *, HEX(actor_id) AS actor_hex, HEX(org_id) AS org_hex FROM audit_events WHERE $where ORDER BY 1"], timeout => 60, tag => 'mysql-audit');
	if ($r->{rc} != 0) {
		Test::More::diag("audit_rows($action) failed: $r->{err}");
		return ();
	}
	my ($head, @lines) = split /\n/, $r->{out};
	return () unless defined $head;
	my @names = split /\t/, $head;
	my @rows;
	for my $line (@lines) {
		my @v = split /\t/, $line, -1;
		my %row;
		@row{@names} = map { $_ eq 'NULL' ? undef : $_ } @v;
		push @rows, \%row;
	}
	return @rows;
}

# Every audit event as one text (actor_label, action, target_type,
# target_id, org id in hex, ip, request_id, payload), to search for strings
# that must not be there.
sub audit_text() {
	return mysql("SELECT CONCAT_WS('|', IFNULL(actor_label,''), action, IFNULL(target_type,''), IFNULL(target_id,''),"
	    . " IFNULL(LOWER(HEX(org_id)),''), IFNULL(ip,''), IFNULL(request_id,''), IFNULL(payload,'')) FROM audit_events ORDER BY seq");
}

# audit_count($action, $where): the number of events of an action (a LIKE
# pattern when it has a %; undef: every event) for which the SQL $where
# holds too; -1 when the query fails.
sub audit_count($action = undef, $where = undef) {
	my @w;
	push @w, 'action ' . ($action =~ /%/ ? 'LIKE ' : '= ') . OpsdTest::_sql_str($action) if defined $action;
	push @w, "($where)" if defined $where;
	return db_count('SELECT COUNT(*) FROM audit_events' . (@w ? ' WHERE ' . join(' AND ', @w) : ''));
}

# The events of an action (a LIKE pattern when it has a %) in seq order:
# seq, action, target_type, target_id, org (LOWER(HEX(org_id))), request_id,
# payload, and p, the payload decoded by audit_payload().
sub audit_payloads($action) {
	my $op = $action =~ /%/ ? 'LIKE' : '=';
	return map { { %$_, p => audit_payload($_) } }
	    db_rows('SELECT seq, action, target_type, target_id, LOWER(HEX(org_id)) AS org, request_id, payload'
	    . " FROM audit_events WHERE action $op " . OpsdTest::_sql_str($action) . ' ORDER BY seq');
}

# An event's payload decoded ({} when it is not JSON).
sub audit_payload($e) { return json_decode($e->{payload} // '') // {} }

# GET /audit/verify as $session (the superadmin's by default): ($res, its
# JSON object).
sub audit_verify($session = undef) {
	my $r = http(GET => '/audit/verify', session => $session // admin_session());
	return ($r, j($r));
}

1;
