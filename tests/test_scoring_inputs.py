"""Scoring's pure pieces: attaching spectrograms, the default as-of date, the summary's metric lookup."""
from __future__ import annotations

import datetime as dt

import pandas as pd
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from hitcast.schemas import SPECTROGRAMS
from hitcast.scoring.inputs import SPEC_COLUMNS, scoring_inputs
from hitcast.scoring.stage import default_as_of
from hitcast.scoring.summary import PipelineSummary, find_test_metrics


def _spec_row(track_id, status, mel):
    return (track_id, f"{track_id}.wav", "h", "v1", status, None if status == "ok" else "why",
            2, 3, mel, -80.0, 80.0 / 255, 1.0, 22050, 1, dt.datetime(2025, 1, 1))


def test_scoring_inputs_keeps_every_track_and_nulls_mel_unless_ok(spark):
    features = spark.createDataFrame(
        [("a", False, "pop", 1.0), ("b", True, "rock", None), ("c", True, "jazz", None)],
        "track_id string, cold_start boolean, genre string, plays_7d double")
    spec = spark.createDataFrame([_spec_row("a", "ok", bytes(range(6))),
                                  _spec_row("b", "undecodable", bytes(6))], SPECTROGRAMS)
    out = scoring_inputs(features, spec)
    assert sorted(out.columns) == sorted(features.columns + SPEC_COLUMNS)
    row = Row("track_id", "cold_start", "genre", "plays_7d", "status", "mel", "n_mels", "n_frames")
    assertDataFrameEqual(out.select(*row), [row("a", False, "pop", 1.0, "ok", bytearray(range(6)), 2, 3),
                                            row("b", True, "rock", None, "undecodable", None, None, None),
                                            row("c", True, "jazz", None, "no_spectrogram", None, None, None)])


def test_default_as_of_is_the_day_after_the_last_event(spark):
    daily = spark.createDataFrame([(dt.date(2025, 3, 1),), (dt.date(2025, 2, 1),)], "event_date date")
    assert default_as_of(daily) == dt.date(2025, 3, 2)
    assert default_as_of(spark.createDataFrame([], "event_date date")) == dt.date.today()


def test_find_test_metrics_accepts_both_layouts():
    assert find_test_metrics({"test": {"f1": 0.5, "roc_auc": 0.75, "n": 10}, "validation": {"f1": 0.1}}) == \
        {"f1": 0.5, "roc_auc": 0.75, "n": 10.0}
    assert find_test_metrics({"test_f1": 0.25, "val_f1": 0.3}) == {"f1": 0.25}


def test_summary_text_names_location_rows_and_metrics():
    top = pd.DataFrame({"track_id": ["t1"], "title": ["Song"], "artist_name": ["A"], "genre": ["pop"],
                        "hit_probability": [0.91234], "popularity_score": [float("nan")],
                        "cold_start": [False], "audio_status": ["ok"]})
    text = str(PipelineSummary(location="/w/predictions", rows=3, tracks=3, model_version="fused-x",
                               top=top, test_metrics={"f1": 0.61, "roc_auc": 0.8}, report=None))
    assert "predictions table: /w/predictions" in text
    assert "3 rows for 3 catalog tracks, model fused-x" in text
    assert "0.9123" in text
    assert "held-out test split: f1=0.610, roc_auc=0.800" in text


def test_evaluation_of_picks_the_scoring_models_test_figures(tmp_path):
    import json

    from hitcast.scoring.summary import evaluation_of

    (tmp_path / "results.json").write_text(json.dumps({
        "fused": {"version": "fused-1", "test": {"f1": 0.7, "roc_auc": 0.9}},
        "tabular": {"version": "tabular-1", "test": {"f1": 0.6, "roc_auc": 0.8}}}))
    assert find_test_metrics(evaluation_of(tmp_path, "fused-1")) == {"f1": 0.7, "roc_auc": 0.9}
    assert evaluation_of(tmp_path, "fused-2") == {}
    assert evaluation_of(tmp_path / "absent", "fused-1") == {}


def test_with_mel_gives_the_same_rows_broadcast_or_shuffled(spark):
    from hitcast.scoring.inputs import light_inputs, with_mel

    features = spark.createDataFrame([("a", 1.0), ("b", None), ("c", 3.0)], "track_id string, plays_7d double")
    spec = spark.createDataFrame([_spec_row("a", "ok", bytes(range(6))),
                                  _spec_row("b", "too_short", bytes(6))], SPECTROGRAMS)
    light = light_inputs(features, spec)
    assert "mel" not in light.columns
    row = Row("track_id", "plays_7d", "status", "content_hash", "dsp_version", "mel", "n_mels", "n_frames")
    want = [row("a", 1.0, "ok", "h", "v1", bytearray(range(6)), 2, 3),
            row("b", None, "too_short", "h", "v1", None, None, None),      # no usable audio: nothing of it
            row("c", 3.0, "no_spectrogram", None, None, None, None, None)]
    for broadcast in (True, False):
        assertDataFrameEqual(with_mel(light, spec, broadcast=broadcast).select(*row), want)


