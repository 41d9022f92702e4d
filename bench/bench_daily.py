"""Benchmark of the daily path, on the catalog of ``make bench-features`` (data/bench: 100,000 tracks, ~11 M events).

    bench/bench_daily.py --conf conf/local.yaml [--out data/bench] [--days 7] [--skip-a] [--skip-b]

(a) Engagement aggregates for the 17 training cutoffs: hitcast's ``track_aggregates`` from ``engagement_daily``
    against DuckDB (2 threads) computing the same aggregates (exact distinct listeners) from the data files of
    the same ``engagement_events`` version, in the same run; the outputs are compared (counts exactly, the
    listeners' relative error is printed). Also the rebuild of ``engagement_daily`` from every event and the whole
    ``training_examples`` build.
(b) A simulated week: each day adds a day of events at the generator's rate (one JSON lines file), ~0.5% new
    tracks (with pool audio) and ~0.5% changed catalog rows (one CSV file); then ``run_daily`` for that day in
    the same session (after the JVM is up). Spectrograms and scoring are skipped unless ``--scoring`` (they need
    the spectrograms table and a champion in this warehouse). Per-stage times in a table.

Peak RSS of the driver, the JVM and the Python workers is printed, as in the other benchmarks.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time

import numpy as np
from pyspark.sql import functions as F

from hitcast.cli import config_from_args, job_parser
from hitcast.dailyrun import run_daily
from hitcast.features.dailytable import rebuild, update_engagement_daily
from hitcast.features.engagement import track_aggregates
from hitcast.features.examples import build_training_examples
from hitcast.features.stage import write_training_examples
from hitcast.ingest import manifest
from hitcast.spark import build_session
from hitcast.tables import read_table, table_exists, table_version
from rss import RssSampler

log = logging.getLogger("hitcast.bench.daily")
TYPES = {"play": 0.80, "skip": 0.12, "save": 0.04, "playlist_add": 0.03, "share": 0.01}


def duckdb_aggregates(files: list[str], cutoffs: list[dt.date], windows: list[int]) -> tuple[float, object]:
    """The aggregates of :func:`hitcast.features.engagement.track_aggregates`, in DuckDB, from Parquet files."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    cuts = ", ".join(f"(DATE '{c}')" for c in cutoffs)
    cols = ["min(event_time) AS first_event", "count(*) FILTER (WHERE event_type = 'play') AS plays_total"]
    for w in windows:
        inw = f"event_time >= c.cutoff - INTERVAL {w} DAY"
        for name, kind in (("plays", "play"), ("skips", "skip"), ("saves", "save"), ("adds", "playlist_add"),
                           ("shares", "share")):
            cols.append(f"count(*) FILTER (WHERE {inw} AND event_type = '{kind}') AS {name}_{w}")
        cols.append(f"coalesce(sum(coalesce(ms_played, 0)) FILTER (WHERE {inw} AND event_type = 'play'), 0) AS ms_{w}")
        cols.append(f"count(DISTINCT user_id) FILTER (WHERE {inw}) AS listeners_{w}")
    cols.append("count(*) FILTER (WHERE event_time >= c.cutoff - INTERVAL 7 DAY AND event_type = 'play') AS plays_last7")
    cols.append("count(*) FILTER (WHERE event_time >= c.cutoff - INTERVAL 14 DAY AND event_time < c.cutoff - "
                "INTERVAL 7 DAY AND event_type = 'play') AS plays_prev7")
    sql = (f"CREATE OR REPLACE TABLE agg AS SELECT e.track_id, c.cutoff, {', '.join(cols)} "
           f"FROM read_parquet({files!r}) e JOIN (VALUES {cuts}) c(cutoff) ON e.event_time < c.cutoff "
           "GROUP BY e.track_id, c.cutoff")
    t0 = time.perf_counter()
    con.execute(sql)
    seconds = time.perf_counter() - t0
    return seconds, con.execute("SELECT * FROM agg").df()


