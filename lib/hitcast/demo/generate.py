"""The whole demo generator: catalog, audio, events (in Spark), bad input and ground truth.

Layout written under ``out`` (default ``paths.raw``)::

    out/catalog/catalog-base.csv       every track (+ rows without track_id)
    out/catalog/catalog-update.jsonl   later updates and colliding duplicates
    out/audio/<genre>/trkNNNNNNN.{wav,flac,ogg}   (or out/audio/pool/... when demo.audio_pool > 0)
    out/events/events-NNNNN.jsonl      simulated engagement (JSON lines)
    out/events/events-late-arrivals.jsonl   the deliberate bad events
    out/../truth/                      ground truth (never read by the pipeline)
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from hitcast.config import Config
from hitcast.demo import badinput, catalog, events, truth
from hitcast.demo.audio import write_partition

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the generator wrote."""

    out: Path
    tracks: int
    events: int
    audio_files: int
    bad_input: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in sorted(self.bad_input.items())) or "none"
        return (f"{self.tracks} tracks, {self.events} events, {self.audio_files} audio files in {self.out}; "
                f"deliberate bad input: {bad}")


def build_latents(cfg: Config, n_tracks: int, seed: int) -> pd.DataFrame:
    """Latents with ``audio_path`` (and ``pool_idx`` at scale), consistent with the audio written."""
    demo = cfg.demo
    lat = catalog.make_latents(demo, n_tracks, seed)
    if demo.audio_pool > 0:
        lat["audio_path"] = [catalog.audio_path(0, g, int(p)) for g, p in zip(lat["genre"], lat["pool_idx"])]
    else:
        lat["audio_path"] = [catalog.audio_path(int(i), g) for i, g in zip(lat["track_idx"], lat["genre"])]
    return lat


def _write_catalog(cat: pd.DataFrame, extra: pd.DataFrame, update: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("catalog-*"):
        old.unlink()
    pd.concat([cat, extra], ignore_index=True).to_csv(folder / "catalog-base.csv", index=False,
                                                      lineterminator="\n")
    if len(update):
        with (folder / "catalog-update.jsonl").open("w") as fh:
            for rec in update.to_dict("records"):
                fh.write(json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v)
                                     for k, v in rec.items()}, default=str) + "\n")


