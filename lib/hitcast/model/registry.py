"""Model versions: a directory per version under ``paths.models`` and a row in the Delta table ``models``.

A version directory holds::

    model.keras    the Keras model (saved by the training chief)
    stats.json     tabular.TabularStats + version/variant/heads (what inference needs)
    config.yaml    the full configuration of the run
    metrics.json   training history and validation metrics
    inputs.json    Delta versions and content fingerprints of the input tables

The version is deterministic: ``f"{variant}-{sha256(inputs fingerprints + train config)[:12]}"``, so
re-running training on the same data and settings finds the version already there and skips.

Every version has a role (:data:`hitcast.schemas.MODEL_ROLES`): training registers a new version as a
``candidate``; ``jobs/promote.py`` makes one the ``champion`` (exactly one at a time; the one before becomes
``archived``); the evaluation's ablations are ``ablation``. Scoring uses the champion by default
(:func:`champion_version`). Re-registering an existing version keeps its role.
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
from hitcast.schemas import MODEL_ROLES, MODELS
from hitcast.tables import merge_upsert, table_exists

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
FILES = ("stats.json", "config.yaml", "metrics.json", "inputs.json")


class ModelNotFoundError(HitcastError):
    """No model version matches (the message names the version, variant and table)."""


class RoleError(HitcastError):
    """A role change that would break the roles' rules (the message names the version and the role)."""

#: The role columns of ``models`` (added to a table written before roles existed).
ROLE_COLUMNS = {"role": "STRING", "role_reason": "STRING", "role_changed_at": "TIMESTAMP"}


