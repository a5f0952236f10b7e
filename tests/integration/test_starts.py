"""A task is ``running`` only once a sandbox has it: a node claims no more tasks than it has
sandboxes ready, so a task held back by a busy zygote stays ``queued`` and is not billed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.sandboxes import zygotes_of
from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session

SLOTS = 6
PRICE_PER_SECOND = 1000  # cents: a moment of billing shows


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    args = ["--zygotes", "1", "--concurrency", str(SLOTS), "--compute-price", str(PRICE_PER_SECOND)]
    with start_server(*args, "--max-running-per-session", str(SLOTS)) as process:
        yield process


def zygote_of(server: ServerProcess) -> int:
    (zygote, *_) = zygotes_of(server.pid)
    return zygote


def test_a_task_waits_queued_and_unbilled_while_no_sandbox_is_ready(
    server: ServerProcess, theazo: Theazo, session: Session
) -> None:
    assert session.run(agent="echo", input="warm").status == "completed"  # spares are ready
    zygote = zygote_of(server)
    os.kill(zygote, signal.SIGSTOP)  # a zygote too busy to hand out or make sandboxes
    try:
        tasks = [session.tasks.submit(agent="echo", input=n) for n in range(SLOTS)]
        # The sandboxes that were ready may be claimed for; no task beyond them.
        claimed = eventually(
            lambda: (u := session.refresh().usage).running and u, what="the ready ones claimed"
        )
        assert claimed.running < SLOTS
        held = [t for t in (session.tasks.get(t.task_id) for t in tasks) if t.status == "queued"]
        assert len(held) == SLOTS - claimed.running
        for task in held:
            assert task.started_at is None and task.cost.amount == 0
        # Still queued a moment later: waiting is not starting.
        later = session.tasks.wait(held[0].task_id, timeout="1s")
        assert later.status == "queued" and later.cost.amount == 0
    finally:
        os.kill(zygote, signal.SIGCONT)
    for task in tasks:
        done = session.tasks.wait(task.task_id, timeout="30s")
        assert done.status == "completed", done.error
