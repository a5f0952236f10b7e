"""Whatever an agent writes on its channel (numbers of any size, garbage, a flood) fails at
most its own task, at once and with a clear ``error.code``; and a sandbox holds none of the
server's listening sockets."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.support.server import ServerProcess
from theazo.core import defaults
from theazo.sdk import Session


def _charge(amount: object) -> str:
    return json.dumps({"t": "charge", "amount": amount, "description": None})


def _run_hostile(session: Session, *bodies: str) -> tuple[str | None, str]:
    task = session.run(
        agent="hostile_frames",
        input={"bodies": list(bodies)},
        timeout="60s",
        wait_timeout="30s",
    )
    assert task.status == "failed", task  # not running until its timeout
    assert task.error is not None
    return task.error.code, task.error.message


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1e999999", "more than"),  # once decimal.Overflow, outside what the handler caught
        ("1e300", "more than"),  # once an OverflowError at the insert, and a charge of 0
        (1e300, "more than"),
        ("-5", "negative"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("twelve", "not an amount"),
        ("9" * 5000, "not an amount"),
        ({"cents": 5}, "not dict"),
        (True, "not bool"),
        (None, "not NoneType"),
    ],
)
def test_a_charge_that_is_no_sane_amount_fails_the_task(
    session: Session, amount: object, words: str
) -> None:
    code, message = _run_hostile(session, _charge(amount))
    assert code == "invalid_charge"
    assert words in message


def test_charges_that_add_up_past_the_limit_fail_the_task(session: Session) -> None:
    each = defaults.MAX_AMOUNT_MINOR_UNITS // 2
    code, message = _run_hostile(session, *[_charge(each)] * 3)
    assert code == "invalid_charge" and "passed" in message
    task = session.tasks.list(limit=1).data[0]
    assert task.cost.amount <= defaults.MAX_AMOUNT_MINOR_UNITS  # what it was allowed, billed


@pytest.mark.parametrize(
    "body",
    [
        '{"t": "progress", "p":',  # cut short
        "[1, 2, 3]",  # not an object
        "hex:" + b'{"t": "progress", "m": "\xff\xfe"}'.hex(),  # not UTF-8
        "[" * 200_000,  # deeper than the parser recurses
        '{"t": "progress", "p": ' + "1" * 5000 + "}",  # longer than Python reads integers
    ],
    ids=["truncated", "array", "not-utf8", "deep", "long-integer"],
)
def test_a_message_that_is_not_one_fails_the_task(session: Session, body: str) -> None:
    code, _ = _run_hostile(session, body)
    assert code == "invalid_message"


def test_odd_but_harmless_reports_are_ignored(session: Session) -> None:
    bodies = [
        json.dumps({"t": "progress", "p": True, "m": None}),
        '{"t": "progress", "p": NaN}',
        json.dumps({"t": "progress", "p": 1e308 * 10}).replace("Infinity", "1e400"),
        json.dumps({"t": "progress", "p": 5, "m": 42}),
        '{"t": "progress", "m": "lone \\udcff surrogate"}',
        json.dumps({"t": "something new", "x": 1}),
        json.dumps({"no kind": True}),
    ]
    task = session.run(
        agent="hostile_frames", input={"bodies": bodies, "then_wait": 0}, wait_timeout="30s"
    )
    assert task.status == "completed", task.error
    assert task.progress is None
    assert task.message == "lone ? surrogate"


def test_an_error_message_of_any_size_is_kept_within_its_limit(session: Session) -> None:
    body = json.dumps({"t": "error", "code": {"not": "a string"}, "message": "x" * 900_000})
    code, message = _run_hostile(session, body)
    assert code == "agent_error"
    assert message == "x" * defaults.MAX_ERROR_MESSAGE_CHARS


def test_a_flood_of_reports_slows_only_its_agent(session: Session, server: ServerProcess) -> None:
    answers: list[int] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            answers.append(httpx.get(f"{server.base_url}/healthz", timeout=10).status_code)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        task = session.run(agent="frame_flood", input={"count": 20_000}, wait_timeout="60s")
    finally:
        done.set()
        prober.join()
    assert task.status == "completed", task.error
    assert task.output == {"sent": 20_000}
    assert answers and set(answers) == {200}


def test_a_sandbox_holds_none_of_the_servers_listening_sockets(
    session: Session, server: ServerProcess
) -> None:
    task = session.run(agent="listening_sockets", input=None, wait_timeout="30s")
    assert task.status == "completed", task.error
    assert task.output == {"listening": []}
