"""Typed configuration: YAML files with ``extends``, plus ``--set key=value`` overrides.

A configuration file is a YAML mapping whose sections mirror the dataclasses below.
``conf/local.yaml`` and ``conf/cluster.yaml`` both ``extends: base.yaml``. Overrides use
dotted keys, e.g. ``--set train.epochs=3 --set spark.master=local[2]``; the value is parsed
as YAML, so ``3`` is an int and ``[a, b]`` a list.

Every key and its default is in ``conf/base.yaml`` and nowhere else: the dataclasses below only give
the types. Unknown keys are errors (a typo must not be silently ignored), a missing key is an error, and
a mode string (``train.variant``, ``dsp.crop``, ...) outside its allowed values is an error when the
file loads; every such error names the key.

A loaded configuration is frozen: a job or a test that needs other values makes a new one with
``dataclasses.replace`` (``replace(cfg, train=replace(cfg.train, epochs=1))``), so nothing changes under a
stage that holds it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, get_type_hints

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
#: Every setting and its default, and nothing else.
BASE_CONF = PROJECT_ROOT / "conf" / "base.yaml"


@dataclass(frozen=True)
class SparkSection:
    """How the Spark session is built (see :mod:`hitcast.spark`)."""

    master: str
    #: Extra Spark settings, passed through verbatim.
    conf: dict[str, Any]
    #: Ivy cache for the Delta jars when ``make jars`` has not filled ``.cache/jars``.
    jars_cache: str
    arrow_max_records_per_batch: int
    shuffle_partitions: int
    driver_memory: str


@dataclass(frozen=True)
class PathsSection:
    """Where tables, raw inputs, models and reports live. Relative paths are relative to ``root``."""

    root: str
    warehouse: str
    raw: str
    audio_roots: list[str]
    models: str
    reports: str


@dataclass(frozen=True)
class DemoSection:
    """The demo catalog generator."""

    seed: int
    tracks: int
    tracks_per_artist: float
    listeners: int
    start_date: str
    end_date: str
    clip_seconds: float
    sample_rate: int
    audio_pool: int
    events_per_track: float
    bad_input: bool
    mc_draws: int
    events_per_partition: int


@dataclass(frozen=True)
class IngestSection:
    """Where raw inputs are and how they map onto the input contract."""

    catalog_path: str
    catalog_format: Literal["auto", "csv", "json", "parquet"]
    column_mapping: dict[str, str]
    derived_columns: dict[str, str]
    events_path: str
    events_format: Literal["auto", "json", "parquet"]
    future_tolerance_hours: float
    now: str
    catalog_required: list[str]
    events_column_mapping: dict[str, str]
    #: An event profile (``conf/events-<name>.yaml``, or a file): how an export maps onto the contract.
    events_profile: str
    #: Derive catalog rows (no audio) from the events for tracks the catalog lacks.
    derive_catalog: bool
    #: Resolve every track identifier to one canonical track_id (``track_aliases``, :mod:`hitcast.ingest.identity`).
    track_identity: bool
    events_partition_by: list[str]
    #: Read only the event files ``ingested_files`` does not hold unchanged (same path, size, modification time).
    new_files_only: bool
    csv_options: dict[str, str]


@dataclass(frozen=True)
class FeaturesSection:
    """Point-in-time features and labels."""

    cutoffs: list[str]
    horizon_days: int
    windows_days: list[int]
    hit_share: float
    cold_start_days: int
    validation_cutoffs: list[str]
    test_cutoffs: list[str]
    artist_disjoint: bool
    artist_split_shares: list[float]
    split_seed: int
    max_age_days: int
    #: lgConfigK of the daily listener sketches (``engagement_daily.listeners_sketch``), 4-21.
    listeners_lg_k: int

    def __post_init__(self) -> None:
        if not 4 <= self.listeners_lg_k <= 21:
            raise ConfigError(f"configuration key features.listeners_lg_k: {self.listeners_lg_k} is not in 4..21 "
                              "(the lgConfigK of Spark's hll_sketch_agg)")


@dataclass(frozen=True)
class DspSection:
    """Audio decoding and log-mel settings; their hash is the spectrogram ``dsp_version``."""

    sr: int
    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float
    clip_seconds: float
    crop: Literal["center", "start"]
    min_seconds: float
    max_decode_seconds: float
    top_db: float
    silence_dbfs: float
    tracks_per_partition: int


@dataclass(frozen=True)
class TrainSection:
    """Distributed CNN training."""

    workers: int
    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: Literal["constant", "cosine"]
    weight_decay: float
    seed: int
    popularity_head: bool
    audio_dropout: float
    variant: Literal["fused", "tabular", "audio"]
    conv_filters: list[int]
    kernel_size: int
    dense_units: int
    dropout: float
    ensemble: int
    popularity_weight: float
    cache_dir: str
    files_per_worker: int
    shuffle_buffer: int
    reader_workers: int
    log1p_min_skew: float
    scaling: Literal["piecewise", "rank_gauss", "standard"]
    bins: int
    restore_best: bool
    threshold: Literal["f1_max", "f1_bootstrap"]
    timeout_s: int


@dataclass(frozen=True)
class EvaluateSection:
    """Evaluation: ablations, the GBT baseline and report settings."""

    ablations: list[Literal["fused", "tabular", "audio"]]
    gbt: bool
    gbt_iterations: int
    gbt_max_depth: int
    oracle: bool
    min_group_rows: int
    calibration_bins: int


@dataclass(frozen=True)
class LabelledSection:
    """A catalog with a known label (``known_label``) and release dates, evaluated by ``evaluate.py --labelled``."""

    test_from: int
    validation_share: int
    period_years: int
    artist_history: bool
    features: list[str]
    reference: dict[str, float]


@dataclass(frozen=True)
class ScoreSection:
    """Catalog-wide scoring."""

    model_version: str
    #: ISO date the features are computed as of; empty = the day after the last event.
    as_of: str
    broadcast_max_rows: int
    reasons: int
    history_days: int
    #: A run's scratch folder older than this many hours belongs to a run that died: the next run removes it.
    staging_max_age_hours: float


@dataclass(frozen=True)
class PromoteSection:
    """Promotion of a candidate model to champion (``jobs/promote.py``): how much worse than the champion, on
    the test split, a candidate may be and still be promoted without ``--force``."""

    margin_roc_auc: float
    margin_f1: float


@dataclass(frozen=True)
class MlflowSection:
    """MLflow tracking and Model Registry, the system of record for model versions (:mod:`hitcast.lifecycle`)."""

    #: A team's tracking server (``http://host:5000``, ``databricks``, ...); empty: the embedded SQLite store
    #: ``store_dir/mlflow.db`` with artifacts in ``store_dir/artifacts`` (nothing to start).
    tracking_uri: str
    store_dir: str
    experiment: str
    #: The one registered model every variant's versions belong to (tag ``variant``); alias ``champion``.
    registered_model: str
    ui_host: str
    ui_port: int


@dataclass(frozen=True)
class SqlSection:
    """The analysts' SQL endpoint: Spark's Thrift JDBC/ODBC server (:mod:`hitcast.sql`)."""

    host: str
    port: int
    tables_database: str
    views_database: str
    private_tables: list[str]
    private_columns: list[str]
    top_n: int
    master: str
    driver_memory: str
    metastore_dir: str
    start_timeout_s: int
    hiveconf: dict[str, Any]
    conf: dict[str, Any]


@dataclass(frozen=True)
class ClusterSection:
    """A Spark standalone cluster on this machine (:mod:`hitcast.cluster.standalone`, ``make cluster-up``)."""

    host: str
    master_port: int
    master_ui_port: int
    #: One port per worker (the number of workers is their number).
    worker_ports: list[int]
    #: One web UI port per worker.
    worker_ui_ports: list[int]
    worker_cores: int
    worker_memory: str
    daemon_memory: str
    #: PID file, logs and work folders.
    dir: str
    start_timeout_s: int
    #: A worker removes the folders (unpacked environments, logs) of applications that ended this long ago.
    app_data_ttl_s: int
    #: The Python environment already unpacked at this absolute path on every node (executors run its
    #: ``bin/python``); empty: ``spark-submit`` ships ``dist/hitcast-env.tar.gz`` with ``--archives``.
    python_env: str


@dataclass(frozen=True)
class Config:
    """The whole configuration of one hitcast run."""

    spark: SparkSection
    paths: PathsSection
    demo: DemoSection
    ingest: IngestSection
    features: FeaturesSection
    dsp: DspSection
    train: TrainSection
    evaluate: EvaluateSection
    labelled: LabelledSection
    score: ScoreSection
    promote: PromoteSection
    mlflow: MlflowSection
    sql: SqlSection
    cluster: ClusterSection
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
    fields = [f for f in dataclasses.fields(cls) if f.name != "source"]
    names = {f.name for f in fields}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown configuration key {where}{unknown[0]!s} (known: {', '.join(sorted(names))})")
    missing = sorted(names - set(data))
    if missing:
        raise ConfigError(f"configuration key {where}{missing[0]} is missing (conf/base.yaml sets every key; "
                          "a file should extend it)")
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
    if origin is Literal:
        if value not in hint.__args__:
            raise ConfigError(f"configuration key {key}: {value!r} is not one of {', '.join(map(str, hint.__args__))}")
        return value
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
    cfg = dataclasses.replace(_build(Config, data, ""), source=str(conf_path))
    log.debug("loaded configuration %s with %d overrides", conf_path, len(overrides))
    return cfg


def base_config(overrides: Sequence[str] = ()) -> Config:
    """``conf/base.yaml`` alone (every default), with ``key=value`` overrides."""
    return load_config(BASE_CONF, overrides)
