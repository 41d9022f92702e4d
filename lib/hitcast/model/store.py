"""Where a trained model version lives on disk, and how it is named.

A version directory (``paths.models/<version>``) holds::

    model.keras    the Keras model (saved by the training chief)
    stats.json     tabular.TabularStats + version/variant/heads (what inference needs)
    spec.json      the model spec: its input groups (hitcast.model.spec; written before metrics.json)
    config.yaml    the full configuration of the run
    metrics.json   training history and validation metrics (written last: its presence marks a finished version)
    inputs.json    Delta versions and content fingerprints of the input tables

The version is deterministic: ``f"{variant}-{sha256(inputs fingerprints + train config)[:12]}"``, so
re-running training on the same data and settings finds the version already there and skips. Registering a
version (the ``models`` table, MLflow) is the lifecycle's business (:mod:`hitcast.lifecycle.registry`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from hitcast.config import Config

MODEL_FILE = "model.keras"
FILES = ("stats.json", "config.yaml", "metrics.json", "inputs.json")

#: Bump when the training or encoding code changes what a model version computes (2: log1p-compressed
#: skewed features and best-epoch weights; 3: per-epoch data order from (seed, epoch, rank); 4: the model
#: spec, ``spec.json``, saved with every version and part of its train configuration). Part of every
#: model version's hash.
MODEL_CODE_VERSION = 4


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


def version_complete(path: Path) -> bool:
    """True when the version directory ``path`` holds a finished version (the model file and
    ``metrics.json``, which training writes after the last epoch)."""
    return (path / MODEL_FILE).is_file() and (path / "metrics.json").is_file()


def write_version_files(directory: Path, *, stats_json: str, config: Mapping[str, Any],
                        metrics: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
    """Write ``stats.json``, ``config.yaml``, ``inputs.json`` and, last, ``metrics.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stats.json").write_text(stats_json)
    (directory / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=True))
    (directory / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True, default=str))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))


def read_json(path: Path, name: str) -> dict[str, Any]:
    """``<path>/<name>`` parsed (``{}`` when the file is missing)."""
    f = path / name
    return json.loads(f.read_text()) if f.is_file() else {}
