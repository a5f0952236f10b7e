-- Task and session event streams, task logs, stream tokens (see schema.sql).
ALTER TABLE tasks ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

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
