#!/usr/bin/perl
# Every plugin method, under the real Proxmox storage code, with jdss
# replaced by t/jdss-recorder: the commands built (argument lists, the
# storage and its section passed on), the parsing of jdss's JSON, and
# errors that reach the user as one line.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;
use JSON::PP;

use RealPVE;
use JdssTest;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $dir = tempdir(CLEANUP => 1);
$ENV{JDSS_RECORDER_DIR} = $dir;
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = "$FindBin::Bin/jdss-recorder";
$PVE::Storage::Custom::OpenEJovianDSS::Common::AGENT_SOCKET = "$dir/no-agent.sock";
$PVE::Storage::Custom::OpenEJovianDSSPlugin::LOCK_DIR = "$dir/lock";

my $scfg = { type => 'joviandss', pool_name => 'Pool-7', config => '/etc/pve/j7.yaml',
    multipath => 1, shared => 1, content => { images => 1, rootdir => 1 } };

sub replies {
    open(my $fh, '>', "$dir/replies") or die $!;
    print $fh join("\t", map { (my $v = $_) =~ s/\n/\\n/g; $v } @$_), "\n" for @_;
    close($fh);
    unlink "$dir/calls";
    PVE::Storage::Custom::OpenEJovianDSS::Common::forget_pool_status('j7');
}
sub calls {
    open(my $fh, '<', "$dir/calls") or return ();
    return map { JSON::PP->new->decode($_) } <$fh>;
}
sub strip_globals {    # the arguments from the command word on
    my ($call) = @_;
    my @args = @$call;
    while (@args && $args[0] =~ m/^-/) {
        my $option = shift @args;
        shift @args if $option =~ m/^(--storage|--section|--set)$/;
    }
    return \@args;
}

# the storage and its section reach jdss; no password ever does
replies(['pool show', 0, '{"name":"Pool-7","size":1000,"free":400,"used":600,"health":"ONLINE"}']);
is_deeply([$P->status('j7', { %$scfg, user_password => 'never-shown' }, {})],
    [1000, 400, 600, 1], 'status');
my ($call) = calls();
is_deeply([@$call[0 .. 1]], ['--storage', 'j7'], 'storage ID');
is($call->[2], '--section', 'section follows');
is_deeply(JSON::PP->new->decode($call->[3]), { type => 'joviandss', pool_name => 'Pool-7',
    config => '/etc/pve/j7.yaml', multipath => '1', shared => '1',
    content => 'images,rootdir' }, 'the section as Proxmox has it, without the password');
ok(grep({ $_ eq 'rest_api_deadline=3.5' } @$call), 'status bounds the REST time');

# check_connection asks nothing: the operation reports an outage itself
replies(['pool show', 0, '{"name":"Pool-7","size":1000,"free":400,"used":600}']);
is($P->check_connection('j7', $scfg), 1, 'without the agent no process is started');
is(scalar(my @none = calls()), 0, 'check_connection cost nothing');
# ... but with a content volume, whose activation talks to the appliance,
# it is the (bounded) status
{
    my $with_content = { %$scfg, content => { images => 1, iso => 1 },
        content_volume_name => 'proxmox-content' };
    is($P->check_connection('j7', $with_content), 1, 'content volume: the appliance answers');
    is_deeply([map { strip_globals($_) } calls()], [['pool', 'show', '-f', 'json', '--noindent']],
        'content volume: one bounded status');
    replies(['pool show', 9, '', 'jdss: error: no appliance address answered\n']);
    is($P->check_connection('j7', $with_content), 0, 'content volume: an outage is not online');
}

# an outage is inactive, not a die
replies(['pool show', 9, '', 'jdss: error: no appliance address answered\n']);
is_deeply([$P->status('j7', $scfg, {})], [0, 0, 0, 0], 'status during an outage');

# parse_volname
is_deeply([$P->parse_volname('vm-100-disk-0')],
    ['images', 'vm-100-disk-0', 100, undef, undef, '', 'raw'], 'disk');
is_deeply([$P->parse_volname('base-100-disk-0/vm-101-disk-1')],
    ['images', 'vm-101-disk-1', 101, 'base-100-disk-0', 100, '', 'raw'], 'linked clone');
