"""Once-per-process set-up of a reused PySpark Python worker, to cut its fixed cost per task.

A reused Python worker (``spark.python.worker.reuse``, the default) runs one task after another. Two
things PySpark 4.0 does around every task cost more CPU than a short task's own work, on Python 3.11:

1. ``pyspark.worker_util.setup_spark_files`` calls :func:`importlib.invalidate_caches`. On Python 3.11
   this makes every ``zipimporter`` in :data:`sys.path_importer_cache` re-read its archive's directory
   at once (made lazy in Python 3.12). Spark puts ``pyspark.zip``, the py4j zip and the ``spark-core``
   jar on the workers' ``PYTHONPATH``, and the workers import PySpark from the zip: 16 importers,
   ~30,000 directory entries, about 0.1 s of CPU per task (measured with cProfile inside the workers).
2. The daemon runs a full ``gc.collect()`` after every task. With NumPy, SciPy, PyArrow and pandas loaded
   it walks ~85,000 long-lived objects (~40 ms) and frees none of them.

:func:`prepare_worker`, called by the per-track ``mapInArrow`` function on its first batch, removes both:
the importers of the Spark installation's own archives (:func:`is_spark_archive`: read-only files that
do not change while a worker lives) keep the directory
they read; archives shipped with ``--py-files`` are left alone. Then :func:`gc.freeze` moves the
objects alive at that point (modules, functions, constants) out of the collector's reach; objects
created afterwards are collected as before.
"""
from __future__ import annotations

import gc
import os
import sys
import zipimport

_prepared = False


def is_spark_archive(path: str) -> bool:
    """True for the archives of the Spark installation that Spark puts on a worker's ``PYTHONPATH``:
    ``<SPARK_HOME>/python/lib/pyspark.zip``, ``.../py4j-*-src.zip`` and ``<SPARK_HOME>/jars/spark-*.jar``."""
    parts = os.path.normpath(path).split(os.sep)
    name = parts[-1]
    if parts[-2:-1] == ["jars"]:
        return name.startswith("spark-") and name.endswith(".jar")
    if parts[-3:-1] != ["python", "lib"]:
        return False
    return name == "pyspark.zip" or (name.startswith("py4j-") and name.endswith("-src.zip"))


def _keep_directory() -> None:
    """``zipimporter.invalidate_caches`` replacement: keep the directory already read."""


def pin_spark_archives() -> int:
    """Stop the importers of Spark's own archives from re-reading them on ``invalidate_caches``.

    Returns
    -------
    int
        How many importers in :data:`sys.path_importer_cache` were pinned.
    """
    pinned = 0
    for finder in list(sys.path_importer_cache.values()):
        if isinstance(finder, zipimport.zipimporter) and is_spark_archive(finder.archive):
            finder.invalidate_caches = _keep_directory  # an instance attribute shadows the method
            pinned += 1
    return pinned


def prepare_worker() -> None:
    """Once per process: :func:`pin_spark_archives`, then :func:`gc.freeze` (see the module doc)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    pin_spark_archives()
    gc.freeze()
