"""Entry point of the frozen PathShare application (PyInstaller runs this file as ``__main__``).

The same executable is the desktop app (no arguments, or a ``*.age`` file), the ``pathshare`` command
line, and the GUI's worker process: long jobs run in a ``spawn`` child, which in a frozen app is this
executable started again with ``--multiprocessing-fork``.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    # Must run before anything else: it turns a spawn child (or multiprocessing's resource tracker)
    # into that helper and exits, instead of starting the app or parsing its arguments as a command.
    multiprocessing.freeze_support()

    from desktop.cli import main

    sys.exit(main())
