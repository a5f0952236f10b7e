"""The example of docs/agents.md, "Testing agents", as it is shown there (a test checks)."""

from decimal import Decimal

import pytest
from pydantic import BaseModel

from theazo import Context, agent
from theazo.testing import RunRefused, run_agent


class Greeting(BaseModel):
    name: str
    times: int = 1


@agent("docs_greeter", description="Greets someone, charging a cent and a quarter a greeting.")
def greeter(ctx: Context, input: Greeting) -> dict[str, object]:
    for i in range(1, input.times + 1):
        print(f"hello {input.name}")
        ctx.progress(i / input.times, f"greeted {i} of {input.times}")
        ctx.charge("1.25", description="one greeting")
    return {"greeted": input.name, "times": input.times}


def test_greeter() -> None:
    run = run_agent(greeter, {"name": "Ada", "times": 2})
    assert run.status == "completed", run.error
    assert run.output == {"greeted": "Ada", "times": 2}
    assert [r.message for r in run.reports] == ["greeted 1 of 2", "greeted 2 of 2"]
    assert run.charged == Decimal("2.5") and run.cost.amount == 3
    assert run.log_text("stdout") == "hello Ada\nhello Ada"


def test_greeter_refuses_a_bad_input() -> None:
    with pytest.raises(RunRefused) as refused:
        run_agent(greeter, {"name": 5})
    assert refused.value.code == "invalid_input"
