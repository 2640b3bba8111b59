"""A run's private folder for temporary files (the streaming run's copy of its input and DuckDB's spill,
the linker's spill): made beside the output, 0700, removed when the run ends — and, because a killed run
cannot remove its own, every new one first removes the folders that runs of this machine left behind
when they were killed (they can hold a copy of the extract as read, identifiers and all).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

from deid._platform import process_running

SPILL_FOLDER_PREFIX = ".pathshare-spill-"
_OWNER = "owner"  # in each folder: the machine and the process that made it


def private_folder(parent: str | os.PathLike[str]) -> Path:
    """A new private folder in ``parent``, after :func:`sweep_left_behind` there. OSError when it cannot
    be made (the caller words it)."""
    sweep_left_behind(parent)
    path = Path(tempfile.mkdtemp(prefix=SPILL_FOLDER_PREFIX, dir=parent))  # 0700
    (path / _OWNER).write_text(f"{platform.node()}\n{os.getpid()}\n", encoding="utf-8")
    return path


def sweep_left_behind(parent: str | os.PathLike[str]) -> list[Path]:
    """Remove the run folders in ``parent`` whose process, on this machine, is no longer running; a
    folder of another machine (a shared drive), of a live process, or without its owner note (a run just
    starting) is left alone. Returns the folders removed."""
    removed = []
    here = platform.node()
    for folder in Path(parent).glob(SPILL_FOLDER_PREFIX + "*"):
        try:
            host, pid = (folder / _OWNER).read_text(encoding="utf-8").split("\n")[:2]
            alive = host != here or int(pid) == os.getpid() or process_running(int(pid))
        except (OSError, ValueError):
            continue
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed
