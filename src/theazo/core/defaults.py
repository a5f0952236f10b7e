"""Every tunable number in Theazo, each with the reason for its value.

Nothing else in the code base hard-codes a limit, interval or size: it imports it from here,
and the server's options override these where the operator may care.
"""

from __future__ import annotations

# --- HTTP -----------------------------------------------------------------------------------
HOST = "127.0.0.1"  # listen on loopback until the operator decides to expose the API
PORT = 8321  # an unassigned port, so `theazo serve` starts without a flag on most machines
MAX_BODY_BYTES = 1 * 1024 * 1024  # one task's request; inputs are instructions, not datasets
MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024  # a batch of 1,000 tasks with modest inputs
MAX_BATCH_TASKS = 1_000  # SPEC §3: up to 1,000 submits at once
QUEUE_POSITION_CAP = 1_000  # exact up to here, "at least 1,000" beyond: a count is O(n)
LIST_DEFAULT_LIMIT = 50  # one screen of a dashboard
LIST_MAX_LIMIT = 500  # bounds the work of one list request
MAX_WAIT_SECONDS = 60.0  # below the idle time-out of common proxies; the SDK loops for more
DEFAULT_WAIT_SECONDS = 5.0  # a wait without ?timeout= is short: clients that want more say so
AUTH_CACHE_ENTRIES = 10_000  # hashed keys remembered per node; far more than live keys
HTTP_KEEP_ALIVE_SECONDS = 30.0  # above clients' idle expiry (httpx 5 s): they close first
GRACEFUL_HTTP_SHUTDOWN_SECONDS = 1.0  # long polls are cut at shutdown; clients retry them
HTTP_MAX_HEAD_BYTES = 64 * 1024  # request line and headers: 431 past it (nginx allows ~32 KiB)
HTTP_READ_TIMEOUT_SECONDS = 15.0  # a request's head, or a pause in its body, may take this long
HTTP_MAX_CONNECTIONS = 50_000  # at most, and never more than the open-files limit allows
HTTP_MAX_CONNECTIONS_PER_CLIENT = 1_000  # one address cannot take every connection; 0: no cap
# Descriptors kept for everything but clients: the database, the zygote, webhook sends, logs;
# plus two per task a node runs at once (its channel, and a margin).
FD_RESERVE = 512
FD_LIMIT_WHEN_UNLIMITED = 1 << 20  # the kernel's usual nr_open, when the hard limit is "none"

CLI_REFRESH_SECONDS = 0.5  # `theazo submit --wait` redraws its bar at least this often

# --- Tasks ----------------------------------------------------------------------------------
DEFAULT_TASK_TIMEOUT_SECONDS = 3600.0  # an hour: long agent runs are normal, forever is a bug
MAX_TASK_TIMEOUT_SECONDS = 7 * 24 * 3600.0  # a week; beyond it a task is really a service
MAX_RETRIES = 100  # bounds a crash loop of a task that kills its worker every time
MAX_OUTPUT_BYTES = 1 * 1024 * 1024  # outputs travel in every get/wait/webhook; keep them small
MAX_MESSAGE_CHARS = 2_000  # a progress line, not a log
MAX_ERROR_MESSAGE_CHARS = 10_000  # an exception's message, kept whole unless it is a dump
MAX_METADATA_KEYS = 50  # Stripe's limits, which users already know
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_USER_ID_CHARS = 255
MAX_AGENT_NAME_CHARS = 100
# Arrays and objects inside one another in an input or output; pydantic's encoder, which
# answers every read, stops at 254, and a real agent's data is a few levels deep.
MAX_JSON_DEPTH = 64

# --- Sessions -------------------------------------------------------------------------------
MAX_RUNNING_PER_SESSION = 10  # one end user cannot take every sandbox of a small node
MAX_QUEUED_PER_SESSION = 10_000  # a large batch fits; a runaway loop is stopped
SESSION_QUEUE_FULL_RETRY_AFTER_SECONDS = 1  # a hint: tasks usually start within a second

# --- Cost -----------------------------------------------------------------------------------
COMPUTE_PRICE_PER_SECOND = 0.0  # free unless the operator prices compute
CURRENCY = "usd"
MICROS_PER_MINOR_UNIT = 1_000_000  # costs are summed exactly in millionths of a cent
# The largest amount of one charge, one price or one task's charges together: ten million
# dollars in cents, so that nine hundred thousand such tasks still sum inside 64-bit micros.
MAX_AMOUNT_MINOR_UNITS = 1_000_000_000

