package PVE::AccessControl;

# Stand-in for pve-access-control's PVE::AccessControl.

use strict;
use warnings;

sub remove_storage_access { }

1;
