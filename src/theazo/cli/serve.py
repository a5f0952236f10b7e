"""``theazo serve`` and ``theazo worker``: run a node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from theazo.agent import BUNDLED_AGENT_MODULES
from theazo.agents_file import AgentsFileError, load_agents_file
from theazo.cli.options import (
    api_keys,
    database_url,
    megabytes,
    positive_seconds,
    retention,
    schedule,
    seconds,
    size_bytes,
    whole_seconds,
)
from theazo.command_agents import CommandAgent, parse_declaration
from theazo.config import DEFAULT_DATABASE, NodeConfig, SandboxPolicy, default_zygotes
from theazo.core import defaults
from theazo.core.cost import to_micros
from theazo.core.durations import format_duration
from theazo.core.states import Scheduling
from theazo.gateway.prices import PriceError, PriceTable
from theazo.gateway.providers import GatewaySettings, parse_providers
from theazo.observability.address import MetricsAddress, parse_address
from theazo.observability.logs import LogFormat
from theazo.sandbox.egress import parse_rules
from theazo.sandbox.isolation import Network, Tier
from theazo.sandbox.view import Mount

err = Console(stderr=True)

Host = Annotated[str, typer.Option(envvar="THEAZO_HOST", help="Interface the API listens on.")]
Port = Annotated[int, typer.Option(envvar="THEAZO_PORT", min=0, max=65535)]
Database = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_DATABASE",
        callback=database_url,
        help="sqlite:///path/to/file.db (default: theazo.db here) or postgresql://…",
    ),
]
Agents = Annotated[
    str | None,
    typer.Option(
        envvar="THEAZO_AGENTS",
        help="Importable modules whose @agents are served, comma-separated; the bundled "
        "examples when not given.",
    ),
]
CommandAgentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--command-agent",
        envvar="THEAZO_COMMAND_AGENT",
        help="NAME=PATH: serve an executable in any language as the agent NAME, in the same "
        "sandbox (see docs/agents.md); the file is shown read-only inside it. Repeatable.",
    ),
]
AgentsFile = Annotated[
    Path | None,
    typer.Option(
        envvar="THEAZO_AGENTS_FILE",
        help="An agents.toml declaring command agents with a description and an input "
        "schema (see docs/agents.md).",
    ),
]
ApiKey = Annotated[
    list[str] | None,
    typer.Option(
        "--api-key",
        envvar="THEAZO_API_KEY",
        callback=api_keys,
        help="Register this key if it is not known yet (each in a project of its own). Repeatable.",
    ),
]
Concurrency = Annotated[
    int, typer.Option(envvar="THEAZO_CONCURRENCY", min=1, help="Tasks this node runs at once.")
]
Zygotes = Annotated[
    int,
    typer.Option(
        envvar="THEAZO_ZYGOTES",
        min=1,
        help="Processes that start sandboxes (each clones on one core); default: one per "
        f"core, at most {defaults.ZYGOTES_MAX}.",
    ),
]
MaxRunning = Annotated[
    int,
    typer.Option(envvar="THEAZO_MAX_RUNNING_PER_SESSION", min=0, help="Default session limit."),
]
MaxQueued = Annotated[
    int,
    typer.Option(envvar="THEAZO_MAX_QUEUED_PER_SESSION", min=0, help="Default session limit."),
]
ComputePrice = Annotated[
    float,
    typer.Option(
        envvar="THEAZO_COMPUTE_PRICE",
        min=0,
        help="Price of one second of sandbox wall time, in minor units (may be fractional).",
    ),
]
AllowPrivate = Annotated[
    bool,
    typer.Option(
        envvar="THEAZO_ALLOW_PRIVATE_WEBHOOKS",
        help="Development only: allow webhook URLs on loopback and private networks.",
    ),
]
SchedulingOption = Annotated[
    Scheduling,
    typer.Option(
        envvar="THEAZO_SCHEDULING",
        help="fair: sessions take turns within a priority; fifo: strict submission order.",
    ),
]
MemoryLimit = Annotated[
    str,
    typer.Option(envvar="THEAZO_MEMORY_LIMIT", help="Address space per sandbox (0 = none)."),
]
LogLimit = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_LOG_LIMIT",
        help="What one task's log keeps of its agent's stdout and stderr (e.g. 1M); the rest "
        "is dropped and counted.",
    ),
]
CpuLimit = Annotated[
    str, typer.Option(envvar="THEAZO_CPU_LIMIT", help="CPU time per sandbox (0 = none).")
]
TaskTimeout = Annotated[
    str,
    typer.Option(envvar="THEAZO_TASK_TIMEOUT", help="Wall-clock limit of a task by default."),
]
TaskRetention = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_TASK_RETENTION",
        help="How long a finished task is kept, with its events, log and webhook deliveries"
        " (e.g. 30d, 12h); 0 keeps them for ever.",
    ),
]
MaxWait = Annotated[
    str, typer.Option(envvar="THEAZO_MAX_WAIT", help="Longest time one long poll is held.")
]
KillGrace = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_KILL_GRACE",
        help="When a sandbox is stopped, how long after SIGTERM it gets SIGKILL.",
    ),
]
Grace = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_SHUTDOWN_GRACE",
        help="On SIGTERM, how long running tasks may go on before they fail.",
    ),
]
LeaseOption = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_LEASE",
        help="How long a silent node keeps its tasks before they count as lost.",
    ),
]
SandboxEnv = Annotated[
    list[str] | None,
    typer.Option(
        "--sandbox-env",
        envvar="THEAZO_SANDBOX_ENV",
        help="A variable sandboxes may see (e.g. OPENAI_API_KEY). Repeatable.",
    ),
]
SandboxPreload = Annotated[
    str,
    typer.Option(
        "--sandbox-preload",
        envvar="THEAZO_SANDBOX_PRELOAD",
        help="Modules each zygote imports ahead of any task where installed, so that an agent "
        "importing them in its function finds them loaded; comma-separated ('none' for none).",
    ),
]
SandboxRoot = Annotated[
    Path | None,
    typer.Option(envvar="THEAZO_SANDBOX_ROOT", help="Where sandboxes' working dirs are made."),
]
SandboxIsolation = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_SANDBOX_ISOLATION",
        help="The least isolation this node accepts (process, namespaces, landlock, cgroup); "
        "it refuses to start below it. /healthz says which tier is in force.",
    ),
]
SandboxNetwork = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_SANDBOX_NETWORK",
        help="none: no network; egress: public destinations only, through the server's "
        "proxy; host: the host's network (unsafe).",
    ),
]
SandboxAllowHost = Annotated[
    list[str] | None,
    typer.Option(
        "--sandbox-allow-host",
        envvar="THEAZO_SANDBOX_ALLOW_HOST",
        help="HOST[:PORT] sandboxes may reach through the egress proxy; once given, only the "
        "hosts named (loopback and private ones too). Repeatable.",
    ),
]
SandboxMount = Annotated[
    list[str] | None,
    typer.Option(
        "--sandbox-mount",
        envvar="THEAZO_SANDBOX_MOUNT",
        help="HOST_PATH[:SANDBOX_PATH][:ro|rw]: show a host path inside every sandbox "
        "(read-only unless rw). Widens the sandbox's boundary. Repeatable.",
    ),
]
SandboxDisk = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_SANDBOX_DISK_LIMIT",
        help="Size of a sandbox's workspace, /tmp and /dev/shm together (memory-backed).",
    ),
]
SandboxProcesses = Annotated[
    int,
    typer.Option(
        envvar="THEAZO_SANDBOX_MAX_PROCESSES",
        min=1,
        help="Processes (and threads) one sandbox may have at once.",
    ),
]
SqliteSync = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_SQLITE_SYNCHRONOUS",
        help="NORMAL survives a crash of the process; FULL also a power loss, slower.",
    ),
]
LogLevel = Annotated[str, typer.Option(envvar="THEAZO_LOG_LEVEL")]
LogFormatOption = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_LOG_FORMAT",
        help="text, or json: one JSON object per line, with the task's ids (docs/operations.md).",
    ),
]
MetricsOption = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        envvar="THEAZO_METRICS",
        help="HOST:PORT (or PORT, on 127.0.0.1) to serve Prometheus metrics at /metrics, "
        f"e.g. 127.0.0.1:{defaults.METRICS_PORT}; off when not given. Loopback only unless "
        "--metrics-allow-remote.",
    ),
]
MetricsAllowRemote = Annotated[
    bool,
    typer.Option(
        envvar="THEAZO_METRICS_ALLOW_REMOTE",
        help="Let --metrics listen beyond loopback: they are unauthenticated and show the "
        "whole deployment, so only where a firewall keeps others out.",
    ),
]
MaxConnections = Annotated[
    int | None,
    typer.Option(
        envvar="THEAZO_MAX_CONNECTIONS",
        min=1,
        help="HTTP connections open at once (default: as many as the open-files limit allows, "
        f"up to {defaults.HTTP_MAX_CONNECTIONS:,}).",
    ),
]
MaxConnectionsPerClient = Annotated[
    int,
    typer.Option(
        envvar="THEAZO_MAX_CONNECTIONS_PER_CLIENT",
        min=0,
        help="HTTP connections one client address may hold open (0: no cap; behind a proxy, "
        "every client has the proxy's address).",
    ),
]
HttpReadTimeout = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_HTTP_READ_TIMEOUT",
        help="How long a client may take to send a request's headers, or pause in its body.",
    ),
]
WebhookTimeout = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_WEBHOOK_TIMEOUT",
        help="How long one webhook attempt may take (connect, send, answer).",
    ),
]
WebhookRetrySchedule = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_WEBHOOK_RETRY_SCHEDULE",
        help="Waits before each retry of a failed webhook, comma-separated (e.g. 5s,30s,2m); "
        "after the last, the delivery fails.",
    ),
]
WebhookSecretOverlap = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_WEBHOOK_SECRET_OVERLAP",
        help="After a webhook secret rotation, how long the old secret keeps signing too.",
    ),
]
LlmProvider = Annotated[
    list[str] | None,
    typer.Option(
        "--llm-provider",
        envvar="THEAZO_LLM_PROVIDER",
        help="NAME=KIND,BASE_URL,KEY_ENV: a model provider sandboxes reach through the model "
        "gateway (KIND openai or anthropic; the key is read from the server's variable KEY_ENV "
        "and never shown to a sandbox), e.g. openai=openai,https://api.openai.com/v1,"
        "OPENAI_API_KEY. Repeatable; in the variable, separated by spaces.",
    ),
]
LlmPrices = Annotated[
    Path | None,
    typer.Option(
        envvar="THEAZO_LLM_PRICES",
        help="A TOML price table laid over the bundled one (docs/agents.md, 'Model calls').",
    ),
]
LlmRequestsPerMinute = Annotated[
    int,
    typer.Option(
        envvar="THEAZO_LLM_REQUESTS_PER_MINUTE",
        min=0,
        help="Model calls one session may make a minute (0: no limit); past it, 429.",
    ),
]
LlmTokensPerMinute = Annotated[
    int,
    typer.Option(
        envvar="THEAZO_LLM_TOKENS_PER_MINUTE",
        min=0,
        help="Model tokens one session may use a minute (0: no limit); past it, 429.",
    ),
]
LlmTaskSpendCap = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_LLM_TASK_SPEND_CAP",
        help="What one task's model calls may cost, in minor units (0: no cap); past it, 402.",
    ),
]
LlmTimeout = Annotated[
    str,
    typer.Option(
        envvar="THEAZO_LLM_TIMEOUT",
        help="How long a provider may be silent (no byte of its answer) before the agent "
        "hears 504.",
    ),
]
DEFAULT_LLM_TIMEOUT = format_duration(defaults.MODEL_GATEWAY_READ_TIMEOUT_SECONDS)
DEFAULT_WEBHOOK_TIMEOUT = format_duration(defaults.WEBHOOK_TIMEOUT_SECONDS)
DEFAULT_TASK_RETENTION = f"{defaults.TASK_RETENTION_SECONDS / 86400:g}d"
DEFAULT_WEBHOOK_RETRY_SCHEDULE = ",".join(
    format_duration(s) for s in defaults.WEBHOOK_RETRY_SCHEDULE_SECONDS
)
DEFAULT_WEBHOOK_SECRET_OVERLAP = format_duration(defaults.WEBHOOK_SECRET_ROTATION_HOURS * 3600)


def serve(
    host: Host = defaults.HOST,
    port: Port = defaults.PORT,
    database: Database = DEFAULT_DATABASE,
    agents: Agents = None,
    command_agent: CommandAgentOption = None,
    agents_file: AgentsFile = None,
    api_key: ApiKey = None,
    concurrency: Concurrency = defaults.CONCURRENCY,
    zygotes: Zygotes = default_zygotes(),
    max_running_per_session: MaxRunning = defaults.MAX_RUNNING_PER_SESSION,
    max_queued_per_session: MaxQueued = defaults.MAX_QUEUED_PER_SESSION,
    compute_price: ComputePrice = defaults.COMPUTE_PRICE_PER_SECOND,
    allow_private_webhooks: AllowPrivate = False,
    scheduling: SchedulingOption = Scheduling.FAIR,
    memory_limit: MemoryLimit = f"{defaults.MEMORY_LIMIT_MB}M",
    log_limit: LogLimit = f"{defaults.LOG_LIMIT_BYTES // 2**20}M",
    cpu_limit: CpuLimit = str(defaults.CPU_LIMIT_SECONDS),
    task_timeout: TaskTimeout = f"{defaults.DEFAULT_TASK_TIMEOUT_SECONDS:g}",
    max_wait: MaxWait = f"{defaults.MAX_WAIT_SECONDS:g}",
    shutdown_grace: Grace = f"{defaults.SHUTDOWN_GRACE_SECONDS:g}",
    kill_grace: KillGrace = f"{defaults.KILL_GRACE_SECONDS:g}",
    lease: LeaseOption = f"{defaults.LEASE_SECONDS:g}",
    task_retention: TaskRetention = DEFAULT_TASK_RETENTION,
    sandbox_env: SandboxEnv = None,
    sandbox_preload: SandboxPreload = ",".join(defaults.SANDBOX_PRELOAD),
    sandbox_root: SandboxRoot = None,
    sandbox_isolation: SandboxIsolation = defaults.SANDBOX_ISOLATION,
    sandbox_network: SandboxNetwork = defaults.SANDBOX_NETWORK,
    sandbox_allow_host: SandboxAllowHost = None,
    sandbox_mount: SandboxMount = None,
    sandbox_disk_limit: SandboxDisk = f"{defaults.SANDBOX_DISK_LIMIT_MB}M",
    sandbox_max_processes: SandboxProcesses = defaults.SANDBOX_MAX_PROCESSES,
    sqlite_synchronous: SqliteSync = "NORMAL",
    webhook_timeout: WebhookTimeout = DEFAULT_WEBHOOK_TIMEOUT,
    webhook_retry_schedule: WebhookRetrySchedule = DEFAULT_WEBHOOK_RETRY_SCHEDULE,
    webhook_secret_overlap: WebhookSecretOverlap = DEFAULT_WEBHOOK_SECRET_OVERLAP,
    llm_provider: LlmProvider = None,
    llm_prices: LlmPrices = None,
    llm_requests_per_minute: LlmRequestsPerMinute = 0,
    llm_tokens_per_minute: LlmTokensPerMinute = 0,
    llm_task_spend_cap: LlmTaskSpendCap = "0",
    llm_timeout: LlmTimeout = DEFAULT_LLM_TIMEOUT,
    workers: Annotated[
        bool, typer.Option(envvar="THEAZO_WORKERS", help="--no-workers: serve the API only.")
    ] = True,
    max_connections: MaxConnections = None,
    max_connections_per_client: MaxConnectionsPerClient = defaults.HTTP_MAX_CONNECTIONS_PER_CLIENT,
    http_read_timeout: HttpReadTimeout = f"{defaults.HTTP_READ_TIMEOUT_SECONDS:g}s",
    log_level: LogLevel = "info",
    log_format: LogFormatOption = "text",
    metrics: MetricsOption = None,
    metrics_allow_remote: MetricsAllowRemote = False,
) -> None:
    """Run the API server and its workers (on an embedded SQLite database by default)."""
    config = NodeConfig(
        host=host,
        port=port,
        database=database,
        api_keys=tuple(api_key or ()),
        run_workers=workers,
        task_timeout_seconds=seconds(task_timeout),
        max_wait_seconds=seconds(max_wait),
        sqlite_synchronous=sqlite_synchronous,
        webhook_secret_overlap_seconds=seconds(webhook_secret_overlap),
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        http_read_timeout_seconds=positive_seconds(http_read_timeout),
        **_running_tasks(
            agents=agents,
            command_agents=command_agent,
            agents_file=agents_file,
            concurrency=concurrency,
            zygotes=zygotes,
            max_running_per_session=max_running_per_session,
            max_queued_per_session=max_queued_per_session,
            compute_price=compute_price,
            scheduling=scheduling,
            memory_limit=memory_limit,
            log_limit=log_limit,
            cpu_limit=cpu_limit,
            shutdown_grace=shutdown_grace,
            kill_grace=kill_grace,
            lease=lease,
            task_retention=task_retention,
            sandbox_env=sandbox_env,
            sandbox_preload=sandbox_preload,
            sandbox_root=sandbox_root,
            sandbox=sandbox_policy(
                sandbox_isolation,
                sandbox_network,
                sandbox_allow_host,
                sandbox_mount,
                sandbox_disk_limit,
                sandbox_max_processes,
            ),
            allow_private_webhooks=allow_private_webhooks,
            webhook_timeout=webhook_timeout,
            webhook_retry_schedule=webhook_retry_schedule,
            log_level=log_level,
            gateway=_gateway(
                llm_provider,
                llm_prices,
                llm_requests_per_minute,
                llm_tokens_per_minute,
                llm_task_spend_cap,
                llm_timeout,
            ),
            log_format=log_format,
            metrics=metrics,
            metrics_allow_remote=metrics_allow_remote,
        ),
    )
    _run(config)


def worker(
    database: Annotated[
        str,
        typer.Option(
            envvar="THEAZO_DATABASE",
            callback=database_url,
            help="The shared database: postgresql://user@host/db",
        ),
    ],
    agents: Agents = None,
    command_agent: CommandAgentOption = None,
    agents_file: AgentsFile = None,
    concurrency: Concurrency = defaults.CONCURRENCY,
    zygotes: Zygotes = default_zygotes(),
    max_running_per_session: MaxRunning = defaults.MAX_RUNNING_PER_SESSION,
    max_queued_per_session: MaxQueued = defaults.MAX_QUEUED_PER_SESSION,
    compute_price: ComputePrice = defaults.COMPUTE_PRICE_PER_SECOND,
    scheduling: SchedulingOption = Scheduling.FAIR,
    memory_limit: MemoryLimit = f"{defaults.MEMORY_LIMIT_MB}M",
    log_limit: LogLimit = f"{defaults.LOG_LIMIT_BYTES // 2**20}M",
    cpu_limit: CpuLimit = str(defaults.CPU_LIMIT_SECONDS),
    shutdown_grace: Grace = f"{defaults.SHUTDOWN_GRACE_SECONDS:g}",
    kill_grace: KillGrace = f"{defaults.KILL_GRACE_SECONDS:g}",
    lease: LeaseOption = f"{defaults.LEASE_SECONDS:g}",
    task_retention: TaskRetention = DEFAULT_TASK_RETENTION,
    sandbox_env: SandboxEnv = None,
    sandbox_preload: SandboxPreload = ",".join(defaults.SANDBOX_PRELOAD),
    sandbox_root: SandboxRoot = None,
    sandbox_isolation: SandboxIsolation = defaults.SANDBOX_ISOLATION,
    sandbox_network: SandboxNetwork = defaults.SANDBOX_NETWORK,
    sandbox_allow_host: SandboxAllowHost = None,
    sandbox_mount: SandboxMount = None,
    sandbox_disk_limit: SandboxDisk = f"{defaults.SANDBOX_DISK_LIMIT_MB}M",
    sandbox_max_processes: SandboxProcesses = defaults.SANDBOX_MAX_PROCESSES,
    allow_private_webhooks: AllowPrivate = False,
    webhook_timeout: WebhookTimeout = DEFAULT_WEBHOOK_TIMEOUT,
    webhook_retry_schedule: WebhookRetrySchedule = DEFAULT_WEBHOOK_RETRY_SCHEDULE,
    llm_provider: LlmProvider = None,
    llm_prices: LlmPrices = None,
    llm_requests_per_minute: LlmRequestsPerMinute = 0,
    llm_tokens_per_minute: LlmTokensPerMinute = 0,
    llm_task_spend_cap: LlmTaskSpendCap = "0",
    llm_timeout: LlmTimeout = DEFAULT_LLM_TIMEOUT,
    log_level: LogLevel = "info",
    log_format: LogFormatOption = "text",
    metrics: MetricsOption = None,
    metrics_allow_remote: MetricsAllowRemote = False,
) -> None:
    """Run tasks from a shared PostgreSQL queue, serving no API (a scale-out worker node)."""
    if database.startswith("sqlite"):
        err.print(
            "[red]theazo: a worker node needs the shared PostgreSQL database; on SQLite, "
            "`theazo serve` runs the workers itself[/red]",
            highlight=False,
        )
        raise typer.Exit(1)
    _run(
        NodeConfig(
            database=database,
            run_api=False,
            **_running_tasks(
                agents=agents,
                command_agents=command_agent,
                agents_file=agents_file,
                concurrency=concurrency,
                zygotes=zygotes,
                max_running_per_session=max_running_per_session,
                max_queued_per_session=max_queued_per_session,
                compute_price=compute_price,
                scheduling=scheduling,
                memory_limit=memory_limit,
                log_limit=log_limit,
                cpu_limit=cpu_limit,
                shutdown_grace=shutdown_grace,
                kill_grace=kill_grace,
                lease=lease,
                task_retention=task_retention,
                sandbox_env=sandbox_env,
                sandbox_preload=sandbox_preload,
                sandbox_root=sandbox_root,
                sandbox=sandbox_policy(
                    sandbox_isolation,
                    sandbox_network,
                    sandbox_allow_host,
                    sandbox_mount,
                    sandbox_disk_limit,
                    sandbox_max_processes,
                ),
                allow_private_webhooks=allow_private_webhooks,
                webhook_timeout=webhook_timeout,
                webhook_retry_schedule=webhook_retry_schedule,
                log_level=log_level,
                gateway=_gateway(
                    llm_provider,
                    llm_prices,
                    llm_requests_per_minute,
                    llm_tokens_per_minute,
                    llm_task_spend_cap,
                    llm_timeout,
                ),
                log_format=log_format,
                metrics=metrics,
                metrics_allow_remote=metrics_allow_remote,
            ),
        )
    )


def _running_tasks(
    *,
    agents: str | None,
    command_agents: list[str] | None,
    agents_file: Path | None,
    concurrency: int,
    zygotes: int,
    max_running_per_session: int,
    max_queued_per_session: int,
    compute_price: float,
    scheduling: Scheduling,
    memory_limit: str,
    log_limit: str,
    cpu_limit: str,
    shutdown_grace: str,
    kill_grace: str,
    lease: str,
    task_retention: str,
    sandbox_env: list[str] | None,
    sandbox_preload: str,
    sandbox_root: Path | None,
    sandbox: SandboxPolicy,
    allow_private_webhooks: bool,
    webhook_timeout: str,
    webhook_retry_schedule: str,
    log_level: str,
    gateway: GatewaySettings | None,
    log_format: str,
    metrics: str | None,
    metrics_allow_remote: bool,
) -> dict[str, Any]:
    """The settings of a node that runs tasks and sends webhooks: both commands take them."""
    if gateway is not None:
        _check_gateway_fits(gateway, sandbox, sandbox_env or [])
    return {
        "agent_modules": modules_of(agents),
        "command_agents": command_agents_of(command_agents, agents_file),
        "concurrency": concurrency,
        "zygotes": zygotes,
        "max_running_per_session": max_running_per_session,
        "max_queued_per_session": max_queued_per_session,
        "compute_price": compute_price,
        "scheduling": scheduling,
        "memory_limit_mb": megabytes(memory_limit),
        "log_limit_bytes": size_bytes(log_limit),
        "cpu_limit_seconds": whole_seconds(cpu_limit),
        "shutdown_grace_seconds": seconds(shutdown_grace),
        "kill_grace_seconds": seconds(kill_grace),
        "lease_seconds": seconds(lease),
        "task_retention_seconds": retention(task_retention),
        "sandbox_env": tuple(sandbox_env or ()),
        "sandbox_preload": preload_modules(sandbox_preload),
        "sandbox_root": sandbox_root,
        "sandbox": sandbox,
        "allow_private_webhooks": allow_private_webhooks,
        "webhook_timeout_seconds": positive_seconds(webhook_timeout),
        "webhook_retry_schedule": schedule(webhook_retry_schedule),
        "log_level": log_level.lower(),
        "gateway": gateway,
        "log_format": _log_format(log_format),
        "metrics": _metrics_address(metrics, allow_remote=metrics_allow_remote),
    }


def _log_format(value: str) -> LogFormat:
    try:
        return LogFormat(value.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not text or json", param_hint="--log-format"
        ) from None


def _metrics_address(value: str | None, *, allow_remote: bool) -> MetricsAddress | None:
    if value is None or not value.strip():
        return None
    try:
        address = parse_address(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--metrics") from None
    if not address.is_loopback and not allow_remote:
        raise typer.BadParameter(
            f"{address} is not a loopback address: metrics show the whole deployment to "
            "anyone who can connect, so add --metrics-allow-remote if a firewall keeps "
            "others out",
            param_hint="--metrics",
        )
    return address


def sandbox_policy(
    isolation: str,
    network: str,
    allow_hosts: list[str] | None,
    mounts: list[str] | None,
    disk_limit: str,
    max_processes: int,
) -> SandboxPolicy:
    """The sandbox options, checked: each mistake is one line naming the option."""
    try:
        tier = Tier.parse(isolation)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sandbox-isolation") from None
    try:
        mode = Network(network.strip().lower())
    except ValueError:
        raise typer.BadParameter(
            f"{network!r} is not none, egress or host", param_hint="--sandbox-network"
        ) from None
    try:
        rules = parse_rules(allow_hosts or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sandbox-allow-host") from None
    try:
        shown = tuple(Mount.parse(spec) for spec in mounts or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sandbox-mount") from None
    disk_mb = megabytes(disk_limit)
    if disk_mb < 1:
        raise typer.BadParameter("must be at least 1M", param_hint="--sandbox-disk-limit")
    return SandboxPolicy(
        minimum=tier,
        network=mode,
        allow_hosts=rules,
        mounts=shown,
        disk_limit_mb=disk_mb,
        max_processes=max_processes,
    )


def _gateway(
    providers: list[str] | None,
    prices: Path | None,
    requests_per_minute: int,
    tokens_per_minute: int,
    task_spend_cap: str,
    timeout: str,
) -> GatewaySettings | None:
    """The model gateway's options, checked: each mistake is one line naming the option."""
    try:
        declared = parse_providers(_split_specs(providers))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--llm-provider") from None
    if not declared:
        return None
    try:
        table = PriceTable.load(prices)
    except PriceError as exc:
        raise typer.BadParameter(str(exc), param_hint="--llm-prices") from None
    try:
        cap = to_micros(task_spend_cap)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--llm-task-spend-cap") from None
    if cap < 0:
        raise typer.BadParameter("cannot be negative", param_hint="--llm-task-spend-cap")
    return GatewaySettings(
        providers=declared,
        prices=table,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        task_spend_cap_micros=cap,
        read_timeout_seconds=positive_seconds(timeout),
    )


