"""A Theazo node: the composition root that builds the store, sandboxes, scheduler and
service from a ``NodeConfig``, and starts and stops them in order.

    HTTP (api/) → TaskService (core/) → Store (store/) ← Dispatcher (scheduler/) → SandboxPool
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping

from theazo.config import NodeConfig, sandbox_settings
from theazo.core import defaults, ids
from theazo.core.models import AgentInfo
from theazo.core.service import ServiceSettings, TaskService
from theazo.gateway.accounts import TaskAccount
from theazo.gateway.server import ModelGateway
from theazo.observability.logs import LogFormat, TransitionLog
from theazo.observability.metrics import Metrics, Readings
from theazo.sandbox.pool import SandboxPool
from theazo.scheduler.dispatcher import Dispatcher, DispatchSettings
from theazo.scheduler.execution import RunSettings
from theazo.scheduler.maintenance import Heartbeat, PeriodicDuty, Pruner, Rescuer
from theazo.store import Store, StoreSettings, create_store, sqlite_path
from theazo.webhooks.delivery import DeliverySettings, DeliveryWorker
from theazo.webhooks.urls import validate_webhook_url

log = logging.getLogger("theazo")

Announce = Callable[[str], None]


class Node:
    def __init__(self, config: NodeConfig, announce: Announce | None = None) -> None:
        self.config = config
        self.announce = announce or (lambda text: log.info("%s", text))
        self.store: Store = create_store(
            config.database,
            StoreSettings(
                default_limits=config.default_limits,
                scheduling=config.scheduling,
                compute_price_micros=config.compute_price_micros,
                lease_seconds=config.lease_seconds,
            ),
            sqlite_synchronous=config.sqlite_synchronous,
        )
        self.gateway = (
            None
            if config.gateway is None
            else ModelGateway(config.gateway, self._account, rates=self.store)
        )
        services = {} if self.gateway is None else {self.gateway.port: self.gateway.serve}
        self.pool = SandboxPool(
            sandbox_settings(
                config,
                hidden_paths=_database_files(config.database),
                zygotes=config.zygotes if config.run_workers else 1,
                spares=min(config.concurrency, defaults.SANDBOX_SPARES)
                if config.run_workers
                else 0,
                services=services,
            )
        )
        self.dispatcher: Dispatcher | None = None
        self.duties: list[PeriodicDuty] = []
        self.service = TaskService(
            self.store,
            self.catalogue,
            functools.partial(validate_webhook_url, allow_private=config.allow_private_webhooks),
            ServiceSettings(
                default_task_timeout_seconds=config.task_timeout_seconds,
                max_wait_seconds=config.max_wait_seconds,
                default_wait_seconds=min(
                    ServiceSettings().default_wait_seconds, config.max_wait_seconds
                ),
                webhook_secret_overlap_seconds=config.webhook_secret_overlap_seconds,
            ),
        )
        self.metrics = self._metrics() if config.metrics is not None else None
        # Every node sends webhooks, API-only and worker nodes alike.
        self.deliveries = DeliveryWorker(
            self.store,
            DeliverySettings(
                timeout_seconds=config.webhook_timeout_seconds,
                retry_schedule=config.webhook_retry_schedule,
                allow_private=config.allow_private_webhooks,
                safety_sweep_seconds=self.store.safety_sweep_seconds,
            ),
            on_attempt=None if self.metrics is None else self.metrics.webhook_attempt,
        )
        json_logs = config.log_format == LogFormat.JSON
        transitions = TransitionLog(logging.INFO if json_logs else logging.DEBUG)
        self.store.events.on_committed_here(transitions.on_committed)

    def _metrics(self) -> Metrics:
        """The node's metrics, fed by the transitions it commits; the gauges read at scrape
        time from what holds them."""
        metrics = Metrics(
            Readings(
                unfinished=self.store.unfinished_by_priority,
                spare_sandboxes=lambda: self.pool.spares_ready,
                held_waits=lambda: self.service.waits_held,
                open_streams=lambda: self.store.events.subscription_count,
                slots=self._slots,
            )
        )
        self.store.events.on_committed_here(metrics.on_committed)
        return metrics

    def _slots(self) -> tuple[int, int] | None:
        """(used, total) task slots; None on a node that runs no tasks."""
        if self.dispatcher is None:
            return None
        total = self.dispatcher.settings.concurrency
        return total - self.dispatcher.free_slots, total

    def _account(self, task_id: str) -> TaskAccount | None:
        return None if self.dispatcher is None else self.dispatcher.account(task_id)

    @staticmethod
    def _spares(config: NodeConfig) -> int:
        """Sandboxes to fork ahead: none on a node that runs no tasks."""
        return min(config.concurrency, defaults.SANDBOX_SPARES) if config.run_workers else 0

    @property
    def worker_id(self) -> str | None:
        return None if self.dispatcher is None else self.dispatcher.worker_id

    def sandbox_summary(self) -> str:
        """One line on how this node's sandboxes are isolated, for its start-up."""
        found = self.pool.isolation
        parts = [f"network {self.config.sandbox.network.value}"]
        if found.get("namespaces"):
            parts.append(
                f"Landlock ABI {found['landlockAbi']}"
                if found.get("landlockAbi")
                else "no Landlock"
            )
            parts.append(f"cgroup {found['cgroup']}" if found.get("cgroup") else "no cgroup")
        else:
            parts.append(f"no namespaces: {found.get('namespacesError')}")
        return f"Sandbox isolation: {self.pool.tier.label} ({', '.join(parts)})"

    def catalogue(self) -> Mapping[str, AgentInfo]:
        return self.pool.catalogue

    async def start(self) -> None:
        await self.store.open()
        await self.pool.start()  # first: a node whose agents do not load goes no further
        await self._register_keys()
        if self.config.run_workers:
            await self._start_workers()
        self.deliveries.start()

    async def _register_keys(self) -> None:
        """Register the keys given on the command line; on a first start without any, make
        one and show it, so the quick start needs nothing else."""
        for key in self.config.api_keys:
            key_hash = ids.hash_api_key(key)
            if await self.store.project_for_key(key_hash) is None:
                project_id = await self.store.create_project()
                await self.store.add_api_key(project_id, key_hash, ids.key_hint(key))
        if not self.config.api_keys and await self.store.count_api_keys() == 0:
            key = ids.new_api_key()
            project_id = await self.store.create_project()
            await self.store.add_api_key(project_id, ids.hash_api_key(key), ids.key_hint(key))
            self.announce(
                "Created the first API key (it is shown only this once; store it now):\n\n"
                f"    export THEAZO_API_KEY={key}\n"
            )

    async def _start_workers(self) -> None:
        dispatcher = Dispatcher(
            self.store,
            self.pool,
            DispatchSettings(
                concurrency=self.config.concurrency,
                safety_sweep_seconds=self.store.safety_sweep_seconds,
                run=RunSettings(
                    cpu_limit_seconds=self.config.cpu_limit_seconds,
                    log_limit_bytes=self.config.log_limit_bytes,
                ),
            ),
        )
        rescuer = Rescuer(
            self.store, self.config.rescue_interval_seconds, alive_worker_id=dispatcher.worker_id
        )
        # Nobody else can be running tasks on an embedded database: whatever a previous run
        # of this server left running was lost with it. Once at start, on every backend,
        # running tasks without a worker row at all (left by an earlier version) are too.
        dead = await self.store.other_workers(dispatcher.worker_id)
        await rescuer.run_once(dead if self.store.single_node else (), orphans=True)
        await dispatcher.start()
        heartbeat = Heartbeat(dispatcher, self.config.heartbeat_seconds)
        self.dispatcher = dispatcher
        self.duties = [heartbeat, rescuer]
        if self.config.task_retention_seconds > 0:
            self.duties.append(Pruner(self.store, self.config.task_retention_seconds))
        for duty in self.duties:
            duty.start()

    async def stop(self) -> None:
        for duty in self.duties:
            await duty.stop()
        if self.dispatcher is not None:
            await self.dispatcher.drain(self.config.shutdown_grace_seconds)
        await self.deliveries.stop()  # after the drain: the webhooks of tasks that just ended
        await self.pool.close()
        if self.gateway is not None:
            await self.gateway.close()
        await self.store.close()


def _database_files(database: str) -> tuple[str, ...]:
    """The files of an embedded database, which no sandbox may see whatever it is shown."""
    if not database.startswith("sqlite:"):
        return ()
    path = sqlite_path(database).resolve()
    return (str(path), f"{path}-wal", f"{path}-shm")
