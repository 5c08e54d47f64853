#!/usr/bin/perl
# One Proxmox node for cluster tests: the real PVE::Storage with the plugin,
# driven by JSON requests on stdin (one line each), answering one JSON line
# each on stdout. tests/cluster.py starts it in a mount and UTS namespace of
# its own (own hostname, /run and initiator name); /etc/pve is the shared
# directory $JDSS_PVE_ROOT, whose locks really serialise the nodes.
#
#   {"op": "alloc", "storage": S, "vmid": N, "name": NAME|null, "kib": K}
#   {"op": "free"|"activate"|"deactivate"|"path"|"blockdev"|"size", "volid": V,
#    "snap": SNAP|null}
#   {"op": "snapshot"|"snapshot_delete"|"rollback", "volid": V, "snap": SNAP}
#   {"op": "snapshots", "volid": V}
#   {"op": "resize", "volid": V, "bytes": B}
#   {"op": "status", "storage": S}
#   {"op": "list", "storage": S, "vmid": N|null}
#   {"op": "node"}
# Answer: {"ok": 1, "result": ...} or {"ok": 0, "error": "one line"}.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use POSIX ();

use RealPVE;

$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $ENV{JDSS_BIN} // die "JDSS_BIN\n";
my $json = JSON::PP->new->canonical->utf8;

sub cfg { return PVE::Storage::config(); }

my %ops = (
    node => sub { return { node => $RealPVE::NODE,
        initiator => PVE::Storage::Custom::OpenEJovianDSSPlugin::initiator_name() } },
    alloc => sub { my ($r) = @_;
        return PVE::Storage::vdisk_alloc(cfg(), $r->{storage}, $r->{vmid}, 'raw', $r->{name},
            $r->{kib}) },
    free => sub { PVE::Storage::vdisk_free(cfg(), $_[0]->{volid}); return 1 },
    activate => sub { PVE::Storage::activate_volumes(cfg(), [$_[0]->{volid}], $_[0]->{snap});
        return 1 },
    deactivate => sub { PVE::Storage::deactivate_volumes(cfg(), [$_[0]->{volid}],
        $_[0]->{snap}); return 1 },
    path => sub { return scalar(PVE::Storage::path(cfg(), $_[0]->{volid}, $_[0]->{snap})) },
    blockdev => sub { return PVE::Storage::qemu_blockdev_options(cfg(), $_[0]->{volid}) },
    blockdev_snap => sub { return PVE::Storage::qemu_blockdev_options(cfg(), $_[0]->{volid},
        undef, { 'snapshot-name' => $_[0]->{snap} }) },
    size => sub { return PVE::Storage::volume_size_info(cfg(), $_[0]->{volid}) },
    snapshot => sub { PVE::Storage::volume_snapshot(cfg(), $_[0]->{volid}, $_[0]->{snap});
        return 1 },
    snapshot_delete => sub { PVE::Storage::volume_snapshot_delete(cfg(), $_[0]->{volid},
        $_[0]->{snap}); return 1 },
    rollback => sub { PVE::Storage::volume_snapshot_rollback(cfg(), $_[0]->{volid},
        $_[0]->{snap}); return 1 },
    snapshots => sub { return [sort keys %{ PVE::Storage::volume_snapshot_info(cfg(),
        $_[0]->{volid}) }] },
    resize => sub { return PVE::Storage::volume_resize(cfg(), $_[0]->{volid}, $_[0]->{bytes},
        0) },
    status => sub { my $info = PVE::Storage::storage_info(cfg());
        return $info->{ $_[0]->{storage} } },
    list => sub { my ($r) = @_;
        return [map { $_->{volid} }
            @{ PVE::Storage::vdisk_list(cfg(), $r->{storage}, $r->{vmid})->{ $r->{storage} } }] },
);

$| = 1;
print $json->encode({ ready => 1, node => $RealPVE::NODE }), "\n";
while (my $line = <STDIN>) {
    my $request = eval { $json->decode($line) };
    my $op = $request ? $ops{ $request->{op} // '' } : undef;
    my $reply;
    if (!$op) {
        $reply = { ok => 0, error => "bad request" };
    } else {
        my $result = eval { $op->($request) };
        if (my $err = $@) {
            chomp $err;
            $reply = { ok => 0, error => $err };
        } else {
            $reply = { ok => 1, result => $result };
        }
    }
    print $json->encode($reply), "\n";
}
POSIX::_exit(0);
