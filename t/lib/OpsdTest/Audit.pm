package OpsdTest::Audit;

# ---------------------------------------------------------------- audit_events
#
#   my @rows = audit_rows('email.sent', target_id => $id);   # every column, by name
#   unlike audit_text(), qr/\Q$secret/;                      # every event as one text
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use Test::More ();

our @EXPORT;
BEGIN { @EXPORT = qw(audit_rows audit_text) }
use OpsdTest qw(var_dir run_cmd mysql);

# audit_events rows of one action (all columns the table has, by name; NULL
# as undef); target_id => ID keeps those about one target.
sub audit_rows($action, %o) {
	my $sock = var_dir() . '/run/mysqld.sock';
	my $where = 'action = ' . OpsdTest::_sql_str($action);
	if (defined $o{target_id}) {
		my $t = $o{target_id};
		$where .= ' AND (target_id = ' . OpsdTest::_sql_str($t) . (($t =~ s/-//gr) =~ /^[0-9a-fA-F]{32}$/
		    ? " OR HEX(target_id) = '" . uc($t =~ s/-//gr) . "'" : '') . ')';
	}
	my $r = run_cmd(cmd => ['mariadb', '--no-defaults', "--socket=$sock", '-uroot', '-B', 'opsd', '-e',
	    "SELECT * FROM audit_events WHERE $where ORDER BY 1"], timeout => 60, tag => 'mysql-audit');
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

1;
