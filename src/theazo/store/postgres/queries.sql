-- Named queries of the PostgreSQL store. Parameters are %(named)s.

-- name: insert_project
INSERT INTO projects (project_id, created_at) VALUES (%(project_id)s, %(now)s);

-- name: project_exists
SELECT 1 FROM projects WHERE project_id = %(project_id)s;

-- name: insert_api_key
INSERT INTO api_keys (key_hash, project_id, hint, created_at)
VALUES (%(key_hash)s, %(project_id)s, %(hint)s, %(now)s);

-- name: key_by_hash
SELECT project_id, key_hash FROM api_keys WHERE key_hash = %(key_hash)s;

-- name: count_api_keys
SELECT count(*) AS count FROM api_keys;

-- name: insert_session
INSERT INTO sessions (session_id, project_id, user_id, created_at)
VALUES (%(session_id)s, %(project_id)s, %(user_id)s, %(now)s)
ON CONFLICT (project_id, user_id) DO NOTHING;

-- name: session_by_user
SELECT * FROM sessions WHERE project_id = %(project_id)s AND user_id = %(user_id)s;

-- name: session_by_id
SELECT * FROM sessions WHERE session_id = %(session_id)s AND project_id = %(project_id)s;

-- name: session_by_id_for_update
SELECT * FROM sessions WHERE session_id = %(session_id)s AND project_id = %(project_id)s
FOR UPDATE;

-- name: sessions_by_ids
SELECT * FROM sessions WHERE session_id = ANY(%(session_ids)s)
ORDER BY session_id
FOR UPDATE;

-- name: update_session_limits
UPDATE sessions SET max_running = %(max_running)s, max_queued = %(max_queued)s, budget = %(budget)s
WHERE session_id = %(session_id)s AND project_id = %(project_id)s
RETURNING *;

-- name: running_tasks_of_session
SELECT * FROM tasks WHERE session_id = %(session_id)s AND status = 'running';

-- name: fair_key_inputs
-- What fair_keys() needs, in one round trip: the session's last key in this priority, the key
-- at the front of the queue, and the highest key ever given in this priority.
SELECT
    (SELECT last_key FROM session_clocks
     WHERE session_id = %(session_id)s AND priority = %(priority)s) AS session_last,
    (SELECT fair_key FROM tasks
     WHERE status = 'queued' AND priority = %(priority)s
     ORDER BY priority, fair_key, id LIMIT 1) AS queue_front,
    (SELECT coalesce(max(last_key), 0) FROM session_clocks
     WHERE priority = %(priority)s) AS highest;

-- name: set_session_last_key
INSERT INTO session_clocks (session_id, priority, last_key)
VALUES (%(session_id)s, %(priority)s, %(last_key)s)
ON CONFLICT (session_id, priority)
DO UPDATE SET last_key = greatest(session_clocks.last_key, excluded.last_key);

-- name: task_by_idempotency_key
SELECT * FROM tasks WHERE session_id = %(session_id)s AND idempotency_key = %(idempotency_key)s;

-- name: insert_tasks
-- %(rows)s is a JSON array of the new tasks (see SQLStore._insert_tasks): one statement a batch.
INSERT INTO tasks (
    task_id, project_id, session_id, user_id, agent, status, priority, fair_key, input,
    webhook_url, webhook_events, metadata, timeout_ms, max_attempts, idempotency_key,
    created_at, event_seq
)
SELECT
    r.task_id, %(project_id)s, %(session_id)s, %(user_id)s, r.agent, 'queued', r.priority,
    r.fair_key, coalesce(r.input, 'null'::json), r.webhook_url, r.webhook_events, r.metadata,
    r.timeout_ms,
    r.max_attempts, r.idempotency_key, %(now)s,
    1  -- its first event: queued
FROM json_to_recordset(%(rows)s) AS r(
    ord integer, task_id text, agent text, priority smallint, fair_key bigint, input json,
    webhook_url text, webhook_events json, metadata json, timeout_ms bigint,
    max_attempts integer, idempotency_key text
)
ORDER BY r.ord
RETURNING id, task_id;

