-- Webhooks: each project's signing secrets, and a durable outbox of deliveries written in
-- the same transaction as the task event they announce.

CREATE TABLE webhook_secrets (
    id          INTEGER PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (project_id),
    secret      TEXT NOT NULL,             -- whsec_…: needed to sign, so kept as is
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER                    -- null: the current secret; set: rotated out
);
CREATE INDEX webhook_secrets_project ON webhook_secrets (project_id, id);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    message_id       TEXT NOT NULL UNIQUE,  -- the webhook-id header, the same on every retry
    project_id       TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    event            TEXT NOT NULL CHECK (event IN ('completed', 'started', 'progress')),
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,         -- JSON, fixed when the event happened
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,               -- when pending: due time, or a sender's lease
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id, id);

CREATE TABLE webhook_attempts (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at    INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    http_status     INTEGER,                -- null when no answer came
    error           TEXT,                   -- why it failed, when it did
    response_body   TEXT                    -- the start of the answer, for debugging
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
