-- Named queries of the SQLite store. Parameters are :named; times are integer microseconds.

-- name: insert_project
INSERT INTO projects (project_id, created_at) VALUES (:project_id, :now);

-- name: project_exists
SELECT 1 FROM projects WHERE project_id = :project_id;

-- name: insert_api_key
INSERT INTO api_keys (key_hash, project_id, hint, created_at)
VALUES (:key_hash, :project_id, :hint, :now);

-- name: key_by_hash
SELECT project_id, key_hash FROM api_keys WHERE key_hash = :key_hash;

-- name: count_api_keys
SELECT count(*) AS count FROM api_keys;

-- name: insert_session
INSERT INTO sessions (session_id, project_id, user_id, created_at)
VALUES (:session_id, :project_id, :user_id, :now)
ON CONFLICT (project_id, user_id) DO NOTHING;

-- name: session_by_user
SELECT * FROM sessions WHERE project_id = :project_id AND user_id = :user_id;

-- name: session_by_id
SELECT * FROM sessions WHERE session_id = :session_id AND project_id = :project_id;

-- name: session_by_id_for_update
-- One writer: reading is locking.
SELECT * FROM sessions WHERE session_id = :session_id AND project_id = :project_id;

-- name: update_session_limits
UPDATE sessions SET max_running = :max_running, max_queued = :max_queued, budget = :budget
WHERE session_id = :session_id AND project_id = :project_id
RETURNING *;

-- name: running_tasks_of_session
-- Walks the running tasks of every session (few), not the session's whole history.
SELECT * FROM tasks INDEXED BY tasks_running_lease
WHERE status = 'running' AND session_id = :session_id;

-- name: fair_key_inputs
-- What fair_keys() needs, in one round trip: the session's last key in this priority, the key
-- at the front of the queue, and the highest key ever given in this priority.
SELECT
    (SELECT last_key FROM session_clocks
     WHERE session_id = :session_id AND priority = :priority) AS session_last,
    (SELECT fair_key FROM tasks
     WHERE status = 'queued' AND priority = :priority
     ORDER BY priority, fair_key, id LIMIT 1) AS queue_front,
    (SELECT coalesce(max(last_key), 0) FROM session_clocks
     WHERE priority = :priority) AS highest;

-- name: set_session_last_key
INSERT INTO session_clocks (session_id, priority, last_key)
VALUES (:session_id, :priority, :last_key)
ON CONFLICT (session_id, priority) DO UPDATE SET last_key = max(last_key, excluded.last_key);

-- name: task_by_idempotency_key
SELECT * FROM tasks WHERE session_id = :session_id AND idempotency_key = :idempotency_key;

-- name: insert_tasks
-- :rows is a JSON array of the new tasks (see SQLStore._insert_tasks): one statement a batch.
INSERT INTO tasks (
    task_id, project_id, session_id, user_id, agent, status, priority, fair_key, input,
    webhook_url, webhook_events, metadata, timeout_ms, max_attempts, idempotency_key,
    created_at, event_seq
)
SELECT
    value ->> '$.task_id', :project_id, :session_id, :user_id, value ->> '$.agent', 'queued',
    value ->> '$.priority', value ->> '$.fair_key', value -> '$.input',
    value ->> '$.webhook_url', value -> '$.webhook_events', value -> '$.metadata',
    value ->> '$.timeout_ms', value ->> '$.max_attempts', value ->> '$.idempotency_key', :now,
    1  -- its first event: queued
FROM json_each(:rows)
ORDER BY key
RETURNING id, task_id;

-- name: count_submitted
UPDATE sessions
SET task_count = task_count + :count, queued_count = queued_count + :count,
    event_seq = event_seq + :count
WHERE session_id = :session_id
RETURNING event_seq;

-- name: task_by_public_id
SELECT * FROM tasks
WHERE task_id = :task_id AND session_id = :session_id AND project_id = :project_id;

-- name: task_by_public_id_for_update
SELECT * FROM tasks
WHERE task_id = :task_id AND session_id = :session_id AND project_id = :project_id;

-- name: list_tasks
SELECT * FROM tasks
WHERE session_id = :session_id AND id < :before_id
ORDER BY id DESC
LIMIT :limit;

