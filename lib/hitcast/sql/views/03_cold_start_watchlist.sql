-- Unreleased and brand-new tracks, scored from audio and metadata alone (mode = cold_start: no engagement before
-- as_of), best first. unreleased: the release date is on or after as_of.
-- requires: predictions_current
SELECT row_number() OVER (ORDER BY hit_probability DESC, track_id) AS watch_rank,
       track_id, title, artist_name, genre, release_date, release_date >= as_of AS unreleased,
       hit_probability, popularity_score, predicted_hit, audio_status, reasons, as_of
FROM ${views_db}.predictions_current
WHERE mode = 'cold_start'
