-- Theazo's first schema on PostgreSQL. Tables go in the connection's current schema
-- (set search_path in the URL to keep several deployments or test runs apart).

CREATE TABLE projects (
    project_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL
);

CREATE TABLE api_keys (
    key_hash    text PRIMARY KEY,          -- SHA-256 of the key; the key itself is never stored
    project_id  text NOT NULL REFERENCES projects (project_id),
    hint        text NOT NULL,             -- prefix and last four characters, for humans
    created_at  timestamptz NOT NULL
);

CREATE TABLE sessions (
    session_id    text PRIMARY KEY,
    project_id    text NOT NULL REFERENCES projects (project_id),
    user_id       text NOT NULL,
    created_at    timestamptz NOT NULL,
    max_running   integer CHECK (max_running >= 0),   -- null: the server's default
    max_queued    integer CHECK (max_queued >= 0),    -- null: the server's default
    budget        bigint CHECK (budget >= 0),         -- minor units; null: no budget
    task_count    bigint NOT NULL DEFAULT 0,
    queued_count  integer NOT NULL DEFAULT 0 CHECK (queued_count >= 0),
    running_count integer NOT NULL DEFAULT 0 CHECK (running_count >= 0),
    spent_micros  bigint NOT NULL DEFAULT 0,          -- exact: finished tasks + running charges
    billed_amount bigint NOT NULL DEFAULT 0,          -- sum of finished tasks' rounded costs
    event_seq     bigint NOT NULL DEFAULT 0,          -- the last id of its event stream
    tokens_input  bigint NOT NULL DEFAULT 0,          -- model tokens (the gateway's metering)
    tokens_output bigint NOT NULL DEFAULT 0,
    tokens_cached bigint NOT NULL DEFAULT 0,
    UNIQUE (project_id, user_id)
);

-- The last fair-share key given to each session in each priority (see store/base.py).
CREATE TABLE session_clocks (
    session_id  text NOT NULL REFERENCES sessions (session_id),
    priority    smallint NOT NULL,
    last_key    bigint NOT NULL,
    PRIMARY KEY (session_id, priority)
);
CREATE INDEX session_clocks_highest ON session_clocks (priority, last_key);

CREATE TABLE tasks (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id               text NOT NULL UNIQUE,
    project_id            text NOT NULL,
    session_id            text NOT NULL REFERENCES sessions (session_id),
    user_id               text NOT NULL,
    agent                 text NOT NULL,
    status                text NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    priority              smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
    fair_key              bigint NOT NULL,
    input                 json NOT NULL,          -- json, not jsonb: kept exactly as sent
    progress              double precision CHECK (progress BETWEEN 0 AND 1),
    message               text,
    output                json,
    error_code            text,
    error_message         text,
    compute_micros        bigint NOT NULL DEFAULT 0,
    charged_micros        bigint NOT NULL DEFAULT 0,
    compute_price_micros  bigint NOT NULL DEFAULT 0,
    webhook_url           text,
    webhook_events        json NOT NULL DEFAULT '["completed"]',
    metadata              json NOT NULL DEFAULT '{}',
    timeout_ms            bigint NOT NULL,
    attempt               integer NOT NULL DEFAULT 0,
    max_attempts          integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    idempotency_key       text,
    created_at            timestamptz NOT NULL,
    started_at            timestamptz,
    finished_at           timestamptz,
    worker_id             text,
    lease_expires_at      timestamptz,
    event_seq             bigint NOT NULL DEFAULT 0,  -- the last id of its event stream
    log_bytes             bigint NOT NULL DEFAULT 0,  -- what its log holds, for the cap
    usage                 json,                       -- model tokens by model; null: none
    net_sent_bytes        bigint NOT NULL DEFAULT 0,  -- its egress, over all its attempts
    net_received_bytes    bigint NOT NULL DEFAULT 0,
    net_connections       bigint NOT NULL DEFAULT 0,
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
CREATE INDEX tasks_session_status ON tasks (session_id, status, id);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE status = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

-- Each node's lease: it holds its running tasks while lease_expires_at is ahead (renewed
-- every tenth of a lease); the rescuer takes the running tasks of a node whose lease passed.
CREATE TABLE workers (
    worker_id     text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL,
    lease_expires_at timestamptz NOT NULL,
    slots         integer            -- tasks it runs at once; null: a node that did not say
);

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

-- Events: what the task and session streams send (api/streams.py), kept so a client can
-- resume after any id, on any node. ``seq`` counts a task's events (tasks.event_seq holds the
-- last one given) and ``session_seq`` the session's status and progress events
-- (sessions.event_seq); each is given under its row's lock, so both commit in order. Logs
-- are events too. They go with their task.
CREATE TABLE task_events (
    task_pk      bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    session_id   text NOT NULL,
    session_seq  bigint,                 -- null: not in the session stream (log, charge, end)
    kind         text NOT NULL CHECK (kind IN ('status', 'progress', 'log', 'charge', 'end')),
    data         json NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (task_pk, seq)
);
CREATE UNIQUE INDEX task_events_session ON task_events (session_id, session_seq)
    WHERE session_seq IS NOT NULL;

-- Secrets of the deployment itself, made on first use (stream tokens are signed with one).
CREATE TABLE deployment_secrets (
    name        text PRIMARY KEY,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- The model gateway's per-session rate windows, shared by every node: what a session's model
-- calls did in each bucket (a second) of the last minute. Buckets older than a minute are
-- deleted by the nodes that count calls (store.count_model_call).
CREATE TABLE model_call_rates (
    session_id  text NOT NULL,
    bucket      bigint NOT NULL,            -- seconds since the epoch / the bucket's length
    requests    integer NOT NULL DEFAULT 0,
    tokens      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, bucket)
);
CREATE INDEX model_call_rates_bucket ON model_call_rates (bucket);
