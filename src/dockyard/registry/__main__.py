"""``python -m dockyard.registry``: the dockyard-registry command line."""

import sys

from dockyard.registry.cli import main

sys.exit(main())
