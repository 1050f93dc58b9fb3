"""`python -m modfit`: the command line, as the `modfit` script runs it."""

import sys

from modfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
