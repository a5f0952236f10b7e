"""Webhooks (SPEC §4) as a receiver written by someone else sees them: a real HTTP server on
127.0.0.1 that verifies every message with the official ``standardwebhooks`` library.

The servers here allow private webhook URLs (the receiver is on loopback) and retry on a
shrunk schedule, so retries take fractions of a second, not minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import StartServer
from tests.support.receiver import Receiver, Reply
from tests.support.server import REPO, ServerProcess, new_api_key
from tests.support.waiting import eventually
from theazo import AsyncTheazo, ConflictError, Theazo, UnprocessableEntityError
from theazo.sdk import Delivery, DeliveryAttempt, Session

SCHEDULE = "0.2s,0.4s,0.8s"
TIMEOUT_SECONDS = 3
SPEC_FIELDS = {"taskId", "sessionId", "status", "output", "error", "cost", "completedAt"}

ROTATION_KEY = new_api_key()  # a project of its own: its rotation changes no other test
CLI_KEY = new_api_key()


@pytest.fixture(scope="module")
def server(start_server: StartServer, api_key: str) -> Iterator[ServerProcess]:
    with start_server(
        "--allow-private-webhooks",
        "--webhook-retry-schedule", SCHEDULE,
        "--webhook-timeout", f"{TIMEOUT_SECONDS}s",
        api_keys=[api_key, ROTATION_KEY, CLI_KEY],
    ) as process:  # fmt: skip
        yield process


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def settled(session: Session, task_id: str, count: int = 1) -> list[Delivery]:
    """The task's deliveries, once ``count`` of them exist and none is pending."""

    def check() -> list[Delivery] | None:
        found = session.tasks.deliveries(task_id)
        done = len(found) >= count and all(d.status != "pending" for d in found)
        return found if done else None

    return eventually(check, what=f"the deliveries of {task_id} to settle")