def _write_audio(spark: SparkSession, lat: pd.DataFrame, cfg: Config, root: Path, skip: set[int],
                 seed: int) -> int:
    demo = cfg.demo
    if demo.audio_pool > 0:
        jobs = (lat.drop_duplicates("pool_idx")[["pool_idx", "audio_path", "audio_appeal", "genre"]]
                .sort_values("pool_idx").itertuples(index=False, name=None))
        jobs = [(int(k) + 10_000_000, p, a, g) for k, p, a, g in jobs]
    else:
        jobs = [(int(i), p, float(a), g) for i, p, a, g in
                lat[["track_idx", "audio_path", "audio_appeal", "genre"]].itertuples(index=False, name=None)
                if int(i) not in skip]
    sr, secs = demo.sample_rate, demo.clip_seconds
    n_slices = max(2, min(len(jobs) // 50 + 1, 64))
    written = (spark.sparkContext.parallelize(jobs, n_slices)
               .mapPartitions(lambda rows: write_partition(rows, str(root), sr=sr, seconds=secs, seed=seed)).collect())
    return len(written)


def _bad_audio(lat: pd.DataFrame, root: Path, bad: dict[str, list[int]], cfg: Config, seed: int) -> pd.DataFrame:
    """Point the chosen tracks at missing / empty / truncated files and write the latter two."""
    from hitcast.demo.audio import write_clip

    lat = lat.copy()
    for kind, idxs in bad.items():
        for i in idxs:
            rel = badinput.bad_audio_path(kind, i)
            lat.loc[lat["track_idx"] == i, "audio_path"] = rel
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "empty":
                path.write_bytes(b"")
            elif kind == "truncated":
                row = lat.loc[lat["track_idx"] == i].iloc[0]
                size = write_clip(path, appeal=float(row["audio_appeal"]), genre=row["genre"], sr=cfg.demo.sample_rate,
                                  seconds=cfg.demo.clip_seconds, seed=seed, key=i)
                with path.open("r+b") as fh:
                    fh.truncate(max(size // 3, 64))
            elif path.exists():
                path.unlink()
    return lat


MANIFEST = "manifest.json"


def demo_settings(cfg: Config, tracks: int, seed: int) -> dict:
    """Everything the generated files depend on (the ``demo`` section, with ``tracks``/``seed`` resolved)."""
    settings = dict(vars(cfg.demo))
    settings.update(tracks=tracks, seed=seed, cutoffs=list(cfg.features.cutoffs),
                    horizon_days=cfg.features.horizon_days, hit_share=cfg.features.hit_share)
    return settings


def already_generated(out: Path, settings: dict) -> DemoResult | None:
    """The earlier result if ``out`` already holds a demo catalog generated with ``settings``.

    Regenerating would rewrite identical catalog, events and truth, but Ogg Vorbis files carry a random
    stream serial number, so their bytes (and content hashes) would change and every downstream stage would
    see "new" audio. Skipping keeps a re-run of the pipeline a no-op.
    """
    path = out / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("settings") != json.loads(json.dumps(settings)):
        return None
    r = manifest["result"]
    return DemoResult(out=out, tracks=r["tracks"], events=r["events"], audio_files=r["audio_files"],
                      bad_input=r["bad_input"], seconds={})


def generate_demo(spark: SparkSession, cfg: Config, *, out: str | Path | None = None, tracks: int | None = None,
                  seed: int | None = None, force: bool = False) -> DemoResult:
    """Generate the demo catalog, its audio, its engagement events and its ground truth.

    Parameters
    ----------
    out : path, optional
        Output folder (default ``cfg.paths.raw``); audio goes to ``out/audio``.
    tracks, seed : int, optional
        Default ``cfg.demo.tracks`` / ``cfg.demo.seed``.
    force : bool
        Regenerate even when ``out`` already holds a catalog generated with the same settings.

    Returns
    -------
    DemoResult
        With the number of events and the deliberate bad input per kind.
    """
    demo = cfg.demo
    n = int(tracks if tracks is not None else demo.tracks)
    seed = int(seed if seed is not None else demo.seed)
    out = Path(out) if out else cfg.path(cfg.paths.raw)
    settings = demo_settings(cfg, n, seed)
    earlier = None if force else already_generated(out, settings)
    if earlier is not None:
        log.info("%s already holds the demo catalog for these settings (seed %d, %d tracks): kept as is "
                 "(--force regenerates)", out, seed, n)
        return earlier
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    days = catalog.n_days(demo)
    lat = build_latents(cfg, n, seed)
    feats = catalog.spotify_features(lat, seed)
    audio_root = out / "audio"
    bad_audio = badinput.bad_audio_tracks(n, seed) if demo.bad_input else {}
    skip = {i for v in bad_audio.values() for i in v}
    n_audio = _write_audio(spark, lat, cfg, audio_root, skip, seed)
    lat = _bad_audio(lat, audio_root, bad_audio, cfg, seed)
    secs["audio"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    cat = catalog.make_catalog(lat, feats, demo=demo, seed=seed)
    counts: dict[str, int] = {}
    extra, update = cat.iloc[:0], cat.iloc[:0]
    if demo.bad_input:
        extra, update, c = badinput.bad_catalog_rows(cat, seed)
        counts.update(c)
        counts.update({f"{k}_audio": len(v) for k, v in bad_audio.items()})
    _write_catalog(cat, extra, update, out / "catalog")

    expected = float(demo.events_per_track) * n
    parts = events.n_partitions_for(expected, demo.events_per_partition)
    ev = events.simulate_events(spark, lat, n_days=days, start_date=demo.start_date, listeners=demo.listeners,
                                seed=seed, n_partitions=parts)
    log.info("simulating about %.0f events of %d tracks over %d days in %d Spark tasks ...", expected, n, days,
             parts)
    t_ev = time.perf_counter()
    files = events.write_events(ev, out / "events")
    log.info("events written: %d files in %.0f s", len(files), time.perf_counter() - t_ev)
    n_events = sum(1 for f in files for _ in f.open())
    if demo.bad_input and files:
        with files[0].open() as fh:
            first = [next(fh).rstrip("\n") for _ in range(min(badinput.COUNTS["duplicate_events"], n_events))]
        lines, c = badinput.bad_event_lines(first, n, demo.end_date)
        counts.update(c)
        (out / "events" / "events-late-arrivals.jsonl").write_text("\n".join(lines) + "\n")
    secs["catalog_events"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    probs = truth.compute_truth(lat, cfg, n_days=days, seed=seed)
    folder = truth.write_truth(lat, probs, out)
    secs["truth"] = time.perf_counter() - t2
    log.info("demo catalog: %d tracks, %d artists, %d audio files, %d events (%.1f per track) in %s",
             n, lat["artist_idx"].nunique(), n_audio, n_events, n_events / max(n, 1), out)
    log.info("deliberate bad input: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none")
    log.info("ground truth in %s; times %s", folder, {k: round(v, 1) for k, v in secs.items()})
    result = DemoResult(out=out, tracks=n, events=n_events, audio_files=n_audio, bad_input=counts, seconds=secs)
    (out / MANIFEST).write_text(json.dumps({"settings": settings, "result": {
        "tracks": n, "events": n_events, "audio_files": n_audio, "bad_input": counts}}, indent=1, sort_keys=True))
    return result
