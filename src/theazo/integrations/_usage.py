"""A run's token usage as charges on its task.

Where the deployment runs a model gateway, the sandbox's environment names it
(``THEAZO_MODEL_GATEWAY``) and the gateway charges the task for each model call it forwards:
charging here too would count every token twice, so nothing is charged. Otherwise each model
response is charged as the price table prices its model's tokens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

from theazo.integrations._runs import log
from theazo.sandbox.context import Context

GATEWAY_MARKER = "THEAZO_MODEL_GATEWAY"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The tokens one model response used."""

    model: str
    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def charge(ctx: Context, usage: TokenUsage) -> None:
    """Charge the task for ``usage``, unless a gateway meters the model calls itself."""
    if usage.total <= 0 or os.environ.get(GATEWAY_MARKER):
        return
    cost = _price(usage)
    description = f"{usage.model}: {usage.input_tokens} input, {usage.output_tokens} output tokens"
    if cost is None:
        log("usage", f"{description}; no price for {usage.model!r}, not charged")
        return
    ctx.charge(str(cost), description=description)


def _price(usage: TokenUsage) -> Decimal | None:
    """What the tokens cost in minor units, or None for a model without a price."""
    return None  # replaced by the gateway's price table (theazo.gateway.prices) once it lands
