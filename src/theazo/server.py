"""Running a node: bind the port, start the node, serve HTTP with uvicorn, stop in order."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import resource
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.middleware import Middleware

from theazo.api.app import create_app
from theazo.config import NodeConfig
from theazo.connections import ConnectionLimits, guarded_protocol
from theazo.core import defaults
from theazo.node import Announce, Node
from theazo.observability.listener import HttpMetrics, MetricsListener
from theazo.observability.logs import LogFormat

log = logging.getLogger("theazo")


_PR_SET_DUMPABLE = 4  # from <linux/prctl.h>


class StartupError(Exception):
    """The node cannot start; the message says why in one line a user can act on."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the node starts (so a taken port fails first).

    Not inheritable (Python's default, which uvicorn's own ``bind_socket`` turns off for its
    worker processes; we run uvicorn in this process and need no such thing): a child that
    held it, as the zygote and every sandbox did, could accept our clients' connections and
    read their keys, and kept the port accepting connections nobody answered while the node
    shut down.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when it sees
    # the protocol, and without it every keep-alive response waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    return sock


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to the hard limit (the host's word), since
    every client connection is a descriptor; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = defaults.FD_LIMIT_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError) as exc:
            log.warning(
                "could not raise the open-files limit from %d to %d: %s", soft, ceiling, exc
            )
    return int(soft)


def connection_limits(config: NodeConfig, open_files: int) -> ConnectionLimits:
    """The connection caps, within what the open-files limit leaves for clients."""
    reserve = defaults.FD_RESERVE + 2 * (config.concurrency if config.run_workers else 0)
    room = max(open_files - reserve, defaults.FD_RESERVE)
    wanted = config.max_connections or defaults.HTTP_MAX_CONNECTIONS
    if config.max_connections and wanted > room:
        log.warning(
            "the open-files limit (%d) leaves room for %d connections, not %d",
            open_files,
            room,
            wanted,
        )
    return ConnectionLimits(
        max_head_bytes=defaults.HTTP_MAX_HEAD_BYTES,
        read_timeout_seconds=config.http_read_timeout_seconds,
        max_connections=min(wanted, room),
        max_per_client=config.max_connections_per_client,
    )


def run(config: NodeConfig, announce: Announce) -> None:
    """Run a node on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(run_node(config, announce))
        return
    uvloop.run(run_node(config, announce))


def forbid_inspection() -> None:
    """Make this process non-dumpable: other processes of the same user (sandboxes among
    them) can no longer read its environment or memory through /proc."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to do
        log.debug("could not mark the server non-dumpable", exc_info=True)


def log_tasks() -> None:
    """On SIGUSR1: log what every asyncio task of the node is waiting on (for a stuck node)."""
    for task in asyncio.all_tasks():
        frames = "".join(f"\n    {f.f_code.co_filename}:{f.f_lineno}" for f in task.get_stack())
        log.warning("task %s%s", task.get_name(), frames)


async def run_node(config: NodeConfig, announce: Announce) -> None:
    """Serve until SIGINT or SIGTERM. Raises ``StartupError`` if the node cannot start."""
    forbid_inspection()
    open_files = raise_open_files_limit()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, log_tasks)
    sock = bind(config.host, config.port) if config.run_api else None
    try:
        metrics_sock = _bind_metrics(config)
    except StartupError:
        if sock is not None:
            sock.close()
        raise
    node = Node(config, announce)
    try:
        await node.start()
    except Exception as exc:
        for opened in (sock, metrics_sock):
            if opened is not None:
                opened.close()
        await _stop_quietly(node)
        raise StartupError(str(exc)) from exc
    announce(node.sandbox_summary())
    listener = None
    if node.metrics is not None and metrics_sock is not None:
        # Its uvicorn says nothing below a warning: the node announces the address itself.
        logging_options = _uvicorn_logging(config) | {"log_level": "warning"}
        listener = MetricsListener(node.metrics, metrics_sock, **logging_options)
        await listener.start()
        announce(f"Metrics are served on http://{config.metrics}/metrics")
    try:
        if sock is None:
            announce(f"Theazo worker {node.worker_id} is running tasks")
            await _wait_for_signal()
        else:
            await _serve_http(node, config, sock, connection_limits(config, open_files), announce)
    finally:
        if listener is not None:
            await listener.stop()
        await node.stop()


def _bind_metrics(config: NodeConfig) -> socket.socket | None:
    if config.metrics is None:
        return None
    try:
        return bind(config.metrics.host, config.metrics.port)
    except StartupError as exc:
        raise StartupError(f"--metrics: {exc}") from exc


def _uvicorn_logging(config: NodeConfig) -> dict[str, Any]:
    """uvicorn's own logging: its default configuration in text, none in JSON (its records
    then reach the root logger's JSON handler like every other)."""
    options: dict[str, Any] = {"log_level": config.log_level}
    if config.log_format == LogFormat.JSON:
        options["log_config"] = None
    return options


async def _serve_http(
    node: Node,
    config: NodeConfig,
    sock: socket.socket,
    limits: ConnectionLimits,
    announce: Announce,
) -> None:
    stop_requested = False

    def remember_stop(number: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = node.service
        app.state.node = node
        # uvicorn handles the stop signals from here on; one that came before is not lost.
        server.should_exit = server.should_exit or stop_requested
        address = f"http://{config.host}:{config.port}"
        announce(f"Theazo is serving on {address}")
        announce(f"Dashboard: {address}/dashboard/ (sign in with a project's API key)")
        yield

    # uvicorn re-raises the stop signal once it has shut down; with Python's default handlers
    # that would kill the process (SIGTERM) or raise KeyboardInterrupt (SIGINT) before the node
    # has stopped its tasks. This handler lets the node's shutdown run to the end, and keeps a
    # signal that arrives before uvicorn takes the signals over.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, remember_stop)
    app = create_app(lifespan)
    if node.metrics is not None:
        # Innermost, next to the router: the scope it passes on is the one the router marks
        # with the route it chose (an outer middleware may hand on a copy).
        app.user_middleware.append(Middleware(HttpMetrics, count=node.metrics.http_request))
    server = _Server(
        node,
        uvicorn.Config(
            app,
            **_uvicorn_logging(config),
            access_log=False,
            timeout_graceful_shutdown=int(defaults.GRACEFUL_HTTP_SHUTDOWN_SECONDS) or 1,
            server_header=False,
            # Longer than clients keep idle connections (httpx: 5 s), so a client never sends
            # on a connection the server is closing at that very moment.
            timeout_keep_alive=int(defaults.HTTP_KEEP_ALIVE_SECONDS),
            lifespan="on",
            backlog=2048,
            http=guarded_protocol(limits),
        ),
    )
    await server.serve(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn, answering held long polls as soon as the shutdown begins, so they end as
    normal answers instead of being cancelled after the grace period (with a traceback each)."""

    def __init__(self, node: Node, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._node = node

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._node.service.release_waiters()
        await super().shutdown(sockets)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _stop_quietly(node: Node) -> None:
    try:
        await node.stop()
    except Exception:
        log.debug("stopping a node that did not start failed", exc_info=True)
