"""The price table of model tokens: what a model call costs, exactly, in the deployment's minor
units (cents).

A table is read from TOML (``prices.toml`` beside this module is the bundled default, dated,
with its source; ``theazo serve --llm-prices FILE`` lays a file of the same form over it)::

    as_of = "2025-11-01"
    source = "https://openai.com/api/pricing/"
    currency = "usd"
    unit = "per_million_tokens"

    [models."gpt-4o-mini"]
    input = "0.15"          # dollars per million input tokens
    cached_input = "0.075"  # ... per million input tokens read from the prompt cache
    output = "0.60"         # ... per million output tokens

    [models."claude-sonnet-4-5"]
    input = "3.00"
    cached_input = "0.30"
    cache_write_input = "3.75"  # ... per million input tokens written to the prompt cache
    output = "15.00"

``cached_input`` and ``cache_write_input`` are optional: without them, those tokens cost as
any other input token.

``PriceTable.cost(model, tokens)`` is exact: a ``Decimal`` of cents, never a float, so the
gateway and the framework adapters charge what the table says to the millionth of a cent
(``core.cost.to_micros`` takes it as it is). This module does no I/O but reading a table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from theazo.core import cost, defaults
from theazo.core.usage import Tokens

__all__ = ["ModelPrice", "PriceError", "PriceTable", "Tokens", "UnknownModel"]

# Dollars per million tokens to cents per token: x 100 cents, / 1,000,000 tokens.
_PER_MILLION_TO_MINOR = Decimal(100) / Decimal(1_000_000)
_UNIT = "per_million_tokens"
_MAX_PRICE = Decimal(1_000_000)  # dollars per million tokens; past this a table has a typo


class PriceError(ValueError):
    """A price table that cannot be read, or a price that is not one."""


class UnknownModel(KeyError):
    """The table has no price for a model (and none of its names matches a prefix of it)."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model

    def __str__(self) -> str:
        return (
            f"the price table has no price for the model {self.model!r}; "
            "add it with --llm-prices FILE"
        )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Dollars per million tokens, as providers publish them."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write_input: Decimal

    def cost(self, tokens: Tokens) -> Decimal:
        """Exact cost of ``tokens`` in minor units (cents): input tokens read from the cache at
        ``cached_input``, those written to it at ``cache_write_input``, the rest at ``input``."""
        plain = tokens.input - tokens.cached - tokens.written
        per_million = (
            self.input * plain
            + self.cached_input * tokens.cached
            + self.cache_write_input * tokens.written
            + self.output * tokens.output
        )
        return per_million * _PER_MILLION_TO_MINOR

    def cost_micros(self, tokens: Tokens) -> int:
        return to_micros(self.cost(tokens))


def to_micros(amount: Decimal) -> int:
    """An exact amount of minor units in micros (what costs are summed in), half up."""
    return int((amount * cost.MICROS).to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class PriceTable:
    models: Mapping[str, ModelPrice]
    as_of: str = ""
    source: str = ""

    @classmethod
    def bundled(cls) -> PriceTable:
        """The default table shipped with Theazo (see ``prices.toml``: its date and source)."""
        text = resources.files(__package__).joinpath("prices.toml").read_text("utf-8")
        return cls.parse(text, "the bundled price table")

    @classmethod
    def load(cls, path: Path | str | None = None) -> PriceTable:
        """The bundled table, with the file at ``path`` (if any) laid over it: its models add
        to or replace the bundled ones; its ``as_of`` and ``source`` replace theirs."""
        table = cls.bundled()
        if path is None:
            return table
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PriceError(f"cannot read the price table {path}: {exc}") from None
        return table.overlaid(cls.parse(text, str(path)))

    @classmethod
    def parse(cls, text: str, where: str = "the price table") -> PriceTable:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PriceError(f"{where} is not TOML: {exc}") from None
        currency = data.get("currency", defaults.CURRENCY)
        if currency != defaults.CURRENCY:
            raise PriceError(
                f"{where} prices in {currency!r}; this deployment bills in {defaults.CURRENCY!r}"
            )
        if data.get("unit", _UNIT) != _UNIT:
            raise PriceError(f"{where}: unit must be {_UNIT!r}")
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise PriceError(f"{where}: 'models' must be a table of models")
        return cls(
            models={name: _model_price(name, entry, where) for name, entry in models.items()},
            as_of=str(data.get("as_of", "")),
            source=str(data.get("source", "")),
        )

    def overlaid(self, other: PriceTable) -> PriceTable:
        return PriceTable(
            models={**self.models, **other.models},
            as_of=other.as_of or self.as_of,
            source=other.source or self.source,
        )

    def price_for(self, model: str) -> ModelPrice | None:
        """The price of ``model``: its own entry, or the longest entry it begins with followed
        by ``-`` (a dated or suffixed variant: "gpt-4o-2024-08-06" → "gpt-4o")."""
        found = self.models.get(model)
        if found is not None:
            return found
        best = ""
        for name in self.models:
            if model.startswith(name + "-") and len(name) > len(best):
                best = name
        return self.models.get(best) if best else None

    def knows(self, model: str) -> bool:
        return self.price_for(model) is not None

    def cost(self, model: str, tokens: Tokens) -> Decimal:
        """Exact cost of ``tokens`` of ``model`` in minor units (cents); ``UnknownModel`` when
        the table has no price for it."""
        price = self.price_for(model)
        if price is None:
            raise UnknownModel(model)
        return price.cost(tokens)

    def cost_micros(self, model: str, tokens: Tokens) -> int:
        """``cost`` in the micros (millionths of a minor unit) costs are summed in, rounded
        half up: what a charge of that call adds."""
        return to_micros(self.cost(model, tokens))


def _model_price(name: str, entry: Any, where: str) -> ModelPrice:
    if not isinstance(entry, dict):
        raise PriceError(f"{where}: models.{name!r} must be a table")
    unknown = set(entry) - {"input", "output", "cached_input", "cache_write_input"}
    if unknown:
        raise PriceError(f"{where}: models.{name!r} has unknown keys {sorted(unknown)}")
    for required in ("input", "output"):
        if required not in entry:
            raise PriceError(f"{where}: models.{name!r} has no {required!r} price")
    input_price = _price(entry["input"], name, "input", where)
    return ModelPrice(
        input=input_price,
        output=_price(entry["output"], name, "output", where),
        # A provider without a cache discount bills cached tokens as any other input token.
        cached_input=_price(entry.get("cached_input", input_price), name, "cached_input", where),
        # Nor, without a surcharge for writing to the cache, the tokens written to it.
        cache_write_input=_price(
            entry.get("cache_write_input", input_price), name, "cache_write_input", where
        ),
    )


def _price(value: Any, model: str, key: str, where: str) -> Decimal:
    """A price from TOML: a string or an integer is taken exactly, a float by its shortest
    decimal form (``0.15`` is ``Decimal("0.15")``, not the binary float's expansion)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PriceError(f"{where}: models.{model!r}.{key} must be a number")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceError(f"{where}: models.{model!r}.{key} = {value!r} is not a number") from None
    if not price.is_finite() or price < 0 or price > _MAX_PRICE:
        raise PriceError(
            f"{where}: models.{model!r}.{key} = {value!r} is not a price "
            f"(0 to {_MAX_PRICE} dollars per million tokens)"
        )
    return price
