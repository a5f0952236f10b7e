"""A node's configuration: what ``theazo serve`` and ``theazo worker`` options set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from theazo.agent import BUNDLED_AGENT_MODULES
from theazo.command_agents import CommandAgent
from theazo.core import cost, defaults
from theazo.core.models import Limits
from theazo.core.states import Scheduling
from theazo.gateway.providers import GatewaySettings
from theazo.observability.address import MetricsAddress
from theazo.sandbox.egress import EgressPolicy, HostRule, ServiceHandler
from theazo.sandbox.isolation import IsolationSettings, Network, Tier
from theazo.sandbox.limits import ResourceLimits
from theazo.sandbox.pool import SandboxSettings
from theazo.sandbox.view import Mount

DEFAULT_DATABASE = "sqlite:///theazo.db"


def default_zygotes() -> int:
    """One zygote per core (a zygote clones sandboxes on one), up to ZYGOTES_MAX."""
    return max(1, min(defaults.ZYGOTES_MAX, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What a deployment demands of and allows its sandboxes (``--sandbox-…``)."""

    minimum: Tier = Tier.parse(defaults.SANDBOX_ISOLATION)
    network: Network = Network(defaults.SANDBOX_NETWORK)
    allow_hosts: tuple[HostRule, ...] = ()
    mounts: tuple[Mount, ...] = ()
    disk_limit_mb: int = defaults.SANDBOX_DISK_LIMIT_MB
    max_processes: int = defaults.SANDBOX_MAX_PROCESSES


@dataclass(frozen=True, slots=True)
class NodeConfig:
    host: str = defaults.HOST
    port: int = defaults.PORT
    database: str = DEFAULT_DATABASE
    agent_modules: tuple[str, ...] = BUNDLED_AGENT_MODULES
    command_agents: tuple[CommandAgent, ...] = ()
    api_keys: tuple[str, ...] = ()
    run_api: bool = True
    run_workers: bool = True
    concurrency: int = defaults.CONCURRENCY
    zygotes: int = field(default_factory=lambda: default_zygotes())
    max_running_per_session: int = defaults.MAX_RUNNING_PER_SESSION
    max_queued_per_session: int = defaults.MAX_QUEUED_PER_SESSION
    compute_price: float = defaults.COMPUTE_PRICE_PER_SECOND  # minor units per second
    scheduling: Scheduling = Scheduling.FAIR
    allow_private_webhooks: bool = False
    memory_limit_mb: int = defaults.MEMORY_LIMIT_MB
    log_limit_bytes: int = defaults.LOG_LIMIT_BYTES
    cpu_limit_seconds: int = defaults.CPU_LIMIT_SECONDS
    task_timeout_seconds: float = defaults.DEFAULT_TASK_TIMEOUT_SECONDS
    max_wait_seconds: float = defaults.MAX_WAIT_SECONDS
    kill_grace_seconds: float = defaults.KILL_GRACE_SECONDS
    shutdown_grace_seconds: float = defaults.SHUTDOWN_GRACE_SECONDS
    lease_seconds: float = defaults.LEASE_SECONDS
    task_retention_seconds: float = defaults.TASK_RETENTION_SECONDS  # 0: kept for ever
    sandbox_env: tuple[str, ...] = ()
    sandbox_preload: tuple[str, ...] = defaults.SANDBOX_PRELOAD
    sandbox_root: Path | None = None
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    sqlite_synchronous: str = "NORMAL"
    log_level: str = "info"
    log_format: str = "text"  # or "json" (observability/logs.py)
    metrics: MetricsAddress | None = None  # where /metrics is served; None: nowhere
    max_connections: int | None = None  # None: as many as the open-files limit allows
    max_connections_per_client: int = defaults.HTTP_MAX_CONNECTIONS_PER_CLIENT
    http_read_timeout_seconds: float = defaults.HTTP_READ_TIMEOUT_SECONDS
    webhook_retry_schedule: tuple[float, ...] = defaults.WEBHOOK_RETRY_SCHEDULE_SECONDS
    webhook_timeout_seconds: float = defaults.WEBHOOK_TIMEOUT_SECONDS
    webhook_secret_overlap_seconds: float = defaults.WEBHOOK_SECRET_ROTATION_HOURS * 3600
    gateway: GatewaySettings | None = None  # the model gateway (--llm-provider), if any

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds * defaults.HEARTBEAT_FRACTION

    @property
    def rescue_interval_seconds(self) -> float:
        return self.lease_seconds * defaults.RESCUE_FRACTION

    @property
    def compute_price_micros(self) -> int:
        return cost.to_micros(self.compute_price)

    @property
    def default_limits(self) -> Limits:
        return Limits(
            max_running=self.max_running_per_session,
            max_queued=self.max_queued_per_session,
            budget=None,
        )


def sandbox_settings(
    config: NodeConfig,
    *,
    hidden_paths: tuple[str, ...],
    zygotes: int,
    spares: int,
    python_path: tuple[str, ...] = (),
    preload: bool = True,
    services: Mapping[int, ServiceHandler] | None = None,
) -> SandboxSettings:
    """The sandboxes a node's options ask for: a server's, or one local run's
    (``local_run.py``). ``python_path`` is added to where the agents are imported from;
    ``services`` are the node's own on sandboxes' loopback ports (the model gateway's)."""
    services = services or {}
    return SandboxSettings(
        agent_modules=config.agent_modules,
        command_agents=config.command_agents,
        limits=ResourceLimits(config.memory_limit_mb, config.cpu_limit_seconds),
        kill_grace_seconds=config.kill_grace_seconds,
        workdir_root=config.sandbox_root,
        passthrough_env=config.sandbox_env,
        isolation=IsolationSettings(
            minimum=config.sandbox.minimum,
            network=config.sandbox.network,
            # Each command agent's executable is shown, read-only, alone or with the files
            # its declaration names.
            mounts=config.sandbox.mounts
            + tuple(
                Mount(source, target)
                for command in config.command_agents
                for source, target in command.shown_files()
            ),
            disk_limit_mb=config.sandbox.disk_limit_mb,
            max_processes=config.sandbox.max_processes,
            hidden_paths=hidden_paths,
            forwarded_ports=(*EgressPolicy(config.sandbox.allow_hosts).forwards, *services),
            environment=tuple(
                () if config.gateway is None else config.gateway.sandbox_environment().items()
            ),
        ),
        egress=EgressPolicy(config.sandbox.allow_hosts),
        services=services,
        zygotes=zygotes,
        spares=spares,
        python_path=(os.getcwd(), *python_path),
        preload=config.sandbox_preload if preload else (),
    )