-- name: count_submitted
UPDATE sessions
SET task_count = task_count + %(count)s, queued_count = queued_count + %(count)s,
    event_seq = event_seq + %(count)s
WHERE session_id = %(session_id)s
RETURNING event_seq;

-- name: task_by_public_id
SELECT * FROM tasks
WHERE task_id = %(task_id)s AND session_id = %(session_id)s AND project_id = %(project_id)s;

-- name: task_by_public_id_for_update
SELECT * FROM tasks
WHERE task_id = %(task_id)s AND session_id = %(session_id)s AND project_id = %(project_id)s
FOR UPDATE;

-- name: list_tasks
SELECT * FROM tasks
WHERE session_id = %(session_id)s AND id < %(before_id)s
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_tasks_with_status
SELECT * FROM tasks
WHERE session_id = %(session_id)s
  AND status = ANY(%(statuses)s)
  AND id < %(before_id)s
ORDER BY id DESC
LIMIT %(limit)s;

-- name: queue_position
-- Counting costs one index step per task ahead, so it stops at :cap (the answer is then
-- "at least cap"): a position deep in a long backlog is not worth a long count.
SELECT count(*) AS count FROM (
    SELECT 1 FROM tasks
    WHERE status = 'queued' AND (priority, fair_key, id) < (%(priority)s, %(fair_key)s, %(id)s)
    LIMIT %(cap)s
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
UPDATE tasks SET status = 'cancelled', finished_at = %(now)s, event_seq = event_seq + 2
WHERE id = %(id)s AND status = 'queued'
RETURNING *;

-- name: cancel_running
UPDATE tasks
SET status = 'cancelled', finished_at = %(now)s, lease_expires_at = NULL,
    compute_micros = compute_micros + %(compute_micros)s, event_seq = event_seq + 2
WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: dequeue_one
UPDATE sessions SET queued_count = queued_count - 1, event_seq = event_seq + 1
WHERE session_id = %(session_id)s
RETURNING event_seq;

-- name: release_running
UPDATE sessions
SET running_count = running_count - 1, spent_micros = spent_micros + %(spent_micros)s,
    billed_amount = billed_amount + %(billed_amount)s, event_seq = event_seq + %(events)s,
    tokens_input = tokens_input + %(tokens_input)s,
    tokens_output = tokens_output + %(tokens_output)s, tokens_cached = tokens_cached + %(tokens_cached)s
WHERE session_id = %(session_id)s
RETURNING event_seq;

-- name: requeue_running
UPDATE sessions
SET running_count = running_count - 1, queued_count = queued_count + 1,
    event_seq = event_seq + 1
WHERE session_id = %(session_id)s
RETURNING event_seq;

-- name: add_spent
-- A run's reports: its charges, and the ids of those of its events the session stream shows.
UPDATE sessions
SET spent_micros = spent_micros + %(spent_micros)s, event_seq = event_seq + %(events)s,
    tokens_input = tokens_input + %(tokens_input)s,
    tokens_output = tokens_output + %(tokens_output)s, tokens_cached = tokens_cached + %(tokens_cached)s
WHERE session_id = %(session_id)s
RETURNING event_seq;

-- name: claim_candidates
-- Walks tasks_claim in order; a session at its running limit is skipped, not waited for;
-- rows another node is claiming are skipped too. The sessions' counts are read again under
-- their row locks (sessions_by_ids) before anything is taken.
SELECT t.id, t.session_id, s.max_running, s.running_count, s.budget
FROM tasks AS t
JOIN sessions AS s ON s.session_id = t.session_id
WHERE t.status = 'queued'
  AND s.running_count < coalesce(s.max_running, %(default_max_running)s)
ORDER BY t.priority, t.fair_key, t.id
LIMIT %(scan)s
FOR UPDATE OF t SKIP LOCKED;

-- name: start_tasks
UPDATE tasks
SET status = 'running', started_at = %(now)s, worker_id = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s, attempt = attempt + 1,
    compute_price_micros = %(compute_price_micros)s, progress = NULL, message = NULL,
    event_seq = event_seq + 1
WHERE id = ANY(%(ids)s) AND status = 'queued'
RETURNING *;

-- name: count_started
-- %(started)s is a JSON object: session id → how many of its tasks just started.
UPDATE sessions
SET queued_count = queued_count - started.value::int,
    running_count = running_count + started.value::int,
    event_seq = event_seq + started.value::int
FROM json_each_text(%(started)s) AS started
WHERE sessions.session_id = started.key
RETURNING sessions.session_id, sessions.event_seq;

-- name: running_attempt_for_update
SELECT * FROM tasks
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND status = 'running'
FOR UPDATE;

-- name: report_progress
-- Takes the row's lock itself: a report is one statement fewer than a read and an update.
UPDATE tasks
SET progress = coalesce(%(progress)s, progress), message = coalesce(%(message)s, message),
    charged_micros = charged_micros + %(charged_micros)s,
    event_seq = event_seq + %(events)s, log_bytes = log_bytes + %(log_bytes)s,
    usage = coalesce(%(usage)s, usage)
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: finish_task
UPDATE tasks
SET status = %(status)s, output = %(output)s, error_code = %(error_code)s,
    error_message = %(error_message)s, progress = coalesce(%(progress)s, progress),
    message = coalesce(%(message)s, message), compute_micros = compute_micros + %(compute_micros)s,
    charged_micros = charged_micros + %(charged_micros)s, finished_at = %(now)s,
    lease_expires_at = NULL, event_seq = event_seq + 2 + %(events)s,
    log_bytes = log_bytes + %(log_bytes)s, usage = coalesce(%(usage)s, usage),
    net_sent_bytes = net_sent_bytes + %(net_sent)s,
    net_received_bytes = net_received_bytes + %(net_received)s,
    net_connections = net_connections + %(net_connections)s
WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: upsert_worker
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, lease_expires_at, slots)
VALUES (%(worker_id)s, %(host)s, %(pid)s, %(now)s, %(now)s, %(lease_expires_at)s, %(slots)s)
ON CONFLICT (worker_id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, heartbeat_at = excluded.heartbeat_at,
    lease_expires_at = excluded.lease_expires_at, slots = excluded.slots;

-- name: claim_lease
-- A claim renews its worker's lease (registering a worker it has not seen): the tasks it
-- starts are held from the first moment, and every running task's worker has a row.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, lease_expires_at)
VALUES (%(worker_id)s, '', 0, %(now)s, %(now)s, %(lease_expires_at)s)
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = excluded.heartbeat_at, lease_expires_at = excluded.lease_expires_at;

-- name: delete_worker
DELETE FROM workers WHERE worker_id = %(worker_id)s;

-- name: renew_worker_lease
-- One row a beat, however many tasks the worker runs.
UPDATE workers SET heartbeat_at = %(now)s, lease_expires_at = %(lease_expires_at)s
WHERE worker_id = %(worker_id)s
RETURNING worker_id;

-- name: lost_tasks
-- The running tasks of workers whose lease has passed: a walk of the (few) workers, then of
-- each one's running tasks by tasks_running_worker. Rows another rescuer holds are skipped.
SELECT t.* FROM workers AS w
JOIN tasks AS t ON t.worker_id = w.worker_id AND t.status = 'running'
WHERE w.lease_expires_at < %(now)s AND w.worker_id <> %(alive_worker_id)s
ORDER BY t.id
LIMIT %(limit)s
FOR UPDATE OF t SKIP LOCKED;

-- name: orphaned_tasks
-- Running tasks without a worker row at all: none while every deletion of a worker row
-- settles its tasks first, but a database from an earlier version may hold some.
SELECT * FROM tasks AS t
WHERE t.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM workers AS w WHERE w.worker_id = t.worker_id)
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: running_tasks_of_worker
SELECT * FROM tasks WHERE status = 'running' AND worker_id = %(worker_id)s
FOR UPDATE;

