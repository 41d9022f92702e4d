"""Training a model version: stats -> version -> Petastorm copies -> barrier training -> version files.

``jobs/train.py`` (through :func:`hitcast.lifecycle.training.run_training`, which registers the version)
calls :func:`train_model` on the Delta tables; evaluation calls it for ablations and the real-data run with
other DataFrames and variants (identical code path).

The chief checkpoints every epoch under ``<version>/checkpoints/`` (:mod:`hitcast.model.checkpoints`, only the
last is kept). When a version's training starts and a checkpoint of the same spec exists, every worker loads
it and training continues at the next epoch. When the barrier stage fails (a worker lost), the error says
which epoch the last checkpoint holds and that re-running the same command resumes from it. Once the version
is registered its checkpoints are deleted (the model file holds what the version needs).
"""
from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.model import checkpoints, dataset, store
from hitcast.model.distributed import TrainingError, run_barrier_training
from hitcast.model.spec import DEFAULT_SPEC, ModelSpec, save_spec
from hitcast.model.tabular import compute_numeric_stats, compute_stats, feature_columns
from hitcast.tables import fingerprint, read_table, table_exists, table_version

log = logging.getLogger(__name__)

#: Train settings that do not change the trained weights (left out of the version hash).
NOT_IN_VERSION = ("timeout_s", "cache_dir", "reader_workers")


@dataclass
class TrainOutcome:
    """What :func:`train_model` did."""

    version: str
    path: Path
    variant: str
    skipped: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    #: The model spec of the version (its variant's groups).
    spec: ModelSpec = DEFAULT_SPEC
    #: The inputs' lineage the version was made from (the caller's, plus the fingerprints of the spec's
    #: group sources).
    inputs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.skipped:
            return f"model version {self.version} ({self.variant}) already existed at {self.path}"
        val = self.metrics.get("validation", {})
        return (f"model version {self.version} ({self.variant}) trained on {self.workers} workers at {self.path}; "
                f"validation ROC-AUC {val.get('val_auc', float('nan')):.3f}, "
                f"F1 {val.get('val_f1', float('nan')):.3f}, threshold {self.metrics.get('threshold') or 0.5:.3f}; "
                "a new version is a candidate until jobs/promote.py makes it the champion")


def table_inputs(spark: SparkSession, cfg: Config) -> tuple[DataFrame, DataFrame | None, dict[str, Any]]:
    """``training_examples``, ``spectrograms`` (None when absent) and their lineage for ``inputs.json``.

    Returns
    -------
    (examples, spectrograms, inputs)
        ``inputs[name] = {"location", "delta_version", "fingerprint"}``; the spectrogram fingerprint
        covers what the model reads (``mel``, ``status``, shapes) and leaves out ``computed_at`` and
        ``content_hash``: re-encoding the same audio (an Ogg file gets a new random stream serial) changes the
        bytes but not the spectrogram, and must not make a new model version.
    """
    examples = read_table(spark, cfg, "training_examples")
    spectrograms = read_table(spark, cfg, "spectrograms") if table_exists(spark, cfg.table("spectrograms")) \
        else None
    inputs: dict[str, Any] = {}
    for name, df, exclude in (("training_examples", examples, ()),
                              ("spectrograms", spectrograms, ("computed_at", "content_hash"))):
        if df is not None:
            inputs[name] = {"location": cfg.table(name), "delta_version": table_version(spark, cfg.table(name)),
                            "fingerprint": fingerprint(df, exclude)}
    if spectrograms is None:
        log.warning("no spectrograms table at %s: every example trains with has_audio = 0",
                    cfg.table("spectrograms"))
    return examples, spectrograms, inputs


def version_config(cfg: Config, variant: str, spec: ModelSpec) -> dict[str, Any]:
    """The train settings and the model spec (of ``variant``) that define a model version."""
    out = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k not in NOT_IN_VERSION}
    out["variant"] = variant
    out["spec"] = spec.for_variant(variant).to_dict()
    return out


def failure_message(version: str, exc: BaseException, found: tuple[int, Path] | None, workers: int) -> str:
    """What the train job says when its barrier stage failed: the cause, the last checkpoint, how to resume.

    Parameters
    ----------
    exc
        The error :func:`run_barrier_training` raised (a ``TrainingError`` or Spark's ``Py4JJavaError``).
    found
        ``(epoch, path)`` of the last checkpoint (:func:`hitcast.model.checkpoints.latest`), or None.
    """
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lost = re.search(r"ExecutorLostFailure[^\n]*", text)
    worker = re.search(r"training worker \d+ exited with code -?\d+", text)
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln)
              and not any(w in ln for w in ("TrainingError", "SparkException", "Py4J", "PythonException"))]
    if "SPARK-24819" in text or "task slots" in text:
        cause = (f"the cluster has too few task slots left for {workers} barrier tasks (a lost worker?); "
                 "start the missing worker(s) or lower train.workers (a new version)")
    elif lost:
        cause = "a training worker was lost: " + lost.group(0)[:300]
    elif worker:
        cause = worker.group(0) + (": " + errors[-1][:300] if errors else "")
    else:
        cause = (lines[0] if lines else type(exc).__name__)[:300]
    where = (f"the last checkpoint holds epoch {found[0]} at {found[1]}; re-running the same command resumes "
             "from it" if found else "no checkpoint was written yet; re-running the same command starts over")
    return f"training of {version} failed: {cause}. {where}"


