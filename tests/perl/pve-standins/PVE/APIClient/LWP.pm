package PVE::APIClient::LWP;

# Stand-in: no remote Proxmox API in tests.

use strict;
use warnings;

sub new { die "no remote Proxmox API in this test environment\n"; }

1;