def _now() -> dt.datetime:
    """UTC now, naive (the session time zone is UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


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
#: skewed features and best-epoch weights; 3: per-epoch data order from (seed, epoch, rank)). Part of every
#: model version's hash.
MODEL_CODE_VERSION = 3


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


def ensure_role_columns(spark: SparkSession, location: str, columns: Sequence[str] | None = None) -> None:
    """Add the :data:`ROLE_COLUMNS` to a ``models`` table written before roles existed (Delta schema
    evolution); its versions become ``candidate`` (reason "registered before model roles").

    ``columns``: the table's columns when the caller has read it already.
    """
    from delta.tables import DeltaTable

    if columns is None:
        if not table_exists(spark, location):
            return
        columns = spark.read.format("delta").load(location).columns
    missing = [c for c in ROLE_COLUMNS if c not in set(columns)]
    if not missing:
        return
    spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS ("
              + ", ".join(f"{c} {ROLE_COLUMNS[c]}" for c in missing) + ")")
    DeltaTable.forPath(spark, location).update(
        condition=F.col("role").isNull(),
        set={"role": F.lit("candidate"), "role_reason": F.lit("registered before model roles"),
             "role_changed_at": F.lit(_now())})
    log.warning("added the columns %s to %s; its model versions are now candidates", ", ".join(missing), location)


def read_models(spark: SparkSession, cfg: Config) -> DataFrame:
    """The Delta table ``models`` (schema ``hitcast.schemas.MODELS``, role columns added if missing).

    Raises
    ------
    ModelNotFoundError
        When there is no such table (the message names the location and jobs/train.py).
    """
    location = cfg.table("models")
    if not table_exists(spark, location):
        raise ModelNotFoundError(f"Delta table 'models' not found at {location}; run jobs/train.py first")
    models = spark.read.format("delta").load(location)
    if all(c in models.columns for c in ROLE_COLUMNS):
        return models
    ensure_role_columns(spark, location, models.columns)
    return spark.read.format("delta").load(location)


def register(spark: SparkSession, cfg: Config, version: str, *, variant: str, workers: int,
             metrics: Mapping[str, Any], inputs: Mapping[str, Any], config: Mapping[str, Any],
             created_at: dt.datetime | None = None, role: str = "candidate",
             reason: str = "trained") -> None:
    """MERGE the row of ``version`` into the Delta table ``models`` (schema ``hitcast.schemas.MODELS``).

    A new version gets ``role`` (default ``candidate``) with ``reason``; an existing version has every other
    column replaced and keeps its role (re-running training never demotes a champion).
    """
    from delta.tables import DeltaTable

    if role not in MODEL_ROLES:
        raise RoleError(f"model version {version}: role must be one of {', '.join(MODEL_ROLES)}, got {role!r}")
    now = _now()
    row = (version, variant, created_at or now,
           str(version_dir(cfg, version)), int(workers), json.dumps(metrics, sort_keys=True, default=str),
           json.dumps(inputs, sort_keys=True, default=str), json.dumps(config, sort_keys=True, default=str),
           role, reason, now)
    df = spark.createDataFrame([row], MODELS)
    location = cfg.table("models")
    if not table_exists(spark, location):
        merge_upsert(spark, df, location=location, keys=["model_version"])
    else:
        ensure_role_columns(spark, location)
        keep = set(ROLE_COLUMNS)
        (DeltaTable.forPath(spark, location).alias("t").merge(df.alias("s"), "t.model_version = s.model_version")
         .whenMatchedUpdate(set={c: f"s.`{c}`" for c in df.columns if c not in keep})
         .whenNotMatchedInsertAll().execute())
    log.info("registered model version %s in %s (role %s unless it had one)", version, location, role)


def model_role(spark: SparkSession, cfg: Config, version: str) -> str:
    """The role of ``version`` in ``models``.

    Raises
    ------
    ModelNotFoundError
        When ``models`` has no row for ``version``.
    """
    row = read_models(spark, cfg).where(F.col("model_version") == version).select("role").first()
    if row is None:
        raise ModelNotFoundError(f"model version '{version}' not found in {cfg.table('models')}")
    return row["role"]


def set_role(spark: SparkSession, cfg: Config, version: str, role: str, *, reason: str) -> None:
    """Give ``version`` the ``role`` (one of :data:`hitcast.schemas.MODEL_ROLES`), recording ``reason``.

    Making a version the ``champion`` archives the champion before it in the same Delta commit, so there is
    never more than one. The champion itself changes role only when another version is promoted: asking for
    any other role for it raises. Setting the role a version already has changes nothing (idempotent re-runs,
    e.g. the evaluation marking its ablations).

    Raises
    ------
    ModelNotFoundError
        When ``version`` is not in ``models``.
    RoleError
        For an unknown role, or a role other than ``champion`` for the current champion.
    """
    from delta.tables import DeltaTable

    if role not in MODEL_ROLES:
        raise RoleError(f"model version {version}: role must be one of {', '.join(MODEL_ROLES)}, got {role!r}")
    current = model_role(spark, cfg, version)
    if current == role:
        log.info("model version %s is already %s", version, role)
        return
    if current == "champion":
        raise RoleError(f"model version {version} is the champion and stays so until another version is "
                        f"promoted with jobs/promote.py; not made {role}")
    now = F.lit(_now())
    target = F.col("model_version") == version
    table = DeltaTable.forPath(spark, cfg.table("models"))
    if role == "champion":
        table.update(condition=target | (F.col("role") == "champion"),
                     set={"role": F.when(target, F.lit("champion")).otherwise(F.lit("archived")),
                          "role_reason": F.when(target, F.lit(reason))
                          .otherwise(F.lit(f"replaced as champion by {version}")),
                          "role_changed_at": now})
    else:
        table.update(condition=target, set={"role": F.lit(role), "role_reason": F.lit(reason),
                                            "role_changed_at": now})
    log.info("model version %s: %s -> %s (%s)", version, current, role, reason)


def champion_version(spark: SparkSession, cfg: Config) -> tuple[str, Path]:
    """``(version, path)`` of the champion.

    Raises
    ------
    ModelNotFoundError
        When ``models`` is missing or has no champion (the message names jobs/promote.py).
    """
    location = cfg.table("models")
    if not table_exists(spark, location):
        raise ModelNotFoundError(f"Delta table 'models' not found at {location}, so there is no champion model; "
                                 "run jobs/train.py, then jobs/promote.py")
    row = read_models(spark, cfg).where(F.col("role") == "champion").select("model_version", "path").first()
    if row is None:
        raise ModelNotFoundError(f"no champion model in {location}; promote a candidate with jobs/promote.py "
                                 "(or name a version with --model-version)")
    return row["model_version"], Path(row["path"])


def newest_version(spark: SparkSession, cfg: Config, variant: str, roles: Sequence[str]) -> tuple[str, Path]:
    """``(version, path)`` of the most recently created version of ``variant`` with one of ``roles``.

    Raises
    ------
    ModelNotFoundError
    """
    row = (read_models(spark, cfg).where((F.col("variant") == variant) & F.col("role").isin(*roles))
           .orderBy(F.desc("created_at"), F.desc("model_version")).select("model_version", "path").first())
    if row is None:
        raise ModelNotFoundError(f"no model version of variant '{variant}' with role {' or '.join(roles)} in "
                                 f"{cfg.table('models')}; run jobs/train.py")
    return row["model_version"], Path(row["path"])


def latest_version(spark: SparkSession, cfg: Config, variant: str = "fused") -> tuple[str, Path]:
    """The most recently created ``candidate`` or ``champion`` version of ``variant`` in ``models`` (ablations
    and archived versions are never "latest").

    Raises
    ------
    ModelNotFoundError
    """
    return newest_version(spark, cfg, variant, ("candidate", "champion"))


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
