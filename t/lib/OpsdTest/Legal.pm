package OpsdTest::Legal;

# ---------------------------------------------------------------- legal documents 
#
#   my $r = legal_publish($admin, type => 'privacy', version => 'v1', content => $text);
#   my $s = legal_status($member);                  # GET /legal/acceptance/status
#   my $a = legal_accept($member, 'privacy', 'v1');  # POST /legal/acceptance
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use Exporter qw(import);
use JSON::PP ();

our @EXPORT;
BEGIN { @EXPORT = qw(legal_publish legal_accept legal_status legal_get legal_versions) }
use OpsdTest qw(http);

# POST /legal as $session with the given fields (booleans as JSON::PP true/
# false; notify => 1 is turned into true). bearer => T instead of a session.
sub legal_publish($session, %body) {
	my %o;
	$o{bearer} = delete $body{bearer} if exists $body{bearer};
	$body{notify} = $body{notify} ? JSON::PP::true : JSON::PP::false
	    if exists $body{notify} && !ref $body{notify} && $body{notify} =~ /^[01]?$/;
	return http(POST => '/legal', json => \%body, ($session ? (session => $session) : ()), %o);
}

# POST /legal/acceptance {type, version}.
sub legal_accept($session, $type, $version, %o) {
	return http(POST => '/legal/acceptance', json => { type => $type, version => $version },
	    session => $session, %o);
}

# GET /legal/acceptance/status.
sub legal_status($session, %o) {
	return http(GET => '/legal/acceptance/status', ($session ? (session => $session) : ()), %o);
}

# GET /legal/:type (anonymous unless session => ...).
sub legal_get($type, %o) { return http(GET => "/legal/$type", %o) }

# The items of GET /legal/:type/versions ([] when it is not 200).
sub legal_versions($type) {
	my $r = http(GET => "/legal/$type/versions");
	return [] unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && ref $r->{json}{items} eq 'ARRAY';
	return $r->{json}{items};
}

1;