def _split_specs(specs: list[str] | None) -> list[str]:
    """Repeated options, or one variable with several separated by spaces."""
    return [part for spec in specs or () for part in spec.split()]


def _check_gateway_fits(
    gateway: GatewaySettings, sandbox: SandboxPolicy, sandbox_env: list[str]
) -> None:
    hint = "--llm-provider"
    if sandbox.network is not Network.EGRESS:
        raise typer.BadParameter(
            "the model gateway needs --sandbox-network egress (sandboxes reach it on their "
            "own loopback, through the egress proxy)",
            param_hint=hint,
        )
    for provider in gateway.providers:
        if provider.key_env in sandbox_env:
            raise typer.BadParameter(
                f"{provider.key_env} holds the key of {provider.name!r} and is also given to "
                "sandboxes with --sandbox-env; the gateway exists so that they never hold it",
                param_hint=hint,
            )
    for rule in sandbox.allow_hosts:
        if rule.port == gateway.port:
            raise typer.BadParameter(
                f"--sandbox-allow-host {rule} takes port {gateway.port}, the model gateway's",
                param_hint=hint,
            )


def command_agents_of(
    specs: list[str] | None, agents_file: Path | None = None
) -> tuple[CommandAgent, ...]:
    """The command agents of ``--agents-file`` then ``--command-agent``; a mistake in the
    file is one line on stderr and exit status 2, as a wrong option is."""
    declared: dict[str, CommandAgent] = {}
    if agents_file is not None:
        try:
            declared = {a.name: a for a in load_agents_file(agents_file)}
        except AgentsFileError as exc:
            err.print(f"theazo: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
    named: set[str] = set()
    for spec in specs or ():
        try:
            name, path = parse_declaration(spec)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--command-agent") from None
        if name in named:
            raise typer.BadParameter(f"{name!r} is declared twice", param_hint="--command-agent")
        if name in declared:
            raise typer.BadParameter(
                f"{name!r} is declared in {agents_file} too", param_hint="--command-agent"
            )
        named.add(name)
        declared[name] = CommandAgent(name, path)
    return tuple(declared.values())


def _module_names(value: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in value.split(",") if m.strip())


def modules_of(agents: str | None) -> tuple[str, ...]:
    return _module_names(agents) if agents else BUNDLED_AGENT_MODULES


def preload_modules(value: str) -> tuple[str, ...]:
    """``--sandbox-preload``'s modules; ``none`` (or nothing: '' on the command line, since an
    empty environment variable counts as unset) for none."""
    return () if value.strip().lower() == "none" else _module_names(value)


def _run(config: NodeConfig) -> None:
    # Imported here: the web stack is heavy, and other commands (keys, submit) need none of it.
    from theazo.observability.logs import configure as configure_logging
    from theazo.server import StartupError, run

    configure_logging(LogFormat(config.log_format), config.log_level)
    console = Console()
    try:
        run(config, lambda text: console.print(text, highlight=False))
    except StartupError as exc:
        err.print(f"[red]theazo: {exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
