"""``python -m jdss``: the same as the ``jdss`` command."""

import sys

from jdss.app import main

sys.exit(main())
