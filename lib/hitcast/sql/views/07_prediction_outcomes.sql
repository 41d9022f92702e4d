-- Past predictions whose label window [as_of, as_of + ${horizon_days} days) has passed, beside what happened:
-- future_plays in the window, and the outcome as the features job labels it (outcome_popularity: percentile of
-- future plays among the tracks released before as_of + ${cold_start_days} days; outcome_hit: its top ${hit_share}).
-- One row per (track, model, as_of): the last score given as of that date. For calibration plots.
-- requires: score_history, catalog, engagement_events
WITH last_day AS (
    SELECT to_date(max(event_time)) AS day FROM delta.`${events_location}`),
scored AS (
    SELECT track_id, model_version, as_of,
           max_by(struct(hit_probability, predicted_hit, mode, run_id), table_version) AS p
    FROM ${views_db}.score_history
    WHERE date_add(as_of, ${horizon_days}) <= date_add((SELECT day FROM last_day), 1)
    GROUP BY track_id, model_version, as_of),
cohort AS (
    SELECT DISTINCT s.track_id, s.as_of
    FROM scored s JOIN ${tables_db}.catalog c ON c.track_id = s.track_id
    WHERE c.release_date < date_add(s.as_of, ${cold_start_days})),
plays AS (
    SELECT k.track_id, k.as_of, count(e.track_id) AS future_plays
    FROM cohort k
    LEFT JOIN (SELECT track_id, event_time FROM delta.`${events_location}` WHERE event_type = 'play') e
      ON e.track_id = k.track_id AND e.event_time >= CAST(k.as_of AS TIMESTAMP)
     AND e.event_time < CAST(date_add(k.as_of, ${horizon_days}) AS TIMESTAMP)
    GROUP BY k.track_id, k.as_of),
outcomes AS (
    SELECT track_id, as_of, future_plays,
           percent_rank() OVER (PARTITION BY as_of ORDER BY future_plays) AS pr
    FROM plays)
SELECT s.track_id, s.model_version, s.as_of, date_add(s.as_of, ${horizon_days}) AS window_end,
       s.p.hit_probability AS hit_probability, s.p.predicted_hit AS predicted_hit, s.p.mode AS mode,
       s.p.run_id AS run_id, o.future_plays, 100.0 * o.pr AS outcome_popularity,
       o.pr >= 1.0 - ${hit_share} - 1e-9 AS outcome_hit
FROM scored s
JOIN outcomes o ON o.track_id = s.track_id AND o.as_of = s.as_of
