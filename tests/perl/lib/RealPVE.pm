package RealPVE;

# Loads the real Proxmox VE storage code for a test, with the plugin
# registered as Proxmox registers custom plugins:
#
#   use RealPVE;                     # skips the test when no code is found
#
# The code is found on a Proxmox node in the system paths, else in the
# directory $JDSS_PVE_SOURCES names (holding pve-storage-*/src and
# pve-common-*/src), else in ../shared/pve beside the repository. What needs
# a running cluster (pmxcfs, RPC environment, SSH, RADOS) comes from
# tests/perl/pve-standins; /etc/pve is a temporary directory
# ($JDSS_PVE_ROOT), which jdss reads too.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use POSIX ();

my $REPO = abs_path(dirname(__FILE__) . '/../../..');
our ($SOURCES, $ROOT, $NODE);

sub find_sources {
    return 'the system' if -f '/usr/share/perl5/PVE/Storage.pm';
    for my $dir (grep { defined } $ENV{JDSS_PVE_SOURCES}, "$REPO/../shared/pve") {
        my ($storage) = glob("$dir/pve-storage-*/src");
        my ($common) = glob("$dir/pve-common-*/src");
        return ($dir, $common, $storage)
            if $storage && $common && -f "$storage/PVE/Storage.pm";
    }
    return ();
}

sub import {
    my ($source, @lib) = find_sources();
    if (!$source) {
        print "1..0 # SKIP no Proxmox VE storage code: not a Proxmox node, "
            . "JDSS_PVE_SOURCES unset and no ../shared/pve\n";
        exit 0;
    }
    $SOURCES = $source;
    $ROOT = $ENV{JDSS_PVE_ROOT} //= tempdir(CLEANUP => 1);
    $NODE = (POSIX::uname())[1];
    $NODE =~ s/\..*//;
    make_path("$ROOT/priv/lock", "$ROOT/nodes/$NODE/qemu-server", "$ROOT/nodes/$NODE/lxc");
    unshift @INC, "$REPO/tests/perl/pve-standins", @lib, "$REPO/perl";
    require PVE::Storage::Plugin;
    for my $plugin (plugins()) {
        # Proxmox registers what is installed in its Custom directory itself
        # (and then loads this tree's copy, which comes first in @INC)
        (my $file = $plugin) =~ s/.*:://;
        next if -f "/usr/share/perl5/PVE/Storage/Custom/$file.pm";
        eval "require $plugin" or die $@;
        $plugin->register();
    }
    require PVE::Storage;
    # never the node's own jdss-agent: a test starts the one it wants
    $PVE::Storage::Custom::OpenEJovianDSS::Common::AGENT_SOCKET = "$ROOT/run/jdss/agent.sock";
    require PVE::RPCEnvironment;
    require PVE::AccessControl;
    PVE::RPCEnvironment->init('cli') if !eval { PVE::RPCEnvironment::get() };
    PVE::RPCEnvironment::get()->set_user('root@pam');
}

sub plugins {
    return map { my $m = $_; $m =~ s/\.pm$//; "PVE::Storage::Custom::$m" }
        map { (split m{/})[-1] } glob("$REPO/perl/PVE/Storage/Custom/*.pm");
}

sub repo { return $REPO; }

# Replace /etc/pve/storage.cfg. A disabled 'local' is always there: Proxmox
# adds one if the file has none, and an enabled one would touch /var/lib/vz.
sub write_storage_cfg {
    my ($text) = @_;
    $text = "dir: local\n\tpath $ROOT/vz\n\tcontent iso\n\tdisable 1\n\n$text"
        if $text !~ m/^dir: local$/m;
    open(my $fh, '>', "$ROOT/storage.cfg") or die "storage.cfg: $!";
    print $fh $text;
    close($fh);
    return PVE::Storage::config();
}

# A guest configuration on this node: write_guest(100, "tags: x\n").
sub write_guest {
    my ($vmid, $text, $type) = @_;
    my $dir = "$ROOT/nodes/$NODE/" . (($type // 'qemu') eq 'lxc' ? 'lxc' : 'qemu-server');
    make_path($dir);
    open(my $fh, '>', "$dir/$vmid.conf") or die "$vmid.conf: $!";
    print $fh $text;
    close($fh);
    return "$dir/$vmid.conf";
}

sub read_file {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    return <$fh>;
}

1;