-- name: list_tasks_with_status
SELECT * FROM tasks
WHERE session_id = :session_id
  AND status IN (SELECT value FROM json_each(:statuses))
  AND id < :before_id
ORDER BY id DESC
LIMIT :limit;

-- name: queue_position
-- Counting costs one index step per task ahead, so it stops at :cap (the answer is then
-- "at least cap"): a position deep in a long backlog is not worth a long count.
SELECT count(*) AS count FROM (
    SELECT 1 FROM tasks
    WHERE status = 'queued' AND (priority, fair_key, id) < (:priority, :fair_key, :id)
    LIMIT :cap
) AS ahead;

-- name: unfinished_by_priority
-- What /metrics shows of the whole deployment's queue: each half is read from a partial
-- index (tasks_claim for the queued, tasks_running_lease for the running).
SELECT 'queued' AS status, priority, count(*) AS count FROM tasks
WHERE status = 'queued' GROUP BY priority
UNION ALL
SELECT 'running' AS status, priority, count(*) AS count FROM tasks
WHERE status = 'running' GROUP BY priority;

-- name: cancel_queued
-- Two events: the status change, then the end of the task's stream.
UPDATE tasks SET status = 'cancelled', finished_at = :now, event_seq = event_seq + 2
WHERE id = :id AND status = 'queued'
RETURNING *;

-- name: cancel_running
UPDATE tasks
SET status = 'cancelled', finished_at = :now, lease_expires_at = NULL,
    compute_micros = compute_micros + :compute_micros, event_seq = event_seq + 2
WHERE id = :id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: dequeue_one
UPDATE sessions SET queued_count = queued_count - 1, event_seq = event_seq + 1
WHERE session_id = :session_id
RETURNING event_seq;

-- name: release_running
UPDATE sessions
SET running_count = running_count - 1, spent_micros = spent_micros + :spent_micros,
    billed_amount = billed_amount + :billed_amount, event_seq = event_seq + :events,
    tokens_input = tokens_input + :tokens_input,
    tokens_output = tokens_output + :tokens_output, tokens_cached = tokens_cached + :tokens_cached
WHERE session_id = :session_id
RETURNING event_seq;

-- name: requeue_running
UPDATE sessions
SET running_count = running_count - 1, queued_count = queued_count + 1,
    event_seq = event_seq + 1
WHERE session_id = :session_id
RETURNING event_seq;

-- name: add_spent
-- A run's reports: its charges, and the ids of those of its events the session stream shows.
UPDATE sessions
SET spent_micros = spent_micros + :spent_micros, event_seq = event_seq + :events,
    tokens_input = tokens_input + :tokens_input,
    tokens_output = tokens_output + :tokens_output, tokens_cached = tokens_cached + :tokens_cached
WHERE session_id = :session_id
RETURNING event_seq;

-- name: claim_candidates
-- Walks tasks_claim in order; a session at its running limit is skipped, not waited for.
SELECT t.id, t.session_id, s.max_running, s.running_count, s.budget
FROM tasks AS t
JOIN sessions AS s ON s.session_id = t.session_id
WHERE t.status = 'queued'
  AND s.running_count < coalesce(s.max_running, :default_max_running)
ORDER BY t.priority, t.fair_key, t.id
LIMIT :scan;

-- name: start_tasks
UPDATE tasks
SET status = 'running', started_at = :now, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, attempt = attempt + 1,
    compute_price_micros = :compute_price_micros, progress = NULL, message = NULL,
    event_seq = event_seq + 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'queued'
RETURNING *;

-- name: count_started
-- :started is a JSON object: session id → how many of its tasks just started.
UPDATE sessions
SET queued_count = queued_count - started.value, running_count = running_count + started.value,
    event_seq = event_seq + started.value
FROM json_each(:started) AS started
WHERE sessions.session_id = started.key
RETURNING sessions.session_id, sessions.event_seq;

-- name: running_attempt_for_update
SELECT * FROM tasks WHERE task_id = :task_id AND attempt = :attempt AND status = 'running';

-- name: report_progress
-- Takes the row's lock itself: a report is one statement fewer than a read and an update.
UPDATE tasks
SET progress = coalesce(:progress, progress), message = coalesce(:message, message),
    charged_micros = charged_micros + :charged_micros,
    event_seq = event_seq + :events, log_bytes = log_bytes + :log_bytes,
    usage = coalesce(:usage, usage)
