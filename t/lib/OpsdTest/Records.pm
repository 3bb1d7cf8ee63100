package OpsdTest::Records;

# ---------------------------------------------------------------- tenant records and compliance 
#
#   my $r = tenant_create($s, $org_id, 'contacts', { name => 'N', email => 'e@x.test' });
#   my @items = tenant_list_all($s, $org_id, 'contacts', limit => 1);   # every page
#   my $h = legal_hold($s, entity => 'contacts', ids => [$id], hold => 1, reason => 'case');
#   my $x = strip_pii($s, entity => 'contacts', ids => [$id], reason => 'DSR');
#   my $row = db_row('contacts', $id);   # the MariaDB row, for "unchanged" checks (OpsdTest)
#
# Everything exported here is exported by OpsdTest too (`use OpsdTest;`).

use v5.36;
use utf8;
use Carp qw(croak);
use Encode qw(encode_utf8);
use Exporter qw(import);
use JSON::PP ();
use Test::More ();

our @EXPORT;
BEGIN {
	@EXPORT = qw(tenant_create tenant_get tenant_patch tenant_delete tenant_list tenant_list_all
	    legal_hold strip_pii compliance_record
	    batch_archive compliance_export org_export parse_csv bulk_insert_contacts set_created_at org_row_ids
	    results want_results counts_are pii pii_values pii_hits pii_in_logs contact);
}
use OpsdTest qw(http mysql uuid_hex uri_escape_all json_encode j status_is norm_id sensitive find_in_logs
	run_tag run_num);

