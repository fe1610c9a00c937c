"""``python -m pixcolor`` runs the command line."""

import sys

from pixcolor.cli import main

if __name__ == "__main__":
    sys.exit(main())
