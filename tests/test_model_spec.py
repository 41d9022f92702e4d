"""One model spec: a model with an extra input group (a 3-column ``lyrics`` table keyed by ``track_id``) is
trained, scored incrementally and explained from the spec alone; changing only that group's source rescores
exactly the tracks it changed. A spec that disagrees with the network, or names an unknown group, fails
naming the group."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F

from helpers import N_FRAMES, N_MELS, TINY_TRAIN, make_config, synth_frames
from hitcast.errors import ConfigError
from hitcast.model.bundle import load_bundle
from hitcast.model.spec import DEFAULT_SPEC, SPEC_FILE, InputGroup, ModelSpec, SpecError
from hitcast.model.training import train_model
from hitcast.scoring.inputs import light_inputs, with_group_sources, with_mel, with_mode, with_source_hash
from hitcast.scoring.stage import ensure_predictions_table, score_into
from hitcast.tables import fingerprint

LYRICS = InputGroup("lyrics", "numeric", "lyrics", columns=("lyr_words", "lyr_rhyme", "lyr_repeat"))
SPEC = DEFAULT_SPEC.with_group(LYRICS)
AS_OF = dt.date(2025, 9, 1)
#: The tracks whose lyrics row the second run changes (t004 had none: it gains one).
CHANGED = {"t002", "t007", "t004"}


def lyrics_rows(changed: bool) -> list[tuple]:
    """``lyrics`` rows: every track but each fourth; ``changed`` alters three tracks' rows."""
    rows = {f"t{t:03d}": (float(100 + 7 * t), float((t % 5) / 5), float(t % 3)) for t in range(40) if t % 4}
    if changed:
        rows["t002"] = (rows["t002"][0] + 40.0, *rows["t002"][1:])
        rows["t007"] = (*rows["t007"][:2], 9.0)
        rows["t004"] = (150.0, 0.5, 1.0)
    return [(tid, *values) for tid, values in sorted(rows.items())]


def write_lyrics(spark, cfg, *, changed: bool):
    schema = "track_id string, lyr_words double, lyr_rhyme double, lyr_repeat double"
    spark.createDataFrame(lyrics_rows(changed), schema).write.format("delta").mode("overwrite").save(cfg.table("lyrics"))
    return spark.read.format("delta").load(cfg.table("lyrics"))


def scores(spark, location: str) -> dict[str, tuple]:
    return {r.track_id: (r.hit_probability, r.run_id, r.input_hash, r.reasons)
            for r in spark.read.format("delta").load(location).collect()}


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spec")
    cfg = make_config(tmp, *TINY_TRAIN, "train.epochs=1", "train.workers=1")   # one worker: CI time
    examples, spectrograms = synth_frames(spark, 40)
    lyrics = write_lyrics(spark, cfg, changed=False)
    inputs = {"training_examples": {"fingerprint": fingerprint(examples)},
              "spectrograms": {"fingerprint": fingerprint(spectrograms, ["computed_at"])}}
    out = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, spec=SPEC,
                      sources={"lyrics": lyrics})
    features = examples.where(F.col("cutoff") == AS_OF).drop("split", "future_plays", "popularity", "is_hit")
    location = ensure_predictions_table(spark, cfg)

    def run(run_id: str, lyrics_df):
        rows = (light_inputs(features, spectrograms).transform(lambda df: with_group_sources(df, SPEC, {"lyrics": lyrics_df}))
                .transform(lambda df: with_mode(df, uses_audio=True)))
        return score_into(spark, rows, spectrograms=spectrograms, location=location, model_version=out.version,
                          model_path=str(out.path), as_of=AS_OF, run_id=run_id, scored_at=dt.datetime(2025, 9, 1),
                          reasons=10, full=False, staging=str(tmp / "staging"), broadcast_rows=1000,
                          embeddings=cfg.table("audio_embeddings"))

    first = run("r1", lyrics)
    before = scores(spark, location)
    second = run("r2", write_lyrics(spark, cfg, changed=True))
    after = scores(spark, location)
    return dict(cfg=cfg, out=out, features=features, spectrograms=spectrograms, first=first, second=second,
                before=before, after=after)


def test_the_spec_is_saved_with_the_model_and_read_back(pipeline):
    out = pipeline["out"]
    assert (out.path / SPEC_FILE).is_file()
    bundle = load_bundle(out.path)
    assert bundle.spec == SPEC and bundle.spec.names == ["tabular", "audio", "lyrics"]
    assert bundle.spec.input_names() == ["tabular", "mel", "has_audio", "lyrics"]
    assert sorted(bundle.model.input) == ["has_audio", "lyrics", "mel", "tabular"]
    assert bundle.model.input["lyrics"].shape[-1] == 6                    # 3 values + 3 missing indicators
    assert bundle.stats.groups["lyrics"]["columns"] == list(LYRICS.columns)


