"""`python -m modfit.cli`: the command line."""

import sys

from modfit.cli import main

sys.exit(main())
