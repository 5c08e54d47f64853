#!/usr/bin/perl
# An iSCSI content volume's ext4 file system follows content_volume_size:
# raised in storage.cfg, the volume is grown on the appliance and its file
# system grown to fill it, mounted, files kept. ISOs,
# templates and backups on it are listed by the real PVE::Storage as by
# Proxmox's own directory storages (notes, protection), and prune-backups
# is honoured. A real loop
# device stands for the LUN (the kernel, blkid, e2fsck, resize2fs and mount
# are real); jdss is t/jdss-recorder. Mounts stay in a mount namespace of
# the test's own.
use strict;
use warnings;
use FindBin;
use Test::More;

BEGIN {
    plan skip_all => 'needs root and loop devices (losetup)'
        if $> != 0 || !-e '/dev/loop-control' || system('losetup -f >/dev/null 2>&1') != 0;
    if (!$ENV{JDSS_TEST_OWN_MOUNTS}) {
        $ENV{JDSS_TEST_OWN_MOUNTS} = 1;
        exec('unshare', '-m', '--propagation', 'private', $^X, "-I$FindBin::Bin/../lib", $0)
            or die "unshare: $!\n";
    }
}

use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;

use RealPVE;
use JdssTest;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $dir = tempdir(CLEANUP => 1);
$ENV{JDSS_RECORDER_DIR} = $dir;
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = "$FindBin::Bin/jdss-recorder";
$PVE::Storage::Custom::OpenEJovianDSS::Common::AGENT_SOCKET = "$dir/no-agent.sock";
$PVE::Storage::Custom::OpenEJovianDSSPlugin::LOCK_DIR = "$dir/lock";
my $GiB = 1024**3;

sub replies {
    open(my $fh, '>', "$dir/replies") or die $!;
    print $fh join("\t", map { (my $v = $_) =~ s/\n/\\n/g; $v } @$_), "\n" for @_;
    close($fh);
    unlink "$dir/calls";
}
sub calls {    # each jdss call from its command word on
    open(my $fh, '<', "$dir/calls") or return ();
    return map {
        my @args = @{ JSON::PP->new->decode($_) };
        while (@args && $args[0] =~ m/^-/) {
            my $option = shift @args;
            shift @args if $option =~ m/^(--storage|--section|--set)$/;
        }
        join(' ', @args);
    } <$fh>;
}
sub sh { system(@_) == 0 or die "@_ failed\n"; }
sub capture { my $out = `@_`; die "@_ failed\n" if $?; chomp $out; return $out; }
sub fs_bytes {
    my ($path) = @_;
    my (undef, $line) = split /\n/, capture("df -B1 --output=size $path");
    $line =~ s/\s//g;
    return $line;
}

my $image = "$dir/lun.img";
sh('truncate', '-s', '1G', $image);
my $loop = capture("losetup -f --show $image");
my $path = "$dir/content";
END {
    system('umount', $path) if $path && system("findmnt -n $path >/dev/null") == 0;
    system('losetup', '-d', $loop) if $loop;
}
sh('mkfs.ext4', '-q', $loop);

my $scfg = { type => 'joviandss', pool_name => 'Pool-0', config => "$dir/none.yaml",
    shared => 1, path => $path, content => { iso => 1, images => 1 },
    content_volume_name => 'proxmox-content', content_volume_type => 'iscsi',
    content_volume_size => 1 };
