"""A small scored pipeline for the analysts' tests (the SQL endpoint and the notebook), built once per test
process: ~60 generated tracks plus a few unreleased ones (so the cold-start watchlist is never empty), one tiny
model promoted to champion, two scoring runs (an earlier as-of date whose label window has passed, then the
default as-of date), so that score history, ``rising`` and calibration have something to show. No test module imports another test module; both import this helper.

The data stages and the training are the session's ``trained_demo`` (conftest.py), which the incremental
scoring tests copy too: one generated catalog and one training serve both."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import logging
import shutil
import socket
import time
from pathlib import Path

from helpers import make_config
from hitcast.config import Config

#: Small and quick: 60 tracks, 3 s clips, one epoch of a one-member model on 2 barrier workers.
SETTINGS = ["demo.tracks=60", "demo.events_per_track=40", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
            "demo.mc_draws=20", "train.epochs=1", "train.batch_size=16", "train.workers=2", "train.ensemble=1",
            "sql.driver_memory=1g", "sql.top_n=3"]
#: The first scoring run's as-of date: its 56-day label window ends well before the demo's last event.
EARLY_AS_OF = dt.date(2025, 6, 1)
#: Tracks added to the catalog with a release date after the last event: scored in cold-start mode.
UNRELEASED = 3
UNRELEASED_DATE = dt.date(2026, 2, 1)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScoredPipeline:
    """What :func:`scored_pipeline` built."""

    cfg: Config
    model_version: str
    early_run: str
    late_run: str
    late_as_of: dt.date


_BUILT: dict[str, ScoredPipeline] = {}


def free_port() -> int:
    """A loopback port nothing listens on (for a test's SQL endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_trained(spark, root: Path) -> Path:
    """Generate, ingest, compute features and spectrograms and train one model under ``root`` (with
    :data:`SETTINGS`); returns ``root``. Shared read-only (the session's ``trained_demo``): copy it."""
    from hitcast.demo.generate import generate_demo
    from hitcast.features.stage import run_features
    from hitcast.ingest.pipeline import run_ingest
    from hitcast.lifecycle.training import run_training
    from hitcast.spectrograms.stage import run_spectrograms

    cfg = make_config(root, *SETTINGS)
    t0 = time.perf_counter()
    generate_demo(spark, cfg)
    run_ingest(spark, cfg)
    run_features(spark, cfg)
    run_spectrograms(spark, cfg)
    run_training(spark, cfg)
    log.info("trained demo built in %.0f s", time.perf_counter() - t0)
    return root


def scored_pipeline(spark, root: Path, trained: Path) -> ScoredPipeline:
    """A copy of ``trained`` (:func:`build_trained`) under ``root``, given :data:`UNRELEASED` tracks (ingest and
    spectrograms again), its model promoted, and scored twice (once per process: a second call returns the
    first result)."""
    if "pipeline" in _BUILT:
        return _BUILT["pipeline"]
    from hitcast.ingest.pipeline import run_ingest
    from hitcast.lifecycle.promote import run_promote
    from hitcast.lifecycle.registry import latest_version
    from hitcast.scoring.stage import run_scoring
    from hitcast.spectrograms.stage import run_spectrograms

    shutil.copytree(trained, root, dirs_exist_ok=True)
    cfg = make_config(root, *SETTINGS)
    t0 = time.perf_counter()
    add_unreleased_tracks(cfg.path(cfg.ingest.catalog_path))
    run_ingest(spark, cfg)
    run_spectrograms(spark, cfg)
    version, _ = latest_version(spark, cfg, cfg.train.variant)
    run_promote(spark, cfg)
    early = run_scoring(spark, cfg, version="champion", as_of=EARLY_AS_OF)
    late = run_scoring(spark, cfg, version="champion")
    log.info("analysts' pipeline built in %.0f s", time.perf_counter() - t0)
    _BUILT["pipeline"] = ScoredPipeline(cfg, version, early.run_id, late.run_id, late.as_of)
    return _BUILT["pipeline"]


def add_unreleased_tracks(catalog_dir: Path, n: int = UNRELEASED) -> list[str]:
    """Write ``catalog-unreleased.csv``: copies of the first ``n`` rows of the generated ``catalog-base.csv`` as
    new tracks released on :data:`UNRELEASED_DATE` (after every event), with the same audio; return their ids."""
    with open(catalog_dir / "catalog-base.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for _, r in zip(range(n), reader)]
    for i, row in enumerate(rows):
        row.update(track_id=f"unreleased{i:03d}", title=f"Unreleased {i}", release_date=UNRELEASED_DATE.isoformat(),
                   updated_at=f"{UNRELEASED_DATE.isoformat()}T00:00:00Z")
    with open(catalog_dir / "catalog-unreleased.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return [r["track_id"] for r in rows]
