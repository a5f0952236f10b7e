"""Command agents declared in an agents file (``--agents-file``): listed with their
description and input schema, and a submit whose input does not fit is refused with 422
before it queues, as for a Python agent with a model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import theazo.agents.examples
from tests.conftest import StartServer
from tests.support.server import ServerProcess
from theazo import Theazo, UnprocessableEntityError
from theazo.sdk import Session
from theazo.testing import RunRefused, run_agent

AGENTS_FILE = Path(theazo.agents.examples.__file__).parent / "commands" / "agents.toml"
COUNT_SCHEMA = json.loads((AGENTS_FILE.parent / "count.schema.json").read_text())


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--agents-file", str(AGENTS_FILE), "--compute-price", "0") as process:
        yield process


def test_the_agents_are_listed_with_their_description_and_schema(theazo: Theazo) -> None:
    listed = {a.name: a for a in theazo.agents.list()}
    bash, node = listed["count_bash"], listed["count_node"]
    assert bash.description == "Counts to n in Bash, reporting progress and half a cent a step."
    assert bash.input_schema is not None
    assert bash.input_schema["additionalProperties"] is False
    assert node.input_schema == COUNT_SCHEMA
    assert "echo" in listed  # the bundled Python examples are served too


BY = {"count_bash": "bash", "count_node": "node", "count_helper": "node"}


@pytest.mark.parametrize("agent", sorted(BY))
def test_an_input_that_fits_runs(session: Session, agent: str) -> None:
    task = session.tasks.submit(agent, {"n": 2})
    done = session.tasks.wait(task.task_id, timeout="30s")
    assert done.status == "completed", done.error
    assert done.output == {"counted": 2, "by": BY[agent]}
    assert done.cost.amount == 1
    assert (done.progress, done.message) == (1.0, "counted 2")
    lines = [(line.stream, line.text) for line in session.tasks.logs(task.task_id)]
    counted = [("stdout", "counting 1 of 2"), ("stdout", "counting 2 of 2")]
    assert lines == [*counted, ("stderr", "done counting")]


def test_the_node_helpers_error_is_the_tasks_error(session: Session) -> None:
    done = session.run("count_helper", {"fail": "error"}, wait_timeout="30s")
    assert done.status == "failed"
    assert done.error is not None
    assert (done.error.code, done.error.message) == ("count_refused", "asked to refuse")


@pytest.mark.parametrize(
    ("agent", "task_input", "says"),
    [
        ("count_bash", {"n": -1}, "input['n'] does not fit agent 'count_bash': -1 is less than"),
        ("count_node", {"n": "four"}, "input['n'] does not fit agent 'count_node': 'four' is not"),
        ("count_node", {"m": 1}, "Additional properties are not allowed ('m' was unexpected)"),
        ("count_bash", None, "input does not fit agent 'count_bash': None is not of type"),
    ],
)
def test_an_input_that_does_not_fit_is_422_before_it_queues(
    session: Session, agent: str, task_input: object, says: str
) -> None:
    with pytest.raises(UnprocessableEntityError) as refused:
        session.tasks.submit(agent, task_input)
    assert refused.value.code == "invalid_input"
    assert says in str(refused.value.detail)
    assert session.tasks.list().data == []  # nothing was queued


def test_run_agent_checks_the_same_schema() -> None:
    with pytest.raises(RunRefused) as refused:
        run_agent("count_node", {"n": -1}, agents_file=AGENTS_FILE, agents=())
    assert refused.value.code == "invalid_input"
    run = run_agent("count_helper", {"n": 1}, agents_file=AGENTS_FILE, agents=())
    assert (run.status, run.output) == ("completed", {"counted": 1, "by": "node"})
    assert [(r.progress, r.message) for r in run.reports] == [(1.0, "counted 1")]
    assert [(c.amount, c.description) for c in run.charges] == [(Decimal("0.5"), "one step")]
