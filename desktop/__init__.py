"""desktop — PathShare's PySide6 application and the ``pathshare`` command line.

UI only: every action calls a workflow function of ``agreements`` or ``deid``, so the GUI and the
CLI run the same code paths. For most uses: ``pathshare`` (the app) or ``pathshare --help``.
"""

__version__ = "0.1.0"
