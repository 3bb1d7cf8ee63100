#!/usr/bin/perl
# The local cluster (script/cluster: three Galera nodes, two opsd hosts) under
# a steady load spread over both hosts while a database node is killed with
# SIGKILL and rejoins by IST, then while an opsd host is killed and started
# again: every acknowledged write is on every node afterwards, the nodes hold
# the same rows, the audit chain verifies from both hosts, every queued mail
# (test mails of the load, a legal notice per user) reaches the SMTP peer
# exactly once although both hosts' jobs processes run. What the clients saw
# (failed answers, the longest stretch without a success, the slowest
# acknowledged write) and how long the node and the host took to come back
# are printed with note() for the README.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use List::Util qw(max sum0);
use OpsdTest;
use OpsdTest::Cluster;

my $ca = make_test_ca();
my $peer = start_smtp_peer(tls => $ca);
my $c = cluster_start(env => smtp_env($peer, $ca));
note sprintf 'cluster start: %.1f s; db node joins: %s', $c->{start}{elapsed},
    join(', ', map { "node $_->[0] $_->[1] s" } @{ $c->{join_s} });

my $TAG = run_tag();
my $admin = admin_session();
ok $admin->{cookie}, 'the superadmin signs in on host 1' or BAIL_OUT('no session');
is on_host(2, GET => '/auth/me', session => $admin)->{status}, 200, 'its session is valid on host 2';
my $org = create_org(name => "Cluster $TAG", slug => "cluster-" . lc $TAG);
ok $org->{id}, 'an org' or BAIL_OUT('no org');

