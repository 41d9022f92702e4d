"""The whole pipeline on a small generated catalog: generate, ingest, features, spectrograms (the session's
``trained_demo``, copied), 2-worker training of a 3-member model, promotion, catalog scoring; then the predictions
table is checked row by row against the catalog."""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

import analyst_pipeline
from audio_fixtures import write_tone
from helpers import make_config
from hitcast.audio.paths import resolve_audio_path
from hitcast.errors import InputContractError
from hitcast.features.examples import features_as_of
from hitcast.lifecycle.promote import run_promote
from hitcast.lifecycle.training import train_and_register
from hitcast.model.bundle import load_bundle
from hitcast.model.training import table_inputs
from hitcast.scoring.inputs import scoring_inputs
from hitcast.scoring.prospects import prospect_catalog, read_metadata, run_prospects
from hitcast.scoring.stage import run_scoring
from hitcast.tables import read_table

#: The session's ``trained_demo`` data settings, with this module's own training: 2 epochs and the default
#: ensemble of 3 members (``trained_demo``'s one-member model leaves the members' paths of scoring unchecked).
E2E_SETTINGS = [*analyst_pipeline.SETTINGS, "train.epochs=2", "train.batch_size=16", "train.workers=2",
                "train.ensemble=3"]


@pytest.fixture(scope="module")
def pipeline(spark, trained_demo, tmp_path_factory):
    """A copy of the session's ``trained_demo`` (generated, ingested, features, spectrograms), a 3-member model
    trained on it and promoted, the catalog scored once: (cfg, the training's outcome, the run's summary)."""
    root = tmp_path_factory.mktemp("e2e") / "root"
    shutil.copytree(trained_demo, root)
    cfg = make_config(root, *E2E_SETTINGS)
    examples, spectrograms, inputs = table_inputs(spark, cfg)
    trained = train_and_register(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    assert not trained.skipped                                       # a new version, not trained_demo's model
    assert run_promote(spark, cfg).version == trained.version        # the first model becomes the champion
    first = run_scoring(spark, cfg)
    embeddings = spark.read.format("delta").load(cfg.table("audio_embeddings")).collect()
    assert {len(r.embedding) for r in embeddings} == {3 * 4 * 32}    # 3 members x 32 float32 each
    return cfg, trained, first


def test_every_catalog_track_is_scored_exactly_once(spark, pipeline):
    cfg, trained, first = pipeline
    catalog = {r.track_id: r for r in read_table(spark, cfg, "catalog").collect()}
    preds = read_table(spark, cfg, "predictions").collect()
    by_track: dict[str, list] = {}
    for row in preds:
        by_track.setdefault(row.track_id, []).append(row)
    assert set(by_track) == set(catalog)
    assert all(len(rows) == 1 for rows in by_track.values()), "a track was scored twice"
    assert not any(math.isnan(row.hit_probability) for row in preds)
    assert first.tracks == first.rescored == first.table_rows == len(catalog) and first.unchanged == 0


def test_each_stored_score_is_the_bundles_score_for_that_tracks_inputs(spark, pipeline):
    """The Spark path (mapInArrow over repartitioned batches, the explaining split model, MERGE) stores, for
    every track, what the model bundle gives for that track's own scoring inputs in one driver call."""
    cfg, trained, first = pipeline
    features = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_daily"),
                               as_of=first.as_of, cfg=cfg)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas()
    scores = load_bundle(trained.path).predict_pandas(inputs)
    assert scores["hit_probability"].nunique() > len(inputs) // 2      # scores differ between tracks
    # mode: cold start without engagement before as_of, else no_audio without an ok spectrogram, else full
    modes = ["cold_start" if c else "no_audio" if s != "ok" else "full"
             for c, s in zip(inputs["cold_start"], inputs["status"])]
    assert {"no_audio", "full"} <= set(modes)           # (cold start is checked a year earlier, below)
    expected = [Row(track_id=t, model_version=trained.version, hit_probability=float(h), popularity_score=float(p),
                    mode=m, audio_status=s, as_of=first.as_of, run_id=first.run_id)
                for t, h, p, m, s in zip(inputs["track_id"], scores["hit_probability"], scores["popularity_score"],
                                         modes, inputs["status"])]
    stored = read_table(spark, cfg, "predictions").select(*expected[0].__fields__)
    assertDataFrameEqual(stored, expected, rtol=1e-6, atol=1e-5)


