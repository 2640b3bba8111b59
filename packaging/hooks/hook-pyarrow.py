"""pyarrow, trimmed: PathShare uses the core, compute, CSV, Parquet and IPC modules only.

The stock hook collects every submodule and every shared library (Flight, S3, GCS, Substrait, CUDA,
...), which more than doubles pyarrow's share of the bundle. Here PyInstaller follows the imports and
the libraries those modules link against; Flight, the cloud file systems, ORC, Substrait and
Parquet encryption are left out."""

from PyInstaller.utils.hooks import collect_submodules

# pyarrow.dataset: pq.read_table (and pandas.read_parquet) go through it.
USED = (
    "pyarrow.compute",
    "pyarrow.csv",
    "pyarrow.parquet",
    "pyarrow.ipc",
    "pyarrow.types",
    "pyarrow.dataset",
)
# pyarrow's Cython modules import these from C; PyInstaller cannot see those imports.
hiddenimports = [
    *USED,
    "pyarrow.lib",
    "pyarrow._compute",
    "pyarrow._csv",
    "pyarrow._parquet",
    "pyarrow._json",
    "pyarrow._fs",
    "pyarrow._acero",
    "pyarrow._dataset",
    "pyarrow._dataset_parquet",
    "pyarrow.vendored.version",
    *collect_submodules("pyarrow.vendored"),
]
