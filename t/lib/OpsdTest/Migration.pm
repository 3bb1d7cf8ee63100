package OpsdTest::Migration;

# ---------------------------------------------------------------- tenant migration 
#
#   my $r = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated',
#       reason => 'r', dryRun => 1);
#   my $s = migration_status($admin, $org->{id});     # GET /migration/status/:orgId
#   migration_abort($admin, orgId => $org->{id}, reason => 'r', timeout => 60);
#   my $l = migration_list($admin, status => 'aborted', limit => 2);   # GET /migration?…
#
# Each returns http()'s result. In the bodies of migration_start and
# migration_finalize dryRun and overrideLegalHold given as 1 or 0 become JSON
# booleans (any other value is sent as it is, so that bad input can be
# tried); in every body timeout => s is taken out and given to http().
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use JSON::PP ();

our @EXPORT;
BEGIN { @EXPORT = qw(migration_start migration_status migration_history migration_finalize migration_abort migration_list) }
BEGIN { push @EXPORT, qw(migration_wait migration_counts db_exists org_rows_in org_snapshot_in org_count_in) }
use OpsdTest qw(http uri_escape_all);
use OpsdTest qw(mysql db_count org_hex);
use Time::HiRes ();

sub _body($bools, %b) {
	my %o;
	$o{timeout} = delete $b{timeout} if exists $b{timeout};
	for my $k ($bools ? qw(dryRun overrideLegalHold) : ()) {
		$b{$k} = $b{$k} ? JSON::PP::true : JSON::PP::false if exists $b{$k} && !ref $b{$k} && ($b{$k} // '') =~ /^[01]$/;
	}
	return (\%b, %o);
}

# POST /migration/start, /migration/finalize, /migration/abort with %body.
sub migration_start($s, %b) { my ($b, %o) = _body(1, %b); return http(POST => '/migration/start', json => $b, session => $s, %o) }
sub migration_finalize($s, %b) { my ($b, %o) = _body(1, %b); return http(POST => '/migration/finalize', json => $b, session => $s, %o) }
sub migration_abort($s, %b) { my ($b, %o) = _body(0, %b); return http(POST => '/migration/abort', json => $b, session => $s, %o) }

# GET /migration/status/:orgId; GET /migration/history[?orgId=] ($org_id
# undef: without the parameter). %o as for http() (timeout => s).
sub migration_status($s, $org_id, %o) { return http(GET => "/migration/status/$org_id", session => $s, %o) }
sub migration_history($s, $org_id = undef, %o) {
	return http(GET => '/migration/history' . (defined $org_id ? '?orgId=' . uri_escape_all($org_id) : ''), session => $s, %o);
}

# ---------------------------------------------------------------- waiting, both ends
#
#   my $d = migration_wait($admin, $org->{id}, qr/^ready_for_cutover$/, 60);
#   is $d->{status}, 'ready_for_cutover';
#   my $before = org_snapshot_in('opsd', $org);      # every row of the org, every column
#   is org_count_in($d->{dbName}, 'contacts', $org), 300;
#   my $m = migration_counts();                       # {failed => 0, ...} from /metrics

# Polls GET /migration/status/:orgId until the status matches $want, is
# terminal (completed, aborted, failed) or $timeout seconds have passed:
# the last status document ({httpStatus, body} when it was not a 200).
sub migration_wait($s, $org_id, $want, $timeout) {
	my $end = Time::HiRes::time() + $timeout;
	while (1) {
		my $r = migration_status($s, $org_id, timeout => 20);
		my $d = $r->{status} == 200 && ref $r->{json} eq 'HASH' ? $r->{json} : { httpStatus => $r->{status}, body => $r->{body} };
		my $st = $d->{status} // '';
		return $d if $st =~ $want || $st =~ /^(?:completed|aborted|failed)$/ || Time::HiRes::time() > $end;
		Time::HiRes::sleep(0.05);
	}
}

# opsd_migrations_total by status, as GET /metrics shows it now (every
# status has its line, at 0 before its first migration).
sub migration_counts() {
	my $r = http(GET => '/metrics');
	return { map { /^opsd_migrations_total\{status="([a-z_]+)"\} (\d+)$/ ? ($1 => $2 + 0) : () } split /\n/, $r->{body} // '' };
}

# Whether MariaDB has a database of that name.
sub db_exists($db) {
	return db_count('SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ' . OpsdTest::_sql_str($db)) == 1;
}

# The org's rows of db.table, every column (binary ones in hex), as
# {id hex => the row's text}; undef when the query fails (a table or
# database that is not there). The columns are the shared database's
# (sql/tenant/ gives every tenant database the same ones).
sub org_rows_in($db, $table, $org) {
	state %cols;
	$cols{$table} //= [map { [split /\t/] } grep { length } split /\n/,
	    mysql("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'opsd'"
	    . " AND TABLE_NAME = " . OpsdTest::_sql_str($table) . ' ORDER BY ORDINAL_POSITION') // ''];
	my $list = join ', ', map { $_->[1] =~ /binary|blob/ ? "LOWER(HEX(`$_->[0]`))" : "IFNULL(`$_->[0]`, '<NULL>')" } @{ $cols{$table} };
	my $out = mysql("SELECT LOWER(HEX(id)), $list FROM `$db`.`$table` WHERE org_id = UNHEX('" . org_hex($org) . "') ORDER BY id")
	    // return undef;
	return { map { my ($id, $rest) = split /\t/, $_, 2; ($id => $rest) } grep { length } split /\n/, $out };
}

# The org's rows of every tenant table in db: {contacts => {...}, projects
# => {...}, offices => {...}} as org_rows_in gives them.
sub org_snapshot_in($db, $org) { return { map { $_ => org_rows_in($db, $_, $org) } qw(contacts projects offices) } }

# How many rows of the org db.table holds (-1 when the query fails).
sub org_count_in($db, $table, $org) {
	return db_count("SELECT COUNT(*) FROM `$db`.`$table` WHERE org_id = UNHEX('" . org_hex($org) . "')");
}

# GET /migration with %q as the query (status, cursor, limit; each value
# percent-encoded, in key order).
sub migration_list($s, %q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_} // '') } sort keys %q;
	return http(GET => '/migration' . ($qs eq '' ? '' : "?$qs"), session => $s);
}

1;
