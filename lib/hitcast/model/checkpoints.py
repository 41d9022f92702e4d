"""Per-epoch training checkpoints: what a training run needs to continue exactly where it stopped.

The chief (rank 0) writes one after every epoch under ``paths.models/<version>/checkpoints/``::

    epoch-0003/
        model.npz        every model variable (weights and the dropout layers' seed-generator states)
        optimizer.npz    every optimizer variable (iterations, learning rate, Adam's slots)
        best.npz         the best epoch's model weights so far (absent while there is none)
        state.json       epoch, per-epoch losses, history and rates, best AUC and epoch, spec fingerprint

A checkpoint is written to a hidden temporary directory beside it and renamed into place, so a reader sees
a whole checkpoint or none; then the older ones are deleted (only the last is kept). Every worker reads
the same directory at the start of a resumed run, so ``paths.models`` must be storage every executor sees
with an atomic rename (a local disk on one machine, NFS or another POSIX file system on a cluster).
:func:`hitcast.model.training.train_model` deletes the directory once the version is registered.

The data order does not need saving: each epoch's order is a function of (``seed``, epoch, rank) alone
(:func:`hitcast.model.trainloop.epoch_seed`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Subdirectory of a version's directory that holds its checkpoints.
CHECKPOINTS = "checkpoints"
#: Spec keys that do not change the trained weights (left out of the fingerprint).
NOT_IN_FINGERPRINT = ("converter", "val_converter", "save_path", "checkpoint_dir", "resume_from", "fingerprint",
                      "stop_after_epoch", "tf_config", "rank", "reader_workers", "keep_freed_memory", "timeout_s")


def epoch_dir(root: str | Path, epoch: int) -> Path:
    """``root/epoch-NNNN``: the checkpoint of ``epoch``."""
    return Path(root) / f"epoch-{epoch:04d}"


def spec_fingerprint(spec: Mapping[str, Any]) -> str:
    """sha256 (16 hex digits) over the spec's settings that determine the weights (not converters or paths)."""
    plain = {k: v for k, v in spec.items() if k not in NOT_IN_FINGERPRINT}
    blob = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def latest(root: str | Path, fingerprint: str | None = None) -> tuple[int, Path] | None:
    """The newest complete checkpoint under ``root`` as ``(epoch, path)``; None when there is none.

    A checkpoint written for another spec (``fingerprint`` differs) is not used: that is logged.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    for path in sorted(root.glob("epoch-*"), reverse=True):
        state_file = path / "state.json"
        if not state_file.is_file():
            continue
        state = json.loads(state_file.read_text())
        if fingerprint is not None and state.get("fingerprint") != fingerprint:
            log.warning("checkpoint %s was written for other training settings (%s, now %s): not resuming from it",
                        path, state.get("fingerprint"), fingerprint)
            return None
        return int(state["epoch"]), path
    return None


def _save_arrays(path: Path, arrays: Sequence[np.ndarray]) -> None:
    np.savez(path, **{f"a{i:05d}": np.asarray(a) for i, a in enumerate(arrays)})


def _load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files)]


def write(root: str | Path, epoch: int, *, model_vars: Sequence[np.ndarray], optimizer_vars: Sequence[np.ndarray],
          best_weights: Sequence[np.ndarray] | None, state: Mapping[str, Any]) -> Path:
    """Write the checkpoint of ``epoch`` atomically and delete the older ones; returns its path.

    Parameters
    ----------
    model_vars, optimizer_vars : sequence of ndarray
        ``[v.numpy() for v in model.variables]`` and ``optimizer.variables``, in that order.
    best_weights : sequence of ndarray or None
        ``model.get_weights()`` of the best epoch so far.
    state : mapping
        JSON-able: ``epoch``, ``losses``, ``history``, ``rates``, ``best_auc``, ``best_epoch``, ``fingerprint``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = epoch_dir(root, epoch)
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_arrays(tmp / "model.npz", model_vars)
    _save_arrays(tmp / "optimizer.npz", optimizer_vars)
    if best_weights is not None:
        _save_arrays(tmp / "best.npz", best_weights)
    (tmp / "state.json").write_text(json.dumps(dict(state), default=float))
    if final.exists():                      # a run that resumed before this epoch writes it again
        shutil.rmtree(final)
    os.rename(tmp, final)
    for old in root.iterdir():
        if old != final and (old.name.startswith("epoch-") or old.name.startswith(".epoch-")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def read(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`write`: its ``state`` dict plus ``model_vars``, ``optimizer_vars`` and
    ``best_weights`` (None when absent)."""
    path = Path(path)
    out = dict(json.loads((path / "state.json").read_text()))
    out["model_vars"] = _load_arrays(path / "model.npz")
    out["optimizer_vars"] = _load_arrays(path / "optimizer.npz")
    out["best_weights"] = _load_arrays(path / "best.npz") if (path / "best.npz").is_file() else None
    return out
