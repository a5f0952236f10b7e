-- Model tokens (the model gateway's metering): a task's by model, as JSON
-- ({model: {input, output, cached}}; null: none), and a session's sums.
ALTER TABLE tasks ADD COLUMN usage TEXT;
ALTER TABLE sessions ADD COLUMN tokens_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tokens_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;
