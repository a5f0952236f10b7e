"""The soak: Theazo under repeated faults for a bounded time, and what it promises, counted.

Run from the repository root, with the project installed::

    python bench/soak.py [--database postgresql://…] [--minutes 30] [--lease 5s]
                         [--rate 6] [--fault-every 45s] [--workdir DIR]

* SQLite (no ``--database``): one ``theazo serve``, killed with ``kill -9`` and started again
  every ``--fault-every``.
* PostgreSQL: an API node (``serve --no-workers``) and two ``theazo worker`` nodes; every
  ``--fault-every`` one fault, in turn: every connection the nodes hold terminated
  (``pg_terminate_backend``, as a restart or failover of PostgreSQL does), a worker node
  killed and started again, the connections again, the API node killed and started again.

Meanwhile a client submits ``soak`` tasks (0.1 to 1.5 s each, a third of them with a retry)
at ``--rate`` a second over eight sessions and cancels one in twenty; a submit that got no
answer is sent again with the same ``Idempotency-Key``, so it is counted once. Then the
faults and the submits stop, every node is up, and the tasks are given time to end: while the
number of unfinished tasks keeps falling, and a lease more.

The last line reads ``acked A lost L stuck S overlaps O``:

* acked: submits answered 202 (each task once);
* lost: acknowledged tasks the API no longer knows;
* stuck: acknowledged tasks still ``queued`` or ``running`` once nothing moved for a lease;
* overlaps: times an attempt of a task started while another attempt of it still ran (the
  ``soak`` agent holds a lock on a file of its task while it runs; the kernel drops it when
  the process dies, ``kill -9`` included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…` as a script too

from bench.common import AGENTS_MODULE, REPO, free_port, fresh_database, is_postgres
from theazo import AsyncTheazo
from theazo.core import ids
from theazo.core.durations import parse_duration
from theazo.sdk import APIConnectionError, APIError, AsyncSession

SESSIONS = 8
SUBMITTERS = 4
CANCEL_ONE_IN = 20
RETRIED_ONE_IN = 3
TASK_SECONDS = (0.1, 1.5)
START_TIMEOUT_SECONDS = 60.0
SHOWN_AS = "/data"  # where the sandboxes see the soak's shared folder


@dataclass
class Node:
    """A node the soak starts, kills and starts again."""

    name: str
    arguments: list[str]
    workdir: Path
    port: int | None = None  # an API node's
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child keeps it
        sandboxes = self.workdir / f"sandboxes-{self.name}-{self.starts}"
        sandboxes.mkdir()
        command = [
            sys.executable, "-m", "theazo", *self.arguments,
            "--agents", AGENTS_MODULE, "--sandbox-root", str(sandboxes),
            "--shutdown-grace", "2s", "--log-level", "warning",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self._wait_started()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.name}.log")
            if self.port is None:
                if b"is running tasks" in (self.workdir / f"{self.name}.log").read_bytes():
                    return
            else:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in time")

    def kill(self) -> None:
        """``kill -9``, as a crash or a power cut of the node would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def unhandled_errors(self) -> int:
        text = (self.workdir / f"{self.name}.log").read_text(errors="replace")
        return text.count("unhandled error")


@dataclass
class Tally:
    acked: dict[str, str] = field(default_factory=dict)  # task id → session id
    cancels: Counter[str] = field(default_factory=Counter)
    no_retry: set[str] = field(default_factory=set)  # tasks submitted without a retry
    answers_500: int = 0
    submit_retries: int = 0


@dataclass
class Faults:
    done: Counter[str] = field(default_factory=Counter)


