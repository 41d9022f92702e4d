-- The champion model's latest score for every catalog track, with the track's catalog metadata.
-- One row per track: hit_probability, popularity_score, predicted_hit, mode (full, cold_start or no_audio),
-- audio_status, reasons (the top inputs behind the score, each with its signed effect on the probability),
-- as_of (the features used events strictly before this date), run_id and scored_at.
-- requires: predictions, models, catalog
SELECT p.track_id, c.title, c.artist_name, c.genre, c.release_date,
       p.model_version, p.hit_probability, p.popularity_score, p.predicted_hit, p.mode, p.audio_status,
       p.reasons, p.as_of, p.run_id, p.scored_at
FROM ${tables_db}.predictions p
JOIN ${tables_db}.models m ON m.model_version = p.model_version AND m.role = 'champion'
LEFT JOIN ${tables_db}.catalog c ON c.track_id = p.track_id