def compare(spark_pdf, duck_pdf, windows: list[int]) -> dict[str, float]:
    """Exact equality of the counts; the listeners' relative error (max, p99, mean) against DuckDB's exact."""
    keys = ["track_id", "cutoff"]
    duck_pdf["cutoff"] = duck_pdf["cutoff"].astype("datetime64[ns]").dt.date
    j = spark_pdf.merge(duck_pdf, on=keys, suffixes=("", "_duck"), how="outer", indicator=True)
    out = {"rows_spark": len(spark_pdf), "rows_duckdb": len(duck_pdf), "rows_only_one": int((j["_merge"] != "both").sum())}
    counts = [c for c in duck_pdf.columns if c not in keys and not c.startswith("listeners") and c != "first_event"]
    out["count_columns_differing"] = sum(int((j[c] != j[f"{c}_duck"]).sum()) for c in counts)
    errs = np.concatenate([np.abs(j[f"listeners_{w}"] - j[f"listeners_{w}_duck"]) / np.maximum(j[f"listeners_{w}_duck"], 1)
                           for w in windows])
    out.update(listeners_err_max=float(errs.max()), listeners_err_p99=float(np.quantile(errs, 0.99)),
               listeners_err_mean=float(errs.mean()), listeners_max=int(j[f"listeners_{max(windows)}_duck"].max()))
    return out


def part_a(spark, cfg) -> dict[str, float]:
    fig: dict[str, float] = {}
    events = read_table(spark, cfg, "engagement_events")
    version = table_version(spark, cfg.table("engagement_events"))
    n_events = events.count()
    t0 = time.perf_counter()
    rebuild(spark, cfg, version)
    fig["rebuild_s"] = time.perf_counter() - t0
    daily = read_table(spark, cfg, "engagement_daily")
    cuts = sorted(dt.date.fromisoformat(c) for c in cfg.features.cutoffs)
    windows = sorted(cfg.features.windows_days)
    aggs = track_aggregates(daily, cuts, windows)
    files = [f.removeprefix("file:") for f in events.inputFiles()]
    for run in (1, 2):          # the first run of each includes Spark's code generation and JIT warm-up
        t0 = time.perf_counter()
        aggs.write.format("noop").mode("overwrite").save()
        fig[f"spark_s{run}"] = time.perf_counter() - t0
        fig[f"duckdb_s{run}"], duck = duckdb_aggregates(files, cuts, windows)
    fig["spark_s"], fig["duckdb_s"] = fig["spark_s1"], fig["duckdb_s1"]
    fig.update(compare(aggs.toPandas(), duck, windows))
    t0 = time.perf_counter()
    write_training_examples(build_training_examples(read_table(spark, cfg, "catalog"), daily, cfg), cfg)
    fig["training_examples_s"] = time.perf_counter() - t0
    fig.update(events=n_events, daily_rows=daily.count())
    return fig


