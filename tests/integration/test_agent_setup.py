"""An agent's setup: built once before any task, found by each as ctx.resources, and a copy
of its own, so no task sees what another changed."""

from __future__ import annotations

from theazo.sdk import Session


def test_each_task_gets_the_setup_as_it_was_built(session: Session) -> None:
    first = session.run(agent="prepared", input=None)
    second = session.run(agent="prepared", input=None)
    for task in (first, second):
        assert task.status == "completed", task.error
        assert task.output == {"loaded_by": "setup", "seen_before": [], "client_open": True}
