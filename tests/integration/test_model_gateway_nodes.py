"""The model gateway's per-session rate limits on a deployment of several nodes: two nodes on
one PostgreSQL, a session's tasks running on both, their calls through both nodes' gateways
counted together against the session's limit."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import postgres_schema
from tests.support.fake_models import PRICES_TOML, FakeProvider
from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo

KEY_ENV = "THEAZO_TEST_PROVIDER_KEY"
REQUESTS_PER_MINUTE = 5
CALLS_PER_TASK = 4

CALLS = """
import os, time, openai
time.sleep(input["pause"])  # the session's other task is claimed meanwhile, by the other node
client = openai.OpenAI(max_retries=0)
outcomes = []
for _ in range(input["calls"]):
    try:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hello"}])
        outcomes.append({"status": 200})
    except openai.APIStatusError as exc:
        outcomes.append({"status": exc.status_code, "error": str(exc),
                         "retry_after": exc.response.headers.get("retry-after")})
result = {"node": os.environ["TEST_NODE_NAME"], "outcomes": outcomes}
"""


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def nodes(
    schema_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    api_key: str,
    openai_fake: FakeProvider,
) -> Iterator[list[ServerProcess]]:
    prices = tmp_path_factory.mktemp("prices") / "prices.toml"
    prices.write_text(PRICES_TOML)
    key = f"sk-real-{secrets.token_hex(16)}"
    args = [
        "--llm-provider", f"fake=openai,{openai_fake.base_url},{KEY_ENV}",
        "--llm-prices", str(prices),
        "--llm-requests-per-minute", str(REQUESTS_PER_MINUTE),
        "--compute-price", "0",
        # One task at a time: a session's two tasks running together run on both nodes.
        "--concurrency", "1",
        "--sandbox-env", "TEST_NODE_NAME",
    ]  # fmt: skip
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                ServerProcess.start(
                    Path(tmp_path_factory.mktemp(f"node-{index}")),
                    api_keys=[api_key],
                    args=args,
                    database=schema_url,
                    env={KEY_ENV: key, "TEST_NODE_NAME": f"node-{index}"},
                )
            )
            for index in range(2)
        ]


def test_a_sessions_requests_per_minute_hold_across_nodes(
    nodes: list[ServerProcess], api_key: str, openai_fake: FakeProvider
) -> None:
    before = len(openai_fake.received)
    code = textwrap.dedent(CALLS)
    with Theazo(api_key=api_key, base_url=nodes[0].base_url) as theazo:
        session = theazo.sessions.for_user("two-nodes")
        submitted = [
            session.tasks.submit(
                agent="attacker", input={"code": code, "calls": CALLS_PER_TASK, "pause": 1.5}
            )
            for _ in range(2)
        ]
        tasks = [session.tasks.wait(task.task_id, timeout="60s") for task in submitted]
        # Another session is not held back by this one's calls, on either node.
        other = theazo.sessions.for_user("two-nodes-other").run(
            agent="attacker", input={"code": code, "calls": 1, "pause": 0}
        )
    assert all(task.status == "completed" for task in tasks), [t.error for t in tasks]
    assert {task.output["node"] for task in tasks} == {"node-0", "node-1"}
    outcomes = [o for task in tasks for o in task.output["outcomes"]]
    assert len(outcomes) == 2 * CALLS_PER_TASK
    # Each node alone would have let 4 + 4 through (under 5 each); together, 5 went.
    passed = [o for o in outcomes if o["status"] == 200]
    refused = [o for o in outcomes if o["status"] != 200]
    assert len(passed) == REQUESTS_PER_MINUTE
    for answer in refused:
        assert answer["status"] == 429
        assert f"limit is {REQUESTS_PER_MINUTE} a minute" in answer["error"]
        assert 1 <= int(answer["retry_after"]) <= 60
    assert other.status == "completed" and other.output["outcomes"] == [{"status": 200}]
    assert len(openai_fake.received) - before == REQUESTS_PER_MINUTE + 1


SECOND_CALL = """
import time, openai
client = openai.OpenAI(max_retries=0)
outcomes = []
for _ in range(2):
    try:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hello"}])
        outcomes.append({"status": 200})
    except openai.APIStatusError as exc:
        outcomes.append({"status": exc.status_code, "code": exc.body.get("code"),
                         "retry_after": exc.response.headers.get("retry-after")})
    time.sleep(0.5)
result = outcomes
"""


def test_a_call_whose_rate_cannot_be_counted_is_refused_with_503_not_let_through(
    schema_url: str, nodes: list[ServerProcess], api_key: str, openai_fake: FakeProvider
) -> None:
    """The database fails while the gateway counts a call (its connection is ended while it
    waits for the session's count lock, as a failover would): the call is refused with 503
    and Retry-After, not made uncounted; the next call, once the database answers, is."""
    before = len(openai_fake.received)
    with Theazo(api_key=api_key, base_url=nodes[0].base_url) as theazo:
        session = theazo.sessions.for_user("rates-store-down")
        lock = (
            "SELECT pg_advisory_lock("
            "hashtext(current_schema() || '.model_call_rates'), hashtext(%s))"
        )
        with psycopg.connect(schema_url, autocommit=True) as holder:
            holder.execute(lock, (session.session_id,))
            task = session.tasks.submit(
                agent="attacker", input={"code": textwrap.dedent(SECOND_CALL)}
            )
            ended = eventually(lambda: _end_lock_waiters(schema_url), timeout=30)
        finished = session.tasks.wait(task.task_id, timeout="60s")
    assert ended >= 1
    assert finished.status == "completed", finished.error
    first, second = finished.output
    assert first["status"] == 503 and first["code"] == "store_unavailable"
    assert int(first["retry_after"]) >= 1
    assert second == {"status": 200}
    assert len(openai_fake.received) - before == 1  # the refused call never reached it


def _end_lock_waiters(url: str) -> int:
    """End the connections waiting for an advisory lock (the gateway's count); 0 while none
    waits yet."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' "
            "AND query LIKE '%pg_advisory_xact_lock%'"
        ).fetchall()
    return len(rows)
