"""``python -m deploy.local.cluster``: see the package docstring."""

import sys

from deploy.local.cluster.cli import main

sys.exit(main(sys.argv[1:]))