def test_changing_only_the_groups_source_rescores_exactly_those_tracks(pipeline):
    first, second, before, after = pipeline["first"], pipeline["second"], pipeline["before"], pipeline["after"]
    assert (first.tracks, first.rescored) == (40, 40) and {v[1] for v in before.values()} == {"r1"}
    assert (second.tracks, second.sent, second.rescored, second.skipped) == (40, 3, 3, 37)
    assert {t for t, v in after.items() if v[1] == "r2"} == CHANGED
    for t in sorted(set(before) - CHANGED):
        assert after[t][:3] == before[t][:3], t                           # same score, run and input hash
    for t in CHANGED:
        assert after[t][2] != before[t][2] and after[t][0] != before[t][0], t


def test_scores_and_reasons_follow_the_new_group(spark, pipeline):
    """Every score equals the bundle's on the same inputs (with the new lyrics), every track's reasons
    include ``lyrics``, and neutralising the lyrics moves the score by its stated contribution."""
    cfg, out, after = pipeline["cfg"], pipeline["out"], pipeline["after"]
    lyrics = spark.read.format("delta").load(cfg.table("lyrics"))
    rows = (with_mel(light_inputs(pipeline["features"], pipeline["spectrograms"]), pipeline["spectrograms"],
                     broadcast=False)
            .transform(lambda df: with_group_sources(df, SPEC, {"lyrics": lyrics}))
            .toPandas().set_index("track_id").sort_index())
    bundle = load_bundle(out.path)
    p = bundle.predict_pandas(rows)["hit_probability"]
    np.testing.assert_allclose([after[t][0] for t in rows.index], p.to_numpy(), atol=1e-5)
    labels = {r["input"] for t in after for r in after[t][3]}
    assert labels == {"audio", "genre", "lyrics", "listening in the last 7 days", "listening in the last 28 days",
                      "track metadata", "release age"}
    for t in sorted(CHANGED):
        stated = {r["input"]: r["contribution"] for r in after[t][3]}["lyrics"]
        blank = rows.loc[[t]].assign(lyr_words=np.nan, lyr_rhyme=np.nan, lyr_repeat=np.nan)
        moved = p.loc[t] - bundle.predict_pandas(blank)["hit_probability"].iloc[0]
        assert moved == pytest.approx(stated, abs=1e-5), t


def test_scoring_inputs_without_a_groups_columns_fail_naming_the_group(spark, pipeline):
    rows = with_mode(light_inputs(pipeline["features"], pipeline["spectrograms"]), uses_audio=True)
    with pytest.raises(SpecError, match="input group 'lyrics': its source column.*lyr_words, lyr_rhyme, lyr_repeat"):
        with_source_hash(rows, SPEC)
    with pytest.raises(SpecError, match="input group 'lyrics': no rows of its source table 'lyrics'"):
        with_group_sources(rows, SPEC, {})


def test_a_spec_that_disagrees_with_the_network_fails_naming_the_group():
    from hitcast.model.architecture import build_model
    from hitcast.model.explain import split_model

    small = dict(tabular_width=10, n_mels=N_MELS, n_frames=N_FRAMES, conv_filters=[4], dense_units=8, kernel_size=3)
    model = build_model(spec=SPEC, **small)
    split = split_model(model, SPEC)                        # the spec the network was built from: fine
    assert sorted(split.head.input) == ["emb_0", "has_audio", "lyrics", "tabular"]
    narrower = DEFAULT_SPEC.with_group(dataclasses.replace(LYRICS, columns=("lyr_words", "lyr_rhyme"),
                                                           identity=()))
    with pytest.raises(SpecError, match=r"input group 'lyrics': the network's input 'lyrics' has width 6"):
        split_model(model, narrower)
    mood = DEFAULT_SPEC.with_group(InputGroup("mood", "numeric", "moods", columns=("a", "b", "c")))
    with pytest.raises(SpecError, match="input group 'mood': the network has no input 'mood'"):
        split_model(model, mood)
    with pytest.raises(SpecError, match="input\\(s\\) lyrics that no input group of the spec declares"):
        split_model(model, DEFAULT_SPEC)
    # the same inputs, but the layer names of another kind of branch: the split disagrees with the network
    renamed = build_model(spec=DEFAULT_SPEC.with_group(dataclasses.replace(LYRICS, name="words")), **small)
    assert "words_dense" in {layer.name for layer in renamed.layers}
    with pytest.raises(SpecError, match="input group 'lyrics': the network has no input 'lyrics'"):
        split_model(renamed, SPEC)


def test_an_unknown_group_or_variant_fails_naming_it():
    with pytest.raises(SpecError, match="unknown input group 'mood' \\(the spec has tabular, audio, lyrics\\)"):
        SPEC.group("mood")
    with pytest.raises(ConfigError, match="train.variant must be one of fused, tabular, audio, lyrics, got 'mood'"):
        SPEC.for_variant("mood")
    with pytest.raises(SpecError, match="input group 'lyrics' appears twice"):
        SPEC.with_group(LYRICS)
    with pytest.raises(SpecError, match="input group 'x': kind must be one of tabular, audio, numeric"):
        InputGroup("x", "video", "clips")
    assert SPEC.for_variant("lyrics") == ModelSpec((LYRICS,), "lyrics")
    assert ModelSpec.from_dict(SPEC.to_dict()) == SPEC