is(($P->parse_volname('base-100-disk-0'))[5], 1, 'base is base');
is(($P->parse_volname('vm-100-state-suspend-2026'))[1], 'vm-100-state-suspend-2026', 'state');
is(($P->parse_volname('iso/debian.iso'))[0], 'iso', 'iso on the content volume');
eval { $P->parse_volname('../../etc/passwd') };
like($@, qr/unable to parse/, 'foreign names die');

# alloc_image: jdss picks the next free name (one call), size in KiB
replies(['volume create', 0, '{"name":"vm-100-disk-1","size":1073741824}']);
is($P->alloc_image('j7', $scfg, 100, 'raw', undef, 1048576), 'vm-100-disk-1', 'alloc name');
is_deeply([map { strip_globals($_) } calls()],
    [['volume', 'create', '--guest', 100, '--size', '1048576K', '-f', 'json', '--noindent']],
    'alloc command');
replies(['volume create', 0, '{"name":"vm-100-disk-7","size":1073741824}']);
is($P->alloc_image('j7', $scfg, 100, 'raw', 'vm-100-disk-7', 1048576), 'vm-100-disk-7',
    'alloc of a given name');
is_deeply(strip_globals((calls())[0]),
    ['volume', 'create', 'vm-100-disk-7', '--size', '1048576K', '-f', 'json', '--noindent'],
    'alloc command of a given name');
eval { $P->alloc_image('j7', $scfg, 100, 'qcow2', undef, 1) };
like($@, qr/unsupported format 'qcow2'/, 'raw only');
eval { $P->alloc_image('j7', $scfg, 100, 'raw', 'vm-999-disk-0', 1) };
like($@, qr/illegal name/, 'name must belong to the vmid');

# errors reach the user as jdss's one line
replies(['volume create', 7, '', "jdss: warning: something\njdss: error: not enough space for volume 'vm-100-disk-0'\n"]);
eval { $P->alloc_image('j7', $scfg, 100, 'raw', 'vm-100-disk-0', 1) };
is($@, "jdss: not enough space for volume 'vm-100-disk-0'\n", 'one-line error');

# list_images: vmid and vollist filters, parents of linked clones, cache
my $list = '[{"name":"vm-100-disk-0","size":10,"origin":null,"creation":1},'
    . '{"name":"base-200-disk-0","size":20,"origin":null,"creation":2},'
    . '{"name":"vm-201-disk-0","size":20,"origin":"base-200-disk-0@__base__","creation":3},'
    . '{"name":"vm-202-disk-0","size":20,"origin":"base-200-disk-0@v_vm-202-disk-0","creation":5},'
    . '{"name":"proxmox-content","size":99,"origin":null,"creation":4}]';
replies(['volume list', 0, $list]);
my $cache = {};
my $all = $P->list_images('j7', $scfg, undef, undef, $cache);
is_deeply([map { $_->{volid} } @$all],
    ['j7:vm-100-disk-0', 'j7:base-200-disk-0', 'j7:base-200-disk-0/vm-201-disk-0',
     'j7:vm-202-disk-0'], 'all images; the vendor\'s linked clone by its plain name');
is($all->[3]->{parent}, 'j7:base-200-disk-0', 'which still names its template');
is($all->[2]->{parent}, 'j7:base-200-disk-0', 'parent');
is($all->[2]->{vmid}, 201, 'owner');
is($all->[0]->{ctime}, 1, 'ctime');
is_deeply([map { $_->{volid} } @{ $P->list_images('j7', $scfg, 100, undef, $cache) }],
    ['j7:vm-100-disk-0'], 'vmid filter');
is_deeply([map { $_->{volid} } @{ $P->list_images('j7', $scfg, undef,
    ['j7:base-200-disk-0/vm-201-disk-0'], $cache) }],
    ['j7:base-200-disk-0/vm-201-disk-0'], 'vollist filter');
is(scalar(calls()), 1, 'one jdss call thanks to the cache');

