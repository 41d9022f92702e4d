"""The ``split`` column of ``training_examples``.

- By time (default): a row's cutoff in ``features.test_cutoffs`` -> ``test``, in
  ``validation_cutoffs`` -> ``validation``, else ``train``.
- Artist-disjoint (``features.artist_disjoint``): every artist falls in one split for all cutoffs, by a
  stable hash: ``u = pmod(xxhash64(split_seed, artist_key), 1_000_000) / 1e6``; ``u < shares[0]`` ->
  train, ``< shares[0] + shares[1]`` -> validation, else test (artist key = ``artist_id``, else
  ``artist_name``). Time then plays no role in the split.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hitcast.config import FeaturesSection


def time_split(cutoff: Column, fs: FeaturesSection) -> Column:
    """Split by cutoff date."""
    test = [F.lit(c).cast("date") for c in fs.test_cutoffs]
    val = [F.lit(c).cast("date") for c in fs.validation_cutoffs]
    out = F.lit("train")
    if val:
        out = F.when(cutoff.isin(*val), "validation").otherwise(out)
    if test:
        out = F.when(cutoff.isin(*test), "test").otherwise(out)
    return out


def artist_split(artist_key: Column, fs: FeaturesSection) -> Column:
    """Split by a stable hash of the artist key."""
    shares = list(fs.artist_split_shares) + [0.0, 0.0]
    u = F.pmod(F.xxhash64(F.lit(fs.split_seed), artist_key), F.lit(1_000_000)) / 1e6
    return (F.when(u < shares[0], "train").when(u < shares[0] + shares[1], "validation").otherwise("test"))


def add_split(df: DataFrame, fs: FeaturesSection) -> DataFrame:
    """Add ``split`` to ``DataFrame[cutoff, artist_id, artist_name, ...]``."""
    if fs.artist_disjoint:
        return df.withColumn("split", artist_split(F.coalesce("artist_id", "artist_name"), fs))
    return df.withColumn("split", time_split(F.col("cutoff"), fs))
