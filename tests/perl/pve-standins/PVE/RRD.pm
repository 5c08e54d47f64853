package PVE::RRD;

# Stand-in for pve-cluster's PVE::RRD: no RRD data in tests.

use strict;
use warnings;

sub create_rrd_data { return []; }
sub create_rrd_graph { die "no RRD graphs in this test environment\n"; }

1;