def write_day(spark, cfg, day: dt.date, rng: np.random.Generator, *, events_per_day: int, change: float) -> None:
    """One day of inputs: events (tracks weighted by their last 28 days of plays), new and changed catalog rows."""
    daily = read_table(spark, cfg, "engagement_daily")
    recent = (daily.where(F.col("event_date") >= F.lit(day - dt.timedelta(days=28))).groupBy("track_id")
              .agg(F.sum("plays").alias("p")).toPandas())
    catalog = read_table(spark, cfg, "catalog").toPandas()
    weights = catalog[["track_id"]].merge(recent, on="track_id", how="left")["p"].fillna(0).to_numpy() + 0.05
    picks = rng.choice(len(catalog), size=events_per_day, p=weights / weights.sum())
    kinds = rng.choice(list(TYPES), size=events_per_day, p=list(TYPES.values()))
    secs = np.sort(rng.integers(0, 86400, events_per_day))
    folder = cfg.path(cfg.ingest.events_path)
    with open(folder / f"day-{day}.jsonl", "w") as fh:
        for k in range(events_per_day):
            t = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=int(secs[k]))
            fh.write(json.dumps({"event_id": f"d{day:%Y%m%d}-{k:06d}", "user_id": f"u{rng.integers(0, 20000):07d}",
                                 "track_id": catalog["track_id"].iloc[picks[k]], "event_type": kinds[k],
                                 "event_time": t.isoformat() + "Z",
                                 "ms_played": int(rng.integers(1000, 240000)) if kinds[k] in ("play", "skip") else 0})
                     + "\n")
    n = max(1, int(len(catalog) * change))
    cols = [c for c in ("track_id", "title", "artist_id", "artist_name", "album_id", "genre", "release_date",
                        "duration_ms", "explicit", "audio_path", "danceability", "energy", "key", "loudness", "mode",
                        "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo",
                        "time_signature", "updated_at")]
    base = catalog[catalog["audio_path"].notna()].sample(2 * n, random_state=int(rng.integers(1 << 31)))
    new, changed = base.iloc[:n].copy(), base.iloc[n:].copy()
    new["track_id"] = [f"new{day:%Y%m%d}{k:05d}" for k in range(n)]
    new["release_date"] = day
    changed["title"] = changed["title"].astype(str) + " (remaster)"
    stamp = dt.datetime.combine(day, dt.time(6)).isoformat() + "Z"
    with open(cfg.path(cfg.ingest.catalog_path) / f"day-{day}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for frame in (new, changed):
            for r in frame.to_dict("records"):
                r["updated_at"] = stamp
                r["explicit"] = str(bool(r["explicit"])).lower() if r["explicit"] is not None else ""
                w.writerow(["" if r[c] is None or r[c] != r[c] else r[c] for c in cols])


def double_history(spark, cfg) -> int:
    """Append to ``engagement_events`` a copy of every event shifted back by the history's span (new
    ``event_id``s, ``source_file`` prefixed ``doubled:``), so the history is twice as long with the same daily
    rate; returns the events added (0 when it was doubled before). ``engagement_daily`` takes them in from the
    change feed at the next update."""
    events = read_table(spark, cfg, "engagement_events")
    if events.where(F.col("source_file").startswith("doubled:")).limit(1).count():
        return 0
    first, last = events.agg(F.min("event_date"), F.max("event_date")).first()
    span = (last - first).days + 1
    shifted = events.select(
        F.concat(F.lit("d2-"), F.col("event_id")).alias("event_id"), "user_id", "track_id", "event_type",
        (F.col("event_time") - F.expr(f"INTERVAL {span} DAYS")).alias("event_time"), "ms_played", "known_track",
        F.date_sub("event_date", span).alias("event_date"),
        F.concat(F.lit("doubled:"), F.col("source_file")).alias("source_file"), "ingested_at")
    n = events.count()
    shifted.write.format("delta").mode("append").save(cfg.table("engagement_events"))
    log.info("history doubled: %d events shifted back %d days", n, span)
    return n


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("bench_daily.py", "Aggregates for 17 cutoffs vs DuckDB, and a simulated week of daily runs.")
    parser.add_argument("--out", default="data/bench", help="the bench-features folder (raw data and tables)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events-per-day", type=int, default=0, help="default: the history's mean per day")
    parser.add_argument("--change", type=float, default=0.005, help="share of new and of changed catalog rows a day")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument("--scoring", action="store_true", help="also spectrograms and scoring in (b)")
    parser.add_argument("--double-history", action="store_true",
                        help="first make the history twice as long (a shifted copy of every event): the week "
                             "should cost the same")
    args = parser.parse_args(argv)
    args.overrides = [*args.overrides, f"paths.raw={args.out}/raw", f"paths.warehouse={args.out}/warehouse",
                      f"paths.audio_roots=[{args.out}/raw/audio]", f"ingest.catalog_path={args.out}/raw/catalog",
                      f"ingest.events_path={args.out}/raw/events", "ingest.now=2030-01-01"]
    cfg = config_from_args(args)
    sampler = RssSampler(period=0.5)
    sampler.start()
    spark = build_session(cfg, "hitcast-bench-daily")
    report = []
    if args.double_history:
        added = double_history(spark, cfg)
        update_engagement_daily(spark, cfg)
        report.append(f"history doubled: {added:,} events added" if added else "history doubled before")
    if not args.skip_a:
        a = part_a(spark, cfg)
        report += [f"(a) {a['events']:,} events, {a['daily_rows']:,} engagement_daily rows, {len(cfg.features.cutoffs)} cutoffs",
                   f"    engagement_daily rebuilt from every event: {a['rebuild_s']:.1f} s",
                   f"    aggregates, hitcast from engagement_daily: {a['spark_s']:.1f} s ({a['events'] / a['spark_s']:,.0f} events/s)",
                   f"    aggregates, DuckDB from the events' Parquet files, 2 threads: {a['duckdb_s']:.1f} s "
                   f"({a['events'] / a['duckdb_s']:,.0f} events/s)",
                   f"    hitcast / DuckDB throughput: {a['duckdb_s'] / a['spark_s']:.2f}x",
                   f"    second run of each: hitcast {a['spark_s2']:.1f} s, DuckDB {a['duckdb_s2']:.1f} s: "
                   f"{a['duckdb_s2'] / a['spark_s2']:.2f}x",
                   f"    whole training_examples (features, artist history, labels, write): {a['training_examples_s']:.1f} s",
                   f"    same output: rows {a['rows_spark']:,} vs {a['rows_duckdb']:,} ({a['rows_only_one']} in one only), "
                   f"{a['count_columns_differing']} count values differ; listeners relative error max "
                   f"{a['listeners_err_max']:.4f}, p99 {a['listeners_err_p99']:.4f}, mean {a['listeners_err_mean']:.5f} "
                   f"(largest exact count {a['listeners_max']:,})"]
    if not args.skip_b:
        rng = np.random.default_rng(7)
        last = read_table(spark, cfg, "engagement_daily").agg(F.max("event_date"), F.min("event_date"),
                                                              F.sum("events")).first()
        per_day = args.events_per_day or int(last[2] / max(1, (last[0] - last[1]).days + 1))
        skip = () if args.scoring else ("spectrograms", "scoring")
        if not table_exists(spark, cfg.table(manifest.TABLE)):      # the history was ingested before the manifest
            for source, folder in (("catalog", cfg.ingest.catalog_path), ("events", cfg.ingest.events_path)):
                files = sorted(p for p in cfg.path(folder).iterdir() if p.is_file())
                manifest.record(spark, cfg, source, files, F.current_timestamp())
        report.append(f"(b) {args.days} days of {per_day:,} events and {args.change:.1%} new + {args.change:.1%} "
                      f"changed catalog rows (skipped stages: {', '.join(skip) or 'none'})")
        report.append("    day         " + "  ".join(f"{s:>12}" for s in ("ingest", "spectrograms", "aggregates",
                                                                             "features", "scoring", "total")))
        for k in range(args.days):
            day = last[0] + dt.timedelta(days=k + 1)
            write_day(spark, cfg, day, rng, events_per_day=per_day, change=args.change)
            s = run_daily(spark, cfg, as_of=day + dt.timedelta(days=1), skip=skip)
            log.info("%s", s)
            t = {st.name: st.seconds for st in s.stages}
            report.append(f"    {day}  " + "  ".join(f"{t.get(n, 0):10.1f} s" for n in
                                                      ("ingest", "spectrograms", "aggregates", "features", "scoring"))
                          + f"  {s.seconds:10.1f} s")
    sampler.stop_flag.set()
    sampler.sample()
    print("\n".join(report))
    print("peak RSS (MiB):", {k: round(v) for k, v in sampler.peak.items()})
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
