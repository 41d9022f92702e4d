"""Once-per-process set-up of a reused PySpark Python worker, to cut its fixed cost per task.

A reused Python worker (``spark.python.worker.reuse``, the default) runs one task after another, and the
daemon runs a full ``gc.collect()`` after every task. With NumPy, SciPy, PyArrow and pandas loaded it
walks every long-lived object and frees none of them. :func:`prepare_worker`, called by the
per-track ``mapInArrow`` function on its first batch, calls :func:`gc.freeze` once: the objects alive at
that point (modules, functions, constants) leave the collector's reach; objects created afterwards are
collected as before.

Left alone: on Python 3.11 PySpark's per-task ``importlib.invalidate_caches()`` makes the
``zipimporter`` of every archive on the workers' ``PYTHONPATH`` (``pyspark.zip``, the py4j zip, the
``spark-core`` jar) re-read its directory on every task. Avoiding it would mean replacing a
method of the import machinery at run time, which this project does not do (Python 3.12 makes the
re-read lazy).
"""
from __future__ import annotations

import gc

_prepared = False


def prepare_worker() -> None:
    """Once per process: :func:`gc.freeze` the objects the imports created (see the module doc)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    gc.freeze()