-- name: attempts_held_by_worker
SELECT task_id, attempt FROM tasks WHERE status = 'running' AND worker_id = %(worker_id)s;

-- name: unclaim
-- A claimed attempt that never ran (its claim's answer was lost): back to the queue as if
-- it had not been claimed.
UPDATE tasks
SET status = 'queued', attempt = attempt - 1, worker_id = NULL, lease_expires_at = NULL,
    started_at = NULL, progress = NULL, message = NULL, event_seq = event_seq + 1
WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: requeue_lost
UPDATE tasks
SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, started_at = NULL,
    progress = NULL, message = NULL, event_seq = event_seq + 1
WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: fail_lost
UPDATE tasks
SET status = 'failed', error_code = %(error_code)s, error_message = %(error_message)s,
    finished_at = %(now)s, lease_expires_at = NULL, event_seq = event_seq + 2
WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING *;

-- name: other_workers
SELECT worker_id FROM workers WHERE worker_id <> %(worker_id)s;

-- name: webhook_secrets
SELECT * FROM webhook_secrets
WHERE project_id = %(project_id)s AND (expires_at IS NULL OR expires_at > %(now)s)
ORDER BY id DESC;

-- name: insert_webhook_secret
INSERT INTO webhook_secrets (project_id, secret, created_at) VALUES (%(project_id)s, %(secret)s, %(now)s);

-- name: retire_webhook_secrets
UPDATE webhook_secrets SET expires_at = %(expires_at)s
WHERE project_id = %(project_id)s AND expires_at IS NULL;

-- name: insert_delivery
INSERT INTO webhook_deliveries (
    message_id, project_id, session_id, task_id, event, url, payload, status,
    next_attempt_at, created_at
) VALUES (
    %(message_id)s, %(project_id)s, %(session_id)s, %(task_id)s, %(event)s, %(url)s, %(payload)s, 'pending',
    %(now)s, %(now)s
);

-- name: due_deliveries
SELECT id FROM webhook_deliveries
WHERE status = 'pending' AND next_attempt_at <= %(now)s
ORDER BY next_attempt_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: lease_deliveries
-- Taking a delivery moves its due time past the attempt's time-out: a sender that dies
-- mid-attempt leaves it due again (at least once), and no one else sends it meanwhile.
UPDATE webhook_deliveries
SET next_attempt_at = %(lease_until)s, attempts = attempts + 1
WHERE id = ANY(%(ids)s) AND status = 'pending'
RETURNING *;

-- name: next_delivery_due
SELECT min(next_attempt_at) AS due FROM webhook_deliveries WHERE status = 'pending';

-- name: insert_delivery_attempt
INSERT INTO webhook_attempts (
    delivery_id, attempted_at, duration_ms, http_status, error, response_body
) VALUES (
    %(delivery_id)s, %(attempted_at)s, %(duration_ms)s, %(http_status)s, %(error)s, %(response_body)s
);

-- name: settle_delivery
UPDATE webhook_deliveries
SET status = %(status)s, next_attempt_at = %(next_attempt_at)s, delivered_at = %(delivered_at)s
WHERE id = %(id)s AND status = 'pending'
RETURNING *;

-- name: deliveries_of_task
SELECT * FROM webhook_deliveries
WHERE task_id = %(task_id)s AND project_id = %(project_id)s
ORDER BY id;

-- name: attempts_of_task
SELECT a.* FROM webhook_attempts AS a
JOIN webhook_deliveries AS d ON d.id = a.delivery_id
WHERE d.task_id = %(task_id)s AND d.project_id = %(project_id)s
ORDER BY a.id;

-- name: redeliver
UPDATE webhook_deliveries
SET status = 'pending', next_attempt_at = %(now)s, delivered_at = NULL, attempts = 0
WHERE task_id = %(task_id)s AND project_id = %(project_id)s AND event = 'completed'
RETURNING *;

-- name: project_for_update
SELECT project_id FROM projects WHERE project_id = %(project_id)s FOR UPDATE;

-- name: delete_silent_workers
-- Only workers whose tasks are settled: a running task's worker always has its row.
DELETE FROM workers AS w
WHERE w.heartbeat_at < %(silent_since)s
  AND NOT EXISTS (
      SELECT 1 FROM tasks AS t WHERE t.worker_id = w.worker_id AND t.status = 'running'
  )
RETURNING w.worker_id;

-- name: session_budgets
SELECT session_id, budget FROM sessions WHERE session_id = ANY(%(session_ids)s);

-- name: session_by_internal_id
SELECT * FROM sessions WHERE session_id = %(session_id)s;

-- --- events and logs ----------------------------------------------------------------------

-- name: insert_events
-- %(events)s is a JSON array of numbered events (see SQLStore._store_events): one statement.
INSERT INTO task_events (task_pk, seq, session_id, session_seq, kind, data, created_at)
SELECT
    r.task_pk, r.seq, r.session_id, r.session_seq, r.kind, r.data,
    timestamptz 'epoch' + r.at * interval '1 microsecond'
FROM json_to_recordset(%(events)s) AS r(
    task_pk bigint, seq bigint, session_id text, session_seq bigint, kind text, data json,
    at bigint
);

-- name: insert_submitted_events
-- The queued event of each task of a submit: task_pks in the order of their session ids.
INSERT INTO task_events (task_pk, seq, session_id, session_seq, kind, data, created_at)
SELECT r.pk, 1, %(session_id)s, %(first_session_seq)s + r.ord - 1, 'status', '{}', %(now)s
FROM unnest(%(task_pks)s::bigint[]) WITH ORDINALITY AS r(pk, ord);

-- name: task_events_after
SELECT * FROM task_events
WHERE task_pk = %(task_pk)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s;

-- name: task_logs_after
SELECT * FROM task_events
WHERE task_pk = %(task_pk)s AND seq > %(after)s AND kind = 'log'
ORDER BY seq
LIMIT %(limit)s;

-- name: session_events_after
SELECT e.*, t.task_id, t.project_id
FROM task_events AS e
JOIN tasks AS t ON t.id = e.task_pk
WHERE e.session_id = %(session_id)s AND e.session_seq > %(after)s
ORDER BY e.session_seq
LIMIT %(limit)s;

-- name: events_in_ranges
-- %(ranges)s is a JSON array of {"task_pk", "first", "last"}: what other nodes announced.
SELECT e.*, t.task_id, t.project_id
FROM json_to_recordset(%(ranges)s) AS r(task_pk bigint, first bigint, last bigint)
JOIN task_events AS e ON e.task_pk = r.task_pk AND e.seq BETWEEN r.first AND r.last
JOIN tasks AS t ON t.id = e.task_pk
ORDER BY e.task_pk, e.seq;

-- name: tasks_by_pks
SELECT * FROM tasks WHERE id = ANY(%(ids)s);

-- name: last_session_event
SELECT event_seq FROM sessions WHERE session_id = %(session_id)s;

-- name: add_log_events
-- Lines a run read after its attempt ended (a cancel, a timeout): kept whatever the status.
UPDATE tasks
SET event_seq = event_seq + %(events)s, log_bytes = log_bytes + %(log_bytes)s
WHERE id = %(id)s
RETURNING *;

-- name: deployment_secret
SELECT secret FROM deployment_secrets WHERE name = %(name)s;

-- name: insert_deployment_secret
INSERT INTO deployment_secrets (name, secret, created_at) VALUES (%(name)s, %(secret)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: prunable_tasks
-- Finished before the cut-off, oldest first, and with no webhook still to send: a delivery
-- that is pending keeps its task (and what it would be asked about) until it settles. SKIP
-- LOCKED: two nodes pruning at once take different tasks rather than wait for each other.
SELECT id, task_id FROM tasks
WHERE finished_at IS NOT NULL AND finished_at < %(finished_before)s
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries AS d
      WHERE d.task_id = tasks.task_id AND d.status = 'pending'
  )
ORDER BY finished_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: delete_attempts_of_tasks
DELETE FROM webhook_attempts
WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE task_id = ANY(%(task_ids)s));