WHERE task_id = :task_id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: finish_task
UPDATE tasks
SET status = :status, output = :output, error_code = :error_code,
    error_message = :error_message, progress = coalesce(:progress, progress),
    message = coalesce(:message, message), compute_micros = compute_micros + :compute_micros,
    charged_micros = charged_micros + :charged_micros, finished_at = :now,
    lease_expires_at = NULL, event_seq = event_seq + 2 + :events,
    log_bytes = log_bytes + :log_bytes, usage = coalesce(:usage, usage),
    net_sent_bytes = net_sent_bytes + :net_sent, net_received_bytes = net_received_bytes + :net_received,
    net_connections = net_connections + :net_connections
WHERE id = :id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: upsert_worker
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, lease_expires_at, slots)
VALUES (:worker_id, :host, :pid, :now, :now, :lease_expires_at, :slots)
ON CONFLICT (worker_id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, heartbeat_at = excluded.heartbeat_at,
    lease_expires_at = excluded.lease_expires_at, slots = excluded.slots;

-- name: claim_lease
-- A claim renews its worker's lease (registering a worker it has not seen): the tasks it
-- starts are held from the first moment, and every running task's worker has a row.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, lease_expires_at)
VALUES (:worker_id, '', 0, :now, :now, :lease_expires_at)
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = excluded.heartbeat_at, lease_expires_at = excluded.lease_expires_at;

-- name: delete_worker
DELETE FROM workers WHERE worker_id = :worker_id;

-- name: renew_worker_lease
-- One row a beat, however many tasks the worker runs.
UPDATE workers SET heartbeat_at = :now, lease_expires_at = :lease_expires_at
WHERE worker_id = :worker_id
RETURNING worker_id;

-- name: lost_tasks
-- The running tasks of workers whose lease has passed: a walk of the (few) workers, then of
-- each one's running tasks by tasks_running_worker.
SELECT t.* FROM workers AS w
JOIN tasks AS t INDEXED BY tasks_running_worker
    ON t.worker_id = w.worker_id AND t.status = 'running'
WHERE w.lease_expires_at < :now AND w.worker_id <> :alive_worker_id
ORDER BY t.id
LIMIT :limit;

-- name: orphaned_tasks
-- Running tasks without a worker row at all: none while every deletion of a worker row
-- settles its tasks first, but a database from an earlier version may hold some.
SELECT * FROM tasks AS t
WHERE t.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM workers AS w WHERE w.worker_id = t.worker_id)
LIMIT :limit;

-- name: running_tasks_of_worker
SELECT * FROM tasks WHERE status = 'running' AND worker_id = :worker_id;

-- name: attempts_held_by_worker
SELECT task_id, attempt FROM tasks WHERE status = 'running' AND worker_id = :worker_id;

