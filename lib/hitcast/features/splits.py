"""The ``split`` column of ``training_examples``.

- By time (default): a row's cutoff in ``features.test_cutoffs`` -> ``test``, in
  ``validation_cutoffs`` -> ``validation``, else ``train``.
- Artist-disjoint (``features.artist_disjoint``): every artist falls in one split for all cutoffs, by a
  stable hash: ``u = pmod(xxhash64(split_seed, artist_key), 1_000_000) / 1e6``; ``u < shares[0]`` ->
  train, ``< shares[0] + shares[1]`` -> validation, else test (artist key = ``artist_id``, else
  ``artist_name``). Time then plays no role in the split.

A time split must not let a label window reach into a later split: the label of a train cutoff ``T``
counts plays in ``[T, T + horizon)``, so ``T + horizon`` must not pass the first validation (or test)
cutoff, and a validation cutoff's window must end by the first test cutoff. :func:`check_time_split`
refuses a configuration that breaks this.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hitcast.config import FeaturesSection
from hitcast.errors import ConfigError


def check_time_split(fs: FeaturesSection) -> None:
    """Refuse cutoffs whose label window overlaps a later split's cutoff (label leakage across splits).

    Raises
    ------
    ConfigError
        Naming the first offending cutoff, its window end and the cutoff it reaches past.
    """
    horizon = dt.timedelta(days=fs.horizon_days)
    val = sorted(dt.date.fromisoformat(str(c)) for c in fs.validation_cutoffs)
    test = sorted(dt.date.fromisoformat(str(c)) for c in fs.test_cutoffs)
    later = {"validation": test[:1], "test": []}
    for c in sorted(dt.date.fromisoformat(str(c)) for c in fs.cutoffs):
        split = "test" if c in test else "validation" if c in val else "train"
        nxt = later.get(split, (val or test)[:1])
        if nxt and c + horizon > nxt[0]:
            raise ConfigError(
                f"features.cutoffs: the {split} cutoff {c} labels plays up to {c + horizon} "
                f"(horizon_days={fs.horizon_days}), past the next split's cutoff {nxt[0]}: its label would "
                f"overlap that split's label window; move it to {nxt[0] - horizon} or earlier")


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
    check_time_split(fs)
    return df.withColumn("split", time_split(F.col("cutoff"), fs))
