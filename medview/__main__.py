"""`python -m medview` runs the same entry point as the `medview` command."""

import sys

from medview.cli import main

sys.exit(main())
