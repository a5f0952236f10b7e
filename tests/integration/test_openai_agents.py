"""OpenAI Agents SDK agents served with theazo.integrations.openai_agents, run end to end in
real sandboxes on a fake model (tests/framework_agents/with_openai_agents.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess
from tests.support.waiting import eventually, process_gone
from theazo import Theazo
from theazo.sdk import ProgressEvent, Session, UnprocessableEntityError

AGENTS = "tests.framework_agents.with_openai_agents"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    # No compute price: the cost is only what the runs' tokens cost.
    with start_server("--agents", AGENTS, "--compute-price", "0") as process:
        yield process


def test_a_run_reports_its_steps_tool_calls_and_text_and_returns_the_output_type(
    session: Session,
) -> None:
    task = session.tasks.submit("oai_triage", {"prompt": "My bill is wrong"})
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))
    done = session.tasks.get(task.task_id)

    assert done.status == "completed", done.error
    assert done.output == {"topic": "billing", "urgent": True}
    messages = [e.message for e in seen if isinstance(e, ProgressEvent)]
    assert messages == [
        "calling the model (step 1)",
        "calling the tool open_ticket",
        "calling the model (step 2)",
        '{"topic": "billing',  # the streamed text, as it came: its first half
        '{"topic": "billing", "urgent": true}',
    ]
    log = [line.text for line in session.tasks.logs(task.task_id)]
    # The usage lines come from the SDK's hooks, whose order with its events is its own.
    usage = "[usage] model fake-model: 10 input tokens, 2 output tokens"
    assert [line for line in log if line != usage] == [
        '[tool] open_ticket({"topic": "billing"})',
        "opening a ticket about billing",  # the tool's own print
        "[tool result] ticket 7 opened about billing",
        '[text] {"topic": "billing", "urgent": true}',
    ]
    assert log.count(usage) == 2
    assert done.cost.amount == 2 * (10 + 2 * 2)  # two responses, at the agent's price table


def test_the_agent_is_listed_and_a_bad_input_is_refused(theazo: Theazo, session: Session) -> None:
    listed = {a.name: a for a in theazo.agents.list()}
    assert listed["oai_triage"].description == "Sorts a customer's message into a ticket."
    output = listed["oai_triage"].output_schema  # the output_type's
    assert output is not None and output["required"] == ["topic", "urgent"]
    assert listed["oai_slow"].output_schema == {"type": "string"}
    with pytest.raises(UnprocessableEntityError) as refused:
        session.tasks.submit("oai_triage", {"message": "not a prompt"})
    assert refused.value.code == "invalid_input"


def test_a_cancel_stops_the_run(session: Session) -> None:
    task = session.tasks.submit("oai_slow", "Take your time")
    eventually(
        lambda: session.tasks.get(task.task_id).message == "Thinking about it",
        what="the streamed text",
    )
    pid = eventually(lambda: host_pid(task.task_id), what="the sandbox's process")

    assert session.tasks.cancel(task.task_id).status == "cancelled"
    eventually(lambda: process_gone(pid), timeout=5, what="the sandbox's end")