# --- payload and signature --------------------------------------------------------------------
def test_a_completed_task_posts_its_result_signed_with_the_project_secret(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    task = session.run("echo", {"x": 1}, webhook=receiver.url("/done"))

    (request,) = receiver.wait_for("/done")
    payload = request.verify(theazo.webhooks.secret().secret)
    assert set(payload) == SPEC_FIELDS
    assert payload["taskId"] == task.task_id and payload["sessionId"] == session.session_id
    assert payload["status"] == "completed" and payload["output"] == task.output
    assert payload["error"] is None
    assert payload["cost"] == {"amount": task.cost.amount, "currency": task.cost.currency}
    assert datetime.fromisoformat(payload["completedAt"]) == task.completed_at
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("theazo-webhooks/")
    stamp = int(request.headers["webhook-timestamp"])
    assert abs(stamp - time.time()) < 60

    (delivery,) = settled(session, task.task_id)
    assert delivery.delivery_id == request.message_id
    assert (delivery.event, delivery.status, delivery.attempts) == ("completed", "delivered", 1)
    assert delivery.url == receiver.url("/done") and delivery.delivered_at is not None
    assert [a.http_status for a in delivery.history] == [200]


def test_a_failed_task_posts_its_error(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    task = session.run("raiser", None, webhook=receiver.url("/failed"))

    (request,) = receiver.wait_for("/failed")
    payload = request.verify(theazo.webhooks.secret().secret)
    assert payload["status"] == "failed" and payload["output"] is None
    assert task.error is not None and payload["error"]["code"] == task.error.code


def test_a_cancelled_task_posts_its_end(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    task = session.tasks.submit("sleeper", {"seconds": 30}, webhook=receiver.url("/cancelled"))
    eventually(lambda: session.tasks.get(task.task_id).status == "running", what="running")
    session.tasks.cancel(task.task_id)

    (request,) = receiver.wait_for("/cancelled")
    payload = request.verify(theazo.webhooks.secret().secret)
    assert payload["status"] == "cancelled" and payload["taskId"] == task.task_id


# --- retries ----------------------------------------------------------------------------------
def test_a_500_is_retried_under_the_same_webhook_id(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    receiver.script("/flaky", Reply(500))
    task = session.run("echo", "again", webhook=receiver.url("/flaky"))

    first, second = receiver.wait_for("/flaky", count=2)
    secret = theazo.webhooks.secret().secret
    assert first.verify(secret) == second.verify(secret)
    assert first.message_id == second.message_id
    (delivery,) = settled(session, task.task_id)
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert [a.http_status for a in delivery.history] == [500, 200]
    assert all(a.attempted_at is not None and a.duration_ms >= 0 for a in delivery.history)


def test_a_receiver_down_gives_up_after_the_schedule(session: Session) -> None:
    down = Receiver()  # never started: every attempt is refused
    task = session.run("echo", None, webhook=down.url("/nobody"))

    (delivery,) = settled(session, task.task_id)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert delivery.attempts == len(SCHEDULE.split(",")) + 1
    assert all(a.http_status is None and a.error for a in delivery.history)


def test_a_hanging_receiver_does_not_delay_another_tasks_webhook(
    session: Session, receiver: Receiver
) -> None:
    receiver.script("/hang", Reply(hang_seconds=30))  # released when the test ends
    hung = session.run("echo", "slow", webhook=receiver.url("/hang"))
    (hanging,) = receiver.wait_for("/hang")

    session.run("echo", "fast", webhook=receiver.url("/fast"))

    (fast,) = receiver.wait_for("/fast")
    assert fast.arrived_at - hanging.arrived_at < TIMEOUT_SECONDS  # while the first hangs

    def timed_out() -> DeliveryAttempt | None:
        history = session.tasks.deliveries(hung.task_id)[0].history
        return history[0] if history else None

    first = eventually(timed_out, timeout=TIMEOUT_SECONDS + 5, what="the hanging attempt to end")
    assert first.http_status is None and first.error == f"no answer within {TIMEOUT_SECONDS}s"
    assert TIMEOUT_SECONDS * 1000 <= first.duration_ms < (TIMEOUT_SECONDS + 2) * 1000


# --- events -----------------------------------------------------------------------------------
def test_started_and_progress_events_are_sent_when_asked_for(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    task = session.run(
        "sleeper",
        {"seconds": 0.5},
        webhook=receiver.url("/events"),
        webhook_events=["started", "progress", "completed"],
    )

    deliveries = settled(session, task.task_id, count=3)
    events = {d.delivery_id: d.event for d in deliveries}
    assert sorted(events.values()) == ["completed", "progress", "started"]
    requests = receiver.wait_for("/events", count=3)
    secret = theazo.webhooks.secret().secret
    by_event = {events[r.message_id]: r.verify(secret) for r in requests}
    assert by_event["started"]["status"] == "running"
    assert by_event["progress"]["message"].startswith("pid=")
    assert by_event["completed"]["status"] == "completed"
    assert set(by_event["completed"]) == SPEC_FIELDS


# --- secrets ----------------------------------------------------------------------------------
def test_during_a_rotation_both_secrets_verify(server: ServerProcess, receiver: Receiver) -> None:
    with Theazo(api_key=ROTATION_KEY, base_url=server.base_url) as theazo:
        old = theazo.webhooks.secret()
        assert old.secret.startswith("whsec_") and old.previous == []

        rotated = theazo.webhooks.rotate()

        assert rotated.secret.startswith("whsec_") and rotated.secret != old.secret
        (previous,) = rotated.previous
        assert previous.secret == old.secret and previous.expires_at is not None
        window = previous.expires_at - datetime.now(UTC)
        assert timedelta(hours=23) < window <= timedelta(hours=24)
        assert theazo.webhooks.secret() == rotated
        session = theazo.sessions.for_user("rotation")
        session.run("echo", "rotated", webhook=receiver.url("/rotated"))

    (request,) = receiver.wait_for("/rotated")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verify(old.secret) == request.verify(rotated.secret)


def test_the_cli_prints_and_rotates_the_secret(server: ServerProcess) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    env |= {"THEAZO_API_KEY": CLI_KEY, "THEAZO_BASE_URL": server.base_url}

    def theazo(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "theazo", "webhooks", *args],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = json.loads(theazo("secret", "--json"))
    rotated = theazo("rotate").strip()

    assert rotated.startswith("whsec_") and rotated != shown["secret"]
    now = json.loads(theazo("secret", "--json"))
    assert now["secret"] == rotated and now["previous"][0]["secret"] == shown["secret"]


# --- redelivery -------------------------------------------------------------------------------
def test_redeliver_sends_the_final_payload_again(
    theazo: Theazo, session: Session, receiver: Receiver
) -> None:
    task = session.run("echo", {"n": 7}, webhook=receiver.url("/again"))
    (first,) = receiver.wait_for("/again")
    settled(session, task.task_id)

    again = session.tasks.redeliver(task.task_id)

    assert again.delivery_id == first.message_id and again.event == "completed"
    _, second = receiver.wait_for("/again", count=2)
    assert second.body == first.body and second.message_id == first.message_id
    assert second.verify(theazo.webhooks.secret().secret)["output"] == {"n": 7}
    (delivery,) = settled(session, task.task_id)
    assert delivery.status == "delivered" and len(delivery.history) == 2


def test_redeliver_needs_a_finished_task_with_a_webhook(
    session: Session, receiver: Receiver
) -> None:
    running = session.tasks.submit("sleeper", {"seconds": 30}, webhook=receiver.url("/x"))
    plain = session.run("echo", None)

    with pytest.raises(ConflictError) as not_finished:
        session.tasks.redeliver(running.task_id)
    with pytest.raises(ConflictError) as no_webhook:
        session.tasks.redeliver(plain.task_id)

    session.tasks.cancel(running.task_id)
    assert not_finished.value.code == "task_not_finished"
    assert no_webhook.value.code == "no_webhook"
    assert session.tasks.deliveries(plain.task_id) == []


async def test_the_async_client_reads_secrets_and_deliveries(
    server: ServerProcess, api_key: str, receiver: Receiver
) -> None:
    async with AsyncTheazo(api_key=api_key, base_url=server.base_url) as theazo:
        secret = await theazo.webhooks.secret()
        session = await theazo.sessions.for_user("async-webhooks")
        task = await session.run("echo", "async", webhook=receiver.url("/async"))
        (request,) = await receiver.arrival("/async")
        deliveries = await session.tasks.deliveries(task.task_id)
        again = await session.tasks.redeliver(task.task_id)

    assert request.verify(secret.secret)["output"] == "async"
    assert [d.delivery_id for d in deliveries] == [request.message_id] == [again.delivery_id]


# --- safety -----------------------------------------------------------------------------------
def test_a_private_url_is_refused_without_the_development_switch(
    start_server: StartServer,
) -> None:
    with (
        start_server() as strict,
        Theazo(api_key=strict.api_key, base_url=strict.base_url) as theazo,
    ):
        session = theazo.sessions.for_user("strict")
        for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
            with pytest.raises(UnprocessableEntityError) as refused:
                session.tasks.submit("echo", None, webhook=url)
            assert refused.value.code == "webhook_url_forbidden"
            assert refused.value.field == "webhook"


# --- durability -------------------------------------------------------------------------------
def test_a_pending_delivery_survives_a_restart(start_server: StartServer) -> None:
    receiver = Receiver()  # down until the server has restarted
    schedule = "0.3s," + ",".join(["2s"] * 15)  # keeps retrying through the restart
    with start_server("--allow-private-webhooks", "--webhook-retry-schedule", schedule) as node:
        with Theazo(api_key=node.api_key, base_url=node.base_url) as theazo:
            session = theazo.sessions.for_user("restart")
            task = session.run("echo", "durable", webhook=receiver.url("/later"))
            eventually(
                lambda: session.tasks.deliveries(task.task_id)[0].history,
                what="a refused attempt",
            )

        node.stop()
        node.launch()

        with receiver.running(), Theazo(api_key=node.api_key, base_url=node.base_url) as theazo:
            (request,) = receiver.wait_for("/later")
            assert request.verify(theazo.webhooks.secret().secret)["output"] == "durable"
            session = theazo.sessions.get(session.session_id)
            (delivery,) = settled(session, task.task_id)

    assert delivery.status == "delivered"
    assert delivery.history[0].http_status is None and delivery.history[-1].http_status == 200
