-- Theazo's first schema. Times are integer microseconds since the Unix epoch (UTC).

CREATE TABLE projects (
    project_id  TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,          -- SHA-256 of the key; the key itself is never stored
    project_id  TEXT NOT NULL REFERENCES projects (project_id),
    hint        TEXT NOT NULL,             -- prefix and last four characters, for humans
    created_at  INTEGER NOT NULL
);

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (project_id),
    user_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    max_running   INTEGER CHECK (max_running >= 0),   -- null: the server's default
    max_queued    INTEGER CHECK (max_queued >= 0),    -- null: the server's default
    budget        INTEGER CHECK (budget >= 0),        -- minor units; null: no budget
    task_count    INTEGER NOT NULL DEFAULT 0,
    queued_count  INTEGER NOT NULL DEFAULT 0 CHECK (queued_count >= 0),
    running_count INTEGER NOT NULL DEFAULT 0 CHECK (running_count >= 0),
    spent_micros  INTEGER NOT NULL DEFAULT 0,         -- exact: finished tasks + running charges
    billed_amount INTEGER NOT NULL DEFAULT 0, event_seq INTEGER NOT NULL DEFAULT 0, tokens_input INTEGER NOT NULL DEFAULT 0, tokens_output INTEGER NOT NULL DEFAULT 0, tokens_cached INTEGER NOT NULL DEFAULT 0, -- sum of finished tasks' rounded costs
    UNIQUE (project_id, user_id)
);

-- The last fair-share key given to each session in each priority (see store/base.py).
CREATE TABLE session_clocks (
    session_id  TEXT NOT NULL REFERENCES sessions (session_id),
    priority    INTEGER NOT NULL,
    last_key    INTEGER NOT NULL,
    PRIMARY KEY (session_id, priority)
);
CREATE INDEX session_clocks_highest ON session_clocks (priority, last_key);

CREATE TABLE tasks (
    id                    INTEGER PRIMARY KEY,   -- monotonic: the FIFO tiebreak
    task_id               TEXT NOT NULL UNIQUE,
    project_id            TEXT NOT NULL,
    session_id            TEXT NOT NULL REFERENCES sessions (session_id),
    user_id               TEXT NOT NULL,
    agent                 TEXT NOT NULL,
    status                TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    priority              INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
    fair_key              INTEGER NOT NULL,
    input                 TEXT NOT NULL,         -- JSON
    progress              REAL CHECK (progress BETWEEN 0 AND 1),
    message               TEXT,
    output                TEXT,                  -- JSON
    error_code            TEXT,
    error_message         TEXT,
    compute_micros        INTEGER NOT NULL DEFAULT 0,
    charged_micros        INTEGER NOT NULL DEFAULT 0,
    compute_price_micros  INTEGER NOT NULL DEFAULT 0,
    webhook_url           TEXT,
    webhook_events        TEXT NOT NULL DEFAULT '["completed"]',
    metadata              TEXT NOT NULL DEFAULT '{}',
    timeout_ms            INTEGER NOT NULL,
    attempt               INTEGER NOT NULL DEFAULT 0,
    max_attempts          INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    idempotency_key       TEXT,
    created_at            INTEGER NOT NULL,
    started_at            INTEGER,
    finished_at           INTEGER,
    worker_id             TEXT,
    lease_expires_at      INTEGER, event_seq INTEGER NOT NULL DEFAULT 0, log_bytes INTEGER NOT NULL DEFAULT 0, usage TEXT, net_sent_bytes INTEGER NOT NULL DEFAULT 0, net_received_bytes INTEGER NOT NULL DEFAULT 0, net_connections INTEGER NOT NULL DEFAULT 0,
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'running' OR (started_at IS NOT NULL AND lease_expires_at IS NOT NULL
                                   AND worker_id IS NOT NULL)),
    CHECK (attempt <= max_attempts),
    CHECK ((status = 'failed') = (error_code IS NOT NULL))
);
-- The claim walks this, in order; it holds only queued tasks, so it stays small however
-- many finished tasks accumulate.
CREATE INDEX tasks_claim ON tasks (priority, fair_key, id) WHERE status = 'queued';
CREATE INDEX tasks_session_newest ON tasks (session_id, id);
CREATE INDEX tasks_project_newest ON tasks (project_id, id);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE status = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

-- Each node's lease: it holds its running tasks while lease_expires_at is ahead (renewed
-- every tenth of a lease); the rescuer takes the running tasks of a node whose lease passed.
CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL DEFAULT 0, slots INTEGER
);

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

-- Events: what the task and session streams send (api/streams.py), kept so a client can
-- resume after any id, on any node. ``seq`` counts a task's events (tasks.event_seq holds the
-- last one given) and ``session_seq`` the session's status and progress events
-- (sessions.event_seq); each is given under its row's lock, so both commit in order. Logs
-- are events too. They go with their task.
CREATE TABLE task_events (
    task_pk      INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    session_id   TEXT NOT NULL,
    session_seq  INTEGER,                -- null: not in the session stream (log, charge, end)
    kind         TEXT NOT NULL CHECK (kind IN ('status', 'progress', 'log', 'charge', 'end')),
    data         TEXT NOT NULL,          -- JSON
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (task_pk, seq)
);
CREATE UNIQUE INDEX task_events_session ON task_events (session_id, session_seq)
    WHERE session_seq IS NOT NULL;

-- Secrets of the deployment itself, made on first use (stream tokens are signed with one).
CREATE TABLE deployment_secrets (
    name        TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