-- name: unclaim
-- A claimed attempt that never ran (its claim's answer was lost): back to the queue as if
-- it had not been claimed.
UPDATE tasks
SET status = 'queued', attempt = attempt - 1, worker_id = NULL, lease_expires_at = NULL,
    started_at = NULL, progress = NULL, message = NULL, event_seq = event_seq + 1
WHERE id = :id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: requeue_lost
UPDATE tasks
SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, started_at = NULL,
    progress = NULL, message = NULL, event_seq = event_seq + 1
WHERE id = :id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: fail_lost
UPDATE tasks
SET status = 'failed', error_code = :error_code, error_message = :error_message,
    finished_at = :now, lease_expires_at = NULL, event_seq = event_seq + 2
WHERE id = :id AND attempt = :attempt AND status = 'running'
RETURNING *;

-- name: other_workers
SELECT worker_id FROM workers WHERE worker_id <> :worker_id;

-- name: webhook_secrets
SELECT * FROM webhook_secrets
WHERE project_id = :project_id AND (expires_at IS NULL OR expires_at > :now)
ORDER BY id DESC;

-- name: insert_webhook_secret
INSERT INTO webhook_secrets (project_id, secret, created_at) VALUES (:project_id, :secret, :now);

-- name: retire_webhook_secrets
UPDATE webhook_secrets SET expires_at = :expires_at
WHERE project_id = :project_id AND expires_at IS NULL;

-- name: insert_delivery
INSERT INTO webhook_deliveries (
    message_id, project_id, session_id, task_id, event, url, payload, status,
    next_attempt_at, created_at
) VALUES (
    :message_id, :project_id, :session_id, :task_id, :event, :url, :payload, 'pending',
    :now, :now
);

-- name: due_deliveries
SELECT id FROM webhook_deliveries
WHERE status = 'pending' AND next_attempt_at <= :now
ORDER BY next_attempt_at
LIMIT :limit;

-- name: lease_deliveries
-- Taking a delivery moves its due time past the attempt's time-out: a sender that dies
-- mid-attempt leaves it due again (at least once), and no one else sends it meanwhile.
UPDATE webhook_deliveries
SET next_attempt_at = :lease_until, attempts = attempts + 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
RETURNING *;

-- name: next_delivery_due
SELECT min(next_attempt_at) AS due FROM webhook_deliveries WHERE status = 'pending';

-- name: insert_delivery_attempt
INSERT INTO webhook_attempts (
    delivery_id, attempted_at, duration_ms, http_status, error, response_body
) VALUES (
    :delivery_id, :attempted_at, :duration_ms, :http_status, :error, :response_body
);

-- name: settle_delivery
UPDATE webhook_deliveries
SET status = :status, next_attempt_at = :next_attempt_at, delivered_at = :delivered_at
WHERE id = :id AND status = 'pending'
RETURNING *;

-- name: deliveries_of_task
SELECT * FROM webhook_deliveries
WHERE task_id = :task_id AND project_id = :project_id
ORDER BY id;

-- name: attempts_of_task
SELECT a.* FROM webhook_attempts AS a
JOIN webhook_deliveries AS d ON d.id = a.delivery_id
WHERE d.task_id = :task_id AND d.project_id = :project_id
ORDER BY a.id;

-- name: redeliver
UPDATE webhook_deliveries
SET status = 'pending', next_attempt_at = :now, delivered_at = NULL, attempts = 0
WHERE task_id = :task_id AND project_id = :project_id AND event = 'completed'
RETURNING *;

-- name: project_for_update
SELECT project_id FROM projects WHERE project_id = :project_id;

-- name: delete_silent_workers
-- Only workers whose tasks are settled: a running task's worker always has its row.
DELETE FROM workers
WHERE heartbeat_at < :silent_since
  AND NOT EXISTS (
      SELECT 1 FROM tasks AS t INDEXED BY tasks_running_worker
      WHERE t.worker_id = workers.worker_id AND t.status = 'running'
  )
RETURNING worker_id;

-- name: session_budgets
SELECT session_id, budget FROM sessions
WHERE session_id IN (SELECT value FROM json_each(:session_ids));

-- name: session_by_internal_id
SELECT * FROM sessions WHERE session_id = :session_id;

-- --- events and logs ----------------------------------------------------------------------

-- name: insert_events
-- :events is a JSON array of numbered events (see SQLStore._store_events): one statement.
INSERT INTO task_events (task_pk, seq, session_id, session_seq, kind, data, created_at)
SELECT
    value ->> '$.task_pk', value ->> '$.seq', value ->> '$.session_id',
    value ->> '$.session_seq', value ->> '$.kind', value -> '$.data', value ->> '$.at'
FROM json_each(:events);

-- name: insert_submitted_events
-- The queued event of each task of a submit: :task_pks in the order of their session ids.
INSERT INTO task_events (task_pk, seq, session_id, session_seq, kind, data, created_at)
SELECT value, 1, :session_id, :first_session_seq + key, 'status', '{}', :now
FROM json_each(:task_pks);

-- name: task_events_after
SELECT * FROM task_events
WHERE task_pk = :task_pk AND seq > :after
ORDER BY seq
LIMIT :limit;

-- name: task_logs_after
SELECT * FROM task_events
WHERE task_pk = :task_pk AND seq > :after AND kind = 'log'
ORDER BY seq
LIMIT :limit;

-- name: session_events_after
SELECT e.*, t.task_id, t.project_id
FROM task_events AS e
JOIN tasks AS t ON t.id = e.task_pk
WHERE e.session_id = :session_id AND e.session_seq > :after
ORDER BY e.session_seq
LIMIT :limit;

-- name: events_in_ranges
-- :ranges is a JSON array of {"task_pk", "first", "last"}: what other nodes announced.
SELECT e.*, t.task_id, t.project_id
FROM json_each(:ranges) AS r
JOIN task_events AS e
  ON e.task_pk = r.value ->> '$.task_pk'
 AND e.seq BETWEEN r.value ->> '$.first' AND r.value ->> '$.last'
JOIN tasks AS t ON t.id = e.task_pk
ORDER BY e.task_pk, e.seq;

-- name: tasks_by_pks
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: last_session_event
SELECT event_seq FROM sessions WHERE session_id = :session_id;

-- name: add_log_events
-- Lines a run read after its attempt ended (a cancel, a timeout): kept whatever the status.
UPDATE tasks
SET event_seq = event_seq + :events, log_bytes = log_bytes + :log_bytes
WHERE id = :id
RETURNING *;

-- name: deployment_secret
SELECT secret FROM deployment_secrets WHERE name = :name;

-- name: insert_deployment_secret
INSERT INTO deployment_secrets (name, secret, created_at) VALUES (:name, :secret, :now)
ON CONFLICT (name) DO NOTHING;

-- name: prunable_tasks
-- Finished before the cut-off, oldest first, and with no webhook still to send: a delivery
-- that is pending keeps its task (and what it would be asked about) until it settles.
SELECT id, task_id FROM tasks INDEXED BY tasks_finished
WHERE finished_at IS NOT NULL AND finished_at < :finished_before
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries AS d
      WHERE d.task_id = tasks.task_id AND d.status = 'pending'
  )