sub _tenant_path($org, $entity, $id = undef) {
	$org = $org->{id} if ref $org eq 'HASH';
	return "/orgs/$org/$entity" . (defined $id ? "/$id" : '');
}
sub tenant_create($s, $org, $entity, $fields, %o) {
	return http(POST => _tenant_path($org, $entity), json => $fields, session => $s, %o);
}
sub tenant_get($s, $org, $entity, $id, %o) { return http(GET => _tenant_path($org, $entity, $id), session => $s, %o) }
sub tenant_patch($s, $org, $entity, $id, $fields, %o) {
	return http(PATCH => _tenant_path($org, $entity, $id), json => $fields, session => $s, %o);
}
sub tenant_delete($s, $org, $entity, $id, %o) { return http(DELETE => _tenant_path($org, $entity, $id), session => $s, %o) }
# GET /orgs/:orgId/<entity>?limit=&cursor= (query => {limit, cursor}).
sub tenant_list($s, $org, $entity, %q) {
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } sort keys %q;
	return http(GET => _tenant_path($org, $entity) . ($qs ? "?$qs" : ''), session => $s);
}
# Follows nextCursor from the first page to the end (at most max_pages).
# Returns {items => [...], pages => n, errors => [...], max_page_items => n}.
sub tenant_list_all($s, $org, $entity, %o) {
	my %r = (items => [], pages => 0, errors => [], max_page_items => 0);
	my ($cursor, %seen);
	while ($r{pages} < ($o{max_pages} // 100)) {
		my $p = tenant_list($s, $org, $entity, limit => $o{limit}, cursor => $cursor);
		$r{pages}++;
		my $j = ref $p->{json} eq 'HASH' ? $p->{json} : {};
		if ($p->{status} != 200 || ref $j->{items} ne 'ARRAY') {
			push @{ $r{errors} }, "page $r{pages}: $p->{status} " . OpsdTest::_short($p->{body});
			last;
		}
		my $n = @{ $j->{items} };
		$r{max_page_items} = $n if $n > $r{max_page_items};
		push @{ $r{items} }, @{ $j->{items} };
		$cursor = $j->{nextCursor};
		last if !defined $cursor;
		if ($seen{$cursor}++) { push @{ $r{errors} }, "page $r{pages}: nextCursor repeats"; last }
	}
	return \%r;
}

sub _bool_fields(%b) {
	for my $k (qw(hold dryRun)) {
		$b{$k} = $b{$k} ? JSON::PP::true : JSON::PP::false
		    if exists $b{$k} && defined $b{$k} && !ref $b{$k} && $b{$k} =~ /^[01]?$/;
	}
	return \%b;
}
# POST /compliance/legal-hold with the given fields (hold => 1/0 becomes a
# JSON boolean). POST /compliance/strip-pii likewise.
sub legal_hold($s, %body) { return http(POST => '/compliance/legal-hold', json => _bool_fields(%body), session => $s) }
sub strip_pii($s, %body) { return http(POST => '/compliance/strip-pii', json => _bool_fields(%body), session => $s) }
sub compliance_record($s, $entity, $id) { return http(GET => "/compliance/records/$entity/$id", session => $s) }

# ---------------------------------------------------------------- answers of the compliance batch routes
#
#   is_deeply results($r), want_results($c1->{id} => 'held'), 'result held';
#   counts_are($r, { stripped => 1, legal_hold => 1 }, 'counts');
#   counts_are($r, { archived => 2 }, 'counts', keys => [qw(archived already_archived legal_hold not_found)]);

# {id => result} of a legal-hold, strip-pii or batch-archive answer (ids as
# norm_id()), and the same shape from id => result pairs.
sub results($r) { return { map { (norm_id($_->{id}) => $_->{result}) } grep { ref eq 'HASH' } @{ j($r)->{results} // [] } } }
sub want_results(%w) { return { map { (norm_id($_) => $w{$_}) } keys %w } }

# A test: the answer's counts are $want, a key it leaves out counting 0.
# Without keys (legal-hold, strip-pii: counts has the results that occurred)
# every other key of counts must be 0; keys => [...] (batch-archive: always
# these keys) counts must have exactly these keys, each present.
sub counts_are($r, $want, $name, %o) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $c = j($r)->{counts};
	my %got = ref $c eq 'HASH' ? %$c : ();
	my @bad;
	if (my $keys = $o{keys}) {
		my %known = map { $_ => 1 } @$keys;
		@bad = ((grep { ($got{$_} // -1) != ($want->{$_} // 0) } @$keys), grep { !$known{$_} } keys %got, keys %$want);
	} else {
		@bad = grep { ($got{$_} // 0) != ($want->{$_} // 0) } keys %got, keys %$want;
	}
	return Test::More::ok(ref $c eq 'HASH' && !@bad, $name)
	    || Test::More::diag('counts: ' . json_encode($c) . ' want ' . json_encode($want) . ' (bad: '
	    . join(' ', sort keys %{ { map { $_ => 1 } @bad } }) . ')');
}

# ---------------------------------------------------------------- PII the test writes
#
#   my $org = create_org(name => pii('org name', "Northwind $R"));
#   my @hits = pii_hits(audit_text());   # labels of the values found in it
#   my @log = pii_in_logs();             # "log/<file>: <label>" (find_in_logs)
#
# pii($label, $value) registers $value with sensitive() (so t/99-logs.t
# looks for it in the whole run's logs) and keeps it in this test's table,
# whatever its length; returns $value. pii_values(%o) is that table {label =>
# value}; min_length => N leaves out values shorter than N characters (one
# too common to search for, such as an address that is a lone quote; t/99
# leaves out values under 6 too), labels => qr/.../ keeps the matching
# labels. pii_hits($text, %o) and pii_in_logs(%o) search the values (as
# UTF-8) in a text of bytes and in log/, with the same options.

my %PII;

sub pii($label, $value) {
	$PII{$label} = $value;
	return sensitive($label, $value);
}

sub pii_values(%o) {
	my $min = $o{min_length} // 1;
	return { map { ($_ => $PII{$_}) } grep { defined $PII{$_} && length $PII{$_} >= $min
	    && (!$o{labels} || $_ =~ $o{labels}) } keys %PII };
}

sub pii_hits($text, %o) {
	my $v = pii_values(%o);
	return grep { index($text // '', encode_utf8($v->{$_})) >= 0 } sort keys %$v;
}

sub pii_in_logs(%o) {
	my $v = pii_values(%o);
	return find_in_logs({ map { ($_ => encode_utf8($v->{$_})) } keys %$v });
}

# contact($session, $org, $tag, %fields): POST /orgs/:orgId/contacts with a
# distinctive value in every field, each registered with pii() as "<tag>
# <field>": name "Contact <Tag> <R>", email "<tag>.<R>@contacts.example",
# phone "+44 20 7946 <N> ext <tag>", address "<N> <Tag> Street <R>, Leith",
# notes "Notes on <Tag>, Grüße <R>" (R and N: run_tag() and run_num()).
# %fields replace or add fields (undef leaves one out). Tests "contact <tag>
# created" (201); returns the answer's JSON with given => {the fields sent}.
sub contact($s, $org, $tag, %fields) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($R, $N) = (run_tag(), run_num());
	my %f = (
		name => "Contact \u$tag $R",
		email => "$tag.$R\@contacts.example",
		phone => "+44 20 7946 $N ext $tag",
		address => "$N \u$tag Street $R, Leith",
		notes => "Notes on \u$tag, Grüße $R",
		%fields,
	);
	delete $f{$_} for grep { !defined $f{$_} } keys %f;
	pii("$tag $_", $f{$_}) for sort keys %f;
	my $r = tenant_create($s, $org, 'contacts', \%f);
	status_is($r, 201, "contact $tag created");
	return { %{ j($r) }, given => \%f };
}

# ---------------------------------------------------------------- archive and exports
#
#   my $r = batch_archive($s, entity => 'contacts', ids => [$id], reason => 'r', dryRun => 1);
#   my $x = compliance_export($s, 'contacts', $id);           # GET /compliance/export?entity=&id=
#   my $e = org_export($s, 'contacts', orgId => $org_id, format => 'csv');
#   my $csv = parse_csv($e->{body});   # {header, rows, records, quoted, errors, ...}
#   my $n = bulk_insert_contacts($org, 1200, tag => 'x', days_ago => 0);
#   set_created_at('contacts', $id, 400);   # created_at (and updated_at) 400 days back, UTC


# POST /compliance/batch-archive (dryRun => 1/0 becomes a JSON boolean).
sub batch_archive($s, %body) {
	return http(POST => '/compliance/batch-archive', json => _bool_fields(%body), session => $s);
}

# GET /compliance/export?entity=&id= (undef leaves a parameter out).
sub compliance_export($s, $entity, $id, %o) {
	my %q = (entity => $entity, id => $id);
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } qw(entity id);
	return http(GET => '/compliance/export' . ($qs ? "?$qs" : ''), session => $s, %o);
}

# GET /export/:entity?orgId=&format= (undef leaves a parameter out) on its own
# connection with a long timeout (the body is streamed, possibly large).
sub org_export($s, $entity, %q) {
	my $timeout = delete $q{timeout} // 180;
	my $qs = join '&', map { "$_=" . uri_escape_all($q{$_}) } grep { defined $q{$_} } sort keys %q;
	return http(GET => "/export/$entity" . ($qs ? "?$qs" : ''), ($s ? (session => $s) : ()), fresh => 1,
	    timeout => $timeout);
}

# A strict RFC 4180 parser of a CSV body (bytes). The body must be UTF-8;
# records end in CRLF (a lone CR or LF outside quotes is an error); a field
# is either unquoted (no comma, quote, CR or LF in it) or quoted with inner
# quotes doubled, and a quoted field must be followed by a comma, a CRLF or
# the end. Returns {header => [...], rows => [[...], ...] (data rows, Perl
# character strings), quoted => [[0/1 per field], ...] (header row first),
# records => [{header name => value}, ...], errors => [...], bom => 0/1,
# trailing_crlf => 0/1, record_count => n (header included)}. Parsing stops
# at the first error.
sub parse_csv($bytes) {
	require Encode;
	my %r = (header => [], rows => [], quoted => [], records => [], errors => [], bom => 0, trailing_crlf => 0);
	my $s = eval { Encode::decode('UTF-8', $bytes // '', Encode::FB_CROAK() | Encode::LEAVE_SRC()) };
	unless (defined $s) {
		push @{ $r{errors} }, 'the body is not valid UTF-8';
		return \%r;
	}
	$r{bom} = $s =~ /^\x{FEFF}/ ? 1 : 0;
	$r{trailing_crlf} = $s =~ /\r\n\z/ ? 1 : 0;
	my @all;
	my $len = length $s;
	pos($s) = 0;
	RECORD: while (pos($s) < $len) {
		my (@f, @q);
		my $rec = @all + 1;
		while (1) {
			if ($s =~ /\G"/gc) {
				my $v = '';
				while (1) {
					if ($s =~ /\G([^"]+)/gc) { $v .= $1 }
					if ($s =~ /\G""/gc) { $v .= '"'; next }
					if ($s =~ /\G"/gc) { last }
					push @{ $r{errors} }, "record $rec field " . (@f + 1) . ': unterminated quoted field';
					last RECORD;
				}
				push @f, $v;
				push @q, 1;
			} else {
				$s =~ /\G([^,"\r\n]*)/gc;
				push @f, $1;
				push @q, 0;
			}
			if ($s =~ /\G,/gc) { next }
			if ($s =~ /\G\r\n/gc || pos($s) >= $len) { last }
			my $at = pos($s);
			my $c = substr($s, $at, 1);
			push @{ $r{errors} }, sprintf('record %d field %d: unexpected %s at character %d (near %s)', $rec, scalar @f,
			    $c eq "\r" ? 'CR without LF' : $c eq "\n" ? 'LF without CR' : $c eq '"' ? 'quote in an unquoted field'
			    : "character U+" . sprintf('%04X', ord $c), $at, json_encode(substr($s, $at > 20 ? $at - 20 : 0, 40)));
			last RECORD;
		}
		push @all, [\@f, \@q];
	}
	$r{record_count} = @all;
	return \%r unless @all;
	$r{header} = $all[0][0];
	$r{quoted} = [map { $_->[1] } @all];
	$r{rows} = [map { $_->[0] } @all[1 .. $#all]];
	my @h = @{ $r{header} };
	for my $i (0 .. $#{ $r{rows} }) {
		my $row = $r{rows}[$i];
		if (@$row != @h) {
			push @{ $r{errors} }, sprintf('data row %d has %d fields, the header %d', $i + 1, scalar @$row, scalar @h);
			next;
		}
		my %rec;
		@rec{@h} = @$row;
		push @{ $r{records} }, \%rec;
	}
	return \%r;
}

# Sets created_at (and updated_at, so both stay in UTC) of one row to
# UTC_TIMESTAMP(3) - INTERVAL $days DAY. Returns true when one row changed.
sub set_created_at($table, $id, $days) {
	my $hex = uuid_hex($id) // return 0;
	my $out = mysql("UPDATE `$table` SET created_at = UTC_TIMESTAMP(3) - INTERVAL " . ($days + 0) . ' DAY,'
	    . ' updated_at = UTC_TIMESTAMP(3) - INTERVAL ' . ($days + 0) . " DAY WHERE id = UNHEX('$hex')",
	    'SELECT ROW_COUNT()') // return 0;
	return $out =~ /^1$/m ? 1 : 0;
}

# Inserts $n contacts into an org straight through MariaDB (INSERT ... SELECT
# over seq_1_to_N of the Sequence engine, or a recursive CTE without it), ids
# from UNHEX(REPLACE(UUID(),'-','')). Values: name "Bulk Contact <i>, \"Jr.\"
# <tag>", email bulk<i>.<tag>@bulk.example, phone "+1 555 <i>", every third
# an address with a CRLF inside, every fifth a UTF-8 note ("Ünicode note
# <i>"); created_at = updated_at = now - days_ago days (+ i ms). Returns the
# number of rows of the org afterwards (undef when the insert failed).
sub bulk_insert_contacts($org, $n, %o) {
	my $org_hex = uuid_hex(ref $org eq 'HASH' ? $org->{id} : $org) // croak 'bulk_insert_contacts: org id';
	my $tag = $o{tag} // 'bulk';
	croak 'bulk_insert_contacts: tag must be [A-Za-z0-9]' unless $tag =~ /^[A-Za-z0-9]+$/;
	$n = int $n;
	my $days = int($o{days_ago} // 0);
	my $at = "UTC_TIMESTAMP(3) - INTERVAL $days DAY + INTERVAL seq * 1000 MICROSECOND";
	my $cols = 'id, org_id, name, email, phone, address, notes, created_at, updated_at';
	my $select = "SELECT UNHEX(REPLACE(UUID(), '-', '')), UNHEX('$org_hex'),"
	    . " CONCAT('Bulk Contact ', seq, ', \"Jr.\" $tag'), CONCAT('bulk', seq, '.$tag\@bulk.example'),"
	    . " CONCAT('+1 555 ', LPAD(seq, 4, '0')),"
	    . " IF(seq % 3 = 0, CONCAT(seq, ' Long Road', CHAR(13), CHAR(10), 'Townsville'), NULL),"
	    . " IF(seq % 5 = 0, CONCAT(CONVERT(UNHEX('C39C') USING utf8mb4), 'nicode note ', seq), NULL),"
	    . " $at, $at";
	my $has_seq = mysql("SELECT COUNT(*) FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'"
	    . " AND SUPPORT IN ('YES', 'DEFAULT')") // '';
	my $ok;
	if ($has_seq =~ /^1$/m) {
		$ok = mysql("INSERT INTO contacts ($cols) $select FROM seq_1_to_$n");
	} else {
		$ok = mysql("SET SESSION max_recursive_iterations = " . ($n + 10),
		    "INSERT INTO contacts ($cols) $select FROM (WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL"
		    . " SELECT seq + 1 FROM s WHERE seq < $n) SELECT seq FROM s) AS q");
	}
	return undef unless defined $ok;
	my $c = mysql("SELECT COUNT(*) FROM contacts WHERE org_id = UNHEX('$org_hex')") // return undef;
	chomp $c;
	return $c + 0;
}

# The ids (lower-case hex, no dashes) of an org's rows of a tenant table.
sub org_row_ids($table, $org) {
	my $org_hex = uuid_hex(ref $org eq 'HASH' ? $org->{id} : $org) // return [];
	my $out = mysql("SELECT LOWER(HEX(id)) FROM `$table` WHERE org_id = UNHEX('$org_hex') ORDER BY id") // return [];
	return [grep { length } split /\n/, $out];
}

1;
