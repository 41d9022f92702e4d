"""Demo generator: determinism, audio that carries the appeal, partition-independent events, truth,
and every deliberate bad-input kind reaching quarantine through the real ingest path."""
from __future__ import annotations

import hashlib
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.demo import catalog as democat
from hitcast.demo import model
from hitcast.demo.audio import synthesize
from hitcast.demo.events import simulate_events
from hitcast.demo.generate import generate_demo
from hitcast.demo.truth import load_truth
from hitcast.ingest.pipeline import run_ingest

TINY = ["demo.clip_seconds=0.5", "demo.events_per_track=15", "demo.mc_draws=20", "demo.listeners=500",
        "ingest.now=2026-06-01"]


def content_hash(raw: Path) -> str:
    h = hashlib.sha256()
    for sub in ("catalog", "events"):
        for p in sorted((raw / sub).iterdir()):
            h.update(p.name.encode() + p.read_bytes())
    for p in sorted((raw / "audio").rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(raw)).encode())
            if p.suffix == ".ogg" and p.stat().st_size > 0 and "truncated" not in p.name:
                h.update(sf.read(p, dtype="int16")[0].tobytes())   # Vorbis streams carry a random serial
            else:
                h.update(p.read_bytes())
    for name in ("tracks.parquet", "hit_probability.parquet"):
        df = pd.read_parquet(raw.parent / "truth" / name)
        h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo_runs(spark, tmp_path_factory):
    runs = {}
    for label, seed in (("a", 7), ("b", 7), ("c", 8)):
        cfg = make_config(tmp_path_factory.mktemp(f"demo-{label}"), *TINY)
        runs[label] = (cfg, generate_demo(spark, cfg, tracks=30, seed=seed))
    return runs


def test_same_seed_same_content_other_seed_other_content(demo_runs):
    hashes = {k: content_hash(res.out) for k, (_, res) in demo_runs.items()}
    assert hashes["a"] == hashes["b"] and hashes["a"] != hashes["c"]


def test_rerun_with_the_same_settings_keeps_the_files(spark, demo_runs):
    cfg, first = demo_runs["a"]
    ogg = sorted(first.out.glob("audio/**/*.ogg"))[0]
    before = (ogg.stat().st_mtime_ns, ogg.read_bytes())
    again = generate_demo(spark, cfg, tracks=30, seed=7)
    assert (again.tracks, again.events, again.bad_input) == (first.tracks, first.events, first.bad_input)
    assert (ogg.stat().st_mtime_ns, ogg.read_bytes()) == before      # not re-encoded (new Vorbis serial)
    forced = generate_demo(spark, cfg, tracks=30, seed=7, force=True)
    assert forced.events == first.events and ogg.stat().st_mtime_ns != before[0]


def test_generator_output_layout_and_counts(demo_runs):
    cfg, res = demo_runs["a"]
    raw = res.out
    assert sorted(p.name for p in (raw / "catalog").iterdir()) == ["catalog-base.csv", "catalog-update.jsonl"]
    assert res.bad_input == {"missing_track_id": 3, "duplicate_track_id": 4, "catalog_updates": 5,
                             "missing_audio": 3, "empty_audio": 2, "truncated_audio": 2, "malformed_json": 5,
                             "unknown_track_events": 7, "duplicate_events": 6, "negative_ms_played": 4,
                             "future_event_time": 3}
    cat = pd.read_csv(raw / "catalog" / "catalog-base.csv")
    assert len(cat) == 33 and cat["track_id"].isna().sum() == 3
    audio = raw / "audio"
    suffixes = {p.suffix for p in audio.rglob("*") if p.is_file()}
    assert {".wav", ".flac", ".ogg"} <= suffixes
    good = cat.dropna(subset=["track_id"])
    ok = [p for p in good["audio_path"] if not p.startswith("bad/")]
    assert len(ok) == 23 and all((audio / p).is_file() for p in ok)
    y, sr = sf.read(audio / ok[0])
    assert sr == 22050 and len(y) == 11025
    bad = sorted(p for p in good["audio_path"] if p.startswith("bad/"))
    assert sum(not (audio / p).exists() for p in bad) == 3 and sum((audio / p).exists() and
                                                                    (audio / p).stat().st_size == 0 for p in bad) == 2
    assert not (raw / "truth").exists() and (raw.parent / "truth" / "hit_probability.parquet").is_file()
    truth = load_truth(cfg)
    assert set(truth["cutoff"].astype(str)) == set(cfg.features.cutoffs)
    # a Monte Carlo share over demo.mc_draws = 20 draws: a whole number of twentieths
    twentieths = truth["true_hit_probability"] * 20
    assert np.allclose(twentieths, twentieths.round(), atol=1e-9) and twentieths.nunique() > 1
    assert {"audio_appeal", "genre", "log_rate"} <= set(truth.columns)
    # expected hits per cutoff ~ hit_share of the cohort (ties at zero plays may lower it)
    per_cut = truth.groupby("cutoff").agg(p=("true_hit_probability", "sum"), n=("cohort_size", "first"))
    assert ((per_cut["p"] <= np.floor(per_cut["n"] * 0.2) + 1) & (per_cut["p"] > 0)).all()


