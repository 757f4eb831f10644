"""``python -m devtools``: ``make local`` (devtools.cli)."""

import sys

from devtools.cli import main

sys.exit(main())