my $show = sub { qq({"name":"proxmox-content","size":) . $_[0] * $GiB . '}' };

sub activate {    # what the task log shows: (printed, warned)
    my ($said, $warned) = ('', '');
    local $SIG{__WARN__} = sub { $warned .= $_[0] };
    open(my $out, '>', \$said) or die;
    my $old = select($out);
    eval { $P->activate_storage('s1', $scfg, {}) };
    select($old);
    die $@ if $@;
    return ($said, $warned);
}

# first activation: attached, mounted as it is
replies(['volume show', 0, $show->(1)], ['volume attach', 0, "$loop\n"]);
my ($said, $warned) = activate();
like(capture('findmnt -n -o SOURCE', $path), qr/^\Q$loop\E$/, 'its file system mounted at path');
is("$said$warned", '', 'nothing to grow: nothing said');
JdssTest::write_file("$path/template/iso/keep.iso", "an ISO\n" x 1000);
my $before = fs_bytes($path);

# mounted and as large as asked: not a single call
replies();
activate();
is_deeply([calls()], [], 'mounted, size as asked: no jdss call');

# content_volume_size raised to 2 while mounted: the volume is grown on the
# appliance and rescanned (here: the loop device grows), then the mounted
# file system grows to fill it
$scfg->{content_volume_size} = 2;
sh('truncate', '-s', '2G', $image);
replies(['volume resize', 0, $show->(2), '', "losetup -c $loop"]);
($said, $warned) = activate();
is_deeply([calls()], ['volume resize proxmox-content --size 2G --rescan'],
    'grown on the appliance and rescanned, nothing else asked');
like($said, qr/grown from 1\.0 GiB to 2 GiB/, 'the task log says the volume grew');
if ($warned =~ m/Permission denied to resize/) {
    # this machine's kernel policy refuses online growth (containers)
    like($warned, qr/file system was not grown .* run 'resize2fs \Q$loop\E' by hand/,
        'online growth refused here: the task log says what to run');
    diag('online ext4 growth is refused on this machine; grown offline by the test instead');
    system('umount', $path);
    sh("e2fsck -f -p $loop >/dev/null");
    sh("resize2fs $loop >/dev/null 2>&1");
    replies(['volume show', 0, $show->(2)], ['volume attach', 0, "$loop\n"]);
    activate();
} else {
    is($warned, '', 'no warning');
    like($said, qr/file system grown to fill \Q$loop\E/, 'and that its file system grew');
}
my $after = fs_bytes($path);
ok($after > $before * 1.8, "file system grown ($before -> $after bytes)");
is(PVE::Tools::file_get_contents("$path/template/iso/keep.iso"), "an ISO\n" x 1000, 'files kept');

# mounted again with nothing to grow: attached, no resize, nothing said
replies(['volume detach', 0, '']);
$P->deactivate_storage('s1', $scfg, {});
ok(system("findmnt -n $path >/dev/null") != 0, 'unmounted on deactivation');
replies(['volume show', 0, $show->(2)], ['volume attach', 0, "$loop\n"]);
($said, $warned) = activate();
is_deeply([calls()], ['volume show proxmox-content -f json --noindent',
    'volume attach proxmox-content --exclusive -f value -c path'], 'attached, not resized');
is("$said$warned", '', 'nothing said');
is(fs_bytes($path), $after, 'size unchanged');

# never grown unasked: without content_volume_size, a larger device stays
delete $scfg->{content_volume_size};
replies();
activate();
is_deeply([calls()], [], 'content_volume_size unset: nothing asked');

# content listings through the real Proxmox code --------------------------
my $cfg = RealPVE::write_storage_cfg(<<"EOF");
joviandss: s1
	pool_name Pool-0
	config $dir/none.yaml
	content images,iso,vztmpl,backup
	content_volume_name proxmox-content
	content_volume_size 2
	path $path
	shared 1
	prune-backups keep-last=2

EOF
make_path("$path/template/cache", "$path/dump");
JdssTest::write_file("$path/template/iso/debian-12.iso", "iso\n");
JdssTest::write_file("$path/template/cache/debian-12-standard_12.7-1_amd64.tar.zst", "ct\n");
my @dumps = map { "vzdump-qemu-100-2026_11_0$_-10_00_00.vma.zst" } 1 .. 4;
JdssTest::write_file("$path/dump/$_", "backup\n") for @dumps;
JdssTest::write_file("$path/dump/vzdump-qemu-200-2026_11_01-10_00_00.vma.zst", "other\n");
JdssTest::write_file("$path/dump/$dumps[3].notes", "before the upgrade\n");
JdssTest::write_file("$path/dump/$dumps[0].protected", '');

# Proxmox checks the connection first: for a storage with a content
# volume, the (bounded) pool status
replies(['pool show', 0, '{"name":"Pool-0","size":1,"free":1,"used":0}']);
sub volids { return [sort map { $_->{volid} } @{ $_[0] }]; }
is_deeply(volids(PVE::Storage::volume_list($cfg, 's1', undef, 'iso')),
    ['s1:iso/debian-12.iso', 's1:iso/keep.iso'], 'ISOs listed');
is_deeply(volids(PVE::Storage::volume_list($cfg, 's1', undef, 'vztmpl')),
    ['s1:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst'], 'container templates listed');
my %backups = map { $_->{volid} => $_ } @{ PVE::Storage::volume_list($cfg, 's1', 100, 'backup') };
is_deeply([sort keys %backups], [map { "s1:backup/$_" } @dumps], "guest 100's backups");
my $newest = $backups{"s1:backup/$dumps[3]"};
is($newest->{notes}, 'before the upgrade', 'notes as Proxmox shows them');
is($newest->{subtype}, 'qemu', 'backup of a VM');
ok($backups{"s1:backup/$dumps[0]"}->{protected}, 'protection as Proxmox shows it');
ok(!$newest->{protected}, 'others unprotected');
is(PVE::Storage::path($cfg, "s1:backup/$dumps[1]"), "$path/dump/$dumps[1]",
    'a backup lives on the content volume');

# prune-backups keep-last=2: the two newest stay, the protected one too
my $marks = PVE::Storage::prune_backups($cfg, 's1', undef, 100, 'qemu', 1, sub {});
is_deeply({ map { $_->{volid} => $_->{mark} } @$marks }, {
    "s1:backup/$dumps[0]" => 'protected', "s1:backup/$dumps[1]" => 'remove',
    "s1:backup/$dumps[2]" => 'keep', "s1:backup/$dumps[3]" => 'keep' },
    'prune-backups as configured');
PVE::Storage::prune_backups($cfg, 's1', undef, 100, 'qemu', 0, sub {});
ok(!-e "$path/dump/$dumps[1]", 'pruned backup removed from the content volume');
ok(-e "$path/dump/$dumps[0]" && -e "$path/dump/$dumps[2]" && -e "$path/dump/$dumps[3]",
    'the rest kept');
ok(-e "$path/dump/vzdump-qemu-200-2026_11_01-10_00_00.vma.zst", "another guest's untouched");

done_testing();
