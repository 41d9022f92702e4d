"""Bad records -> Delta ``quarantine`` (schema :data:`hitcast.schemas.QUARANTINE`), insert-only."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hitcast.schemas import QUARANTINE

KEYS = ["source", "source_file", "record_hash", "reason"]


def quarantine_rows(bad: DataFrame, source: str, now: Column) -> DataFrame:
    """Rows with a non-null ``reason`` in the quarantine layout, unique on :data:`KEYS`.

    Parameters
    ----------
    bad : DataFrame[source_file, raw_record, reason, detail, ...]
    source : str
        ``catalog`` or ``events``.
    """
    cols = {"source": F.lit(source), "record_hash": F.sha2(F.coalesce("raw_record", F.lit("")), 256),
            "ingested_at": now}
    out = bad.where(F.col("reason").isNotNull()).select(
        *[(cols[f.name] if f.name in cols else F.col(f.name)).cast(f.dataType).alias(f.name)
          for f in QUARANTINE.fields])
    return out.dropDuplicates(KEYS)
