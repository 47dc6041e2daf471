-- Validation history is kept for LATAM_QUALITY_HISTORY_DAYS: each recorded validation deletes the
-- expired ones, whose check evaluations go with them (ON DELETE CASCADE, served by this index).
CREATE INDEX check_evaluation_validation_idx ON quality.check_evaluation (validation_id);
CREATE INDEX validation_time_idx ON quality.validation (evaluated_at);