def test_every_bad_input_kind_reaches_quarantine_through_ingest(spark, demo_runs):
    cfg, res = demo_runs["a"]
    summary = run_ingest(spark, cfg)
    q = spark.read.format("delta").load(cfg.table("quarantine")).groupBy("reason").count().collect()
    got = {r["reason"]: r["count"] for r in q}
    b = res.bad_input
    assert got == {"malformed_json": b["malformed_json"], "duplicate_event": b["duplicate_events"],
                   "negative_ms_played": b["negative_ms_played"], "future_event_time": b["future_event_time"],
                   "missing_track_id": b["missing_track_id"], "duplicate_track_id": b["duplicate_track_id"]}
    assert summary.unknown_track_events == b["unknown_track_events"]
    assert summary.catalog_updates == b["catalog_updates"] and summary.catalog.rows_valid == 30
    ev = spark.read.format("delta").load(cfg.table("engagement_events"))
    assert ev.count() == res.events + b["unknown_track_events"] + 0   # generated events all good + unknown ones
    assert ev.where("NOT known_track").count() == b["unknown_track_events"]


def test_events_do_not_depend_on_partitioning(spark):
    lat = democat.make_latents(make_config(Path("/nonexistent")).demo, 6, 3)
    lat["lam"], lat["release_day"] = 0.4, np.arange(6) * 10

    def events(parts):
        return simulate_events(spark, lat, n_days=120, start_date="2024-01-01", listeners=50, seed=3,
                               n_partitions=parts)

    two = events(2)
    assertDataFrameEqual(two, events(3), rtol=0, atol=0)
    rows = two.collect()
    assert len(rows) > 50 and len({r.event_id for r in rows}) == len(rows)
    assert {r.event_type for r in rows} == {"play", "skip", "save", "playlist_add", "share"}


def test_audio_appeal_is_visible_in_the_log_mel():
    rng = np.random.default_rng(0)
    fr = librosa.mel_frequencies(n_mels=64, fmax=11025)
    band = (fr > 2000) & (fr < 5000)
    hi = {}
    for a in (-2.0, 2.0):
        vals = []
        for g in democat.GENRES:
            y = synthesize(a, g, sr=22050, seconds=2.0, rng=rng)
            assert y.dtype == np.float32 and y.shape == (44100,) and np.isclose(np.abs(y).max(), 0.9)
            m = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=22050, n_fft=1024, hop_length=512,
                                                                   n_mels=64), ref=np.max, top_db=80)
            vals.append(m[band].mean())
        hi[a] = np.mean(vals)
    assert hi[2.0] - hi[-2.0] > 20.0          # a bright 2-5 kHz hook for high appeal, dull timbre for low


def test_tabular_features_are_only_noisy_proxies_of_audio_appeal():
    demo = make_config(Path("/nonexistent")).demo
    lat = democat.make_latents(demo, 20000, 1)
    feats = democat.spotify_features(lat, 1)
    for col in ("danceability", "energy"):
        r = np.corrcoef(lat["audio_appeal"], feats[col])[0, 1]
        assert 0.35 < r < 0.6, (col, r)
    assert lat["genre"].nunique() == 8
    by_genre = lat.groupby("genre")["log_rate"].mean()
    assert by_genre["pop"] > by_genre["classical"] + 0.5


def test_pool_snapping_uses_the_nearest_file_of_the_genre():
    lat = pd.DataFrame({"genre": ["pop", "pop", "rock"], "audio_appeal": [1.2, -0.1, 3.0]})
    out = democat.snap_to_pool(lat, 16)          # 2 files per genre, appeals at +-0.674
    assert out["pool_idx"].tolist() == [8, 0, 11]
    assert np.allclose(out["audio_appeal"], [0.6744897501960817, -0.6744897501960817, 0.6744897501960817])


def test_percent_rank_matches_sql_semantics():
    v = np.array([[0, 0, 1, 3, 3], [5, 4, 3, 2, 1]])
    assert np.allclose(model.percent_rank(v), [[0, 0, 0.5, 0.75, 0.75], [1, 0.75, 0.5, 0.25, 0]])
    assert model.is_hit(np.array([0.79, 0.8, 1.0]), 0.2).tolist() == [False, True, True]
