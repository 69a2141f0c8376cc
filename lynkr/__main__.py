"""`python -m lynkr` runs the command line."""

import sys

from lynkr.cli import main

sys.exit(main())