# --- Scheduler ------------------------------------------------------------------------------
CONCURRENCY = 8  # sandboxes per node; agents mostly wait on I/O, so more than the core count
SCHEDULING = "fair"  # sessions take turns; "fifo" is strict global submission order
CLAIM_SCAN_FACTOR = 2  # candidates a claim reads per free slot; widened when sessions are full
CLAIM_MAX_SCAN = 4096  # the widest a claim's candidate window grows in one transaction
LEASE_SECONDS = 25.0  # a node silent this long has lost its tasks; found within 30 s in all
HEARTBEAT_FRACTION = 0.1  # a node renews its leases ten times per lease: one late beat is fine
RESCUE_FRACTION = 0.2  # the rescuer looks every fifth of a lease: lost tasks are found by 1.2 L
HEARTBEAT_SECONDS = LEASE_SECONDS * HEARTBEAT_FRACTION
RESCUE_INTERVAL_SECONDS = LEASE_SECONDS * RESCUE_FRACTION
STALE_WORKER_LEASES = 10  # a node silent for ten leases is forgotten (its row deleted)
TASK_RETENTION_SECONDS = 30 * 24 * 3600.0  # finished tasks are kept a month, then pruned
PRUNE_INTERVAL_SECONDS = 60.0  # a finished task goes within a minute of its retention ending
PRUNE_BATCH = 500  # tasks deleted per transaction, so a backlog never holds the writer long
RESCUE_BATCH = 500  # lost tasks handled per transaction; the next round takes the rest
SAFETY_SWEEP_SECONDS = 1.0  # a missed wake-up costs at most this much latency, never a task
PROGRESS_FLUSH_SECONDS = 0.1  # at most ten progress writes a second per task
PROGRESS_FLUSH_BURST = 3  # writes at once before that: a report and its log line go out alone
FLUSH_GATHER_SECONDS = 0.002  # a write waits this long for what comes with it (a line, a report)
BUDGET_CHECK_SLACK_SECONDS = 0.005  # look just after compute alone would spend the budget
BUDGET_CHECK_SPACING = 0.1  # a session's budget is read at most ten times a second
STOP_RECORD_WAIT_SECONDS = 1.0  # a stop kills after its end is recorded, or after this at most
DRAIN_KILL_WAIT_SECONDS = 10.0  # after the grace, killed sandboxes must be gone by then
SHUTDOWN_GRACE_SECONDS = 30.0  # on SIGTERM, running tasks get this long to finish

# --- Events and logs ------------------------------------------------------------------------
STREAM_KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing a stream
STREAM_RETRY_MILLISECONDS = 1_000  # what a stream tells EventSource to wait before reconnecting
STREAM_PAGE_EVENTS = 500  # events a stream reads from the store at a time when it catches up
SUBSCRIPTION_MAX_PENDING = 1_000  # events held for a slow stream; past it, it reads the store
STREAM_TOKEN_TTL_SECONDS = 900.0  # a browser's stream token: 15 minutes unless asked otherwise
STREAM_TOKEN_MAX_TTL_SECONDS = 24 * 3600.0  # a token lives a day at most: it is a bearer secret
LOG_LIMIT_BYTES = 1024 * 1024  # a task's log holds 1 MiB; past it, lines are dropped and counted
LOG_MAX_LINE_CHARS = 16 * 1024  # a longer line is cut into pieces: one event stays small
LOG_DRAIN_SECONDS = 0.5  # an answer waits this long at most for what the agent printed before it
LOG_PARTIAL_LINE_SECONDS = 0.5  # text without a newline is sent once it waited this long
LOG_PAGE_DEFAULT = 100  # lines of a log page unless ?limit= says otherwise
LOG_PAGE_MAX = 1_000  # bounds the work of one log request
PROGRESS_EVENTS_PER_FLUSH = 20  # reports kept as events per write; older ones in a burst go

# --- Store failures -------------------------------------------------------------------------
STORE_RETRY_AFTER_SECONDS = 1  # a 503's hint: a dropped connection is back within a second
STORE_FULL_RETRY_AFTER_SECONDS = 30  # a full disk needs an operator; clients back off longer
STORE_RETRY_FIRST_SECONDS = 0.05  # a task's store call is tried again this soon at first
STORE_RETRY_MAX_SECONDS = 2.0  # and at least this often: settled within 2 s of the store's return
STORE_BUG_ATTEMPTS = 3  # an error that is not the database's is tried this often, then given up

# --- SQLite --------------------------------------------------------------------------------
SQLITE_CHECKPOINT_SECONDS = 0.5  # the WAL is copied into the database twice a second
SQLITE_WAL_RESTART_FRAMES = 1000  # a WAL still longer after a passive checkpoint is restarted
SQLITE_RESTART_WAIT_SECONDS = 5.0  # how long a restarting checkpoint waits for the writer
SQLITE_WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # after a checkpoint the WAL shrinks to this
SQLITE_CACHE_KIB = 32 * 1024  # SQLite's own default, 2 MiB, misses on a claim's scattered rows

