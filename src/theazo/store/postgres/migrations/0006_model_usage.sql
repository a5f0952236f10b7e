-- Model tokens (the model gateway's metering): a task's by model, as JSON
-- ({model: {input, output, cached}}; null: none), and a session's sums.
ALTER TABLE tasks ADD COLUMN usage json;
ALTER TABLE sessions ADD COLUMN tokens_input bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tokens_output bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tokens_cached bigint NOT NULL DEFAULT 0;
