-- Webhooks: each project's signing secrets, and a durable outbox of deliveries written in
-- the same transaction as the task event they announce.

CREATE TABLE webhook_secrets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (project_id),
    secret      text NOT NULL,             -- whsec_…: needed to sign, so kept as is
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz                    -- null: the current secret; set: rotated out
);
CREATE INDEX webhook_secrets_project ON webhook_secrets (project_id, id);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       text NOT NULL UNIQUE,  -- the webhook-id header, the same on every retry
    project_id       text NOT NULL,
    session_id       text NOT NULL,
    task_id          text NOT NULL,
    event            text NOT NULL CHECK (event IN ('completed', 'started', 'progress')),
    url              text NOT NULL,
    payload          json NOT NULL,         -- JSON, fixed when the event happened
    status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,               -- when pending: due time, or a sender's lease
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id, id);

CREATE TABLE webhook_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at    timestamptz NOT NULL,
    duration_ms     bigint NOT NULL,
    http_status     integer,                -- null when no answer came
    error           text,                   -- why it failed, when it did
    response_body   text                    -- the start of the answer, for debugging
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
