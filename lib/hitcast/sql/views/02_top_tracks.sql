-- The champion's ${top_n} highest-scoring tracks of each genre (genre_rank 1 is the best; ties by track_id).
-- requires: predictions_current
SELECT genre, genre_rank, track_id, title, artist_name, release_date, hit_probability, popularity_score,
       predicted_hit, mode, reasons, as_of
FROM (SELECT *, row_number() OVER (PARTITION BY genre ORDER BY hit_probability DESC, track_id) AS genre_rank
      FROM ${views_db}.predictions_current)
WHERE genre_rank <= ${top_n}
