"""A Spark MLlib gradient-boosted-trees baseline on exactly the tabular inputs the Keras model sees."""
from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hitcast.model.dataset import training_rows
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.model.tabular import TabularStats

log = logging.getLogger(__name__)


def gbt_scores(examples: DataFrame, stats: TabularStats, *, iterations: int, max_depth: int, seed: int,
               train_split: str = "train") -> pd.DataFrame:
    """Fit ``GBTClassifier`` on the train split and score every other row.

    Parameters
    ----------
    examples : DataFrame
        ``training_examples`` schema (``split``, ``is_hit``, features, ``genre``).
    stats : TabularStats
        The same encoding as the Keras model (standardised values, missing indicators, genre one-hot):
        trees do not need the scaling, but it keeps the two models on identical inputs.

    Returns
    -------
    pandas.DataFrame
        ``track_id, cutoff (str), split, p`` for the rows not in ``train_split``.
    """
    from pyspark.ml.classification import GBTClassifier
    from pyspark.ml.functions import array_to_vector, vector_to_array

    rows = (training_rows(examples, stats, DEFAULT_SPEC.for_variant("tabular"))
            .withColumn("features", array_to_vector("tabular")).withColumn("label", F.col("is_hit").cast("double"))
            .cache())
    try:
        model = GBTClassifier(maxIter=iterations, maxDepth=max_depth, seed=seed).fit(
            rows.where(F.col("split") == train_split))
        scored = (model.transform(rows.where(F.col("split") != train_split))
                  .select("track_id", "cutoff", "split", vector_to_array("probability")[1].alias("p")))
        out = scored.toPandas()
    finally:
        rows.unpersist()
    log.info("GBT baseline: %d trees of depth %d on %d inputs; scored %d rows", iterations, max_depth,
             stats.width, len(out))
    return out
