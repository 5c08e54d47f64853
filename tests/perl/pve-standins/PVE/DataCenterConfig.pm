package PVE::DataCenterConfig;

# Stand-in for pve-cluster's PVE::DataCenterConfig: datacenter.cfg is read
# as "key: value" lines, which is all the storage code asks of it.

use strict;
use warnings;

use PVE::Cluster;

PVE::Cluster::cfs_register_file('datacenter.cfg', sub {
    my ($filename, $raw) = @_;
    my $res = {};
    for my $line (split /\n/, $raw // '') {
        $res->{$1} = $2 if $line =~ m/^\s*([a-z][\w-]*)\s*:\s*(.*?)\s*$/;
    }
    return $res;
}, sub {
    my ($filename, $cfg) = @_;
    return join('', map { "$_: $cfg->{$_}\n" } sort keys %$cfg);
});

1;
