"""Pydantic AI agents served with theazo.integrations.pydantic_ai, run end to end in real
sandboxes on the framework's test models (tests/framework_agents/with_pydantic_ai.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess
from tests.support.waiting import eventually, process_gone
from theazo import Theazo
from theazo.sdk import ProgressEvent, Session, UnprocessableEntityError

AGENTS = "tests.framework_agents.with_pydantic_ai"
_USAGE_LINE = re.compile(r"\[usage\] model test: (\d+) input tokens, (\d+) output tokens")


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    # No compute price: the cost is only what the runs' tokens cost.
    with start_server("--agents", AGENTS, "--compute-price", "0") as process:
        yield process


def _log(session: Session, task_id: str) -> list[str]:
    return [line.text for line in session.tasks.logs(task_id)]


def test_a_run_reports_its_steps_and_tool_calls_and_returns_the_output_type(
    session: Session,
) -> None:
    task = session.tasks.submit("pai_weather", "What is the weather in Paris?")
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))
    done = session.tasks.get(task.task_id)

    assert done.status == "completed", done.error
    assert done.output == {"city": "a", "celsius": 0}  # what TestModel makes of the schema
    messages = [e.message for e in seen if isinstance(e, ProgressEvent)]
    assert messages == [
        "calling the model (step 1)",
        "calling the tool lookup",
        "calling the model (step 2)",
    ]
    log = _log(session, task.task_id)
    # How many tokens TestModel counts for a response is the framework's own arithmetic, which
    # changes between its releases (2.78 began to count a tool call's arguments as output);
    # what is ours is that each response's usage is logged and charged as the framework said.
    usage = [_USAGE_LINE.fullmatch(line) for line in log[::4]]
    assert all(usage) and len(log) == 5, log
    assert log[1:4] == [
        '[tool] lookup({"city":"a"})',
        "looking a up",  # the tool's own print
        "[tool result] lookup: a: 21 degrees",
    ]
    (first_in, first_out), (second_in, second_out) = [
        (int(m.group(1)), int(m.group(2))) for m in usage if m is not None
    ]
    assert 0 < first_in < second_in  # the second request carries the tool's result too
    assert second_out > 0  # the output the model made up
    # Cents, at the agent's price table: a cent an input token, two an output token.
    assert done.cost.amount == first_in + second_in + 2 * (first_out + second_out)


def test_the_prompt_may_be_an_object_and_deps_come_in_the_input(session: Session) -> None:
    done = session.run(
        agent="pai_greeter", input={"prompt": "Greet me", "deps": {"name": "Ada", "tier": "gold"}}
    )
    assert done.status == "completed", done.error
    assert done.output == "Hello Ada (gold)!"
    log = _log(session, done.task_id)
    assert "[text] Hello Ada (gold)!" in log
    # A model the (bundled) price table does not know is not charged, and the log says so.
    assert any("no price for 'greeter-model': not charged" in line for line in log), log
    assert done.cost.amount == 0


def test_the_schemas_come_from_the_agent_and_a_bad_input_is_refused_at_submit(
    theazo: Theazo, session: Session
) -> None:
    listed = {a.name: a for a in theazo.agents.list()}
    assert listed["pai_weather"].description == "Forecasts a city's weather."
    weather_input = listed["pai_weather"].input_schema
    assert weather_input is not None
    assert weather_input["anyOf"][0] == {"type": "string", "description": "The user prompt."}
    greeter_input = listed["pai_greeter"].input_schema
    assert greeter_input is not None
    assert greeter_input["required"] == ["prompt", "deps"]
    # The output schemas: the output_type's, and text where the agent has none.
    weather_output = listed["pai_weather"].output_schema
    assert weather_output is not None
    assert weather_output["properties"] == {
        "city": {"title": "City", "type": "string"},
        "celsius": {"title": "Celsius", "type": "integer"},
    }
    assert listed["pai_greeter"].output_schema == {"type": "string"}

    for agent, bad in [
        ("pai_weather", {"prompt": 3}),
        ("pai_weather", {"question": "typo"}),
        ("pai_greeter", "a bare prompt, but the deps are required"),
        ("pai_greeter", {"prompt": "hi", "deps": {"tier": "gold"}}),
    ]:
        with pytest.raises(UnprocessableEntityError) as refused:
            session.tasks.submit(agent, bad)
        assert refused.value.code == "invalid_input", bad
    assert session.tasks.list().data == []  # none was queued


def test_a_cancel_stops_the_run(session: Session) -> None:
    task = session.tasks.submit("pai_slow", "Take your time")
    # The text the model streams is the task's message as it comes.
    eventually(
        lambda: session.tasks.get(task.task_id).message == "Thinking about it",
        what="the streamed text",
    )
    pid = eventually(lambda: host_pid(task.task_id), what="the sandbox's process")

    cancelled = session.tasks.cancel(task.task_id)

    assert cancelled.status == "cancelled"
    eventually(lambda: process_gone(pid), timeout=5, what="the sandbox's end")
