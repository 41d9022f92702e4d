"""The scoring run log: one row per run in the Delta table ``scoring_runs`` (schema
:data:`hitcast.schemas.SCORING_RUNS`), with the score distribution and its drift since the previous run.

Drift is the population stability index of the model's scores over :data:`BINS` equal-width bins of
[0, 1]: ``PSI = sum((c_i - p_i) * ln(c_i / p_i))`` over the shares ``c`` (this run) and ``p`` (the previous
run of the same model), each share floored at :data:`EPS` so that an empty bin does not make it infinite.
A PSI under 0.1 is usually read as stable, above 0.25 as a shift worth a look.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.schemas import SCORING_RUNS
from hitcast.tables import table_exists

BINS = 10
EPS = 1e-4
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


def previous_run(spark: SparkSession, cfg: Config, model_version: str) -> dict[str, Any] | None:
    """The latest logged run of ``model_version``, as a dict (``None`` when there is none)."""
    location = cfg.table("scoring_runs")
    if not table_exists(spark, location):
        return None
    row = (spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
           .orderBy(F.desc("ended_at"), F.desc("run_id")).limit(1).first())
    return row.asDict(recursive=True) if row else None


def append_run(spark: SparkSession, cfg: Config, run: dict[str, Any]) -> None:
    """Append one row (keys of :data:`SCORING_RUNS`) to ``scoring_runs``, creating the table if absent."""
    row = tuple(run.get(f.name) for f in SCORING_RUNS.fields)
    spark.createDataFrame([row], SCORING_RUNS).write.format("delta").mode("append").save(cfg.table("scoring_runs"))
