"""The train stage end to end: stats -> version -> Petastorm copies -> barrier training -> registry.

``jobs/train.py`` calls :func:`train_model` on the Delta tables; evaluation calls it for ablations and
the real-data run with other DataFrames and variants (identical code path).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.model import dataset, registry
from hitcast.model.architecture import input_names
from hitcast.model.distributed import TrainingError, run_barrier_training
from hitcast.model.tabular import compute_stats, feature_columns
from hitcast.tables import read_table, table_exists, table_version

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
                            "fingerprint": registry.fingerprint(df, exclude)}
    if spectrograms is None:
        log.warning("no spectrograms table at %s: every example trains with has_audio = 0",
                    cfg.table("spectrograms"))
    return examples, spectrograms, inputs


def version_config(cfg: Config, variant: str) -> dict[str, Any]:
    """The train settings that define a model version."""
    out = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k not in NOT_IN_VERSION}
    out["variant"] = variant
    return out


def _kept_epoch(history: list[dict], best_epoch: int | None) -> dict:
    """The per-epoch metrics of the saved weights: the best epoch if the chief restored it, else the last."""
    for stats in history:
        if best_epoch is not None and stats.get("epoch") == best_epoch:
            return stats
    return history[-1] if history else {}


def train_model(spark: SparkSession, cfg: Config, examples: DataFrame, *, spectrograms: DataFrame | None,
                inputs: dict[str, Any], variant: str | None = None, force: bool = False,
                train_split: str = "train", validation_split: str = "validation",
                exclude_features: Sequence[str] = (), version_prefix: str | None = None) -> TrainOutcome:
    """Train one model version on ``cfg.train.workers`` barrier tasks and register it.

    Parameters
    ----------
    examples : DataFrame
        ``training_examples`` schema (``split`` column; numeric features; ``genre``; labels).
    spectrograms : DataFrame or None
        ``hitcast.schemas.SPECTROGRAMS``; only read by audio variants.
    inputs : dict
        Lineage of the inputs (:func:`table_inputs`); its fingerprints define the version.
    variant : str, optional
        ``fused`` | ``tabular`` | ``audio`` (default ``cfg.train.variant``).
    force : bool
        Retrain even when the version exists.
    version_prefix : str, optional
        Prefix of the version name (default: the variant), e.g. ``hitpredictor-tabular``.

    Returns
    -------
    TrainOutcome
    """
    variant = variant or cfg.train.variant
    audio = "mel" in input_names(variant)
    version = registry.model_version(version_prefix or variant, inputs, version_config(cfg, variant))
    path = registry.version_dir(cfg, version)
    if not force and registry.version_exists(spark, cfg, version):
        log.info("model version %s already exists at %s: skipping training (use --force to retrain)", version, path)
        return TrainOutcome(version, path, variant, True)
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
    joined = dataset.join_spectrograms(examples.where(F.col("split").isin(train_split, validation_split)),
                                       spectrograms if audio else None)
    rows = dataset.training_rows(joined, stats, audio).cache()
    workers = cfg.train.workers
    converters = []
    t0 = time.perf_counter()
    try:
        conv_train = dataset.make_converter(spark, cfg, rows.where(F.col("split") == train_split),
                                            files=workers * max(1, cfg.train.files_per_worker))
        converters.append(conv_train)
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
                "restore_best": t.restore_best, "threshold": t.threshold, "save_path": str(path / registry.MODEL_FILE),
                "model": {"tabular_width": stats.width, "n_mels": n_mels, "n_frames": n_frames,
                          "variant": variant, "popularity_head": t.popularity_head,
                          "conv_filters": list(t.conv_filters), "dense_units": t.dense_units,
                          "dropout": t.dropout, "kernel_size": t.kernel_size,
                          "members": t.ensemble}}
        results = run_barrier_training(spark, spec, workers=workers, timeout_s=t.timeout_s)
    finally:
        for conv in converters:
            conv.delete()
        rows.unpersist()
    wall = time.perf_counter() - t0
    chief = results[0]
    metrics = {"history": chief["epochs"], "losses": chief["losses"], "checksum": chief["checksum"],
               "worker_checksums": [r["checksum"] for r in results], "steps_per_epoch": steps,
               "shard_rows": shards, "examples_per_s": chief["examples_per_s"], "train_wall_s": wall,
               "best_epoch": chief.get("best_epoch"),
               "validation": _kept_epoch(chief["epochs"], chief.get("best_epoch")),
               # F1-maximising on validation for the saved epoch; the bundle's decision threshold (None: 0.5)
               "threshold": chief.get("threshold")}
    registry.write_version_files(path, stats_json=stats.to_json(), config=cfg.to_dict(), metrics=metrics, inputs=inputs)
    registry.register(spark, cfg, version, variant=variant, workers=workers, metrics=metrics, inputs=inputs,
                      config=version_config(cfg, variant))
    log.info("model %s trained in %.0f s: final loss %.4f, %s", version, wall, chief["losses"][-1],
             ", ".join(f"{k} {v:.3f}" for k, v in metrics["validation"].items() if k.startswith("val_")))
    return TrainOutcome(version, path, variant, False, metrics, workers)


def run_training(spark: SparkSession, cfg: Config, *, variant: str | None = None,
                 force: bool = False) -> TrainOutcome:
    """The training stage: ``training_examples`` x ``spectrograms`` from the warehouse, one registered
    model version (see :func:`train_model`)."""
    examples, spectrograms, inputs = table_inputs(spark, cfg)
    return train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=variant,
                       force=force)
