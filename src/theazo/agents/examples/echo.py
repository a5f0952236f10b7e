"""``echo``: the smallest agent there is. It returns its input unchanged."""

from __future__ import annotations

from typing import Any

from theazo import Context, agent


@agent("echo", description="Returns its input unchanged; useful to check a deployment.")
def echo(ctx: Context, input: Any) -> Any:
    return input
