"""Mistakes in an agent's definition are told in words at load, not as a TypeError from
inside the decorator."""

from __future__ import annotations

from typing import Any

import pytest

from theazo import Context, agent
from theazo.agent import AgentDefinitionError


def test_a_bare_decorator_asks_for_the_name() -> None:
    def summarize(ctx: Context, input: Any) -> None:
        return None

    with pytest.raises(AgentDefinitionError, match=r"@agent\('summarize'\)"):
        agent(summarize)  # type: ignore[arg-type]  # what a bare @agent does


@pytest.mark.parametrize("name", ["", "has space", "x" * 200, 42])
def test_a_name_that_is_not_an_identifier_is_refused(name: Any) -> None:
    with pytest.raises(AgentDefinitionError, match="must be an identifier"):
        agent(name)
