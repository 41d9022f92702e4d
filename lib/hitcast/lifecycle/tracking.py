"""MLflow tracking and Model Registry: every model version is a run and a registered model version.

The registered model ``mlflow.registered_model`` (default ``hitcast``) holds every variant's versions; each
registered version carries the tags ``hitcast_version`` (the deterministic version name, e.g.
``fused-3f2a...``), ``variant`` and ``role``. The alias ``champion`` is the version scoring uses
(:mod:`hitcast.lifecycle.registry` resolves it). A refused or forced promotion is recorded as a tag on the
version (``promotion_refused`` / ``promotion_forced``).

A training run logs (run name = the hitcast version):

- parameters: every key of the config sections the model depends on (``train.*``, ``features.*``,
  ``dsp.*``), and ``input.<table>.delta_version`` / ``input.<table>.rows`` of the input tables;
- metrics: per epoch (``step`` = epoch) every number of the training history, then the validation figures
  of the kept epoch (``kept_val_auc``, ...) and its ``threshold``; the evaluation adds ``test_*`` figures and the report with its plots as artifacts;
- the model, as an MLflow ``pyfunc`` wrapping the hitcast bundle (:mod:`hitcast.lifecycle.pyfunc`).

Embedded default: a SQLite store ``mlflow.store_dir/mlflow.db`` with artifacts in
``mlflow.store_dir/artifacts``; ``mlflow.tracking_uri`` points at a team's server instead.
"""
from __future__ import annotations

import importlib.metadata
import importlib.resources
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from hitcast.config import Config

log = logging.getLogger(__name__)

#: The config sections whose keys a training run logs as parameters.
PARAM_SECTIONS = ("train", "features", "dsp")

#: Packages the logged pyfunc model needs (their installed versions are written into its requirements).
MODEL_REQUIREMENTS = ("hitcast", "mlflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pyarrow", "ml_dtypes")

#: The tag naming a registered version's hitcast version.
VERSION_TAG = "hitcast_version"


def tracking_uri(cfg: Config) -> str:
    """``mlflow.tracking_uri``, or the embedded SQLite store under ``mlflow.store_dir``."""
    if cfg.mlflow.tracking_uri:
        return cfg.mlflow.tracking_uri
    store = cfg.path(cfg.mlflow.store_dir)
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def artifact_root(cfg: Config) -> str | None:
    """The experiment's artifact location for the embedded store (``None``: the server decides)."""
    if cfg.mlflow.tracking_uri:
        return None
    return (cfg.path(cfg.mlflow.store_dir) / "artifacts").as_uri()