-- name: delete_deliveries_of_tasks
DELETE FROM webhook_deliveries WHERE task_id = ANY(%(task_ids)s);

-- name: delete_tasks
-- Their events and log lines go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE id = ANY(%(ids)s) RETURNING id;

-- --- What the dashboard reads (store/project_reads.py) -------------------------------------

-- name: project_tasks_newest
SELECT * FROM tasks
WHERE project_id = %(project_id)s AND id < %(before_id)s
ORDER BY id DESC
LIMIT %(limit)s;

-- name: project_tasks
-- Every filter is passed; a null one selects everything (statuses: all five when unset).
SELECT * FROM tasks
WHERE project_id = %(project_id)s AND id < %(before_id)s
  AND status = ANY(%(statuses)s)
  AND (%(agent)s::text IS NULL OR agent = %(agent)s::text)
  AND (%(session_id)s::text IS NULL OR session_id = %(session_id)s::text)
  AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
  AND (%(priority)s::integer IS NULL OR priority = %(priority)s::integer)
  AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: project_sessions
SELECT * FROM sessions
WHERE project_id = %(project_id)s AND user_id > %(after_user_id)s
ORDER BY user_id
LIMIT %(limit)s;

-- name: project_active_counts
SELECT status, priority, count(*) AS count FROM tasks
WHERE project_id = %(project_id)s AND status IN ('queued', 'running')
GROUP BY status, priority;

