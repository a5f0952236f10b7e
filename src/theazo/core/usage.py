"""Model tokens: what a task's model calls used, by model, and the sums shown for a task and
a session. Counted by the model gateway from each response's usage (gateway/metering.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of one call (or a sum of calls). ``input`` counts every input token,
    ``cached`` the part of them read from the provider's prompt cache, ``written`` the part
    written to it (Anthropic bills those higher; so ``cached + written <= input``), ``output``
    the generated ones.

    ``written`` only prices a call: a task and a session show (and the store keeps) input,
    output and cached, the written tokens counted in input."""

    input: int = 0
    output: int = 0
    cached: int = 0
    written: int = 0

    def __post_init__(self) -> None:
        if min(self.input, self.output, self.cached, self.written) < 0:
            raise ValueError("token counts cannot be negative")
        if self.cached + self.written > self.input:
            raise ValueError("cached and written tokens are a part of the input tokens")

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input + other.input,
            self.output + other.output,
            self.cached + other.cached,
            self.written + other.written,
        )

    def __bool__(self) -> bool:
        return bool(self.input or self.output)

    @property
    def total(self) -> int:
        return self.input + self.output

    def as_json(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "cached": self.cached}

    @classmethod
    def from_json(cls, data: Any) -> Tokens:
        if not isinstance(data, Mapping):
            return cls()
        return cls(int(data["input"]), int(data["output"]), int(data["cached"]))


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens by model: a task's, over all its attempts."""

    by_model: Mapping[str, Tokens] = field(default_factory=dict)

    @property
    def tokens(self) -> Tokens:
        total = Tokens()
        for tokens in self.by_model.values():
            total += tokens
        return total

    def __bool__(self) -> bool:
        return bool(self.by_model)

    def add(self, model: str, tokens: Tokens) -> ModelUsage:
        by_model = dict(self.by_model)
        by_model[model] = by_model.get(model, Tokens()) + tokens
        return ModelUsage(by_model)

    def as_json(self) -> dict[str, dict[str, int]]:
        """As the store keeps it: ``{model: {input, output, cached}}``."""
        return {model: tokens.as_json() for model, tokens in sorted(self.by_model.items())}

    @classmethod
    def from_json(cls, data: Any) -> ModelUsage:
        if not isinstance(data, Mapping):
            return cls()
        return cls({str(model): Tokens.from_json(tokens) for model, tokens in data.items()})

    def wire(self) -> dict[str, Any]:
        """As a task shows it: ``{"tokens": {...}, "byModel": {model: {...}}}``."""
        return {"tokens": self.tokens.as_json(), "byModel": self.as_json()}


@dataclass(frozen=True, slots=True)
class NetworkUsage:
    """What a task's sandbox sent and received through the egress proxy, over all its
    attempts: bytes of the connections' payloads (TLS included, as it goes on the wire
    inside the tunnel; not the proxy's own CONNECT lines) and how many it opened."""

    sent: int = 0
    received: int = 0
    connections: int = 0

    def __add__(self, other: NetworkUsage) -> NetworkUsage:
        return NetworkUsage(
            self.sent + other.sent,
            self.received + other.received,
            self.connections + other.connections,
        )

    def __bool__(self) -> bool:
        return bool(self.sent or self.received or self.connections)

    def wire(self) -> dict[str, int]:
        return {
            "sentBytes": self.sent,
            "receivedBytes": self.received,
            "connections": self.connections,
        }


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """A run's model usage to save: the task's usage now (replacing what the store holds; the
    run holds the task's row, so no one else changes it) and what it added since the last
    save (added to its session's sums)."""

    usage: ModelUsage
    added: Tokens

    def then(self, later: UsageUpdate | None) -> UsageUpdate:
        """This update followed by ``later`` (one not saved yet), as one."""
        if later is None:
            return self
        return UsageUpdate(later.usage, self.added + later.added)
