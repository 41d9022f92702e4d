"""The scoring run log: one row per run in the Delta table ``scoring_runs`` (schema
:data:`hitcast.schemas.SCORING_RUNS`), with the score distribution and its drift since the previous run.

Drift is the population stability index of the model's scores over :data:`BINS` equal-width bins of
[0, 1]: ``PSI = sum((c_i - p_i) * ln(c_i / p_i))`` over the shares ``c`` (this run) and ``p`` (the previous
run of the same model), each share floored at :data:`EPS` so that an empty bin does not make it infinite.
A PSI under 0.1 is usually read as stable, above 0.25 as a shift worth a look.

A run's MERGE into ``predictions`` and its row in ``scoring_runs`` are two Delta commits, and a driver can die
between them. So the MERGE's commit carries the run (``userMetadata``, :func:`commit_metadata`), and every
run first looks at the latest :data:`RECOVER_DEPTH` commits of ``predictions`` for runs that committed
there and have no log row (:func:`recover_unlogged`). Such a run is logged after the fact from the table
as its commit left it (time travel): its rescored rows by mode and the score distribution, as the run
itself would have logged them; ``tracks`` and ``unchanged`` are unknown (NULL), ``ended_at`` is the commit's
time, and ``note`` says what happened.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
from typing import Any, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.schemas import SCORING_RUNS
from hitcast.tables import USER_METADATA, latest_commits, table_exists, tagged_commits  # noqa: F401

log = logging.getLogger(__name__)

BINS = 10
EPS = 1e-4
#: Key of a scoring run's entry in the ``userMetadata`` of its MERGE commit.
RUN_KEY = "hitcast_scoring_run"
#: Key of the run's id in the ``userMetadata`` of its ``scoring_runs`` commit.
LOG_KEY = "hitcast_log"
#: Latest ``predictions`` commits searched for runs without a log row.
RECOVER_DEPTH = 20
#: Fields of a run's log row that its MERGE commit carries.
COMMIT_FIELDS = ("run_id", "model_version", "as_of", "full", "started_at", "input_versions", "features_reused")
QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def distribution(scores: DataFrame, column: str = "hit_probability") -> tuple[list[int], dict[str, float]]:
    """Histogram (:data:`BINS` equal-width bins over [0, 1], the last one closed) and quantiles of
    ``column``, in one Spark job."""
    bin_of = F.least(F.floor(F.col(column) * BINS), F.lit(BINS - 1)).cast("int")
    row = scores.agg(*[F.sum((bin_of == b).cast("long")).alias(f"b{b}") for b in range(BINS)],
                     F.percentile_approx(column, list(QUANTILES.values()), 10000).alias("q")).first()
    hist = [int(row[f"b{b}"] or 0) for b in range(BINS)]
    q = row["q"] or []
    return hist, {name: float(v) for name, v in zip(QUANTILES, q)}


def psi(previous: Sequence[int], current: Sequence[int]) -> float | None:
    """Population stability index of ``current`` against ``previous`` bin counts (``None`` if either is empty)."""
    if not sum(previous) or not sum(current):
        return None
    total_p, total_c = sum(previous), sum(current)
    out = 0.0
    for p, c in zip(previous, current):
        sp, sc = max(p / total_p, EPS), max(c / total_c, EPS)
        out += (sc - sp) * math.log(sc / sp)
    return out


def previous_run(spark: SparkSession, cfg: Config, model_version: str,
                 before: dt.datetime | None = None) -> dict[str, Any] | None:
    """The latest logged run of ``model_version`` (ended before ``before``, if given), as a dict (``None``
    when there is none)."""
    location = cfg.table("scoring_runs")
    if not table_exists(spark, location):
        return None
    runs = spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
    if before is not None:
        runs = runs.where(F.col("ended_at") < F.lit(before).cast("timestamp"))
    row = runs.orderBy(F.desc("ended_at"), F.desc("run_id")).limit(1).first()
    return row.asDict(recursive=True) if row else None


def append_run(spark: SparkSession, cfg: Config, run: dict[str, Any]) -> None:
    """Append one row (keys of :data:`SCORING_RUNS`) to ``scoring_runs``, creating the table if absent (and
    adding a column of the schema that an older table lacks)."""
    row = tuple(run.get(f.name) for f in SCORING_RUNS.fields)
    # An explicit userMetadata: a run's MERGE may set the session's at the same time (commit_metadata).
    (spark.createDataFrame([row], SCORING_RUNS).write.format("delta").mode("append")
     .option("mergeSchema", "true").option("userMetadata", json.dumps({LOG_KEY: run["run_id"]}))
     .save(cfg.table("scoring_runs")))


def commit_metadata(run: dict[str, Any]) -> str:
    """The ``userMetadata`` of a run's MERGE commit: the :data:`COMMIT_FIELDS` of its log row, as JSON."""
    return json.dumps({RUN_KEY: {k: run.get(k) for k in COMMIT_FIELDS}}, default=str, sort_keys=True)


