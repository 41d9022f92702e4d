"""Model versions: a directory per version under ``paths.models`` and a row in the Delta table ``models``.

A version directory holds::

    model.keras    the Keras model (saved by the training chief)
    stats.json     tabular.TabularStats + version/variant/heads (what inference needs)
    config.yaml    the full configuration of the run
    metrics.json   training history and validation metrics
    inputs.json    Delta versions and content fingerprints of the input tables

The version is deterministic: ``f"{variant}-{sha256(inputs fingerprints + train config)[:12]}"``, so
re-running training on the same data and settings finds the version already there and skips.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import HitcastError
from hitcast.schemas import MODELS
from hitcast.tables import merge_upsert, table_exists

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
FILES = ("stats.json", "config.yaml", "metrics.json", "inputs.json")


class ModelNotFoundError(HitcastError):
    """No model version matches (the message names the version, variant and table)."""


def fingerprint(df: DataFrame, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Order-independent content fingerprint: row count and the sum of ``xxhash64`` over the columns.

    Parameters
    ----------
    df : DataFrame
    exclude : sequence of str
        Columns left out (e.g. computation timestamps that change without the content changing).

    Returns
    -------
    dict
        ``{"rows": int, "xxhash64_sum": str}`` (the sum as a decimal string, exact).
    """
    cols = sorted(c for c in df.columns if c not in set(exclude))
    row = df.agg(F.count(F.lit(1)).alias("n"),
                 F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("h")).first()
    return {"rows": int(row["n"]), "xxhash64_sum": str(row["h"] if row["h"] is not None else 0)}


#: Bump when the training or encoding code changes what a model version computes (2: log1p-compressed
#: skewed features and best-epoch weights). Part of every model version's hash.
MODEL_CODE_VERSION = 2


def model_version(variant: str, inputs: Mapping[str, Any], train_config: Mapping[str, Any]) -> str:
    """``f"{variant}-{sha256[:12]}"`` over the inputs' fingerprints, the training configuration and
    :data:`MODEL_CODE_VERSION`.

    Delta table versions are left out on purpose: a table rewritten with the same content keeps the
    same model version.
    """
    content = {k: (v.get("fingerprint") if isinstance(v, Mapping) and "fingerprint" in v else v)
               for k, v in inputs.items()}
    blob = json.dumps({"inputs": content, "train": dict(train_config), "code": MODEL_CODE_VERSION}, sort_keys=True,
                      default=str)
    return f"{variant}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def version_dir(cfg: Config, version: str) -> Path:
    """``paths.models/<version>``."""
    return cfg.path(cfg.paths.models) / version


def version_exists(spark: SparkSession, cfg: Config, version: str) -> bool:
    """True when ``models`` has a row for ``version`` and its directory holds the model file."""
    location = cfg.table("models")
    if not table_exists(spark, location):
        return False
    found = spark.read.format("delta").load(location).where(F.col("model_version") == version).limit(1).count()
    return bool(found) and (version_dir(cfg, version) / MODEL_FILE).is_file()


def write_version_files(directory: Path, *, stats_json: str, config: Mapping[str, Any],
                        metrics: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
    """Write ``stats.json``, ``config.yaml``, ``metrics.json`` and ``inputs.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stats.json").write_text(stats_json)
    (directory / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=True))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    (directory / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True, default=str))


def register(spark: SparkSession, cfg: Config, version: str, *, variant: str, workers: int,
             metrics: Mapping[str, Any], inputs: Mapping[str, Any], config: Mapping[str, Any],
             created_at: dt.datetime | None = None) -> None:
    """MERGE the row of ``version`` into the Delta table ``models`` (schema ``hitcast.schemas.MODELS``)."""
    row = (version, variant, created_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
           str(version_dir(cfg, version)), int(workers), json.dumps(metrics, sort_keys=True, default=str),
           json.dumps(inputs, sort_keys=True, default=str), json.dumps(config, sort_keys=True, default=str))
    merge_upsert(spark, spark.createDataFrame([row], MODELS), location=cfg.table("models"), keys=["model_version"])
    log.info("registered model version %s in %s", version, cfg.table("models"))


def latest_version(spark: SparkSession, cfg: Config, variant: str = "fused") -> tuple[str, Path]:
    """The most recently created version of ``variant`` in ``models``.

    Raises
    ------
    ModelNotFoundError
    """
    location = cfg.table("models")
    if not table_exists(spark, location):
        raise ModelNotFoundError(f"Delta table 'models' not found at {location}; run jobs/train.py first")
    row = (spark.read.format("delta").load(location).where(F.col("variant") == variant)
           .orderBy(F.desc("created_at"), F.desc("model_version")).select("model_version", "path").first())
    if row is None:
        raise ModelNotFoundError(f"no model version with variant '{variant}' in {location}; run jobs/train.py")
    return row["model_version"], Path(row["path"])


def get_version(spark: SparkSession, cfg: Config, version: str) -> tuple[str, Path]:
    """``(version, path)`` of an explicitly named version.

    Raises
    ------
    ModelNotFoundError
    """
    location = cfg.table("models")
    if table_exists(spark, location):
        row = (spark.read.format("delta").load(location).where(F.col("model_version") == version)
               .select("path").first())
        if row is not None:
            return version, Path(row["path"])
    path = version_dir(cfg, version)
    if (path / MODEL_FILE).is_file():
        return version, path
    raise ModelNotFoundError(f"model version '{version}' not found in {location} nor at {path}")