class Soak:
    def __init__(self, args: argparse.Namespace, database: str, workdir: Path) -> None:
        self.args = args
        self.database = database
        self.workdir = workdir
        self.shared = workdir / "shared"
        self.shared.mkdir()
        self.shared.chmod(0o777)  # sandboxes may run as another user
        self.api_key = ids.new_api_key(live=False)
        self.lease = parse_duration(args.lease)
        self.tally = Tally()
        self.faults = Faults()
        self.nodes = self._nodes()

    @property
    def postgres(self) -> bool:
        return is_postgres(self.database)

    def _nodes(self) -> list[Node]:
        common = ["--lease", self.args.lease, "--sandbox-mount", f"{self.shared}:{SHOWN_AS}:rw"]
        api_port = free_port()
        serve = [
            "serve", "--database", self.database, "--port", str(api_port),
            "--api-key", self.api_key, "--max-connections-per-client", "0",
            "--max-queued-per-session", "1000000", *common,
        ]  # fmt: skip
        if not self.postgres:
            return [Node("server", [*serve, "--concurrency", "8"], self.workdir, api_port)]
        worker = ["worker", "--database", self.database, "--concurrency", "8", *common]
        return [
            Node("api", [*serve, "--no-workers"], self.workdir, api_port),
            Node("worker-1", worker, self.workdir),
            Node("worker-2", worker, self.workdir),
        ]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.nodes[0].port}"

    # --- the run ---------------------------------------------------------------------------
    async def run(self) -> int:
        for node in self.nodes:
            node.start()
        started = time.monotonic()
        deadline = started + self.args.minutes * 60
        async with AsyncTheazo(api_key=self.api_key, base_url=self.base_url) as client:
            sessions = [await client.sessions.for_user(f"soak_{i}") for i in range(SESSIONS)]
            load = [
                asyncio.create_task(self._submit_until(deadline, sessions, number))
                for number in range(SUBMITTERS)
            ]
            await self._faults_until(deadline)
            cancels = await asyncio.gather(*load)
            await asyncio.gather(*(c for batch in cancels for c in batch))
            for node in self.nodes:  # every node up for the settling
                if node.process is None or node.process.poll() is not None:
                    node.start()
            faults_stopped = time.monotonic()
            stuck, settled_after = await self._settle(sessions)
            final = await self._final_states(sessions)
            counters_ok = await self._counters_match(sessions, final)
        for node in self.nodes:
            node.stop()
        self._report(started, faults_stopped, stuck, settled_after, final, counters_ok)
        return 0

    async def _submit_until(
        self, deadline: float, sessions: list[AsyncSession], number: int
    ) -> list[asyncio.Task[None]]:
        cancels: list[asyncio.Task[None]] = []
        interval = SUBMITTERS / self.args.rate
        count = 0
        while time.monotonic() < deadline:
            count += 1
            session = sessions[(number + count * SUBMITTERS) % len(sessions)]
            retries = 1 if random.randrange(RETRIED_ONE_IN) == 0 else 0
            task_id = await self._submit(session, retries, deadline)
            if task_id is not None and random.randrange(CANCEL_ONE_IN) == 0:
                cancels.append(asyncio.create_task(self._cancel_later(session, task_id)))
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))
        return cancels

    async def _submit(self, session: AsyncSession, retries: int, deadline: float) -> str | None:
        key = f"soak-{uuid.uuid4().hex}"
        seconds = round(random.uniform(*TASK_SECONDS), 2)
        while time.monotonic() < deadline + 60:
            try:
                task = await session.tasks.submit(
                    "soak",
                    {"dir": SHOWN_AS, "seconds": seconds},
                    retries=retries,
                    idempotency_key=key,
                )
            except (APIConnectionError, APIError) as exc:
                if isinstance(exc, APIError) and exc.status == 500:
                    self.tally.answers_500 += 1
                if isinstance(exc, APIError) and exc.status < 500:
                    raise
                self.tally.submit_retries += 1
                await asyncio.sleep(0.5)  # the node is restarting, or the store is away
                continue
            self.tally.acked[task.task_id] = session.session_id
            if retries == 0:
                self.tally.no_retry.add(task.task_id)
            return task.task_id
        return None

    async def _cancel_later(self, session: AsyncSession, task_id: str) -> None:
        await asyncio.sleep(random.uniform(0, 2))
        for _ in range(20):
            try:
                await session.tasks.cancel(task_id)
                self.tally.cancels["cancelled"] += 1
                return
            except APIError as exc:
                if exc.status == 409:  # it ended first
                    self.tally.cancels["already over"] += 1
                    return
                if exc.status == 500:
                    self.tally.answers_500 += 1
            except APIConnectionError:
                pass
            await asyncio.sleep(0.5)
        self.tally.cancels["gave up"] += 1

    async def _faults_until(self, deadline: float) -> None:
        every = parse_duration(self.args.fault_every)
        turn = 0
        while time.monotonic() + every < deadline:
            await asyncio.sleep(every * random.uniform(0.8, 1.2))
            await asyncio.to_thread(self._fault, turn)
            turn += 1
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    def _fault(self, turn: int) -> None:
        if not self.postgres:
            self._restart(self.nodes[0])
            return
        kind = ["connections", "worker", "connections", "api"][turn % 4]
        if kind == "connections":
            self.faults.done["connection drops"] += 1
            self.faults.done["connections terminated"] += self._terminate_connections()
        elif kind == "worker":
            self._restart(self.nodes[1 + (turn // 4) % 2], "a worker node")
        else:
            self._restart(self.nodes[0], "the API node")

    def _restart(self, node: Node, role: str = "the node") -> None:
        node.kill()
        self.faults.done[f"kill -9 of {role}"] += 1
        node.start()

    def _terminate_connections(self) -> int:
        application = self._application_name()
        with psycopg.connect(self.args.database, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application,),
            ).fetchall()
        return len(rows)

    def _application_name(self) -> str:
        return self.database.rsplit("application_name=", 1)[1]

    # --- the end ---------------------------------------------------------------------------
    async def _settle(self, sessions: list[AsyncSession]) -> tuple[int, float]:
        """Wait while unfinished tasks keep ending, and a lease more; returns how many are
        left and when (seconds after the faults stopped) the last one ended."""
        started = time.monotonic()
        best, best_at = None, started
        while True:
            left = await self._unfinished(sessions)
            now = time.monotonic()
            if best is None or left < best:
                best, best_at = left, now
            if left == 0 or now - best_at > self.lease:
                return left, best_at - started
            await asyncio.sleep(0.5)

    async def _unfinished(self, sessions: list[AsyncSession]) -> int:
        total = 0
        for session in sessions:
            usage = (await session.refresh()).usage
            total += usage.queued + usage.running
        return total

    async def _final_states(self, sessions: list[AsyncSession]) -> dict[str, str]:
        """Each task's status, with its error code when it failed."""
        states: dict[str, str] = {}
        for session in sessions:
            async for task in session.tasks.iter(page_size=500):
                error = task.error.code if task.error is not None else None
                states[task.task_id] = f"{task.status} {error}" if error else task.status
        return states

    async def _counters_match(self, sessions: list[AsyncSession], final: dict[str, str]) -> bool:
        listed = Counter(self.tally.acked[t] for t in final if t in self.tally.acked)
        for session in sessions:
            usage = (await session.refresh()).usage
            if usage.tasks != listed[session.session_id]:
                return False
        return True

    def _report(
        self,
        started: float,
        faults_stopped: float,
        stuck: int,
        settled_after: float,
        final: dict[str, str],
        counters_ok: bool,
    ) -> None:
        acked = set(self.tally.acked)
        lost = len(acked - set(final))
        runs: Counter[str] = Counter()
        overlaps = 0
        log = self.shared / "runs.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            event, task_id, _ = line.split()
            runs[task_id] += 1
            overlaps += event == "overlap"
        twice = sum(1 for task_id in self.tally.no_retry if runs[task_id] > 1)
        backend = "PostgreSQL" if self.postgres else "SQLite"
        print(f"backend: {backend}; lease {self.args.lease}; {self.args.minutes:g} minutes")
        print(f"faults: {dict(self.faults.done)}")
        print(f"final states: {dict(Counter(final[t] for t in acked if t in final))}")
        print(f"cancels: {dict(self.tally.cancels)}")
        print(f"submits sent again (no answer, or 503 after the SDK's own retries): "
              f"{self.tally.submit_retries}")  # fmt: skip
        print(f"500 answers: {self.tally.answers_500}; unhandled errors logged: "
              f"{sum(node.unhandled_errors() for node in self.nodes)}")  # fmt: skip
        print(f"tasks without retries that ran twice: {twice}")
        print(f"session counters match their tasks: {counters_ok}")
        print(f"last task ended {settled_after:.1f}s after the faults stopped "
              f"(run took {faults_stopped - started:.0f}s)")  # fmt: skip
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        print(f"acked {len(acked)} lost {lost} stuck {stuck} overlaps {overlaps}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="postgresql://… (default: SQLite)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--lease", default="5s")
    parser.add_argument("--rate", type=float, default=6.0, help="submits a second")
    parser.add_argument("--fault-every", default="45s")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.workdir or Path(f"/tmp/theazo-soak-{uuid.uuid4().hex[:6]}")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average at the start: {os.getloadavg()[0]:.2f}; work in {workdir}", flush=True)
    with fresh_database(args.database, workdir, "soak") as url:
        if is_postgres(url):
            separator = "&" if "?" in url else "?"
            url += f"{separator}application_name=theazo_soak_{uuid.uuid4().hex[:8]}"
        return asyncio.run(Soak(args, url, workdir).run())


if __name__ == "__main__":
    raise SystemExit(main())
