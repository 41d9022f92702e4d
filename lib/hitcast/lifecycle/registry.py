"""Model versions: registered in MLflow (the system of record) and mirrored in the Delta table ``models``.

A version is a directory under ``paths.models`` (:mod:`hitcast.model.store`). Registering it
(:func:`register`) logs its training run and registers its model in MLflow (:mod:`hitcast.lifecycle.tracking`)
and MERGEs its row into ``models``, the SQL-visible mirror, in the same step.

Every version has a role (:data:`hitcast.schemas.MODEL_ROLES`): training registers a new version as a
``candidate``; ``jobs/promote.py`` makes one the ``champion`` (exactly one at a time; the one before becomes
``archived``), which moves the MLflow alias ``champion``; the evaluation's ablations are ``ablation``. Scoring
uses the champion by default, resolved through the MLflow alias (:func:`resolve_model`). Re-registering an
existing version keeps its role.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.lifecycle import tracking
from hitcast.errors import HitcastError
from hitcast.schemas import MODEL_ROLES, MODELS
from hitcast.model.store import MODEL_FILE, read_json, version_complete, version_dir
from hitcast.tables import merge_upsert, table_exists

log = logging.getLogger(__name__)


class ModelNotFoundError(HitcastError):
    """No model version matches (the message names the version, variant and table)."""


class RoleError(HitcastError):
    """A role change that would break the roles' rules (the message names the version and the role)."""

#: The role columns of ``models`` (added to a table written before roles existed).
ROLE_COLUMNS = {"role": "STRING", "role_reason": "STRING", "role_changed_at": "TIMESTAMP"}

#: Columns added after roles: the evaluation's test figures (JSON) and the MLflow run and registered version.
LATER_COLUMNS = {"test_metrics": "STRING", "mlflow_run_id": "STRING", "mlflow_version": "STRING"}