def test_bad_audio_and_cold_start_tracks_are_scored_with_their_status(spark, pipeline):
    cfg, _, first = pipeline
    spec = {r.track_id: r.status for r in read_table(spark, cfg, "spectrograms").collect()}
    preds = {r.track_id: r for r in read_table(spark, cfg, "predictions").collect()}
    for track_id, row in preds.items():
        assert row.audio_status == spec.get(track_id, "no_spectrogram"), track_id
    # The generator plants missing, empty and truncated audio: they are scored all the same.
    bad = {t for t, s in spec.items() if s != "ok"}
    assert {"missing", "empty"} <= {spec[t] for t in bad}
    assert bad <= set(preds)
    # Cold start exactly when the track has no event before the as-of date.
    seen = tracks_with_events_before(spark, cfg, first.as_of)
    for track_id, row in preds.items():
        assert (row.mode == "cold_start") == (track_id not in seen), track_id


def tracks_with_events_before(spark, cfg, as_of: dt.date) -> set[str]:
    """Track ids with at least one ``engagement_events`` row before ``as_of`` (00:00 UTC)."""
    events = read_table(spark, cfg, "engagement_events")
    return {r.track_id for r in events.filter(F.col("event_time") < F.lit(as_of).cast("timestamp"))
            .select("track_id").distinct().collect()}


def test_rescoring_updates_in_place(spark, pipeline):
    cfg, trained, first = pipeline
    before = read_table(spark, cfg, "predictions").collect()
    # nothing changed: no track is rescored and the table keeps every row as it was
    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (again.tracks, again.rescored, again.unchanged, again.table_rows) == (len(before), 0, len(before),
                                                                               len(before))
    assertDataFrameEqual(read_table(spark, cfg, "predictions"), before, rtol=0, atol=0)
    # full=True rescores every track in place: the same scores, now from the new run
    forced = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of, full=True)
    assert (forced.rescored, forced.table_rows) == (len(before), len(before))
    assertDataFrameEqual(read_table(spark, cfg, "predictions").select("track_id", "hit_probability", "run_id"),
                         [Row(track_id=r.track_id, hit_probability=r.hit_probability, run_id=forced.run_id)
                          for r in before], rtol=0, atol=1e-6)


def test_scoring_an_earlier_as_of_date_changes_features_not_rows(spark, pipeline):
    cfg, trained, first = pipeline
    early = first.as_of - dt.timedelta(days=365)
    s = run_scoring(spark, cfg, version=trained.version, as_of=early)
    preds = read_table(spark, cfg, "predictions").collect()
    assert s.table_rows == len(preds) == first.tracks == s.rescored
    assert {r.as_of for r in preds} == {early}
    # a year earlier, exactly the tracks without an event before that date are cold start
    seen = tracks_with_events_before(spark, cfg, early)
    cold = {r.track_id for r in preds} - seen
    assert {r.track_id for r in preds if r.mode == "cold_start"} == cold
    assert s.modes["cold_start"] == len(cold) > first.modes.get("cold_start", 0)


