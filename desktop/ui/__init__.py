"""desktop.ui — PathShare's screens and widgets (PySide6). Widgets only: each action calls a
function of ``agreements`` or ``deid`` (long ones through :mod:`desktop.tasks` in a worker process).

Front door: :func:`desktop.app.run_app`; :class:`desktop.ui.main_window.MainWindow` for tests.
This package's ``__init__`` imports nothing heavy so the worker process starts quickly.
"""
