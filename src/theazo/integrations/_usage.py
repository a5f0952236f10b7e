"""A run's token usage as charges on its task.

Where the deployment runs the model gateway, the sandbox's environment says so
(``THEAZO_MODEL_GATEWAY=1``) and the gateway charges the task for each model call it forwards:
charging here too would count every token twice, so nothing is charged. Otherwise each model
response is charged as the price table (``theazo.gateway.prices``) prices its model's tokens:
the bundled table, or the one given to ``serve(..., prices=...)``.
"""

from __future__ import annotations

import os

from theazo.core.usage import Tokens
from theazo.gateway.prices import PriceTable
from theazo.integrations._runs import log
from theazo.sandbox.context import Context

GATEWAY_MARKER = "THEAZO_MODEL_GATEWAY"

_bundled: PriceTable | None = None


def price_table(prices: PriceTable | None) -> PriceTable:
    """``prices``, or the bundled table, read once (at ``serve``, so in the zygote: every
    sandbox finds it read)."""
    global _bundled
    if prices is not None:
        return prices
    if _bundled is None:
        _bundled = PriceTable.bundled()
    return _bundled


def charge(ctx: Context, prices: PriceTable, model: str, tokens: Tokens) -> None:
    """Charge the task for one model response's ``tokens``, unless the gateway meters the
    model calls itself; a model the table does not price is logged, not charged."""
    if tokens.input + tokens.output <= 0 or os.environ.get(GATEWAY_MARKER):
        return
    cached = f" ({tokens.cached} cached)" if tokens.cached else ""
    description = (
        f"model {model}: {tokens.input} input tokens{cached}, {tokens.output} output tokens"
    )
    price = prices.price_for(model)
    if price is None:
        log("usage", f"{description}; the price table has no price for {model!r}: not charged")
        return
    log("usage", description)
    ctx.charge(str(price.cost(tokens)), description=description)