def _metadata(user_metadata: str | None) -> dict[str, Any]:
    """A commit's ``userMetadata`` as a dict ({} when it is not a JSON object: set by someone else)."""
    try:
        out = json.loads(user_metadata or "")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _run_of(user_metadata: str | None) -> dict[str, Any] | None:
    run = _metadata(user_metadata).get(RUN_KEY)
    return run if isinstance(run, dict) and run.get("run_id") else None


def unlogged_runs(spark: SparkSession, cfg: Config, location: str, *, current: str) -> list[dict[str, Any]]:
    """Runs (other than ``current``) among the latest :data:`RECOVER_DEPTH` commits of ``predictions`` at
    ``location`` with no row in ``scoring_runs``: their :func:`commit_metadata` fields plus ``version``
    (of the commit) and ``committed_at``, oldest first."""
    runs = {}
    for c in latest_commits(spark, location, RECOVER_DEPTH):
        run = _run_of(c.get("userMetadata"))
        if run and run["run_id"] != current:
            committed = dt.datetime.fromtimestamp(int(c["timestamp"]) / 1000, dt.timezone.utc)
            runs[run["run_id"]] = {**run, "version": c["version"],
                                   "committed_at": committed.replace(tzinfo=None, microsecond=0)}
    # Each log row's commit names its run (append_run): the latest commits of scoring_runs usually account
    # for every run found, with no Spark job. Only a run they do not name is looked up in the table.
    logged = {_metadata(c.get("userMetadata")).get(LOG_KEY)
              for c in latest_commits(spark, cfg.table("scoring_runs"), 2 * RECOVER_DEPTH + 10)}
    if set(runs) - logged and table_exists(spark, cfg.table("scoring_runs")):
        # Every run id (a row per run: small), not a filter on these: a filter's literals are compiled into
        # new code on every run.
        logged |= {r.run_id for r in spark.read.format("delta").load(cfg.table("scoring_runs"))
                   .select("run_id").collect()}
    return sorted((r for k, r in runs.items() if k not in logged), key=lambda r: r["version"])


def recover_unlogged(spark: SparkSession, cfg: Config, location: str, *, current: str) -> list[str]:
    """Log the :func:`unlogged_runs` from the table their commits left; returns their run ids."""
    done = []
    for run in unlogged_runs(spark, cfg, location, current=current):
        table = (spark.read.format("delta").option("versionAsOf", run["version"]).load(location)
                 .where(F.col("model_version") == run["model_version"]))
        hist, quantiles = distribution(table)
        modes = {r["mode"]: int(r["n"]) for r in table.where(F.col("run_id") == run["run_id"])
                 .groupBy("mode").agg(F.count("*").alias("n")).collect()}
        previous = previous_run(spark, cfg, run["model_version"], before=run["committed_at"])
        append_run(spark, cfg, {
            **run, "as_of": dt.date.fromisoformat(run["as_of"]),
            "started_at": dt.datetime.fromisoformat(run["started_at"]), "ended_at": run["committed_at"],
            "rescored": sum(modes.values()), "modes": modes, "score_quantiles": quantiles,
            "score_histogram": hist, "psi": psi(previous["score_histogram"], hist) if previous else None,
            "note": f"logged by run {current}: this run committed predictions version {run['version']} and "
                    f"stopped before its log row (tracks and unchanged unknown; ended_at is that commit's time)"})
        log.warning("run %s committed predictions version %d but was never logged (it stopped before its log "
                    "row); logged it now from that version: %d rescored", run["run_id"], run["version"],
                    sum(modes.values()))
        done.append(run["run_id"])
    return done