# With a host list in OPSD_DB_URI a host fails over to another node: kill the
# node host 1 prefers. With one node per host, host 1 would be down while its
# node is: kill the node no host uses.
my $multi = (host_env(1)->{OPSD_DB_URI} // '') =~ m{@[^/]*,};
my $K = $multi ? 1 : node_count();
note $multi ? 'OPSD_DB_URI lists every node: killing node 1, host 1\'s first'
    : 'OPSD_DB_URI names one node per host: killing node ' . $K . ', which no host uses';

sub node_log($n) { return slurp("$c->{dir}/db$n/log/mysqld.log") // '' }
sub ist_count($n) { my @m = node_log($n) =~ /rsync IST completed on joiner|IST received/g; return scalar @m }

# ---------------------------------------------------------------- load, drills
my $load = cluster_load(pause => 0.02, steps => [
	{ label => 'me', method => 'GET', path => '/auth/me', session => $admin },
	{ label => 'create', method => 'POST', path => "/orgs/$org->{id}/contacts", session => $admin,
	  json => sub ($i) { { name => "Load $i $TAG", email => "load$i.$TAG\@example.test" } } },
	{ label => 'mail', method => 'POST', path => '/email/test', session => $admin, every => 3,
	  json => sub ($i) { { to => "load$i-$TAG\@allowed.test" } } },
]);
my %t = (load => time);
sleep 3;

my $ist_before = ist_count($K);
$t{kill_node} = time;
ok defined kill_node($K), "script/cluster kill-node $K";
ok wait_until(30, sub { (node_status($K == 1 ? 2 : 1, 'WSREP_CLUSTER_SIZE') // 0) == node_count() - 1 }, 0.1),
    'the others evict it: wsrep_cluster_size ' . (node_count() - 1);
$t{evicted} = time;
sleep 3;
$t{start_node} = time;
my $ist_s = start_node($K);
ok defined $ist_s, "script/cluster start-node $K: Synced again" . (defined $ist_s ? sprintf(' (%.1f s)', $ist_s) : '');
cmp_ok ist_count($K), '>', $ist_before, "  node $K caught up by IST (its log), not a full copy";
is node_status($_, 'WSREP_CLUSTER_SIZE'), node_count(), "  node $_: wsrep_cluster_size " . node_count() for 1 .. node_count();
$t{node_back} = time;
sleep 3;

$t{kill_host} = time;
ok defined kill_host(2), 'script/cluster kill-host 2 (opsd and nginx, SIGKILL)';
sleep 4;
$t{start_host} = time;
my $host_s = start_host(2);
ok defined $host_s, 'script/cluster start-host 2: ready again' . (defined $host_s ? sprintf(' (%.1f s)', $host_s) : '');
$t{host_back} = time;
sleep 4;
my $sum = $load->stop;
$t{end} = time;

# ---------------------------------------------------------------- what the clients saw
my @rows = @{ $sum->{rows} };
my %n;
$n{ $_->{label} }{ $_->{ok} ? 'ok' : 'failed' }++ for @rows;
note sprintf 'load: %d requests over %.0f s (%s)', scalar @rows, $t{end} - $t{load},
    join(', ', map { "$_ " . ($n{$_}{ok} // 0) . ' ok / ' . ($n{$_}{failed} // 0) . ' failed' } sort keys %n);
note "failed: $_" for @{ $sum->{failed} }[0 .. min9($#{ $sum->{failed} })];
sub min9($i) { return $i > 9 ? 9 : $i }
cmp_ok $n{create}{ok} // 0, '>', 50, 'the load made acknowledged writes throughout';
for my $h (1, 2) {
	cmp_ok scalar(grep { $_->{host} == $h && $_->{ok} } @rows), '>', 20, "  host $h answered its share";
}
my $gap = sub ($from, $to, $host = undef) {
	my @ok = map { $_->{t} } grep { $_->{ok} && $_->{t} >= $from && $_->{t} <= $to && (!$host || $_->{host} == $host) } @rows;
	my ($g, $last) = (0, $from);
	for my $x (sort { $a <=> $b } @ok, $to) { $g = $x - $last if $x - $last > $g; $last = $x }
	return $g;
};
my $lat = sub ($from, $to) { max(0, map { $_->{ms} } grep { $_->{label} eq 'create' && $_->{ok} && $_->{t} >= $from && $_->{t} <= $to } @rows) };
note sprintf 'node %d killed: longest stretch without a successful answer %.2f s (host 1 %.2f s, host 2 %.2f s); '
    . 'slowest acknowledged write %.0f ms; eviction seen %.1f s after the kill; IST rejoin %.1f s',
    $K, $gap->($t{kill_node}, $t{node_back}), $gap->($t{kill_node}, $t{node_back}, 1), $gap->($t{kill_node}, $t{node_back}, 2),
    $lat->($t{kill_node}, $t{node_back}), $t{evicted} - $t{kill_node}, $ist_s // -1;
note sprintf 'host 2 killed: longest stretch without a successful answer %.2f s (host 1 alone %.2f s); '
    . 'failed answers %d; host 2 ready again in %.1f s',
    $gap->($t{kill_host}, $t{host_back}), $gap->($t{kill_host}, $t{host_back}, 1),
    scalar(grep { !$_->{ok} && $_->{t} >= $t{kill_host} && $_->{t} <= $t{host_back} + 1 } @rows), $host_s // -1;
my @late_fail = grep { !$_->{ok} && $_->{t} > $t{host_back} + 1 } @rows;
ok !@late_fail, 'once both drills are over every request succeeds again, on both hosts'
    or diag join "\n", map { "$_->{label} host $_->{host}: $_->{status} $_->{body}" } @late_fail[0 .. min9($#late_fail)];
ok scalar(grep { $_->{ok} && $_->{host} == 2 && $_->{t} > $t{host_back} } @rows), '  host 2 serves again after its restart';

# ---------------------------------------------------------------- no acknowledged write lost
my @acked = map { norm_id($_->{id}) } grep { $_->{label} eq 'create' && $_->{ok} && $_->{id} } @rows;
is scalar(@acked), scalar(grep { $_->{label} eq 'create' && $_->{ok} } @rows), 'every acknowledged write answered its id';
my $in = join ',', map { "UNHEX('$_')" } @acked;
for my $nd (1 .. node_count()) {
	my %have = map { $_ => 1 } split /\n/, node_read($nd, "SELECT LOWER(HEX(id)) FROM contacts WHERE id IN ($in)") // '';
	my @lost = grep { !$have{$_} } @acked;
	ok !@lost, sprintf('node %d holds every acknowledged write (%d)', $nd, scalar @acked) or diag "lost: @lost[0 .. min9($#lost)]";
}

# ---------------------------------------------------------------- every job ran once
my @mail_ok = map { "load$_->{round}-$TAG\@allowed.test" } grep { $_->{label} eq 'mail' && $_->{ok} } @rows;
my @mail_unsure = map { "load$_->{round}-$TAG\@allowed.test" } grep { $_->{label} eq 'mail' && !$_->{ok} } @rows;
my $rc = {};
my $count = sub ($to) { $rc->{ lc $to } // 0 };
wait_until(90, sub { $rc = $peer->rcpt_counts; !grep { $count->($_) < 1 } @mail_ok }, 0.5);
sleep 2;   # a double would come now
$rc = $peer->rcpt_counts;
my @missing = grep { $count->($_) < 1 } @mail_ok;
my @double = grep { $count->($_) > 1 } @mail_ok, @mail_unsure;
ok !@missing, sprintf('every test mail acknowledged with 2xx reached the peer (%d)', scalar @mail_ok)
    or diag "missing: @missing[0 .. min9($#missing)]";
ok !@double, '  and none twice (the outbox delivered by one host only)'
    or diag join ', ', map { "$_ x" . $count->($_) } @double[0 .. min9($#double)];
note sprintf '%d test mails queued while a request failed (%d of them delivered, once)', scalar @mail_unsure,
    scalar grep { $count->($_) == 1 } @mail_unsure;

my @users = map { create_user(role => 'member', org => $org, email => "notice-$_-" . lc($TAG) . '@allowed.test') } 1 .. 4;
ok !grep({ !$_->{id} } @users), 'four users with allowlisted addresses';
my $pub = on_host(2, POST => '/legal', session => $admin,
    json => { type => 'terms', version => "c-$TAG", content => "Terms ($TAG)\n", notify => JSON::PP::true });
status_is $pub, 201, 'POST /legal notify:true on host 2';
wait_until(60, sub { $rc = $peer->rcpt_counts; !grep { $count->($_->{email}) < 1 } @users }, 0.5);
ok $count->($_->{email}) >= 1, "the legal notice reached $_->{email}" for @users;
sleep 3;   # both jobs processes had time to send it again
$rc = $peer->rcpt_counts;
ok !grep({ $count->($_->{email}) != 1 } @users), 'each user got the notice exactly once'
    or diag join ', ', map { "$_->{email} x" . $count->($_->{email}) } @users;

# ---------------------------------------------------------------- every node the same
# Once the outbox is quiet (every mail and notice sent): the same tables on every node, the
# same twice in a row (a delivery still recording itself would change them).
my @sums;
my $same = sub {
	@sums = map { my $s = node_read($_, 'CHECKSUM TABLE contacts, audit_events, email_outbox') // ''; $s =~ s/\S+\t//g; $s }
	    1 .. node_count();
	return !grep { $_ ne $sums[0] || $_ eq '' } @sums;
};
ok wait_until(30, sub { $same->() && do { my @was = @sums; sleep 1; $same->() && "@was" eq "@sums" } }, 0.5),
    'every node has the same contacts, audit_events and email_outbox (CHECKSUM TABLE)'
    or diag join "\n", @sums;

# ---------------------------------------------------------------- the audit chain
for my $h (1, 2) {
	my ($rc, $out, $err) = opsctl({ env => { OPSD_ENV_FILE => "$c->{dir}/host$h/opsd.env" } }, qw(audit verify --full));
	is $rc, 0, "opsctl audit verify --full with host ${h}'s configuration (node $h): the chain verifies"
	    or diag "$out\n$err";
}
my $v = on_host(2, GET => '/audit/verify', session => $admin);
is j($v)->{ok}, JSON::PP::true, 'GET /audit/verify on host 2: ok' or diag $v->{body};

# ---------------------------------------------------------------- status
my $st = cluster_cmd('status');
is $st->{rc}, 0, 'script/cluster status exits 0: every node and host up';
like $st->{out}, qr/^db node $_: 127\.0\.0\.1:\d+ wsrep_cluster_size=${\ node_count()} wsrep_local_state_comment=Synced$/m,
    "  db node $_: cluster size " . node_count() . ', Synced' for 1 .. node_count();
like $st->{out}, qr{^host $_: https://127\.0\.0\.1:\d+/ ready$}m, "  host $_: ready" for 1, 2;

cluster_finish();
