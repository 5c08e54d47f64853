package PVE::Storage;

# Test double: the storage API version of Proxmox VE 9.1.

use strict;
use warnings;

use constant APIVER => 15;
use constant APIAGE => 6;

1;