def _kept_epoch(history: list[dict], best_epoch: int | None) -> dict:
    """The per-epoch metrics of the saved weights: the best epoch if the chief restored it, else the last."""
    for stats in history:
        if best_epoch is not None and stats.get("epoch") == best_epoch:
            return stats
    return history[-1] if history else {}


def train_model(spark: SparkSession, cfg: Config, examples: DataFrame, *, spectrograms: DataFrame | None,
                inputs: dict[str, Any], variant: str | None = None, force: bool = False,
                train_split: str = "train", validation_split: str = "validation",
                exclude_features: Sequence[str] = (), version_prefix: str | None = None,
                spec_overrides: dict[str, Any] | None = None, spec: ModelSpec | None = None,
                sources: Mapping[str, DataFrame] | None = None) -> TrainOutcome:
    """Train one model version on ``cfg.train.workers`` barrier tasks and write its version directory
    (:mod:`hitcast.model.store`); :func:`hitcast.lifecycle.training.train_and_register` also registers it.

    Parameters
    ----------
    examples : DataFrame
        ``training_examples`` schema (``split`` column; numeric features; ``genre``; labels).
    spectrograms : DataFrame or None
        ``hitcast.schemas.SPECTROGRAMS``; only read by audio variants.
    inputs : dict
        Lineage of the inputs (:func:`table_inputs`); its fingerprints define the version.
    variant : str, optional
        ``fused`` or the name of one group of ``spec`` (``tabular``, ``audio``, ...; default
        ``cfg.train.variant``): the model reads that subset of the groups.
    force : bool
        Retrain even when the version exists.
    version_prefix : str, optional
        Prefix of the version name (default: the variant), e.g. ``hitpredictor-tabular``.
    spec_overrides : dict, optional
        Extra worker-spec keys that leave the weights alone (tests: ``stop_after_epoch``, a fault injection).
    spec : ModelSpec, optional
        The input groups (default :data:`hitcast.model.spec.DEFAULT_SPEC`); saved as ``spec.json`` and part
        of the version hash.
    sources : mapping of str to DataFrame, optional
        The source table of every ``numeric`` group of ``spec`` (name -> rows keyed by ``track_id``); their
        content fingerprints join ``inputs``.

    Returns
    -------
    TrainOutcome
    """
    variant = variant or cfg.train.variant
    inputs_spec = (spec or DEFAULT_SPEC).for_variant(variant)
    audio = inputs_spec.uses_audio
    sources = {name: df for name, df in (sources or {}).items() if name in {g.source for g in inputs_spec.groups}}
    inputs = {**inputs, **{name: {"fingerprint": fingerprint(df)} for name, df in sorted(sources.items())
                           if name not in inputs}}
    version = store.model_version(version_prefix or variant, inputs, version_config(cfg, variant, inputs_spec))
    path = store.version_dir(cfg, version)
    if not force and store.version_complete(path):
        log.info("model version %s already exists at %s: skipping training (use --force to retrain)", version, path)
        metrics = store.read_json(path, "metrics.json")
        return TrainOutcome(version, path, variant, True, metrics, len(metrics.get("worker_checksums", [])),
                            inputs_spec, inputs)
    unlabelled = examples.where(~F.col("is_hit").isin(0, 1) | F.col("is_hit").isNull()).count()
    if unlabelled:
        log.warning("%d training_examples rows have no 0/1 is_hit label; they are left out of training",
                    unlabelled)
        examples = examples.where(F.col("is_hit").isin(0, 1))
    features = [c for c in feature_columns(examples) if c not in set(exclude_features)]
    train = examples.where(F.col("split") == train_split)
    n_mels, n_frames = dataset.spectrogram_shape(spectrograms if audio else None, cfg)
    stats = compute_stats(train, features, n_mels=n_mels, n_frames=n_frames, log1p_min_skew=cfg.train.log1p_min_skew,
                          scaling=cfg.train.scaling,
                          bins=cfg.train.bins)
    stats.extra = {"version": version, "variant": variant, "popularity_head": cfg.train.popularity_head}
    if inputs_spec.of_kind("numeric"):
        train_groups = dataset.join_groups(train, inputs_spec, sources)
        stats.groups = {g.name: compute_numeric_stats(train_groups, g.columns)
                        for g in inputs_spec.of_kind("numeric")}
    joined = dataset.join_groups(
        dataset.join_spectrograms(examples.where(F.col("split").isin(train_split, validation_split)),
                                  spectrograms if audio else None), inputs_spec, sources)
    rows = dataset.training_rows(joined, stats, inputs_spec).cache()
    workers = cfg.train.workers
    converters = []
    t0 = time.perf_counter()
    try:
        conv_train = dataset.make_converter(spark, cfg, rows.where(F.col("split") == train_split),
                                            files=workers * max(1, cfg.train.files_per_worker))
        converters.append(conv_train)
        # Spark lists the Parquet files in directory order, which varies with their random names from run to
        # run; sorted (part-00000-..., part-00001-...) every run deals the same row groups to the same worker
        conv_train.file_urls = sorted(conv_train.file_urls)
        conv_val = None
        if rows.where(F.col("split") == validation_split).limit(1).count():
            conv_val = dataset.make_converter(spark, cfg, rows.where(F.col("split") == validation_split), files=1)
            converters.append(conv_val)
        shards = dataset.shard_rows(conv_train.file_urls, workers)
        steps = min(shards) // cfg.train.batch_size
        if steps < 1:
            raise TrainingError(f"the smallest of {workers} shards of split '{train_split}' has {min(shards)} rows, "
                                f"fewer than train.batch_size={cfg.train.batch_size}")
        log.info("training %s: %d train rows in shards %s, %d steps/epoch x %d epochs on %d workers, "
                 "%d features, %d genres, audio %s", version, len(conv_train), shards, steps,
                 cfg.train.epochs, workers, len(features), len(stats.genres),
                 f"{n_mels}x{n_frames}" if audio else "off")
        path.mkdir(parents=True, exist_ok=True)
        t = cfg.train
        spec = {"converter": conv_train, "val_converter": conv_val, "batch_size": t.batch_size,
                "steps_per_epoch": steps, "epochs": t.epochs, "seed": t.seed, "learning_rate": t.learning_rate,
                "lr_schedule": t.lr_schedule, "weight_decay": t.weight_decay,
                "audio_dropout": t.audio_dropout, "popularity_weight": t.popularity_weight,
                "shuffle_buffer": t.shuffle_buffer, "reader_workers": t.reader_workers,
                "restore_best": t.restore_best, "threshold": t.threshold, "save_path": str(path / store.MODEL_FILE),
                "model": {"tabular_width": stats.width, "n_mels": n_mels, "n_frames": n_frames,
                          "variant": variant, "popularity_head": t.popularity_head,
                          "conv_filters": list(t.conv_filters), "dense_units": t.dense_units,
                          "dropout": t.dropout, "kernel_size": t.kernel_size,
                          "members": t.ensemble, "spec": inputs_spec.to_dict()}}
        spec.update(spec_overrides or {})
        ckpt_root = path / checkpoints.CHECKPOINTS
        run_fingerprint = checkpoints.spec_fingerprint(dict(spec, workers=workers))
        spec.update(checkpoint_dir=str(ckpt_root), fingerprint=run_fingerprint)
        found = checkpoints.latest(ckpt_root, run_fingerprint)
        if found is not None:
            log.info("resuming %s from the checkpoint of epoch %d (%s)", version, found[0], found[1])
            spec["resume_from"] = str(found[1])
        try:
            results = run_barrier_training(spark, spec, workers=workers, timeout_s=t.timeout_s)
        except Exception as exc:  # noqa: BLE001 - Spark's Py4JJavaError has no narrower base
            raise TrainingError(failure_message(version, exc, checkpoints.latest(ckpt_root, run_fingerprint),
                                                workers)) from exc
    finally:
        for conv in converters:
            conv.delete()
        rows.unpersist()
    wall = time.perf_counter() - t0
    chief = results[0]
    metrics = {"history": chief["epochs"], "losses": chief["losses"], "checksum": chief["checksum"],
               "worker_checksums": [r["checksum"] for r in results], "steps_per_epoch": steps,
               "shard_rows": shards, "examples_per_s": chief["examples_per_s"], "train_wall_s": wall,
               "best_epoch": chief.get("best_epoch"), "resumed_from_epoch": found[0] if found else None,
               "validation": _kept_epoch(chief["epochs"], chief.get("best_epoch")),
               # F1-maximising on validation for the saved epoch; the bundle's decision threshold (None: 0.5)
               "threshold": chief.get("threshold")}
    save_spec(path, inputs_spec)       # before metrics.json, which marks a finished version
    store.write_version_files(path, stats_json=stats.to_json(), config=cfg.to_dict(), metrics=metrics, inputs=inputs)
    shutil.rmtree(ckpt_root, ignore_errors=True)
    log.info("model %s trained in %.0f s: final loss %.4f, %s", version, wall, chief["losses"][-1],
             ", ".join(f"{k} {v:.3f}" for k, v in metrics["validation"].items() if k.startswith("val_")))
    return TrainOutcome(version, path, variant, False, metrics, workers, inputs_spec, inputs)