# --- PostgreSQL -----------------------------------------------------------------------------
PG_POOL_MIN = 2  # connections a node keeps open
PG_POOL_MAX = 16  # enough for a node's API and workers; PostgreSQL's default allows 100
PG_CONNECT_TIMEOUT_SECONDS = 10.0  # a node that cannot reach its database says so and stops
PG_LISTEN_RETRY_SECONDS = 1.0  # back-off before reopening a dropped LISTEN connection
PG_NOTIFY_PAYLOAD_CHARS = 7_000  # below PostgreSQL's 8,000-byte limit on a NOTIFY payload
PG_EVENT_NOTICES_QUEUED = 10_000  # other nodes' event notices waiting for a read; then resync
PG_EVENT_RANGES_PER_READ = 500  # task ranges one read of other nodes' events takes at most
PG_POOL_WAIT_SECONDS = 10.0  # a request waits this long for a connection, then answers 503
PG_LISTEN_CHECK_SECONDS = 10.0  # a silent LISTEN connection is checked this often

# --- Sandbox --------------------------------------------------------------------------------
SANDBOX_SPARES = 2  # forked ahead, so a task does not wait for a fork; each runs one task only
SANDBOX_CPU_WATCH_SECONDS = 0.5  # how often a zygote reads its sandboxes' CPU time, if limited
SANDBOX_SPARES_AHEAD = 64  # ready ahead while tasks wait: a start is a message, not a clone
# Imported by each zygote where installed, so that an agent importing them inside its function
# pays nothing: HTTP and TLS, the model providers' clients.
SANDBOX_PRELOAD = ("ssl", "certifi", "httpx", "requests", "openai", "anthropic")
ZYGOTES_MAX = 4  # one per core by default, but past a few the kernel's own locks are the limit
KILL_GRACE_SECONDS = 1.0  # SIGTERM first so agents can clean up, SIGKILL after this
MEMORY_LIMIT_MB = 2048  # address space per sandbox; a Python agent with numpy fits
CPU_LIMIT_SECONDS = 0  # 0 = no CPU-time limit beyond the wall-clock timeout
ZYGOTE_SPAWNS_IN_FLIGHT = 8  # below the kernel's default datagram queue length of 10
ZYGOTE_SEND_RETRY_SECONDS = 0.01  # only reached if another process fills the queue
FRAME_OVERHEAD_BYTES = 64 * 1024  # a sandbox's message may be this much longer than its output
OUTPUT_CHUNK_BYTES = 64 * 1024  # one read of an agent's stdout or stderr: a pipe's capacity
OUTPUT_DRAIN_SECONDS = 0.1  # after a sandbox's exit, what its pipes still hold comes by then
OUTPUT_QUEUE_CHUNKS = 16  # read ahead of the log's writer; past it the agent waits on its pipe
SANDBOX_PROBE_TIMEOUT_SECONDS = 10.0  # the first sandbox, built at start to find the tier
SANDBOX_ISOLATION = "namespaces"  # the least a server accepts unless told otherwise
SANDBOX_NETWORK = "egress"  # public destinations only, through the server's proxy
SANDBOX_DISK_LIMIT_MB = 512  # workspace, /tmp and /dev/shm together: a tmpfs, so memory
SANDBOX_MAX_PROCESSES = 256  # a build with a few tools fits; a fork bomb stops here
SANDBOX_MAX_OPEN_FILES = 4096  # bounds the kernel memory one sandbox can pin with files
NODE_PROBE_SECONDS = 5.0  # once at start: does this host's Node take a flag sandboxes need
SANDBOX_ROOT_SERVER_UID = 65534  # nobody: who a root server's sandboxes are on the host
EGRESS_CONNECTIONS_PER_SANDBOX = 64  # open at once; a sandbox cannot use up the server's files
EGRESS_HEAD_TIMEOUT_SECONDS = 30.0  # a client sends its request line and headers by then
EGRESS_CONNECT_TIMEOUT_SECONDS = 10.0  # resolving and connecting to a destination
EGRESS_CHUNK_BYTES = 64 * 1024  # one read while relaying
# A sandbox's messages are read at most this fast: a flood slows the agent that sends it
# (its writes block), not the server's event loop. Reports are saved ten times a second at
# most anyway; an agent reporting more often than this waits a little for each report.
SANDBOX_MESSAGES_PER_SECOND = 10_000
SANDBOX_MESSAGE_BURST = 1_000  # read without pause before the rate applies
SANDBOX_EXIT_GRACE_SECONDS = 5.0  # after its final answer a sandbox exits within this, or is killed
SANDBOX_ENV_ALLOWLIST = (  # the only variables a sandbox inherits; nothing secret
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "PYTHONHASHSEED",
)

