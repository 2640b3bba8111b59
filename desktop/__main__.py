"""``python -m desktop``: the ``pathshare`` command without the console script — for a clerk on Windows or
macOS who installed PathShare with ``pip install .`` and whose Scripts/bin folder is not on PATH. With no
arguments it opens the app; with a command it runs the command line, exactly as ``pathshare`` does."""

from desktop.cli import main

raise SystemExit(main())