ORDER BY finished_at
LIMIT :limit;

-- name: delete_attempts_of_tasks
DELETE FROM webhook_attempts
WHERE delivery_id IN (
    SELECT id FROM webhook_deliveries WHERE task_id IN (SELECT value FROM json_each(:task_ids))
);

-- name: delete_deliveries_of_tasks
DELETE FROM webhook_deliveries WHERE task_id IN (SELECT value FROM json_each(:task_ids));

-- name: delete_tasks
-- Their events and log lines go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(:ids)) RETURNING id;

-- --- What the dashboard reads (store/project_reads.py) -------------------------------------

-- name: project_tasks_newest
SELECT * FROM tasks
WHERE project_id = :project_id AND id < :before_id
ORDER BY id DESC
LIMIT :limit;

-- name: project_tasks
-- Every filter is passed; a null one selects everything (statuses: all five when unset).
SELECT * FROM tasks
WHERE project_id = :project_id AND id < :before_id
  AND status IN (SELECT value FROM json_each(:statuses))
  AND (:agent IS NULL OR agent = :agent)
  AND (:session_id IS NULL OR session_id = :session_id)
  AND (:user_id IS NULL OR user_id = :user_id)
  AND (:priority IS NULL OR priority = :priority)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: project_sessions
SELECT * FROM sessions
WHERE project_id = :project_id AND user_id > :after_user_id
ORDER BY user_id
LIMIT :limit;

-- name: project_active_counts
SELECT status, priority, count(*) AS count FROM tasks
WHERE project_id = :project_id AND status IN ('queued', 'running')
GROUP BY status, priority;

-- name: project_oldest_queued
SELECT min(created_at) AS oldest FROM tasks
WHERE project_id = :project_id AND status = 'queued';

-- name: project_ended_since
SELECT status, count(*) AS count FROM tasks
WHERE finished_at >= :since AND project_id = :project_id
GROUP BY status;

-- name: worker_nodes
SELECT workers.*, (
    SELECT count(*) FROM tasks
    WHERE tasks.worker_id = workers.worker_id AND tasks.status = 'running'
) AS running
FROM workers
ORDER BY started_at, worker_id;

-- name: task_status_events
SELECT * FROM task_events
WHERE task_pk = :task_pk AND kind IN ('status', 'end')
ORDER BY seq
LIMIT :limit;

-- name: add_network_usage
-- An attempt's egress when its end was recorded by someone else (a cancel): counted all the same.
UPDATE tasks
SET net_sent_bytes = net_sent_bytes + :net_sent, net_received_bytes = net_received_bytes + :net_received,
    net_connections = net_connections + :net_connections
WHERE task_id = :task_id AND attempt = :attempt
RETURNING id;