# --- Webhooks -------------------------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = 10.0  # a receiver should answer fast and do the work later
# Seconds before each retry: 11 attempts over about a day (23.7 h), then the delivery fails.
WEBHOOK_RETRY_SCHEDULE_SECONDS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
WEBHOOK_CONCURRENCY = 16  # parallel deliveries; one slow receiver cannot block the rest
WEBHOOK_MAX_RESPONSE_BYTES = 4 * 1024  # we keep the start of a response for debugging only
WEBHOOK_PROGRESS_MIN_INTERVAL_SECONDS = 1.0  # progress events are a trickle, not a firehose
WEBHOOK_SECRET_ROTATION_HOURS = 24.0  # the old secret keeps signing this long after a rotation
WEBHOOK_MAX_URL_CHARS = 2048  # what browsers and proxies reliably carry
WEBHOOK_LEASE_MARGIN_SECONDS = 30.0  # a claimed delivery stays ours past its time-out: to record it
WEBHOOK_RETRY_JITTER = 0.1  # ±10%: deliveries that failed together do not retry together
WEBHOOK_STORE_RETRY_SECONDS = 1.0  # after the database failed, the delivery worker looks again
WEBHOOK_RECHECK_SECONDS = 0.05  # a due delivery another node holds: look again soon, no spin
WEBHOOK_SHUTDOWN_GRACE_SECONDS = 2.0  # on stop, sends in flight may finish; the rest: due at once

# --- Dashboard ------------------------------------------------------------------------------
DASHBOARD_SESSION_HOURS = 12.0  # a sign-in lasts a working day; then the key is asked again
DASHBOARD_BULK_CANCEL_MAX = 1_000  # tasks one bulk cancel may stop: a count a person confirms
DASHBOARD_FAILURE_WINDOW_SECONDS = 3600.0  # "recent" failure rate: the tasks that ended this hour
DASHBOARD_SESSIONS_PAGE = 100  # sessions shown at once; the page asks for more
DASHBOARD_EVENTS_KEEPALIVE_SECONDS = 15.0  # the live list's stream says it is alive this often
TIMELINE_MAX_EVENTS = 200  # status changes shown of one task (a few per attempt)

# --- Model gateway --------------------------------------------------------------------------
MODEL_GATEWAY_PORT = 3129  # on each sandbox's own loopback, beside the egress proxy's 3128
MODEL_GATEWAY_MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a prompt with a few images fits
MODEL_GATEWAY_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a whole (not streamed) answer, read to meter
MODEL_GATEWAY_CONNECT_TIMEOUT_SECONDS = 10.0  # reaching a provider; past it the agent hears 502
MODEL_GATEWAY_READ_TIMEOUT_SECONDS = 120.0  # a provider silent this long (no byte) is given up
MODEL_GATEWAY_IDLE_SECONDS = 120.0  # a kept-alive connection with no request is closed after
MODEL_GATEWAY_HEAD_BYTES = 64 * 1024  # a request's line and headers; more is no model call
MODEL_GATEWAY_RATE_WINDOW_SECONDS = 60.0  # requests and tokens per minute: a sliding minute
# Rate windows are counted by the second: a call leaves the window within 1 s of its minute.
MODEL_GATEWAY_RATE_BUCKET_SECONDS = 1.0
MODEL_GATEWAY_CONNECTIONS = 256  # to the providers, for all sandboxes of a node together

# --- Framework adapters (theazo.integrations) ------------------------------------------------
STREAMED_TEXT_REPORT_SECONDS = 0.5  # text a model streams: the text so far, as a progress message
INTEGRATION_LOG_VALUE_CHARS = 200  # a tool's arguments or result, as far as a log line shows it

# --- Metrics and logs -----------------------------------------------------------------------
METRICS_PORT = 9464  # the port Prometheus exporters of this kind usually take (OpenTelemetry's)
# Agents choose their own error codes: past this many distinct ones, a node counts the rest
# as "other", so a hostile agent inventing a code per task cannot grow /metrics without end.
METRICS_MAX_ERROR_CODES = 100
METRICS_STORE_READ_SECONDS = 2.0  # a scrape's read of the queue; past it, those gauges are left out
# Histogram buckets (seconds), each spanning what is normal for what it measures.
METRICS_QUEUE_WAIT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip
METRICS_RUN_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 14400,
)  # fmt: skip
METRICS_WEBHOOK_ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From the event to its delivery, retries included (the retry schedule spans about a day).
METRICS_WEBHOOK_LATENCY_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 14400, 86400,
)  # fmt: skip