def test_a_folder_of_demos_is_scored_in_cold_start_mode_with_the_catalogs_code(spark, pipeline, tmp_path):
    """``score.py --audio-dir``: each file's stored score is the bundle's score for the inputs the catalog's
    own functions give a new, unreleased track with that metadata and audio; bad files keep their status."""
    cfg, trained, first = pipeline
    spec = read_table(spark, cfg, "spectrograms").where("status = 'ok'").orderBy("track_id").limit(2).collect()
    catalog = {r.track_id: r for r in read_table(spark, cfg, "catalog").collect()}
    folder = tmp_path / "demos"
    (folder / "nometa").mkdir(parents=True)
    src = [resolve_audio_path(s.audio_path, [str(cfg.path(p)) for p in cfg.paths.audio_roots]) for s in spec]
    names = {"demo_a" + Path(src[0]).suffix: spec[0], "nometa/demo_b" + Path(src[1]).suffix: spec[1]}
    for name, s in zip(names, src):
        shutil.copyfile(s, folder / name)
    (folder / "empty.wav").write_bytes(b"")
    write_tone(folder / "short.wav", 0.5)
    a = catalog[spec[0].track_id]
    meta = tmp_path / "meta.csv"
    meta.write_text("file,artist_name,artist_id,title,genre\n"
                    f"demo_a{Path(src[0]).suffix},{a.artist_name},{a.artist_id},Demo A,{a.genre}\n"
                    "short.wav,Nobody,,Short,pop\n")
    out = run_prospects(spark, cfg, folder=folder, metadata=meta, version=trained.version)
    assert out.as_of == first.as_of

    # what the catalog's own functions give these tracks: features over the whole catalog, spectrograms
    # of the same audio bytes from the catalog's table, the bundle called once on the driver
    rows = prospect_catalog(spark, sorted(names) + ["empty.wav", "short.wav"],
                            read_metadata(spark, meta, sorted(names) + ["empty.wav", "short.wav"]),
                            release_default=first.as_of)
    features = (features_as_of(read_table(spark, cfg, "catalog").unionByName(rows),
                               read_table(spark, cfg, "engagement_daily"), as_of=first.as_of, cfg=cfg)
                .join(rows.select("track_id"), "track_id", "left_semi"))
    renamed = spark.createDataFrame([(s.track_id, n) for n, s in names.items()], "track_id string, new_id string")
    catalog_spec = (read_table(spark, cfg, "spectrograms").join(renamed, "track_id")
                    .withColumn("track_id", F.col("new_id")).drop("new_id"))
    inputs = scoring_inputs(features, catalog_spec).toPandas()
    assert inputs["cold_start"].all() and (inputs["artist_tracks_before"].loc[inputs["track_id"] == "demo_a"
                                                                               + Path(src[0]).suffix] >= 0).all()
    scores = load_bundle(trained.path).predict_pandas(inputs)
    want = dict(zip(inputs["track_id"], scores["hit_probability"]))
    status = {**{n: "ok" for n in names}, "empty.wav": "empty", "short.wav": "too_short"}
    stored = read_table(spark, cfg, "prospects").collect()
    assert sorted((r.track_id, r.mode, r.audio_status) for r in stored) == sorted(
        (t, "cold_start", s) for t, s in status.items())
    for r in stored:
        assert r.hit_probability == pytest.approx(want[r.track_id], abs=1e-5), r.track_id
        assert r.source_dir == str(folder.resolve()) and r.model_version == trained.version
    assert {r.track_id: (r.artist_name, r.title) for r in stored}["short.wav"] == ("Nobody", "Short")
    # ranked: files with usable audio first, by score
    assert [r["track_id"] for r in out.ranked[:2]] == sorted(names, key=lambda n: -want[n])
    page = Path(out.page).read_text()
    assert page.count("<img") == 2 and all(t in page for t in status) and "too_short" in page
    # a re-run over the same files changes nothing
    again = run_prospects(spark, cfg, folder=folder, metadata=meta, version=trained.version)
    assert (again.inserted, again.updated) == (0, 0)
    assertDataFrameEqual(read_table(spark, cfg, "prospects"), stored, rtol=0, atol=0)


def test_prospect_metadata_errors_name_the_file_and_column(spark, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("file,artist_name,label\na.wav,X,Y\n")
    with pytest.raises(InputContractError, match=r"meta.csv: unknown column\(s\) \['label'\]"):
        read_metadata(spark, meta, ["a.wav"])
    meta.write_text("file,artist_name\nb.wav,X\n")
    with pytest.raises(InputContractError, match=r"meta.csv: column 'file' names \['b.wav'\]"):
        read_metadata(spark, meta, ["a.wav"])
    meta.write_text("name,artist_name\na.wav,X\n")
    with pytest.raises(InputContractError, match="no column 'file'"):
        read_metadata(spark, meta, ["a.wav"])


def test_a_reader_sees_one_whole_version_while_a_rescoring_commits(spark, pipeline, tmp_path):
    """Another process reads ``predictions`` over and over while a full rescoring MERGEs a new run_id into
    every row: each read sees one complete table version (the rows of the run before, or of the new run),
    never a mix."""
    cfg, trained, first = pipeline
    location = cfg.table("predictions")
    before = {r.run_id: r["count"] for r in read_table(spark, cfg, "predictions").groupBy("run_id").count().collect()}
    n = sum(before.values())
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(Path(__file__).with_name("snapshot_reader.py")), location,
                               str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        seen = [json.loads(reader.stdout.readline())]          # the reader is up and has read once
        run = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of, full=True)
        stop.touch()
        out, _ = reader.communicate(timeout=300)
    finally:
        if reader.poll() is None:
            reader.kill()
    seen += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert reader.returncode == 0 and len(seen) >= 3
    after = {run.run_id: n}
    assert seen[0] == before and seen[-1] == after
    mixed = [read for read in seen if read not in (before, after)]
    assert not mixed, f"reads that saw neither whole version: {mixed[:3]}"
