"""``theazo.testing.run_agent``: an agent author's unit test, in a real sandbox, no server.

The agents defined here are what such an author writes; the sandbox imports this module to
run them, as a server would import theirs."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import theazo.agents.examples
from theazo import Context, agent
from theazo.testing import AgentRun, Charge, LogLine, ProgressReport, RunRefused, run_agent

COUNT_SH = Path(theazo.agents.examples.__file__).parent / "commands" / "count.sh"


class Greeting(BaseModel):
    name: str
    times: int = 1


@agent("greeter", description="Greets someone, charging a cent a greeting.")
def greeter(ctx: Context, input: Greeting) -> dict[str, Any]:
    for i in range(1, input.times + 1):
        print(f"hello {input.name}")
        ctx.progress(i / input.times, f"greeted {i} of {input.times}")
        ctx.charge("1.25", description="one greeting")
    return {"greeted": input.name, "times": input.times}


def test_an_agent_function_runs_in_a_sandbox_and_reports_everything() -> None:
    started = time.monotonic()
    run = run_agent(greeter, {"name": "Ada", "times": 2})
    elapsed = time.monotonic() - started

    assert isinstance(run, AgentRun)
    assert run.status == "completed", run.error
    assert run.ok and run.error is None
    assert run.output == {"greeted": "Ada", "times": 2}
    assert run.task_id.startswith("task_")
    assert [(r.progress, r.message) for r in run.reports] == [
        (0.5, "greeted 1 of 2"),
        (1.0, "greeted 2 of 2"),
    ]
    assert all(isinstance(r, ProgressReport) for r in run.reports)
    assert [(c.amount, c.description, c.cost) for c in run.charges] == [
        (Decimal("1.25"), "one greeting", Decimal("1.25")),
        (Decimal("1.25"), "one greeting", Decimal("2.5")),
    ]
    assert all(isinstance(c, Charge) for c in run.charges)
    assert run.charged == Decimal("2.5")
    assert (run.cost.amount, run.cost.currency, run.cost_exact) == (3, "usd", Decimal("2.5"))
    assert [(line.stream, line.text) for line in run.logs] == [
        ("stdout", "hello Ada"),
        ("stdout", "hello Ada"),
    ]
    assert all(isinstance(line, LogLine) for line in run.logs)
    assert run.log_text() == "hello Ada\nhello Ada"
    assert (run.progress, run.message) == (1.0, "greeted 2 of 2")
    assert run.started_at <= run.finished_at
    assert elapsed < 10, f"a run took {elapsed:.1f}s"


def test_a_bundled_agent_runs_by_name() -> None:
    run = run_agent("echo", {"text": "hi"})
    assert (run.status, run.output) == ("completed", {"text": "hi"})


def test_a_failing_agent_fails_with_its_error_code_and_message() -> None:
    run = run_agent("raiser", {}, agents="tests.agents")
    assert run.status == "failed"
    assert not run.ok and run.output is None
    assert run.error is not None
    assert (run.error.code, run.error.message) == ("agent_error", "the agent failed on purpose")
    assert "RuntimeError: the agent failed on purpose" in run.log_text("stderr")


def test_an_output_that_is_not_json_fails_as_on_a_server() -> None:
    run = run_agent("bad_output", None, agents="tests.agents")
    assert run.status == "failed"
    assert run.error is not None and run.error.code == "invalid_output"


def test_an_input_that_does_not_fit_the_schema_is_refused_before_it_runs() -> None:
    with pytest.raises(RunRefused) as refused:
        run_agent(greeter, {"name": 5})
    assert refused.value.code == "invalid_input"
    assert refused.value.field == "input['name']"
    assert "does not fit agent 'greeter'" in refused.value.message


def test_an_unknown_agent_is_refused() -> None:
    with pytest.raises(RunRefused) as refused:
        run_agent("nobody", {})
    assert refused.value.code == "unknown_agent"
    assert "echo" in refused.value.message  # the agents there are


def test_a_task_past_its_timeout_fails_with_timeout() -> None:
    run = run_agent("sleeper", {"seconds": 30}, agents="tests.agents", timeout="1s")
    assert run.status == "failed"
    assert run.error is not None and run.error.code == "timeout"
    assert run.duration_seconds < 10


def test_a_command_agent_runs_with_its_reports_and_log() -> None:
    run = run_agent("count", {"n": 3}, command_agents={"count": COUNT_SH}, agents=())
    assert run.status == "completed", run.error
    assert run.output == {"counted": 3, "by": "bash"}
    assert [r.progress for r in run.reports] == [1 / 3, 2 / 3, 1.0]
    assert run.charged == Decimal("1.5")
    assert run.log_text("stdout").splitlines() == [f"counting {i} of 3" for i in (1, 2, 3)]
    assert run.log_text("stderr") == "done counting"


def test_a_command_agents_error_line_is_its_error() -> None:
    run = run_agent("count", {"fail": "error"}, command_agents={"count": COUNT_SH})
    assert run.status == "failed"
    assert run.error is not None
    assert (run.error.code, run.error.message) == ("count_refused", "asked to refuse")


def test_a_function_that_is_not_an_agent_is_a_type_error() -> None:
    def helper(ctx: Context, input: Any) -> None:
        return None

    with pytest.raises(TypeError, match="not an agent"):
        run_agent(helper, {})
