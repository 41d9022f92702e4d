-- Every model version with its role (candidate, champion, ablation, archived) and its test-split figures: the
-- latest ones jobs/promote.py measured for it (as the candidate or as the champion it was compared with), else
-- the ones jobs/evaluate.py recorded (models.test_metrics: ablations included; NULL for a version never
-- tested), then its validation ROC-AUC and F1 from training. Ranked by test ROC-AUC.
-- requires: models, model_promotions
WITH tested AS (
    SELECT model_version, promoted_at AS tested_at, test_rows, candidate_roc_auc AS roc_auc, candidate_f1 AS f1,
           candidate_threshold AS threshold
    FROM ${tables_db}.model_promotions
    UNION ALL
    SELECT previous_champion, promoted_at, test_rows, champion_roc_auc, champion_f1, champion_threshold
    FROM ${tables_db}.model_promotions WHERE previous_champion IS NOT NULL),
latest AS (
    SELECT model_version, max_by(struct(tested_at, test_rows, roc_auc, f1, threshold), tested_at) AS t
    FROM tested GROUP BY model_version)
SELECT row_number() OVER (ORDER BY COALESCE(l.t.roc_auc, CAST(get_json_object(m.test_metrics, '$$.roc_auc')
           AS DOUBLE)) DESC NULLS LAST, m.created_at DESC, m.model_version)
           AS leaderboard_rank,
       m.model_version, m.variant, m.role, m.role_reason, m.created_at, m.role_changed_at,
       COALESCE(l.t.roc_auc, CAST(get_json_object(m.test_metrics, '$$.roc_auc') AS DOUBLE)) AS test_roc_auc,
       COALESCE(l.t.f1, CAST(get_json_object(m.test_metrics, '$$.f1') AS DOUBLE)) AS test_f1,
       COALESCE(l.t.threshold, CAST(get_json_object(m.test_metrics, '$$.threshold') AS DOUBLE)) AS threshold,
       COALESCE(l.t.test_rows, CAST(get_json_object(m.test_metrics, '$$.rows') AS BIGINT)) AS test_rows,
       COALESCE(l.t.tested_at, CAST(get_json_object(m.test_metrics, '$$.evaluated_at') AS TIMESTAMP)) AS tested_at,
       CAST(get_json_object(m.metrics, '$$.validation.val_auc') AS DOUBLE) AS validation_roc_auc,
       CAST(get_json_object(m.metrics, '$$.validation.val_f1') AS DOUBLE) AS validation_f1
FROM ${tables_db}.models m
LEFT JOIN latest l ON l.model_version = m.model_version
