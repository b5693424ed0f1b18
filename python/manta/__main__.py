"""``python -m manta`` runs the ``manta`` command line."""

import sys

from manta.scripts.cli import main

if __name__ == "__main__":
    sys.exit(main())