-- name: project_oldest_queued
SELECT min(created_at) AS oldest FROM tasks
WHERE project_id = %(project_id)s AND status = 'queued';

-- name: project_ended_since
SELECT status, count(*) AS count FROM tasks
WHERE finished_at >= %(since)s AND project_id = %(project_id)s
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
WHERE task_pk = %(task_pk)s AND kind IN ('status', 'end')
ORDER BY seq
LIMIT %(limit)s;

-- name: add_network_usage
-- An attempt's egress when its end was recorded by someone else (a cancel): counted all the same.
UPDATE tasks
SET net_sent_bytes = net_sent_bytes + %(net_sent)s,
    net_received_bytes = net_received_bytes + %(net_received)s,
    net_connections = net_connections + %(net_connections)s
WHERE task_id = %(task_id)s AND attempt = %(attempt)s
RETURNING id;

-- name: lock_model_call_rates
-- One session's calls are counted one at a time across the deployment (the window read and
-- the call counted under the lock), so two nodes never both take the last call of a minute.
SELECT pg_advisory_xact_lock(
    hashtext(current_schema() || '.model_call_rates'), hashtext(%(session_id)s));

-- name: model_call_window
SELECT bucket, requests, tokens FROM model_call_rates
WHERE session_id = %(session_id)s AND bucket >= %(first_bucket)s;

-- name: count_model_call
INSERT INTO model_call_rates (session_id, bucket, requests)
VALUES (%(session_id)s, %(bucket)s, 1)
ON CONFLICT (session_id, bucket) DO UPDATE SET requests = model_call_rates.requests + 1;

-- name: count_model_tokens
INSERT INTO model_call_rates (session_id, bucket, tokens)
VALUES (%(session_id)s, %(bucket)s, %(tokens)s)
ON CONFLICT (session_id, bucket) DO UPDATE SET tokens = model_call_rates.tokens + EXCLUDED.tokens;

-- name: prune_model_call_rates
DELETE FROM model_call_rates WHERE bucket < %(first_bucket)s;
