"""thinc (spaCy's ML library), trimmed: its submodules minus the tests and the GPU/torch/TF/MXNet shims'
heavy back ends, which are imported lazily and only when those libraries are installed (they are not)."""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules


def _wanted(name: str) -> bool:
    return ".tests" not in name


hiddenimports = collect_submodules("thinc", filter=_wanted)
# _custom_kernels reads its CUDA sources (.cu, .hh) at import time, GPU or not.
datas = collect_data_files("thinc", includes=["**/*.cfg", "**/*.json", "**/*.txt", "**/*.cu", "**/*.hh"])
