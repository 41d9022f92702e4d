"""The limit: the F1 of the demo generator's ground-truth hit probabilities on the same test set.

The generator knows each track's true P(hit) given its latents; no model can do better on average.
Its threshold is chosen on validation exactly like a model's, and the gap to the fused model is reported.

The limit knows the generative function exactly; a model must learn it from the training rows. To split
the gap into "what this many rows can teach" and "what the model misses", :func:`oracle_result` trains
the GBT baseline on the tabular features plus the generator's own latent values (``audio_appeal``,
``log_rate``: with the release date they fix a track's expected plays): no model that has to infer
those latents from audio and engagement can be expected to beat it.
"""
from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import DataFrame

from hitcast.config import Config
from hitcast.evaluation.ablations import KEY, ModelResult, assess, gbt_result

log = logging.getLogger(__name__)

#: The generator's latent values the oracle GBT is handed (see :func:`oracle_result`).
ORACLE_LATENTS = ["audio_appeal", "log_rate"]


def truth_result(truth: pd.DataFrame, rows: pd.DataFrame, *, min_group_rows: int,
                 threshold_rule: str) -> ModelResult | None:
    """Assess ``true_hit_probability`` as if it were a model's score on ``rows`` (validation + test).

    Rows without a ground-truth probability are left out (logged); ``None`` when none match.
    """
    t = truth[["track_id", "cutoff", "true_hit_probability"]].copy()
    t["cutoff"] = t["cutoff"].astype(str)
    merged = rows.merge(t, on=KEY, how="inner")
    if len(merged) < len(rows):
        log.warning("ground truth covers %d of %d evaluation rows", len(merged), len(rows))
    if merged.empty:
        return None
    return assess("ground truth", "generator", rows=merged.drop(columns=["true_hit_probability"]),
                  p=merged["true_hit_probability"].to_numpy(), min_group_rows=min_group_rows,
                  threshold_rule=threshold_rule)


def oracle_result(cfg: Config, examples: DataFrame, truth: pd.DataFrame, *, rows: pd.DataFrame) -> ModelResult:
    """The GBT baseline trained and assessed like the others, with :data:`ORACLE_LATENTS` as extra inputs.

    Parameters
    ----------
    examples : DataFrame
        ``training_examples``.
    truth : pandas.DataFrame
        The generator's ground truth (``track_id``, ``cutoff``, ``true_hit_probability`` and the
        :data:`ORACLE_LATENTS`; one latent value per track), as the caller loaded it.
    rows : pandas.DataFrame
        The evaluation rows (validation + test) the other models were assessed on.
    """
    return gbt_result(cfg, with_latents(examples, truth), rows, name="gbt + true latents")


def with_latents(examples: DataFrame, truth: pd.DataFrame) -> DataFrame:
    """``examples`` plus the :data:`ORACLE_LATENTS` columns (double; NULL for a track the truth lacks)."""
    latents = truth[["track_id", *ORACLE_LATENTS]].drop_duplicates("track_id")
    lat = examples.sparkSession.createDataFrame(latents.astype({c: "float64" for c in ORACLE_LATENTS}))
    return examples.join(lat, "track_id", "left")
