"""The engagement simulation, run in Spark and written as JSON lines (the events input contract).

Each track is simulated on its own, with a NumPy generator seeded from ``(seed, track_idx)``, so the
events do not depend on how tracks are partitioned. The model is :mod:`hitcast.demo.model`.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from hitcast.demo import model

log = logging.getLogger(__name__)

#: Columns of a simulated event (the events input contract), all written to JSON.
EVENT_COLUMNS = ["event_id", "user_id", "track_id", "event_type", "event_time", "ms_played"]
EVENT_DDL = ("event_id string, user_id string, track_id string, event_type string, event_time string, "
             "ms_played long")
TRACK_COLUMNS = ["track_idx", "track_id", "release_day", "lam", "skip_p", "save_p", "playlist_add_p",
                 "share_p", "duration_ms"]


def simulate_track(row: dict, *, n_days: int, listeners: int, seed: int, epoch0: int) -> dict[str, np.ndarray]:
    """All events of one track, sorted by time.

    Parameters
    ----------
    row : mapping with the :data:`TRACK_COLUMNS`
    n_days : int
        Days simulated (``start_date .. end_date``).
    listeners : int
        Size of the listener pool; user ids are ``u0000000 .. u{listeners-1}``.
    seed : int
    epoch0 : int
        Unix seconds of ``start_date`` 00:00 UTC.

    Returns
    -------
    dict of np.ndarray, each of shape (n_events,)
        ``kind`` (0 play, 1 skip, 2 save, 3 playlist_add, 4 share), ``user`` int, ``t`` unix seconds,
        ``ms`` int.
    """
    idx = int(row["track_idx"])
    rng = np.random.default_rng([seed, 11, idx])
    r = int(row["release_day"])
    days = np.arange(r, n_days)
    if days.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {"kind": empty, "user": empty, "t": empty, "ms": empty}
    w0 = r // 7
    mult = model.week_multipliers(rng, (int(days[-1] // 7 - w0 + 1),))
    rates = model.base_rate(np.array([float(row["lam"])]), np.array([r]), days)[0] * mult[days // 7 - w0]
    listens = rng.poisson(rates)
    total = int(listens.sum())
    t = epoch0 + np.repeat(days, listens) * 86400 + rng.integers(0, 86400, total)
    user = rng.integers(0, listeners, total)
    skip = rng.random(total) < float(row["skip_p"])
    dur = int(row["duration_ms"])
    ms = np.where(skip, rng.integers(1_000, 30_000, total), (dur * rng.uniform(0.5, 1.0, total)).astype(np.int64))
    kinds, users, times, mss = [np.where(skip, 1, 0)], [user], [t], [ms]
    plays = ~skip
    for kind, col in ((2, "save_p"), (3, "playlist_add_p"), (4, "share_p")):
        sel = plays & (rng.random(total) < float(row[col]))
        kinds.append(np.full(int(sel.sum()), kind))
        users.append(user[sel])
        times.append(t[sel] + rng.integers(5, 600, int(sel.sum())))
        mss.append(np.zeros(int(sel.sum()), dtype=np.int64))
    out = {"kind": np.concatenate(kinds), "user": np.concatenate(users), "t": np.concatenate(times),
           "ms": np.concatenate(mss)}
    order = np.lexsort((out["kind"], out["t"]))
    return {k: v[order] for k, v in out.items()}


_KINDS = np.array(["play", "skip", "save", "playlist_add", "share"])


def events_frame(track_id: str, track_idx: int, ev: dict[str, np.ndarray]) -> pd.DataFrame:
    """Events of one track as a pandas DataFrame with :data:`EVENT_COLUMNS` (times ISO-8601 UTC)."""
    n = ev["t"].shape[0]
    stamps = np.datetime_as_string(ev["t"].astype("datetime64[s]"), unit="s")
    return pd.DataFrame({
        "event_id": [f"e{track_idx:07d}-{k:06d}" for k in range(n)],
        "user_id": [f"u{u:07d}" for u in ev["user"]],
        "track_id": track_id,
        "event_type": _KINDS[ev["kind"]],
        "event_time": np.char.add(stamps.astype(str), "Z"),
        "ms_played": ev["ms"].astype(np.int64),
    })


def simulate_partition(*, n_days: int, listeners: int, seed: int, epoch0: int):
    """A ``mapInPandas`` function: track rows -> their events."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            frames = [events_frame(row["track_id"], int(row["track_idx"]),
                                   simulate_track(row, n_days=n_days, listeners=listeners, seed=seed, epoch0=epoch0))
                      for row in batch.to_dict("records")]
            if frames:
                yield pd.concat(frames, ignore_index=True)
    return run


def simulate_events(spark: SparkSession, tracks: pd.DataFrame, *, n_days: int, start_date: str, listeners: int,
                    seed: int, n_partitions: int) -> DataFrame:
    """Spark DataFrame of every simulated event (lazy).

    Parameters
    ----------
    tracks : pandas.DataFrame with :data:`TRACK_COLUMNS`
    n_partitions : int
        Track partitions; each track lands in partition ``track_idx * n_partitions // n_tracks``.

    Returns
    -------
    DataFrame[event_id string, user_id string, track_id string, event_type string, event_time string,
    ms_played long], ordered by track within each partition.
    """
    epoch0 = int(dt.datetime.fromisoformat(start_date).replace(tzinfo=dt.timezone.utc).timestamp())
    n = len(tracks)
    pdf = tracks[TRACK_COLUMNS].copy()
    pdf["part"] = (pdf["track_idx"] * n_partitions) // max(n, 1)
    sdf = spark.createDataFrame(pdf)
    rdd = sdf.rdd.keyBy(lambda r: int(r["part"])).partitionBy(n_partitions, lambda k: k).values()
    parted = spark.createDataFrame(rdd, sdf.schema).sortWithinPartitions("track_idx")
    return parted.mapInPandas(simulate_partition(n_days=n_days, listeners=listeners, seed=seed, epoch0=epoch0),
                              EVENT_DDL)


def write_events(df: DataFrame, out_dir: Path, prefix: str = "events") -> list[Path]:
    """Write events as JSON lines and rename Spark's part files to ``<prefix>-00000.jsonl`` ...

    Returns
    -------
    list of Path
        The files written, in order.
    """
    tmp = out_dir.parent / f".{out_dir.name}-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    df.write.mode("overwrite").option("compression", "none").json(str(tmp))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{prefix}-*.jsonl"):
        old.unlink()
    written = []
    for k, part in enumerate(sorted(p for p in tmp.glob("part-*") if p.stat().st_size > 0)):
        dest = out_dir / f"{prefix}-{k:05d}.jsonl"
        shutil.move(str(part), dest)
        written.append(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return written


def n_partitions_for(expected_events: float, per_partition: int) -> int:
    """Track partitions for the simulation: at least 2, about ``per_partition`` events each."""
    return max(2, int(math.ceil(expected_events / max(per_partition, 1))))


__all__ = ["simulate_track", "events_frame", "simulate_events", "write_events", "n_partitions_for",
           "EVENT_COLUMNS", "TRACK_COLUMNS"]
