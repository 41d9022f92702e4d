"""Build the Spark session every hitcast job and test uses.

The session carries:

- Delta Lake (SQL extension + catalog), with the Delta jars taken from the project's jar cache
  (``make jars`` copies them there from Maven Central once), or, when the cache is absent,
  resolved through ``spark.jars.packages`` into an Ivy cache;
- bounded Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch``), so a pandas UDF's
  memory does not grow with partition size;
- ``OMP_NUM_THREADS=1`` and the project's interpreter (``PYSPARK_PYTHON``) on Python workers;
- UTC as the session time zone: cutoffs and event times are compared in UTC.
"""
from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from hitcast.config import PROJECT_ROOT, Config
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)

#: Delta's JVM side must be the release of the installed ``delta-spark`` Python package (pinned in
#: ``requirements.txt``, the one place its version is named).
DELTA_VERSION = package_version("delta-spark")
DELTA_PACKAGES = (f"io.delta:delta-spark_2.13:{DELTA_VERSION}", f"io.delta:delta-storage:{DELTA_VERSION}")
DELTA_JARS = tuple(f"{p.split(':')[1]}-{DELTA_VERSION}.jar" for p in DELTA_PACKAGES)


def delta_jars(cfg: Config) -> list[Path] | None:
    """The cached Delta jars, or ``None`` when ``make jars`` has not filled the cache.

    The first folder that holds both: ``$HITCAST_JARS``, ``<paths.root>/.cache/jars``, the checkout's
    ``.cache/jars`` (so a data root elsewhere still starts without resolving the jars through Ivy).
    """
    env = os.environ.get("HITCAST_JARS")
    folders = [Path(env)] if env else [cfg.path(".cache/jars"), PROJECT_ROOT / ".cache" / "jars"]
    for folder in folders:
        jars = [folder / name for name in DELTA_JARS]
        if all(j.is_file() for j in jars):
            return jars
    return None


def spark_home() -> Path:
    """The pip pyspark's folder (it holds ``bin/spark-submit``, ``bin/beeline`` and the Thrift server jars)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def delta_jar_files(cfg: Config) -> list[Path]:
    """The cached Delta jars: ``$HITCAST_JARS``, ``<paths.root>/.cache/jars`` or the checkout's ``.cache/jars``.

    Raises
    ------
    HitcastError
        When none holds them (``make jars`` fills the cache).
    """
    found = delta_jars(cfg)
    if found:
        return found
    raise HitcastError(f"the Delta jars {', '.join(DELTA_JARS)} are not in {PROJECT_ROOT / '.cache' / 'jars'}: "
                       "run make jars")


#: Compiled classes a JVM keeps (Spark's ``spark.sql.codegen.cache.maxEntries``, a static setting).
CODEGEN_CACHE_ENTRIES = 1000


def session_settings(cfg: Config, app_name: str = "hitcast") -> dict[str, Any]:
    """Every Spark setting hitcast applies, as a dict (pure; no JVM needed).

    Parameters
    ----------
    cfg
        Loaded configuration; ``cfg.spark.conf`` entries win over the defaults here.
    app_name
        The application name (each job passes its own).
    """
    python = os.environ.get("PYSPARK_PYTHON", sys.executable)
    settings: dict[str, Any] = {
        "spark.app.name": app_name,
        "spark.master": cfg.spark.master,
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": cfg.spark.shuffle_partitions,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": cfg.spark.arrow_max_records_per_batch,
        "spark.executorEnv.OMP_NUM_THREADS": "1",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": sys.executable,
        "spark.databricks.delta.snapshotPartitions": 2,
        # Spark keeps 100 compiled classes by default; one incremental scoring run generates about 140
        # (Delta's MERGE with deletion vectors and change data feed is most of them), so every run compiled
        # them all again: 1.2-1.5 s of Janino per run at 100,000 tracks. Measured there: 141 -> 2
        # compilations per repeated run (the 2 hold the run's timestamp).
        "spark.sql.codegen.cache.maxEntries": CODEGEN_CACHE_ENTRIES,
        "spark.ui.showConsoleProgress": "false",
    }
    if cfg.spark.master.startswith("local"):
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    jars = delta_jars(cfg)
    if jars:
        settings["spark.jars"] = ",".join(str(j) for j in jars)
    else:
        settings["spark.jars.packages"] = ",".join(DELTA_PACKAGES)
        settings["spark.jars.ivy"] = str(cfg.path(cfg.spark.jars_cache))
    settings.update({k: v for k, v in cfg.spark.conf.items()})
    return settings


def submitted_settings() -> dict[str, str]:
    """Settings already fixed by ``spark-submit`` (empty when the job was started with plain ``python``).

    Under ``spark-submit`` the JVM exists before Python starts (``PYSPARK_GATEWAY_PORT`` is set) and its
    ``SparkConf`` holds ``--master``, ``--jars``, ``--conf`` and the like; those win over the YAML file.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def build_session(cfg: Config, app_name: str = "hitcast"):  # -> SparkSession
    """Create (or reuse) the SparkSession described by ``cfg``.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if cfg.spark.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = session_settings(cfg, app_name)
    submitted = submitted_settings()
    builder = SparkSession.builder
    for key, value in settings.items():
        if key in submitted:
            continue  # spark-submit's --master/--conf/--jars win over the configuration file
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("HITCAST_SPARK_LOG_LEVEL", "WARN"))
    jars = ("spark-submit --jars" if "spark.jars" in submitted else "cache" if "spark.jars" in settings
            else "spark.jars.packages")
    log.info("Spark %s session '%s' on %s (Delta jars: %s)", spark.version, settings["spark.app.name"],
             spark.sparkContext.master, jars)
    return spark
