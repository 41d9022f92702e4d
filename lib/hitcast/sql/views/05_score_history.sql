-- Every score a model gave a track, one row per scoring run that changed it, from the change data feed of
-- predictions (kept score.history_days days): table_version and committed_at say when it was written.
-- requires: predictions
SELECT track_id, model_version, hit_probability, popularity_score, predicted_hit, mode, audio_status, as_of,
       run_id, scored_at, _commit_version AS table_version, _commit_timestamp AS committed_at
FROM table_changes('${tables_db}.predictions', '1970-01-01 00:00:00')
WHERE _change_type IN ('insert', 'update_postimage')
