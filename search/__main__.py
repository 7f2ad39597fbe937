"""``python -m search`` runs the ``lstm-tune`` command line."""

import sys

from search.cli import main

sys.exit(main())
