"""Once-per-process set-up of Python workers: Spark's own archives keep their directory, others do not."""
from __future__ import annotations

import gc
import sys
import zipfile
import zipimport

from hitcast import workerprep
from hitcast.workerprep import is_spark_archive, pin_spark_archives


def test_is_spark_archive():
    home = "/opt/venv/lib/python3.11/site-packages/pyspark"
    assert is_spark_archive(f"{home}/python/lib/pyspark.zip")
    assert is_spark_archive(f"{home}/python/lib/py4j-0.10.9.9-src.zip")
    assert is_spark_archive(f"{home}/jars/spark-core_2.13-4.0.5.jar")
    assert not is_spark_archive(f"{home}/jars/delta-spark_2.13-4.0.1.jar")
    assert not is_spark_archive("/tmp/spark-123/userFiles/hitcast.zip")
    assert not is_spark_archive("/tmp/python/lib/hitcast.zip")
    assert not is_spark_archive("/tmp/pyspark.zip")


def _zip(path, names):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, "x = 1\n")


def test_pinned_importers_keep_their_directory_others_reread(tmp_path):
    spark_zip = tmp_path / "spark" / "python" / "lib" / "pyspark.zip"
    user_zip = tmp_path / "userFiles" / "deps.zip"
    _zip(spark_zip, ["a.py"])
    _zip(user_zip, ["a.py"])
    finders = {str(spark_zip): zipimport.zipimporter(str(spark_zip)),
               str(user_zip): zipimport.zipimporter(str(user_zip))}
    sys.path_importer_cache.update(finders)
    try:
        assert pin_spark_archives() == 1
        _zip(spark_zip, ["a.py", "b.py"])
        _zip(user_zip, ["a.py", "b.py"])
        for finder in finders.values():
            finder.invalidate_caches()
        assert finders[str(spark_zip)].find_spec("b") is None        # still the directory read at first
        assert finders[str(user_zip)].find_spec("b") is not None     # re-read as Python does by default
    finally:
        for key in finders:
            sys.path_importer_cache.pop(key, None)


def test_prepare_worker_runs_once_and_freezes(monkeypatch):
    monkeypatch.setattr(workerprep, "_prepared", False)
    before = gc.get_freeze_count()
    try:
        workerprep.prepare_worker()
        frozen = gc.get_freeze_count()
        assert frozen > before
        workerprep.prepare_worker()                     # second call: nothing more is frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