def _now() -> dt.datetime:
    """UTC now, naive (the session time zone is UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def version_exists(spark: SparkSession, cfg: Config, version: str) -> bool:
    """True when ``models`` has a row for ``version`` and its directory holds the model file."""
    location = cfg.table("models")
    if not table_exists(spark, location):
        return False
    found = spark.read.format("delta").load(location).where(F.col("model_version") == version).limit(1).count()
    return bool(found) and version_complete(version_dir(cfg, version))


def ensure_role_columns(spark: SparkSession, location: str, columns: Sequence[str] | None = None) -> None:
    """Add the :data:`ROLE_COLUMNS` and :data:`LATER_COLUMNS` to a ``models`` table written before they
    existed (Delta schema evolution); versions without a role become ``candidate`` (reason "registered
    before model roles").

    ``columns``: the table's columns when the caller has read it already.
    """
    from delta.tables import DeltaTable

    if columns is None:
        if not table_exists(spark, location):
            return
        columns = spark.read.format("delta").load(location).columns
    later = [c for c in LATER_COLUMNS if c not in set(columns)]
    if later:
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS ("
                  + ", ".join(f"{c} {LATER_COLUMNS[c]}" for c in later) + ")")
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
    if all(c in models.columns for c in (*ROLE_COLUMNS, *LATER_COLUMNS)):
        return models
    ensure_role_columns(spark, location, models.columns)
    return spark.read.format("delta").load(location)


def register(spark: SparkSession, cfg: Config, version: str, *, variant: str, workers: int,
             metrics: Mapping[str, Any], inputs: Mapping[str, Any], config: Mapping[str, Any],
             created_at: dt.datetime | None = None, role: str = "candidate",
             reason: str = "trained") -> None:
    """Register ``version``: its MLflow run and registered model version (once), and its row MERGEd into the
    Delta table ``models`` (schema ``hitcast.schemas.MODELS``).

    A new version gets ``role`` (default ``candidate``) with ``reason``; an existing version has every other
    column replaced and keeps its role and test figures (re-running training never demotes a champion).
    """
    from delta.tables import DeltaTable

    if role not in MODEL_ROLES:
        raise RoleError(f"model version {version}: role must be one of {', '.join(MODEL_ROLES)}, got {role!r}")
    run_id, registered = tracking.log_and_register(cfg, version=version, variant=variant,
                                                   path=version_dir(cfg, version), metrics=metrics, inputs=inputs,
                                                   role=role)
    now = _now()
    row = (version, variant, created_at or now,
           str(version_dir(cfg, version)), int(workers), json.dumps(metrics, sort_keys=True, default=str),
           json.dumps(inputs, sort_keys=True, default=str), json.dumps(config, sort_keys=True, default=str),
           role, reason, now, None, run_id, registered)
    df = spark.createDataFrame([row], MODELS)
    location = cfg.table("models")
    if not table_exists(spark, location):
        merge_upsert(spark, df, location=location, keys=["model_version"])
    else:
        ensure_role_columns(spark, location)
        keep = {*ROLE_COLUMNS, "test_metrics"}
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
        previous = champion_in_table(spark, cfg)
        ensure_tracked(spark, cfg, version)
        tracking.move_champion(cfg, version)
        if previous and previous != version:
            tracking.set_tag(cfg, previous, "role", "archived")
    else:
        tracking.set_tag(cfg, version, "role", role)
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


def champion_in_table(spark: SparkSession, cfg: Config) -> str | None:
    """The version with role ``champion`` in the ``models`` mirror (``None``: no table or no champion)."""
    if not table_exists(spark, cfg.table("models")):
        return None
    row = read_models(spark, cfg).where(F.col("role") == "champion").select("model_version").first()
    return row["model_version"] if row else None


def ensure_tracked(spark: SparkSession, cfg: Config, version: str) -> None:
    """Register ``version`` in MLflow from its ``models`` row and directory when it is not there yet (a
    warehouse written before hitcast used MLflow)."""
    row = read_models(spark, cfg).where(F.col("model_version") == version).first()
    if row is None:
        raise ModelNotFoundError(f"model version '{version}' not found in {cfg.table('models')}")
    path = Path(row["path"])
    run_id, registered = tracking.log_and_register(cfg, version=version, variant=row["variant"], path=path,
                                                   metrics=read_json(path, "metrics.json"),
                                                   inputs=read_json(path, "inputs.json"), role=row["role"])
    if row["mlflow_version"] != registered:
        from delta.tables import DeltaTable

        DeltaTable.forPath(spark, cfg.table("models")).update(
            condition=F.col("model_version") == version,
            set={"mlflow_run_id": F.lit(run_id), "mlflow_version": F.lit(registered)})


def champion_version(spark: SparkSession, cfg: Config) -> tuple[str, Path]:
    """``(version, path)`` of the champion: the version the MLflow alias ``champion`` points at.

    Raises
    ------
    ModelNotFoundError
        When there is no champion (the message names jobs/promote.py).
    """
    found = tracking.champion(cfg)
    if found is None or not found[0]:
        mirror = champion_in_table(spark, cfg)
        hint = (f"; {cfg.table('models')} names {mirror} the champion: jobs/promote.py --model-version {mirror} "
                "records it in MLflow" if mirror else "")
        raise ModelNotFoundError(f"no champion model: the MLflow model '{cfg.mlflow.registered_model}' at "
                                 f"{tracking.tracking_uri(cfg)} has no alias 'champion'; promote a candidate with "
                                 f"jobs/promote.py (or name a version with --model-version){hint}")
    return get_version(spark, cfg, found[0])


def resolve_model(spark: SparkSession, cfg: Config, version: str = "champion") -> tuple[str, Path]:
    """``(model_version, directory)`` of ``version``.

    ``"champion"`` (or empty) is the version the MLflow alias ``champion`` points at (``jobs/promote.py``
    moves it); ``"latest"`` is the newest ``candidate`` or ``champion`` of ``cfg.train.variant``; anything
    else names a version.

    Raises
    ------
    ModelNotFoundError
        When no such version exists (the message names the table and the job to run).
    """
    if not version or version == "champion":
        return champion_version(spark, cfg)
    if version == "latest":
        return latest_version(spark, cfg, cfg.train.variant)
    return get_version(spark, cfg, version)


def record_test_figures(spark: SparkSession, cfg: Config, version: str, test: Mapping[str, Any],
                        artifacts: Sequence[Path] = ()) -> None:
    """Store the evaluation's test figures of ``version`` in ``models.test_metrics`` (JSON) and log them,
    with the report files ``artifacts``, to its MLflow run."""
    from delta.tables import DeltaTable

    ensure_role_columns(spark, cfg.table("models"))
    DeltaTable.forPath(spark, cfg.table("models")).update(
        condition=F.col("model_version") == version,
        set={"test_metrics": F.lit(json.dumps(dict(test), sort_keys=True, default=str))})
    tracking.record_evaluation(cfg, version, test, artifacts)


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


def latest_version(spark: SparkSession, cfg: Config, variant: str) -> tuple[str, Path]:
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
