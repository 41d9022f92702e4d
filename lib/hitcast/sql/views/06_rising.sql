-- The champion's tracks whose hit probability rose between its last two scoring runs that changed any score,
-- largest rise first (from score_history, i.e. the change data feed of predictions).
-- requires: score_history, predictions_current, models
WITH history AS (
    SELECT h.* FROM ${views_db}.score_history h
    JOIN ${tables_db}.models m ON m.model_version = h.model_version AND m.role = 'champion'),
runs AS (
    SELECT run_id, table_version, row_number() OVER (ORDER BY table_version DESC) AS recency
    FROM (SELECT run_id, max(table_version) AS table_version FROM history GROUP BY run_id)),
before AS (
    SELECT track_id, max_by(struct(hit_probability, as_of, run_id), table_version) AS p
    FROM history
    WHERE table_version <= (SELECT max(table_version) FROM runs WHERE recency = 2)
    GROUP BY track_id)
SELECT row_number() OVER (ORDER BY c.hit_probability - b.p.hit_probability DESC, c.track_id) AS rise_rank,
       c.track_id, c.title, c.artist_name, c.genre,
       b.p.hit_probability AS previous_probability, c.hit_probability,
       c.hit_probability - b.p.hit_probability AS rise,
       b.p.as_of AS previous_as_of, c.as_of, b.p.run_id AS previous_run_id, c.run_id, c.mode, c.reasons
FROM ${views_db}.predictions_current c
JOIN before b ON b.track_id = c.track_id
WHERE c.hit_probability > b.p.hit_probability
