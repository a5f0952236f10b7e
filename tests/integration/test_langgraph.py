"""Compiled LangGraph graphs served with theazo.integrations.langgraph, run end to end in
real sandboxes (tests/framework_agents/with_langgraph.py: graphs without a model)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess
from tests.support.waiting import eventually, process_gone
from theazo import Theazo
from theazo.sdk import ProgressEvent, Session, UnprocessableEntityError

AGENTS = "tests.framework_agents.with_langgraph"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    # No compute price: the cost is only what the messages' tokens cost.
    with start_server("--agents", AGENTS, "--compute-price", "0") as process:
        yield process


def test_each_node_is_reported_and_the_final_state_is_the_output(session: Session) -> None:
    task = session.tasks.submit("lg_shout", {"text": "hello there world"})
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))
    done = session.tasks.get(task.task_id)

    assert done.status == "completed", done.error
    assert isinstance(done.output, dict)
    assert {k: done.output[k] for k in ("text", "words", "notes")} == {
        "text": "hello there world",
        "words": 3,
        "notes": ["counted", "answered"],
    }
    assert done.output["answer"]["content"] == "HELLO THERE WORLD"  # a message, dumped
    messages = [e.message for e in seen if isinstance(e, ProgressEvent)]
    assert messages == ["step 1: count", "step 2: answer"]
    log = [line.text for line in session.tasks.logs(task.task_id)]
    assert log[:2] == [
        "counting the words of 'hello there world'",  # the node's own print
        "[step] count: {'words': 3, 'notes': ['counted']}",
    ]
    assert log[-1] == "[usage] model fake-model: 10 input tokens, 2 output tokens"
    assert done.cost.amount == 10 + 2 * 2  # the answer's tokens, at the graph's price table


def test_the_input_schema_is_the_graphs(theazo: Theazo, session: Session) -> None:
    listed = {a.name: a for a in theazo.agents.list()}
    schema = listed["lg_shout"].input_schema
    assert schema is not None
    assert schema["required"] == ["text"] and schema["properties"]["text"]["type"] == "string"
    output = listed["lg_shout"].output_schema  # the whole state
    assert output is not None and set(output["properties"]) == {"text", "words", "notes", "answer"}
    for bad in ({"words": 3}, {"text": 3}, "just text"):
        with pytest.raises(UnprocessableEntityError) as refused:
            session.tasks.submit("lg_shout", bad)
        assert refused.value.code == "invalid_input", bad


def test_a_cancel_stops_the_run(session: Session) -> None:
    task = session.tasks.submit("lg_slow", {"text": "wait"})
    eventually(
        lambda: session.tasks.get(task.task_id).message == "step 1: start", what="the first step"
    )
    pid = eventually(lambda: host_pid(task.task_id), what="the sandbox's process")

    assert session.tasks.cancel(task.task_id).status == "cancelled"
    eventually(lambda: process_gone(pid), timeout=5, what="the sandbox's end")
