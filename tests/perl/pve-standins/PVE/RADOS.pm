package PVE::RADOS;

# Stand-in for librados2-perl: no Ceph here.

use strict;
use warnings;

sub new { die "no Ceph in this test environment\n"; }

1;
