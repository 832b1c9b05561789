"""`python -m nightreg.cli`: the `nightreg` command."""

import sys

from nightreg.cli import main

sys.exit(main())