def test_source_hash_follows_features_and_audio_identity_not_row_order(spark):
    from hitcast.scoring.inputs import with_source_hash

    schema = ("track_id string, cutoff date, plays_7d double, plays_28d double, genre string, content_hash string, "
              "dsp_version string")
    day, next_day = dt.date(2025, 6, 1), dt.date(2025, 6, 2)
    base = [("a", day, 1.0, None, "pop", "h1", "v1"), ("b", day, None, 4.0, "rock", "h2", "v1")]
    hashes = {r.track_id: r.source_hash for r in with_source_hash(spark.createDataFrame(base, schema)).collect()}
    assert all(len(h) == 16 for h in hashes.values())
    cases = {"same rows, other order": [base[1], base[0]],
             "the same features one day later": [(t, next_day, *rest) for t, _, *rest in base],
             "one play more": [("a", day, 2.0, None, "pop", "h1", "v1"), base[1]],
             "new audio file": [base[0], ("b", day, None, 4.0, "rock", "h3", "v1")],
             "other DSP settings": [base[0], ("b", day, None, 4.0, "rock", "h2", "v2")],
             "a value where there was none": [base[0], ("b", day, 0.0, 4.0, "rock", "h2", "v1")],
             # the same value in the neighbouring column (NULL where it was): not the same source
             "a value moved to the next column": [("a", day, None, 1.0, "pop", "h1", "v1"),
                                                  ("b", day, 4.0, None, "rock", "h2", "v1")]}
    changed = {name: sorted(r.track_id for r in with_source_hash(spark.createDataFrame(rows, schema)).collect()
                            if r.source_hash != hashes[r.track_id])
               for name, rows in cases.items()}
    assert changed == {"same rows, other order": [], "the same features one day later": [],
                       "one play more": ["a"], "new audio file": ["b"],
                       "other DSP settings": ["b"], "a value where there was none": ["b"],
                       "a value moved to the next column": ["a", "b"]}


def test_with_audio_reads_mel_bytes_only_where_no_stored_embedding_matches_the_audio(spark):
    """A stored embedding is used when its content hash and DSP version are the track's current ones and
    the track has usable audio; a stale one (the audio file changed) or none at all means the mel bytes are
    read. When every candidate with audio has one (``complete``), the plan reads no spectrogram."""
    from hitcast.scoring.embeddings import AUDIO_EMBEDDINGS, found_embeddings, with_audio
    from hitcast.scoring.inputs import light_inputs

    features = spark.createDataFrame([(t, 1.0) for t in "abcd"], "track_id string, plays_7d double")
    spec = spark.createDataFrame([_spec_row("a", "ok", bytes(range(6))), _spec_row("b", "ok", bytes(6)),
                                  _spec_row("c", "too_short", bytes(6)), _spec_row("d", "ok", bytes([7] * 6))],
                                 SPECTROGRAMS)
    stored = spark.createDataFrame([("m1", "a", "h", "v1", "aa", b"\x01"), ("m1", "b", "old", "v1", "bb", b"\x02"),
                                    ("m1", "c", "h", "v1", "cc", b"\x03")], AUDIO_EMBEDDINGS)
    light = light_inputs(features, spec)
    row = Row("track_id", "status", "mel", "mel_hash", "embedding")
    want = [row("a", "ok", None, "aa", bytearray(b"\x01")),      # same audio: the stored embedding
            row("b", "ok", bytearray(6), None, None),            # the audio changed: its bytes
            row("c", "too_short", None, None, None),             # no usable audio: neither
            row("d", "ok", bytearray([7] * 6), None, None)]      # never encoded: its bytes
    for broadcast in (True, False):
        found = found_embeddings(light, stored, broadcast=broadcast)
        assert sorted(r.track_id for r in found.collect()) == ["a"]
        out = with_audio(light, spec, found, broadcast=broadcast)
        assert out.columns == light.columns + ["mel", "n_mels", "n_frames", "mel_hash", "embedding"]
        assertDataFrameEqual(out.select(*row), want)
        # No candidate needs its mel bytes (a has its embedding, c no usable audio): found has a row for
        # every candidate with status ok, and then the plan does not read the spectrograms at all.
        some = light.where(F.col("track_id").isin("a", "c"))
        found = found_embeddings(some, stored, broadcast=broadcast)
        complete = found.count() == some.where(F.col("status") == "ok").count()
        assert complete
        marked = spec.withColumn("mel", F.expr("cast('spectrogram-scan-7f3a' as binary)"))
        for known in (True, False):
            out = with_audio(some, marked, found, broadcast=broadcast, complete=known)
            assert out.columns == light.columns + ["mel", "n_mels", "n_frames", "mel_hash", "embedding"]
            assertDataFrameEqual(out.select(*row), [want[0], want[2]])
            plan = out._jdf.queryExecution().analyzed().toString()
            assert ("spectrogram-scan-7f3a" in plan) == (not known)
    assertDataFrameEqual(with_audio(light, spec, None, broadcast=True).select(*row),
                         [row("a", "ok", bytearray(range(6)), None, None), row("b", "ok", bytearray(6), None, None),
                          row("c", "too_short", None, None, None), row("d", "ok", bytearray([7] * 6), None, None)])
