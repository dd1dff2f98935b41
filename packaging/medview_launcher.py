"""The frozen app's entry script: the same `medview` command line as a pip install (no
arguments open the viewer; `--selftest` and the headless commands work as documented).

freeze_support() lets a frozen build start worker processes (multiprocessing re-runs this
executable in the child and must stop here, not open a second window)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from medview.cli import main

    sys.exit(main())
