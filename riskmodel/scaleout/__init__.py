"""Scale-out on Dask: the grid panel, LightGBM training and batch prediction over
partitions of whole top-level units (``pip install 'riskmodel[dask]'``).

Point the library at a cluster the usual Dask way: connect a
``distributed.Client("tcp://scheduler:8786")`` before calling these functions (or
pass ``client=``). :func:`train` and :func:`predict_partitioned` need one
(``lightgbm.dask`` trains on its workers); :func:`build_panel` also runs on Dask's
local schedulers.
"""

try:
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
except ImportError as error:  # pragma: no cover - the extra is installed in development
    raise ImportError("riskmodel.scaleout needs the dask extra: pip install 'riskmodel[dask]'") from error

from .batch import predict_partitioned
from .executor import DaskExecutor, train, train_final
from .panel import build_panel, fit_builder
from .partitions import DaskDataset, open_dataset, read_partitioned, write_partitioned

__all__ = [
    "DaskDataset",
    "DaskExecutor",
    "build_panel",
    "fit_builder",
    "open_dataset",
    "predict_partitioned",
    "read_partitioned",
    "train",
    "train_final",
    "write_partitioned",
]
