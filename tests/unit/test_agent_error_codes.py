"""An agent may fail its task with a code of its own, but never with one of the server's."""

from __future__ import annotations

import pytest

from theazo.core.models import TaskError
from theazo.scheduler.outcome import RunReport, classify


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("count_refused", "count_refused"),
        ("invalid_input", "invalid_input"),
        ("timeout", "agent_error"),  # the server's to say
        ("budget_exceeded", "agent_error"),
        ("worker_lost", "agent_error"),
        ("Not A Code", "agent_error"),
        ("", "agent_error"),
        ("x" * 65, "agent_error"),
    ],
)
def test_an_agents_error_code_is_kept_unless_it_is_the_servers(sent: str, kept: str) -> None:
    outcome = classify(RunReport(error=TaskError(sent, "why")), None, 60)
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == (kept, "why")
