"""The daily run: every stage a day needs, in ONE Spark application, each doing only the day's change.

1. **ingest**: the event files not ingested before (``ingest_files``), and the catalog;
2. **spectrograms**: new or changed audio only;
3. **aggregates**: the new events into ``engagement_daily`` (only the days they fall on);
4. **features** as of ``as_of`` from ``engagement_daily`` (stored in ``scoring_features``);
5. **scoring**: the champion (or a given version) rescores the tracks whose inputs changed, and logs the run in
   ``scoring_runs``.

Re-running the same day changes no table: every stage finds nothing new, and scoring is skipped when the
model, ``as_of`` and the versions of everything it reads are those of the last logged run.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pyspark.sql import SparkSession

from hitcast.config import Config
from hitcast.tables import table_version

log = logging.getLogger(__name__)

#: The stages, in order.
STAGES = ("ingest", "spectrograms", "aggregates", "features", "scoring")
#: Tables whose versions decide whether scoring has anything to do (besides the model and ``as_of``).
SCORING_INPUTS = ("catalog", "engagement_daily", "spectrograms")


@dataclass
class StageTime:
    """One stage of a daily run: its name, what it changed (one line) and its wall time."""

    name: str
    changed: str
    seconds: float


@dataclass
class DailySummary:
    """What :func:`run_daily` did, stage by stage."""

    as_of: dt.date
    stages: list[StageTime] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def __str__(self) -> str:
        width = max(len(s.name) for s in self.stages) if self.stages else 0
        lines = [f"daily run as of {self.as_of}: {self.seconds:.1f} s"]
        lines += [f"  {s.name:<{width}}  {s.seconds:7.1f} s  {s.changed}" for s in self.stages]
        return "\n".join(lines)


def _timed(summary: DailySummary, name: str, step: Callable[[], Any], describe: Callable[[Any], str],
           skip: Sequence[str] = ()) -> Any:
    if name in skip:
        summary.stages.append(StageTime(name, "skipped (--skip)", 0.0))
        return None
    log.info("daily run: %s ...", name)
    t0 = time.perf_counter()
    result = step()
    stage = StageTime(name, describe(result), time.perf_counter() - t0)
    summary.stages.append(stage)
    log.info("daily run: %s done in %.1f s: %s", name, stage.seconds, stage.changed)
    return result


def scoring_is_current(spark: SparkSession, cfg: Config, model_version: str, as_of: dt.date) -> str | None:
    """The id of the last logged scoring run if it scored ``model_version`` as of ``as_of`` from the current
    versions of :data:`SCORING_INPUTS` (so scoring again would change nothing), else None."""
    from hitcast.scoring.runlog import previous_run

    last = previous_run(spark, cfg, model_version)
    if not last or last["as_of"] != as_of:
        return None
    logged = last["input_versions"] or {}
    current = {t: table_version(spark, cfg.table(t)) for t in SCORING_INPUTS}
    return last["run_id"] if all(logged.get(t) == v for t, v in current.items()) else None


def run_daily(spark: SparkSession, cfg: Config, *, as_of: dt.date | None = None,
              model_version: str | None = None, skip: Sequence[str] = ()) -> DailySummary:
    """Run the day's stages in this session (see the module docstring).

    Parameters
    ----------
    as_of
        Features use events before this date (default: today, UTC).
    model_version
        The model to score with (default ``cfg.score.model_version``: the champion).
    skip
        Stages (of :data:`STAGES`) not to run this time, e.g. ``scoring`` while a model is retrained.

    Returns
    -------
    DailySummary
        Per stage: what changed and how long it took.
    """
    from hitcast.features.dailytable import update_engagement_daily
    from hitcast.ingest.pipeline import run_ingest
    from hitcast.lifecycle.registry import resolve_model
    from hitcast.scoring.featurecache import scoring_features
    from hitcast.scoring.stage import run_scoring
    from hitcast.spectrograms.stage import run_spectrograms
    from hitcast.tables import read_table

    as_of = as_of or dt.datetime.now(dt.timezone.utc).date()
    summary = DailySummary(as_of=as_of)
    _timed(summary, "ingest", lambda: run_ingest(spark, cfg),
                    lambda s: (f"{s.events.files} new event files, {s.events.rows_inserted} events added; catalog "
                               f"{s.catalog.rows_inserted} added, {s.catalog.rows_updated} updated; "
                               f"{s.events.quarantine_inserted + s.catalog.quarantine_inserted} to quarantine"), skip)
    _timed(summary, "spectrograms", lambda: run_spectrograms(spark, cfg),
           lambda s: f"{s.recomputed} decoded, {s.skipped} unchanged", skip)
    _timed(summary, "aggregates", lambda: update_engagement_daily(spark, cfg),
           lambda u: str(u).removeprefix("engagement_daily: "), skip)

    def features() -> bool:
        versions = {t: table_version(spark, cfg.table(t)) for t in ("catalog", "engagement_daily")}
        _, reused = scoring_features(spark, cfg, catalog=read_table(spark, cfg, "catalog"),
                                     daily=read_table(spark, cfg, "engagement_daily"), as_of=as_of,
                                     versions=versions)
        return reused
    _timed(summary, "features", features, lambda reused: f"as of {as_of}: {'reused' if reused else 'computed'}",
           skip)
    if "scoring" in skip:
        summary.stages.append(StageTime("scoring", "skipped (--skip)", 0.0))
        return summary
    version, _ = resolve_model(spark, cfg, model_version or cfg.score.model_version)
    current = scoring_is_current(spark, cfg, version, as_of)
    if current:
        summary.stages.append(StageTime("scoring", f"model {version}: nothing changed since run {current}", 0.0))
        log.info("daily run: scoring skipped, nothing changed since run %s", current)
    else:
        _timed(summary, "scoring", lambda: run_scoring(spark, cfg, version=version, as_of=as_of),
               lambda s: (f"model {s.model_version}: {s.rescored} of {s.tracks} tracks rescored, run {s.run_id} "
                          "logged in scoring_runs"))
    return summary


@dataclass
class IngestRun:
    """What ``jobs/ingest.py`` did: the ingest, then the daily aggregates brought up to date."""

    ingest: Any
    daily: Any

    def __str__(self) -> str:
        return f"{self.ingest}\n{self.daily}"


def ingest_and_aggregate(spark: SparkSession, cfg: Config) -> IngestRun:
    """:func:`hitcast.ingest.pipeline.run_ingest`, then the new events into ``engagement_daily``."""
    from hitcast.features.dailytable import update_engagement_daily
    from hitcast.ingest.pipeline import run_ingest

    return IngestRun(run_ingest(spark, cfg), update_engagement_daily(spark, cfg))
