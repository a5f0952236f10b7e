"""The database failing under a running server: PostgreSQL connections killed mid-run (as a
restart or a failover of PostgreSQL does), and SQLite's disk filling up. Nothing acknowledged
is lost, no task is left running or queued once the fault stops, no answer is a 500, and a
request that failed changed nothing (a cancel answered with an error kills no sandbox)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import postgres_base_url, postgres_schema
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess
from tests.support.tmpfs import fill, mounted_tmpfs
from tests.support.waiting import eventually, process_gone
from theazo import Theazo
from theazo.sdk import APIError, Session

LEASE_SECONDS = 3.0


def _settled(session: Session, count: int) -> bool:
    usage = session.refresh().usage
    return usage.queued == 0 and usage.running == 0 and usage.tasks == count


def _runs(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


# --- PostgreSQL ----------------------------------------------------------------------------
@pytest.fixture
def killable_postgres() -> Iterator[tuple[str, str]]:
    """A fresh schema's URL whose connections carry a name of their own, so that the test
    can kill exactly those."""
    name = f"theazo_fault_{uuid.uuid4().hex[:8]}"
    with postgres_schema() as url:
        yield f"{url}&application_name={name}", name


def _kill_connections(application_name: str) -> int:
    with psycopg.connect(postgres_base_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_postgres_connections_killed_mid_run_lose_nothing_and_leave_nothing_running(
    killable_postgres: tuple[str, str], tmp_path: Path
) -> None:
    url, application_name = killable_postgres
    shared = tmp_path / "shared"  # where the recorder agents write, shown to the sandboxes
    shared.mkdir()
    shared.chmod(0o777)  # a root server's sandboxes run as nobody
    args = ["--lease", f"{LEASE_SECONDS:g}s", "--concurrency", "6"]
    args += ["--sandbox-mount", f"{shared}:/data:rw"]
    with ServerProcess.start(tmp_path, database=url, args=args) as node:
        stop = threading.Event()
        killed: list[int] = []

        def kill_repeatedly() -> None:
            while not stop.wait(1.0):  # as a failover would, many times over
                killed.append(_kill_connections(application_name))

        killer = threading.Thread(target=kill_repeatedly, daemon=True)
        # A patient client: with connections dying every second on a loaded machine, the
        # pool may take longer than the SDK's five retries (about 15 s) to hand one out.
        with Theazo(api_key=node.api_key, base_url=node.base_url, max_retries=10) as theazo:
            session = theazo.sessions.for_user("faults")
            killer.start()
            try:
                acked = [
                    session.tasks.submit(agent="recorder", input={"dir": "/data", "seconds": 0.5})
                    for _ in range(30)
                ]
                cancelled = session.tasks.cancel(acked[-1].task_id)
                eventually(  # keep killing while tasks run and end
                    lambda: len(killed) >= 5 and len(_runs(shared / "executions.log")) >= 25,
                    timeout=60,
                    interval=0.1,
                    what="most tasks to run under the faults",
                )
            finally:
                stop.set()
                killer.join()
            assert sum(killed) >= 10, killed  # the faults really happened

            eventually(
                lambda: _settled(session, len(acked)),
                timeout=LEASE_SECONDS * 3,
                interval=0.2,
                what="every task settled within a few leases of the last fault",
            )
            final = {t.task_id: t for t in session.tasks.iter(page_size=100)}
        assert set(final) == {t.task_id for t in acked}
        assert cancelled.status == "cancelled" and final[cancelled.task_id].status == "cancelled"
        others = [final[t.task_id] for t in acked[:-1]]
        assert [t.status for t in others] == ["completed"] * len(others), [
            (t.status, t.error) for t in others if t.status != "completed"
        ]
        runs = _runs(shared / "executions.log")
        assert all(runs[t.task_id] == 1 for t in others), runs  # none ran twice
        assert "unhandled error" not in node.log()


# --- SQLite ----------------------------------------------------------------------------------
def fill_with_an_empty_wal(disk: Path) -> Path:
    """Fill the disk so that every write needs room. A write that fits in the WAL's file as
    it is needs none: so empty the WAL (copying it into the database, which may need room
    itself: then make some first) and fill the space it gave back too."""
    database = disk / "theazo.db"
    filler = fill(disk)
    for _ in range(10):
        try:
            with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:  # the copy needed room: make some, empty, fill again
            filler.unlink()
            with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(disk)
            continue
        fill(disk)
        return filler
    raise AssertionError("the WAL could not be emptied on a full disk")


def test_a_full_disk_answers_507_and_changes_nothing_until_there_is_room(
    tmp_path: Path,
) -> None:
    with mounted_tmpfs(tmp_path / "disk", size="16M") as disk:
        database = f"sqlite:///{disk / 'theazo.db'}"
        (tmp_path / "node").mkdir()
        with ServerProcess.start(tmp_path / "node", database=database) as node:
            with Theazo(api_key=node.api_key, base_url=node.base_url) as theazo:
                session = theazo.sessions.for_user("full")
                running = session.tasks.submit(agent="sleeper", input={"seconds": 2})
                pid = eventually(lambda: host_pid(running.task_id), what="the sleeper's process")
                filler = fill_with_an_empty_wal(disk)
                try:
                    refusals: list[APIError] = []
                    for _ in range(5):  # a write may fit in what a page left: some must not
                        try:
                            session.tasks.submit(agent="echo", input="x" * 100_000)
                        except APIError as exc:
                            refusals.append(exc)
                    assert refusals
                    assert {(e.status, e.code) for e in refusals} == {(507, "store_full")}
                    with pytest.raises(APIError) as cancel:
                        session.tasks.cancel(running.task_id)
                    assert (cancel.value.status, cancel.value.code) == (507, "store_full")
                    assert session.tasks.get(running.task_id).status == "running"  # reads go on
                    # The sleeper ends while the disk is full: its end waits for room.
                    eventually(lambda: process_gone(pid), timeout=20, what="the sleeper's end")
                    assert session.tasks.get(running.task_id).status == "running"
                finally:
                    filler.unlink()
                done = session.tasks.wait(running.task_id, timeout="20s")
                assert done.status == "completed", done  # the failed cancel killed nothing
                eventually(lambda: _settled(session, session.refresh().usage.tasks), timeout=5)
            assert "unhandled error" not in node.log()