def client(cfg: Config):
    """An ``mlflow.MlflowClient`` on the configured tracking and registry store (created when missing)."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(cfg: Config, mlc) -> str:
    """The id of ``mlflow.experiment`` (created with the embedded artifact location when missing)."""
    found = mlc.get_experiment_by_name(cfg.mlflow.experiment)
    if found is not None:
        return found.experiment_id
    return mlc.create_experiment(cfg.mlflow.experiment, artifact_location=artifact_root(cfg))


def flat_params(section: str, values: Mapping[str, Any]) -> dict[str, str]:
    """``{"<section>.<key>": str(value)}`` (MLflow parameters are strings of at most 6000 characters)."""
    return {f"{section}.{k}": str(v)[:6000] for k, v in sorted(values.items())}


def epoch_metrics(history: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """``(name, value, epoch)`` for every finite number of every epoch of a training history."""
    out = []
    for i, epoch in enumerate(history):
        step = int(epoch.get("epoch", i))
        for k, v in sorted(epoch.items()):
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.append((k, float(v), step))
    return out


def find_version(cfg: Config, mlc, version: str):
    """The registered ``ModelVersion`` tagged ``hitcast_version=version``, or ``None``."""
    name = cfg.mlflow.registered_model
    try:
        found = mlc.search_model_versions(f"name='{name}' and tags.{VERSION_TAG}='{version}'")
    except Exception as exc:  # noqa: BLE001 - MlflowException(RESOURCE_DOES_NOT_EXIST) before the first version
        log.debug("no registered version %s: %s", version, exc)
        return None
    return max(found, key=lambda v: int(v.version)) if found else None


def _requirements() -> list[str]:
    """Pinned requirements of the logged pyfunc model, from the installed distributions."""
    reqs = []
    for dist in MODEL_REQUIREMENTS:
        try:
            reqs.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return reqs


def log_and_register(cfg: Config, *, version: str, variant: str, path: Path, metrics: Mapping[str, Any],
                     inputs: Mapping[str, Any], role: str) -> tuple[str, str]:
    """Log the training run of ``version`` and register its model; nothing new when it is registered already.

    Parameters
    ----------
    version, variant : str
        The hitcast version and its variant.
    path : Path
        The version directory (the bundle the pyfunc wraps).
    metrics : mapping
        ``metrics.json`` of the version (``history``: one dict per epoch; ``validation``; ``threshold``).
    inputs : mapping
        ``inputs.json``: per table ``delta_version`` and ``fingerprint`` (``rows``).
    role : str
        The ``role`` tag of a new registered version.

    Returns
    -------
    (run_id, registered_version) : tuple of str
    """
    import mlflow

    mlc = client(cfg)
    known = find_version(cfg, mlc, version)
    if known is not None:
        return known.run_id, str(known.version)
    params: dict[str, str] = {}
    conf = cfg.to_dict()
    for section in PARAM_SECTIONS:
        params.update(flat_params(section, conf[section]))
    for table, lineage in sorted(inputs.items()):
        if isinstance(lineage, Mapping):
            params[f"input.{table}.delta_version"] = str(lineage.get("delta_version"))
            params[f"input.{table}.rows"] = str((lineage.get("fingerprint") or {}).get("rows"))
    with mlflow.start_run(experiment_id=experiment_id(cfg, mlc), run_name=version,
                          tags={VERSION_TAG: version, "variant": variant}) as run:
        mlflow.log_params(params)
        for name, value, step in epoch_metrics(metrics.get("history", [])):
            mlflow.log_metric(name, value, step=step)
        final = {f"kept_{k}": float(v) for k, v in (metrics.get("validation") or {}).items()
                 if k.startswith("val_") and isinstance(v, (int, float)) and math.isfinite(v)}
        if metrics.get("threshold") is not None:
            final["threshold"] = float(metrics["threshold"])
        mlflow.log_metrics(final)
        for name in ("metrics.json", "inputs.json", "stats.json", "spec.json", "config.yaml"):
            if (path / name).is_file():
                mlflow.log_artifact(str(path / name), artifact_path="version")
        with tempfile.TemporaryDirectory() as tmp:
            # models from code need a file: hitcast may be imported from a zip (spark-submit --py-files)
            served = Path(tmp) / "served.py"
            served.write_text(importlib.resources.files("hitcast.lifecycle").joinpath("served.py").read_text())
            info = mlflow.pyfunc.log_model(name="model", python_model=str(served), artifacts={"bundle": str(path)},
                                           pip_requirements=_requirements())
    name = cfg.mlflow.registered_model
    try:
        mlc.get_registered_model(name)
    except Exception:  # noqa: BLE001 - RESOURCE_DOES_NOT_EXIST
        mlc.create_registered_model(name, description="hitcast hit models: every variant, tagged; alias "
                                                      "'champion' is the one catalog scoring uses")
    mv = mlc.create_model_version(name, source=info.model_uri, run_id=run.info.run_id,
                                  tags={VERSION_TAG: version, "variant": variant, "role": role})
    log.info("MLflow: run %s logged and registered as %s version %s (%s)", run.info.run_id, name, mv.version,
             tracking_uri(cfg))
    return run.info.run_id, str(mv.version)


def record_evaluation(cfg: Config, version: str, test: Mapping[str, float], artifacts: Iterable[Path]) -> None:
    """Log the test figures (``test_<name>``) and the report files of an evaluated version to its run."""
    mlc = client(cfg)
    known = find_version(cfg, mlc, version)
    if known is None or not known.run_id:
        log.warning("MLflow has no run of model version %s; its test figures are only in the models table", version)
        return
    for k, v in sorted(test.items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            mlc.log_metric(known.run_id, f"test_{k}", float(v))
    for f in artifacts:
        if f.is_file():
            mlc.log_artifact(known.run_id, str(f), artifact_path="evaluation")


def set_tag(cfg: Config, version: str, key: str, value: str) -> None:
    """Set the tag ``key`` on the registered version of ``version`` (no-op with a warning when unregistered)."""
    mlc = client(cfg)
    known = find_version(cfg, mlc, version)
    if known is None:
        log.warning("MLflow has no registered version of %s; tag %s not set", version, key)
        return
    mlc.set_model_version_tag(cfg.mlflow.registered_model, known.version, key, value[:5000])


def move_champion(cfg: Config, version: str) -> str:
    """Point the alias ``champion`` at the registered version of ``version``; returns that registered version.

    Raises
    ------
    LookupError
        When ``version`` is not registered in MLflow.
    """
    mlc = client(cfg)
    known = find_version(cfg, mlc, version)
    if known is None:
        raise LookupError(f"model version {version} is not registered in MLflow model "
                          f"'{cfg.mlflow.registered_model}' at {tracking_uri(cfg)}")
    mlc.set_registered_model_alias(cfg.mlflow.registered_model, "champion", known.version)
    mlc.set_model_version_tag(cfg.mlflow.registered_model, known.version, "role", "champion")
    return str(known.version)


def champion(cfg: Config) -> tuple[str, str] | None:
    """``(hitcast_version, registered_version)`` of the alias ``champion``, or ``None`` when there is none."""
    mlc = client(cfg)
    try:
        mv = mlc.get_model_version_by_alias(cfg.mlflow.registered_model, "champion")
    except Exception as exc:  # noqa: BLE001 - no registered model or no alias
        log.debug("no champion alias: %s", exc)
        return None
    return mv.tags.get(VERSION_TAG, ""), str(mv.version)