# snapshots and rollback checks
replies(['--dry-run', 0, '{"volume":"vm-100-disk-0","snapshot":"s1","blockers":["s2","s3"],"clones":[],"possible":false}']);
my @blockers;
eval { $P->volume_rollback_is_possible($scfg, 'j7', 'vm-100-disk-0', 's1', \@blockers) };
like($@, qr/can't rollback, 's1' is not most recent snapshot/, 'rollback blocked');
is_deeply(\@blockers, ['s2', 's3'], 'blockers filled');
replies(['--dry-run', 0, '{"blockers":[],"clones":[],"possible":true}']);
is($P->volume_rollback_is_possible($scfg, 'j7', 'vm-100-disk-0', 's3', []), 1, 'possible');
RealPVE::write_guest(100, "scsi0: j7:vm-100-disk-0\n\n[s1]\nsnaptime: 100\n");
replies(['snapshot list', 0, '[{"name":"s1","creation":100,"size":4096,"guid":"77"},{"name":"s2","creation":200}]']);
is_deeply($P->volume_snapshot_info($scfg, 'j7', 'vm-100-disk-0'),
    { s1 => { id => '77', timestamp => 100, 'virtual-size' => 4096, proxmox => 1 },
      s2 => { id => '200-s2', timestamp => 200, proxmox => 0 } },
    'snapshot info: virtual size, and who made each');
replies(['snapshot create', 0, '{}'], ['snapshot delete', 0, ''], ['snapshot rollback', 0, '{}']);
$P->volume_snapshot($scfg, 'j7', 'vm-100-disk-0', 'before');
$P->volume_snapshot_delete($scfg, 'j7', 'vm-100-disk-0', 'before');
$P->volume_snapshot_rollback($scfg, 'j7', 'vm-100-disk-0', 'before');
is_deeply([map { strip_globals($_) } calls()],
    [['snapshot', 'create', 'vm-100-disk-0', 'before'],
     ['snapshot', 'delete', 'vm-100-disk-0', 'before'],
     ['snapshot', 'rollback', 'vm-100-disk-0', 'before', '-f', 'json', '--noindent']],
    'snapshot commands');

# features: exactly what works
is($P->volume_has_feature($scfg, 'snapshot', 'j7', 'vm-100-disk-0'), 1, 'snapshot');
is($P->volume_has_feature($scfg, 'clone', 'j7', 'base-100-disk-0'), 1, 'clone base');
is($P->volume_has_feature($scfg, 'clone', 'j7', 'vm-100-disk-0'), undef, 'no clone of current');
is($P->volume_has_feature($scfg, 'template', 'j7', 'vm-100-disk-0'), 1, 'template');
is($P->volume_has_feature($scfg, 'rename', 'j7', 'base-100-disk-0'), undef, 'no base rename');
is($P->volume_has_feature($scfg, 'copy', 'j7', 'vm-100-disk-0', 'snap'), 1,
    'full clone from a snapshot');
is($P->volume_has_feature($scfg, 'sparseinit', 'j7', 'vm-100-disk-0'), 1, 'sparseinit');
is($P->volume_has_feature($scfg, 'snapshot', 'j7', 'iso/x.iso'), undef, 'no iso snapshots');

# templates, linked clones, renames
replies(['volume rename', 0, '{}']);
is($P->create_base('j7', $scfg, 'vm-100-disk-0'), 'base-100-disk-0', 'create_base');
is_deeply([map { strip_globals($_) } calls()],
    [['volume', 'rename', 'vm-100-disk-0', 'base-100-disk-0', '--detach']],
    'create_base: one call, no snapshot (as the vendor\'s templates)');
replies(['volume clone', 0, '{"name":"vm-101-disk-0"}']);
is($P->clone_image($scfg, 'j7', 'base-100-disk-0', 101), 'base-100-disk-0/vm-101-disk-0',
    'linked clone');
is_deeply([map { strip_globals($_) } calls()],
    [['volume', 'clone', 'base-100-disk-0', '--guest', 101, '-f', 'json', '--noindent']],
    'a linked clone hangs from a snapshot of its own, named by jdss in the same call');
replies(['volume rename', 0, '{"name":"vm-102-disk-3"}']);
is($P->rename_volume($scfg, 'j7', 'base-100-disk-0/vm-101-disk-0', 102, 'vm-102-disk-3'),
    'j7:base-100-disk-0/vm-102-disk-3', 'rename keeps the base');

# sizes, resize, paths, activation
replies(['volume show', 0, '{"name":"vm-201-disk-0","size":2048,"used":10,"origin":"base-200-disk-0@__base__","creation":3}']);
is(scalar($P->volume_size_info($scfg, 'j7', 'base-200-disk-0/vm-201-disk-0')), 2048, 'size');
is_deeply([$P->volume_size_info($scfg, 'j7', 'vm-201-disk-0')],
    [2048, 'raw', 10, 'base-200-disk-0', 3], 'size info list');
replies(['volume resize', 0, '{"size":4096}']);
is($P->volume_resize($scfg, 'j7', 'vm-100-disk-0', 4096, 1), 4096, 'resize');
is_deeply(strip_globals((calls())[0]),
    ['volume', 'resize', 'vm-100-disk-0', '--size', 4096, '--rescan', '-f', 'json', '--noindent'],
    'online resize rescans');
eval { $P->volume_resize($scfg, 'j7', 'vm-100-disk-0', 4096, 0, 'snap') };
like($@, qr/resizing a snapshot is not supported/, 'no snapshot resize');
replies(['volume path', 0, "iscsi://127.0.0.1:3260/iqn.2021-10.iscsi:vm-100-disk-0/0\n"]);
is($P->path($scfg, 'vm-100-disk-0', 'j7'), 'iscsi://127.0.0.1:3260/iqn.2021-10.iscsi:vm-100-disk-0/0',
    'path');
$PVE::Storage::Custom::OpenEJovianDSSPlugin::INITIATOR_FILE = "$dir/none";
is_deeply($P->qemu_blockdev_options($scfg, 'j7', 'vm-100-disk-0', '10.0', {}),
    { driver => 'iscsi', portal => '127.0.0.1:3260', target => 'iqn.2021-10.iscsi:vm-100-disk-0',
      lun => 0, transport => 'tcp' }, 'blockdev for iscsi://');
JdssTest::write_file("$dir/initiatorname.iscsi",
    "## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:node-a\n");
$PVE::Storage::Custom::OpenEJovianDSSPlugin::INITIATOR_FILE = "$dir/initiatorname.iscsi";
replies(['volume path', 0, "iscsi://127.0.0.1:3260/iqn.2021-10.iscsi:vm-100-disk-0/0\n"]);
is($P->qemu_blockdev_options($scfg, 'j7', 'vm-100-disk-0', '10.0', {})->{'initiator-name'},
    'iqn.1993-08.org.debian:01:node-a', 'QEMU logs in with the node\'s initiator name');
is_deeply([sort keys %{ $P->qemu_blockdev_options($scfg, 'j7', 'vm-100-disk-0', '10.0', {}) }],
    [sort qw(driver portal target lun transport initiator-name)],
    'only options Proxmox allows for the iscsi driver (no user or password)');
replies(['volume path', 0, "/dev/mapper/36abc\n"]);
is_deeply($P->qemu_blockdev_options($scfg, 'j7', 'vm-100-disk-0', '10.0', {}),
    { driver => 'host_device', filename => '/dev/mapper/36abc' }, 'blockdev for a device');
replies(['volume attach', 0, "/dev/sdb\n"], ['volume detach', 0, '']);
$P->activate_volume('j7', $scfg, 'vm-100-disk-0', 'snap1', {});
$P->deactivate_volume('j7', $scfg, 'vm-100-disk-0', 'snap1', {});
is($P->map_volume('j7', $scfg, 'vm-100-disk-0'), '/dev/sdb', 'map_volume');
is_deeply([map { strip_globals($_) } calls()],
    [['volume', 'attach', 'vm-100-disk-0', '--snapshot', 'snap1'],
     ['volume', 'detach', 'vm-100-disk-0', '--snapshot', 'snap1'],
     ['volume', 'attach', 'vm-100-disk-0', '-f', 'value', '-c', 'path']], 'activation commands');

# free: one call; gone already is fine but said
replies(['volume delete', 4, '', "jdss: error: volume 'vm-1-disk-0' not found\n"]);
{
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    is($P->free_image('j7', $scfg, 'vm-1-disk-0'), undef, 'free of a missing volume');
    like("@warnings", qr/already gone from the appliance/, 'said in the task log');
}
is_deeply([map { strip_globals($_) } calls()],
    [['volume', 'delete', 'vm-1-disk-0', '--recursive', '--detach']],
    'free is one call');
replies(['volume delete', 6, '', "jdss: error: volume 'base-1-disk-0' has clones that depend on its snapshots: vm-2-disk-0; delete them first\n"]);
eval { $P->free_image('j7', $scfg, 'base-1-disk-0', 1) };
is($@, "jdss: volume 'base-1-disk-0' has clones that depend on its snapshots: vm-2-disk-0; delete them first\n",
    'busy base');

# a missing jdss says so
{
    local $PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = '/nonexistent/jdss';
    eval { $P->alloc_image('j7', $scfg, 100, 'raw', 'vm-100-disk-0', 1) };
    like($@, qr/^jdss is not installed at \/nonexistent\/jdss/, 'missing jdss');
    PVE::Storage::Custom::OpenEJovianDSS::Common::forget_pool_status('j7');
    is_deeply([$P->status('j7', $scfg, {})], [0, 0, 0, 0], 'status without jdss');
}

# content volume rules
eval { $P->activate_storage('j7', { %$scfg, content => { iso => 1 } }, {}) };
like($@, qr/set content_volume_name/, 'content volume name required for iso');
is($P->activate_storage('j7', $scfg, {}), 1, 'images only: nothing to mount');

# content volume over NFS: made when missing, then mounted at path
my $content = { %$scfg, content => { iso => 1, backup => 1, images => 1 },
    content_volume_name => 'proxmox-content', content_volume_type => 'nfs',
    content_volume_size => 50, path => "$dir/content" };
replies(['nas-volume show', 4, '', "jdss: error: NAS volume 'proxmox-content' not found\n"],
    ['nas-volume create', 0, '{}'], ['nas-volume attach', 0, '{}']);
is($P->activate_storage('j7', $content, {}), 1, 'activate with an NFS content volume');
is_deeply([map { strip_globals($_) } calls()],
    [['nas-volume', 'show', 'proxmox-content', '-f', 'json', '--noindent'],
     ['nas-volume', 'create', 'proxmox-content', '--size', '50G'],
     ['nas-volume', 'attach', 'proxmox-content', '--mountpoint', "$dir/content"]],
    'NFS content volume commands');
like((calls())[0]->[3], qr/"content_volume_type":"nfs"/, 'content type passed on');
ok(-d "$dir/content/template/iso" && -d "$dir/content/dump", 'content directories made');
replies(['nas-volume detach', 0, '']);
$P->deactivate_storage('j7', $content, {});
is_deeply(strip_globals((calls())[0]),
    ['nas-volume', 'detach', 'proxmox-content', '--mountpoint', "$dir/content"], 'NFS unmount');

# content_volume_size raised: the NAS volume's quota grows (never shrinks)
{
    my $quota = sub { '{"name":"proxmox-content","quota":' . ($_[0] * 1024**3) . '}' };
    replies(['nas-volume show', 0, $quota->(20)], ['nas-volume resize', 0, $quota->(50)],
        ['nas-volume attach', 0, '{}']);
    my $said = '';
    {
        open(my $out, '>', \$said) or die;
        my $old = select($out);
        $P->activate_storage('j7', $content, {});
        select($old);
    }
    is_deeply(strip_globals((calls())[1]),
        ['nas-volume', 'resize', 'proxmox-content', '--size', '50G'], 'quota raised to 50G');
    like($said, qr/content volume 'proxmox-content' grown from 20\.0 GiB to 50 GiB/,
        'and the task log says so');
    replies(['nas-volume show', 0, $quota->(80)], ['nas-volume attach', 0, '{}']);
    $P->activate_storage('j7', $content, {});
    is_deeply([map { $_->[0] eq 'nas-volume' ? $_->[1] : () } map { strip_globals($_) } calls()],
        ['show', 'attach'], 'a larger volume is left as it is');
    replies(['nas-volume show', 0, $quota->(20)], ['nas-volume attach', 0, '{}']);
    my %unset = %$content;
    delete $unset{content_volume_size};
    $P->activate_storage('j7', \%unset, {});
    is_deeply([map { $_->[0] eq 'nas-volume' ? $_->[1] : () } map { strip_globals($_) } calls()],
        ['show', 'attach'], 'content_volume_size not set: never grown');
}

# content volume over iSCSI: an unformatted device gets the guide's hint
open(my $blank, '>', "$dir/blank.img") or die $!;
truncate($blank, 1024 * 1024);
close($blank);
replies(['volume show', 0, '{"name":"proxmox-content","size":' . 50 * 1024**3 . '}'],
    ['volume attach', 0, "$dir/blank.img\n"]);
$content->{path} = "$dir/content-iscsi";
eval { $P->activate_storage('j7', { %$content, content_volume_type => 'iscsi' }, {}) };
is($@, "content volume $dir/blank.img has no file system: on first use, format it "
    . "(for example mkfs.ext4 $dir/blank.img) and activate the storage again\n",
    'mkfs hint names the device');
is_deeply(strip_globals((calls())[1]),
    ['volume', 'attach', 'proxmox-content', '--exclusive', '-f', 'value', '-c', 'path'],
    'iSCSI content volume attached');

# another node holds the iSCSI content volume: this node still serves disks
# and container volumes, lists no files, and says so (issue 14 item 5)
replies(['volume show', 0, '{"name":"proxmox-content","size":' . 50 * 1024**3 . '}'],
    ['volume attach', 6, '', "jdss: error: volume 'proxmox-content' is in use by node-a; it "
        . "holds a local file system, which only one node may mount\n"],
    ['volume list', 0, '[{"name":"vm-100-disk-0","size":10,"origin":null,"creation":1}]']);
{
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    my $iscsi = { %$content, content_volume_type => 'iscsi', content => { iso => 1,
        images => 1 } };
    is($P->activate_storage('j7', $iscsi, {}), 1, 'activated for disks on the other node');
    like("@warnings", qr/content volume not mounted on this node: jdss: volume 'proxmox-content' is in use by node-a/,
        'a warning in the task log, not an error');
    @warnings = ();
    my $listed = $P->list_volumes('j7', $iscsi, undef, ['images', 'iso']);
    is_deeply([map { $_->{volid} } @$listed], ['j7:vm-100-disk-0'], 'disks listed, no ISOs');
    like("@warnings", qr/content volume is not mounted on this node; no iso listed/,
        'and the listing says why');
}

# every JSON class the plugin may read jdss's output with gives the same
# data (booleans as JSON::PP::Boolean), and an XS one is taken if installed
{
    my $common = 'PVE::Storage::Custom::OpenEJovianDSS::Common';
    my $text = '{"name":"vm-100-disk-0","size":1073741824,"free":0.5,'
        . '"thin":true,"shared":false,"origin":null,"snapshots":["s1"],'
        . '"comment":"caf\u00e9 \u2192"}';
    my $expected = JSON::PP->new->decode($text);
    my @classes = grep { eval "require $_; 1" } qw(Cpanel::JSON::XS JSON::XS JSON::PP);
    for my $class (@classes) {
        my $data = $class->new->canonical->decode($text);
        is_deeply($data, $expected, "$class decodes jdss's output as JSON::PP does");
        ok(ref($data->{thin}) && $data->{thin}->isa('JSON::PP::Boolean') && $data->{thin},
            "$class reads true as a true JSON::PP::Boolean");
        ok(!$data->{shared}, "$class's false is false");
    }
    is($PVE::Storage::Custom::OpenEJovianDSS::Common::JSON_CLASS, $classes[0],
        'the plugin reads with the first of them installed');
}

# debug adds verbosity; no call goes through a shell
replies(['pool show', 0, '{"size":1,"free":1,"used":0}']);
$P->status('j7', { %$scfg, debug => 1 }, {});
ok(grep({ $_ eq '--debug' } @{ (calls())[0] }), 'debug passes --debug');
my $seen_bad;
{
    no warnings 'redefine';
    my $real = \&PVE::Tools::run_command;
    local *PVE::Tools::run_command = sub {
        $seen_bad = 1 if ref($_[0]) ne 'ARRAY';
        return $real->(@_);
    };
    local *PVE::Storage::Custom::OpenEJovianDSS::Common::run_command = \&PVE::Tools::run_command;
    replies(['pool show', 0, '{"size":1,"free":1,"used":0}']);
    $P->status('j7', { %$scfg, debug => 0 }, {});
}
ok(!$seen_bad, 'jdss runs from an argument list, never through a shell');

done_testing();
