package OpsdTest::Migration;

# ---------------------------------------------------------------- tenant migration 
#
#   my $r = migration_start($admin, orgId => $org->{id}, direction => 'shared_to_dedicated',
#       reason => 'r', dryRun => 1);
#   my $s = migration_status($admin, $org->{id});     # GET /migration/status/:orgId
#   migration_abort($admin, orgId => $org->{id}, reason => 'r', timeout => 60);
#
# Each returns http()'s result. In migration_start's body dryRun and
# overrideLegalHold given as 1 or 0 become JSON booleans (any other value is
# sent as it is, so that bad input can be tried); in every body timeout => s
# is taken out and given to http(). Everything exported here is exported by
# OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use JSON::PP ();

our @EXPORT;
BEGIN { @EXPORT = qw(migration_start migration_status migration_history migration_finalize migration_abort) }
use OpsdTest qw(http uri_escape_all);

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
sub migration_finalize($s, %b) { my ($b, %o) = _body(0, %b); return http(POST => '/migration/finalize', json => $b, session => $s, %o) }
sub migration_abort($s, %b) { my ($b, %o) = _body(0, %b); return http(POST => '/migration/abort', json => $b, session => $s, %o) }

# GET /migration/status/:orgId; GET /migration/history[?orgId=] ($org_id
# undef: without the parameter). %o as for http() (timeout => s).
sub migration_status($s, $org_id, %o) { return http(GET => "/migration/status/$org_id", session => $s, %o) }
sub migration_history($s, $org_id = undef, %o) {
	return http(GET => '/migration/history' . (defined $org_id ? '?orgId=' . uri_escape_all($org_id) : ''), session => $s, %o);
}

1;
