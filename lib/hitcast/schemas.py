"""Schemas of every Delta table hitcast writes: the contracts between stages.

Each stage reads the tables before it only through the columns listed here. Tables live under
``paths.warehouse`` (``Config.table(name)``).

========================  =========================================  ==========================
table                     key                                        written by
========================  =========================================  ==========================
``catalog``               ``track_id``                               ``jobs/ingest.py``
``engagement_events``     ``event_id``                               ``jobs/ingest.py``
``engagement_daily``      ``(track_id, event_date)``                 ``jobs/ingest.py`` (from the events)
``quarantine``            ``(source, source_file, record_hash, reason)`` ``jobs/ingest.py``
``track_aliases``         ``(alias_kind, alias)``                    ``jobs/ingest.py``
``training_examples``     ``(track_id, cutoff)``                     ``jobs/features.py``
``spectrograms``          ``track_id``                               ``jobs/spectrograms.py``
``models``                ``model_version``                          ``jobs/train.py``, ``jobs/promote.py``
``model_promotions``      appended, one row per promotion            ``jobs/promote.py``
``predictions``           ``(track_id, model_version)``              ``jobs/score.py``
========================  =========================================  ==========================
"""
from __future__ import annotations

from pyspark.sql.types import (
    ArrayType, BinaryType, BooleanType, DateType, DoubleType, IntegerType, LongType, MapType, StringType,
    StructField, StructType, TimestampType,
)

#: Spotify-style audio features (optional in the input contract).
AUDIO_FEATURES: list[str] = [
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature",
]
#: Track structure from the Spotify hit-predictor data (optional in the input contract; not demo features).
TRACK_STRUCTURE: list[str] = ["chorus_hit", "sections"]

#: Columns a user's catalog must provide (after column mapping).
CATALOG_REQUIRED: list[str] = ["track_id", "artist_name", "release_date", "audio_path"]
CATALOG_OPTIONAL: list[str] = ["title", "artist_id", "album_id", "genre", "duration_ms", "explicit",
                               "updated_at", *AUDIO_FEATURES, *TRACK_STRUCTURE, "known_label", "isrc",
                               "spotify_uri", "mbid"]
#: Optional catalog input columns that identify a track (kept in ``track_aliases``, not in ``catalog``).
CATALOG_ID_COLUMNS: list[str] = ["isrc", "spotify_uri", "mbid"]

EVENT_TYPES: list[str] = ["play", "skip", "save", "playlist_add", "share"]

CATALOG = StructType([
    StructField("track_id", StringType(), False),
    StructField("title", StringType()),
    StructField("artist_id", StringType()),
    StructField("artist_name", StringType()),
    StructField("album_id", StringType()),
    StructField("genre", StringType()),
    StructField("release_date", DateType()),
    StructField("duration_ms", LongType()),
    StructField("explicit", BooleanType()),
    StructField("audio_path", StringType()),
    *[StructField(c, DoubleType()) for c in AUDIO_FEATURES],
    *[StructField(c, DoubleType()) for c in TRACK_STRUCTURE],
    StructField("known_label", IntegerType()),       # a label the source already carries (e.g. Billboard)
    StructField("updated_at", TimestampType()),
    StructField("source_file", StringType()),
    StructField("ingested_at", TimestampType()),
    StructField("record_hash", StringType()),        # sha256 of the contract columns (change detection)
    StructField("derived_from_logs", BooleanType()), # True: derived from the events (ingest.derive_catalog)
])

ENGAGEMENT_EVENTS = StructType([
    StructField("event_id", StringType(), False),
    StructField("user_id", StringType()),
    StructField("track_id", StringType()),
    StructField("event_type", StringType()),
    StructField("event_time", TimestampType()),
    StructField("ms_played", LongType()),
    StructField("known_track", BooleanType()),       # False: the catalog does not (yet) hold track_id
    StructField("event_date", DateType()),           # partition column
    StructField("source_file", StringType()),
    StructField("ingested_at", TimestampType()),
    StructField("source_track_id", StringType()),    # the track id as the source gave it (track_id: canonical)
])

#: Every identifier a source gives for a track -> its canonical ``track_id`` (:mod:`hitcast.ingest.identity`).
#: No user ids: the SQL endpoint serves it.
TRACK_ALIASES = StructType([
    StructField("alias_kind", StringType(), False),  # track_id | spotify_uri | isrc | mbid | key
    StructField("alias", StringType(), False),
    StructField("track_id", StringType(), False),    # canonical
    StructField("first_seen", TimestampType()),      # earliest event (or catalog ingest) that gave the alias
    StructField("source", StringType()),             # catalog | events (catalog if a catalog file gave it)
    StructField("updated_at", TimestampType()),      # the ingest that last set track_id
])

#: Daily per-track aggregates of ``engagement_events`` (:mod:`hitcast.features.daily`); every feature reads them.
ENGAGEMENT_DAILY = StructType([
    StructField("track_id", StringType(), False),
    StructField("event_date", DateType(), False),
    StructField("plays", LongType()),
    StructField("skips", LongType()),
    StructField("saves", LongType()),
    StructField("playlist_adds", LongType()),
    StructField("shares", LongType()),
    StructField("ms_played", LongType()),             # of the plays
    StructField("first_event", TimestampType()),
    StructField("listeners_sketch", BinaryType()),    # HyperLogLog sketch of user_id (hll_sketch_agg)
    StructField("events", LongType()),
])

QUARANTINE = StructType([
    StructField("source", StringType(), False),      # catalog | events
    StructField("source_file", StringType()),
    StructField("raw_record", StringType()),
    StructField("record_hash", StringType()),
    StructField("reason", StringType()),
    StructField("ingested_at", TimestampType()),
    StructField("detail", StringType()),             # e.g. the offending column (hitcast.ingest.reasons)
])

