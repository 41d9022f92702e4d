"""The spectrogram stage on real Spark (local[2]) and real Delta: statuses, schema, incremental MERGE, job CLI."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.testing import assertDataFrameEqual

from audio_fixtures import make_bad_files, make_good_files, symlink, write_tone
from helpers import dsp_settings, make_config
from hitcast import melcodec
from hitcast.audio import compute_clip, dsp_version
from hitcast.schemas import SPECTROGRAMS
from hitcast.spectrograms.stage import (PREV_COLUMNS, ROW_SCHEMA, StatusCounts, _append_new,
                                        compute_rows,
                                  create_table, map_batches, partitions_for, update_spectrograms, with_previous)
from hitcast.tables import table_version

REPO = Path(__file__).resolve().parents[1]
T1, T2, T3, T4 = (datetime(2026, 1, d, 12, 0, tzinfo=timezone.utc) for d in (1, 2, 3, 4))


def write_catalog(spark, cfg, rows: list[tuple[str, str | None]]) -> None:
    df = spark.createDataFrame(rows, "track_id string, audio_path string")
    df.write.format("delta").mode("overwrite").save(cfg.table("catalog"))


def run(spark, cfg, at: datetime):
    from hitcast.spectrograms.stage import catalog_tracks

    roots = [cfg.path(r) for r in cfg.paths.audio_roots]
    return update_spectrograms(spark, catalog_tracks(spark, cfg), location=cfg.table("spectrograms"), dsp=cfg.dsp,
                               roots=roots, computed_at=at)


def table(spark, cfg):
    return spark.read.format("delta").load(cfg.table("spectrograms"))


def naive(t: datetime) -> datetime:
    """``t`` as Spark collects a timestamp: naive, in the local time zone."""
    return t.astimezone().replace(tzinfo=None)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_status_exact_schema_and_shape(spark, tmp_path):
    cfg = make_config(tmp_path, "dsp.clip_seconds=2.0")
    root = cfg.path("raw/audio")
    bad = make_bad_files(root / "bad")
    good = make_good_files(root / "good")
    outside = tmp_path / "outside"
    write_tone(outside / "secret.wav", 2.0)
    symlink(root / "link_out.wav", outside / "secret.wav")
    rejected = {"escape": "../outside/secret.wav", "abs": f"file://{outside}/secret.wav",
                "symlink": "link_out.wav", "http": "http://example.org/a.wav", "s3": "s3://bucket/a.wav"}
    rows = [(f"bad/{n}", f"bad/{n}") for n in bad] + [(f"good/{n}", f"good/{n}") for n in good]
    rows += [(k, v) for k, v in rejected.items()] + [("gone", "nope/gone.wav"), ("meta_only", None)]
    write_catalog(spark, cfg, rows)

    summary = run(spark, cfg, T1)

    expected = {f"bad/{n}": s for n, s in bad.items()}
    expected.update({f"good/{n}": "ok" for n in good})
    expected.update({k: "rejected_path" for k in rejected})
    expected.update({"gone": "missing", "meta_only": "no_audio"})
    assertDataFrameEqual(table(spark, cfg).select("track_id", "status", "computed_at"),
                         [Row(track_id=k, status=v, computed_at=naive(T1)) for k, v in expected.items()])
    counts = {"empty": 1, "missing": 1, "no_audio": 1, "non_finite": 1, "ok": 6, "rejected_path": 5, "silent": 1,
              "too_short": 1, "truncated": 2, "undecodable": 2}
    assert (summary.tracks, summary.recomputed, summary.skipped) == (21, 21, 0)
    assert summary.recomputed_by_status == counts and summary.table_by_status == counts

    df = table(spark, cfg)
    assert df.schema == SPECTROGRAMS
    version = dsp_version(cfg.dsp)
    by_id = {r.track_id: r for r in df.collect()}
    for name in good:
        r = by_id[f"good/{name}"]
        assert (r.n_mels, r.n_frames, len(r.mel), r.dsp_version, r.error) == (64, 87, 64 * 87, version, None)
        assert r.content_hash == sha256(root / "good" / name)
        assert r.audio_path == f"good/{name}"
        local = compute_clip(str(root / "good" / name), cfg.dsp).db
        stored = melcodec.decode(r.mel, n_mels=r.n_mels, n_frames=r.n_frames, db_offset=r.db_offset,
                                 db_scale=r.db_scale)
        assert float(np.abs(stored - local).max()) <= r.db_scale / 2 + 1e-4
        assert (r.sample_rate, r.channels) == good[name]
    for key in rejected:
        r = by_id[key]
        assert (r.content_hash, r.mel, r.n_mels) == (None, None, None)
        assert r.error.startswith(f"audio_path '{rejected[key]}' rejected: ")
    assert by_id["gone"].error == f"audio file {root}/nope/gone.wav not found"
    assert by_id["meta_only"].error == "track has no audio_path"
    assert by_id["bad/empty.wav"].error == f"{root}/bad/empty.wav: zero-byte file"
    assert by_id["bad/empty.wav"].content_hash == hashlib.sha256(b"").hexdigest()
    assert all(r.mel is None for r in by_id.values() if r.status != "ok")


def test_incremental_recomputes_exactly_the_changed_tracks(spark, tmp_path):
    cfg = make_config(tmp_path, "dsp.clip_seconds=1.5")
    root = cfg.path("raw/audio")
    for i, name in enumerate("abcd"):
        write_tone(root / f"{name}.wav", 2.0, freq=300.0 + 100 * i)
    write_catalog(spark, cfg, [(n, f"{n}.wav") for n in "abcd"] + [("m", "m.wav")])
    first = run(spark, cfg, T1)
    assert (first.recomputed, first.skipped, first.recomputed_by_status) == (5, 0, {"missing": 1, "ok": 4})
    assert first.table_version == table_version(spark, cfg.table("spectrograms")) == 1   # create, then one append
    old_hash = {r.track_id: r.content_hash for r in table(spark, cfg).collect()}

    write_tone(root / "b.wav", 2.0, freq=1234.0)            # new bytes for b
    write_tone(root / "e.wav", 2.0, freq=900.0)             # a new track e
    write_catalog(spark, cfg, [(n, f"{n}.wav") for n in "abcde"] + [("m", "m.wav")])
    second = run(spark, cfg, T2)

    df = table(spark, cfg)
    recomputed = {r.track_id for r in df.where(F.col("computed_at") == F.lit(T2)).collect()}
    kept = {r.track_id for r in df.where(F.col("computed_at") == F.lit(T1)).collect()}
    assert recomputed == {"b", "e"} and kept == {"a", "c", "d", "m"}
    assert (second.recomputed, second.skipped, second.recomputed_by_status) == (2, 4, {"ok": 2})
    assert second.table_by_status == {"missing": 1, "ok": 5}
    assert second.table_version == table_version(spark, cfg.table("spectrograms")) == 2  # one MERGE
    new_hash = {r.track_id: r.content_hash for r in df.collect()}
    assert new_hash["b"] == sha256(root / "b.wav") != old_hash["b"]
    assert {k: new_hash[k] for k in "acdm"} == {k: old_hash[k] for k in "acdm"}
    assert df.count() == 6

    # Nothing changed: nothing is computed and no new table version is written.
    before = table_version(spark, cfg.table("spectrograms"))
    third = run(spark, cfg, T3)
    assert (third.recomputed, third.skipped, third.recomputed_by_status) == (0, 6, {})
    assert table_version(spark, cfg.table("spectrograms")) == before == third.table_version
    assert table(spark, cfg).where(F.col("computed_at") == F.lit(T3)).count() == 0

    # A DSP setting change recomputes every track (missing ones too: their row carries the old dsp_version).
    cfg32 = make_config(tmp_path, "dsp.clip_seconds=1.5", "dsp.n_mels=32")
    fourth = run(spark, cfg32, T4)
    assert (fourth.recomputed, fourth.skipped, fourth.recomputed_by_status) == (6, 0, {"missing": 1, "ok": 5})
    v32 = dsp_version(cfg32.dsp)
    assertDataFrameEqual(
        table(spark, cfg32).select("track_id", "status", "n_mels", "n_frames", "dsp_version", "computed_at"),
        [Row(track_id=t, status="ok", n_mels=32, n_frames=1 + 33075 // 512, dsp_version=v32, computed_at=naive(T4))
         for t in "abcde"]
        + [Row(track_id="m", status="missing", n_mels=None, n_frames=None, dsp_version=v32, computed_at=naive(T4))])


def test_workers_stream_one_bounded_batch_at_a_time(tmp_path):
    """map_batches answers each Arrow batch before it reads the next: memory is one batch, not the catalog."""
    write_tone(tmp_path / "a.wav", 1.5)
    dsp = dsp_settings(clip_seconds=1.0)
    pulled = []

    def batches():
        for i in range(3):
            pulled.append(i)
            yield pa.RecordBatch.from_pydict(
                {"track_id": [f"t{i}a", f"t{i}b"], "audio_path": ["a.wav", "../x.wav"],
                 **{c: [None, None] for c in PREV_COLUMNS}},
                schema=pa.schema([(c, pa.string()) for c in ("track_id", "audio_path", *PREV_COLUMNS)]))

    out = map_batches(batches(), dsp=dsp, roots=[str(tmp_path.resolve())], version=dsp_version(dsp))
    first = next(out)
    assert pulled == [0]
    assert first.schema == to_arrow_schema(ROW_SCHEMA)
    assert first.to_pydict()["status"] == ["ok", "rejected_path"]
    assert [b.num_rows for b in out] == [2, 2] and pulled == [0, 1, 2]


def _new_rows(spark, root, names, counts):
    tracks = spark.createDataFrame([(n, n) for n in names], "track_id string, audio_path string")
    rows = compute_rows(with_previous(tracks, None), dsp=dsp_settings(clip_seconds=1.0), roots=[str(root)],
                        partitions=2, counts=counts)
    return rows.withColumn("computed_at", F.lit(T1)).select(*SPECTROGRAMS.fieldNames())


def test_new_table_is_counted_by_the_workers_while_appending(spark, tmp_path, caplog):
    write_tone(tmp_path / "a.wav", 1.5)
    write_tone(tmp_path / "b.wav", 0.5)
    names = ["a.wav", "b.wav", "gone.wav", "../x.wav"]
    expected = {"missing": 1, "ok": 1, "rejected_path": 1, "too_short": 1}
    counts = spark.sparkContext.accumulator({}, StatusCounts())
    create_table(spark, str(tmp_path / "t1"))
    assert _append_new(spark, _new_rows(spark, tmp_path, names, counts), str(tmp_path / "t1"), 4, counts) == expected
    assert counts.value == expected and not caplog.records
    # Counts that do not add up to the tracks (an update lost) are replaced by a count of the table.
    idle = spark.sparkContext.accumulator({}, StatusCounts())
    create_table(spark, str(tmp_path / "t2"))
    assert _append_new(spark, _new_rows(spark, tmp_path, names, None), str(tmp_path / "t2"), 4, idle) == expected
    assert idle.value == {}
    assert [r.getMessage() for r in caplog.records] == [
        f"status counts from the workers add up to 0, not 4 tracks: counting the table {tmp_path / 't2'}"]


def test_summary_says_what_the_run_did(spark, tmp_path):
    cfg = make_config(tmp_path, "dsp.clip_seconds=1.0")
    write_tone(cfg.path("raw/audio") / "a.wav", 1.5)
    write_catalog(spark, cfg, [("a", "a.wav")])
    first, again = run(spark, cfg, T1), run(spark, cfg, T2)
    assert str(first) == (f"1 tracks, 1 recomputed, 0 skipped as unchanged (dsp_version {dsp_version(cfg.dsp)}); "
                          f"table {cfg.table('spectrograms')} (version 1) by status: ok=1")
    assert (first.recomputed, first.table_by_status, again.skipped, again.table_by_status) == (1, {"ok": 1}, 1,
                                                                                               {"ok": 1})
    assert str(again) == (f"1 tracks, 0 recomputed, 1 skipped as unchanged (dsp_version {dsp_version(cfg.dsp)}); "
                          f"table {cfg.table('spectrograms')} (version 1) by status: ok=1")


def test_partitions_give_every_core_work(spark):
    assert spark.sparkContext.defaultParallelism == 2
    assert partitions_for(spark, 1000, 128) == 8
    assert partitions_for(spark, 100, 128) == 4
    assert partitions_for(spark, 3, 128) == 3
    assert partitions_for(spark, 0, 128) == 1


def job_env() -> dict[str, str]:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, HITCAST_SPARK_LOG_LEVEL="ERROR")
    env.pop("HITCAST_CONF", None)
    return env


def test_job_help():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "spectrograms.py"), "--help"], capture_output=True,
                         text=True, env=job_env(), timeout=120)
    assert out.returncode == 0
    for text in ("--audio-dir DIR", "--out LOCATION", "--conf CONF", "--set KEY=VALUE", "MERGE them into the "
                 "Delta table", "rejected_path", "counts by status"):
        assert text in " ".join(out.stdout.split()) or text in out.stdout, text


def test_job_audio_dir_reports_each_file(spark, tmp_path):
    folder = tmp_path / "incoming"
    write_tone(folder / "song.flac", 3.0)
    write_tone(folder / "sub" / "tiny.wav", 0.4)
    (folder / "broken.mp3").write_bytes(b"")
    (folder / "notes.txt").write_text("not audio")
    out_table = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "jobs" / "spectrograms.py"), "--audio-dir", str(folder), "--out",
           str(out_table), "--set", "spark.master=local[2]", "--set", f"paths.root={tmp_path}",
           "--set", "dsp.clip_seconds=2.0"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=job_env(), timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [" ".join(line.split()) for line in out.stderr.splitlines()]
    assert "broken.mp3 empty - - - - " + f"{folder}/broken.mp3: zero-byte file" in lines
    assert "song.flac ok 64x87 3.00 22050 1" in lines
    assert "sub/tiny.wav too_short - 0.40 22050 1 " + f"{folder}/sub/tiny.wav: 0.400 s of audio, below the " \
                                                      "minimum 1.0 s" in lines
    assert "3 files: empty=1, ok=1, too_short=1" in lines
    assert not any("notes.txt" in line for line in lines)
    # --out wrote the same rows as a Delta table with the spectrograms schema.
    written = spark.read.format("delta").load(str(out_table))
    assert written.schema == SPECTROGRAMS
    assertDataFrameEqual(written.select("track_id", "status", "n_frames"), [
        Row(track_id="broken.mp3", status="empty", n_frames=None), Row(track_id="song.flac", status="ok", n_frames=87),
        Row(track_id="sub/tiny.wav", status="too_short", n_frames=None)])