#: Label columns of ``training_examples`` (never model inputs).
LABEL_COLUMNS: list[str] = ["future_plays", "popularity", "is_hit"]
#: Identifying / bookkeeping columns of ``training_examples`` (never model inputs).
ID_COLUMNS: list[str] = ["track_id", "cutoff", "split", "artist_id", "artist_name", "genre", "release_date",
                         "cold_start"]
#: Categorical model inputs (one-hot encoded with the training split's vocabulary).
CATEGORICAL_FEATURES: list[str] = ["genre"]

SPECTROGRAMS = StructType([
    StructField("track_id", StringType(), False),
    StructField("audio_path", StringType()),
    StructField("content_hash", StringType()),       # sha256 of the audio bytes
    StructField("dsp_version", StringType()),        # hash of the DSP settings
    StructField("status", StringType()),             # ok | missing | empty | undecodable | too_short | ...
    StructField("error", StringType()),
    StructField("n_mels", IntegerType()),
    StructField("n_frames", IntegerType()),
    StructField("mel", BinaryType()),                # uint8, row-major (n_mels, n_frames); null unless ok
    StructField("db_offset", DoubleType()),          # dB = db_offset + db_scale * uint8
    StructField("db_scale", DoubleType()),
    StructField("duration_s", DoubleType()),         # of the source audio
    StructField("sample_rate", IntegerType()),       # of the source audio
    StructField("channels", IntegerType()),
    StructField("computed_at", TimestampType()),
])

#: One row per (track_id, model_version), MERGEd by catalog scoring (:mod:`hitcast.scoring`).
PREDICTIONS = StructType([
    StructField("track_id", StringType(), False),
    StructField("model_version", StringType(), False),
    StructField("hit_probability", DoubleType()),
    StructField("popularity_score", DoubleType()),
    StructField("predicted_hit", BooleanType()),      # hit_probability >= the model's validation threshold
    StructField("mode", StringType()),                # full | cold_start | no_audio
    StructField("audio_status", StringType()),        # the spectrogram's status, or no_spectrogram
    StructField("reasons", ArrayType(StructType([StructField("input", StringType()),
                                                 StructField("contribution", DoubleType())]))),
    StructField("input_hash", StringType()),          # hash of exactly what the model saw
    StructField("source_hash", StringType()),         # hash of what that input was made from (features, audio id)
    StructField("as_of", DateType()),
    StructField("run_id", StringType()),
    StructField("scored_at", TimestampType()),
])

#: One row per scoring run, appended (:mod:`hitcast.scoring.runlog`).
SCORING_RUNS = StructType([
    StructField("run_id", StringType(), False),
    StructField("model_version", StringType()),
    StructField("as_of", DateType()),
    StructField("full", BooleanType()),
    StructField("started_at", TimestampType()),
    StructField("ended_at", TimestampType()),
    StructField("input_versions", MapType(StringType(), LongType())),   # table -> Delta version read
    StructField("features_reused", BooleanType()),
    StructField("tracks", LongType()),
    StructField("rescored", LongType()),
    StructField("unchanged", LongType()),
    StructField("modes", MapType(StringType(), LongType())),            # rescored rows by mode
    StructField("score_quantiles", MapType(StringType(), DoubleType())),  # "p01" ... "p99" of the model's table
    StructField("score_histogram", ArrayType(LongType())),              # 10 equal-width bins over [0, 1]
    StructField("psi", DoubleType()),                                   # vs the previous run of the model
    StructField("note", StringType()),                                  # set when a later run logged this one
])

MODELS = StructType([
    StructField("model_version", StringType(), False),
    StructField("variant", StringType()),
    StructField("created_at", TimestampType()),
    StructField("path", StringType()),
    StructField("workers", IntegerType()),
    StructField("metrics", StringType()),            # JSON
    StructField("inputs", StringType()),             # JSON: Delta versions + content fingerprints
    StructField("config", StringType()),             # JSON
    StructField("role", StringType()),               # candidate | champion | ablation | archived (MODEL_ROLES)
    StructField("role_reason", StringType()),        # why it has that role (a promotion's figures, a --force reason)
    StructField("role_changed_at", TimestampType()),
    StructField("test_metrics", StringType()),       # JSON: the evaluation's test figures (NULL: not evaluated)
    StructField("mlflow_run_id", StringType()),      # the training run in MLflow
    StructField("mlflow_version", StringType()),     # the registered model version in MLflow
])

#: The roles a model version can have; exactly one version is the ``champion`` (what scoring uses).
MODEL_ROLES: list[str] = ["candidate", "champion", "ablation", "archived"]

#: One row per promotion, appended by ``jobs/promote.py`` (:mod:`hitcast.model.promote`): who made which
#: version the champion, why, and the test-split figures of both models.
MODEL_PROMOTIONS = StructType([
    StructField("promoted_at", TimestampType(), False),
    StructField("model_version", StringType(), False),
    StructField("previous_champion", StringType()),  # NULL for the first champion
    StructField("forced", BooleanType()),
    StructField("reason", StringType()),
    StructField("promoted_by", StringType()),        # the operating-system user
    StructField("test_rows", LongType()),
    StructField("candidate_roc_auc", DoubleType()),
    StructField("candidate_f1", DoubleType()),
    StructField("candidate_threshold", DoubleType()),
    StructField("champion_roc_auc", DoubleType()),
    StructField("champion_f1", DoubleType()),
    StructField("champion_threshold", DoubleType()),
])
