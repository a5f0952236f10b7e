"""The deployment's model providers and the gateway's settings (``theazo serve --llm-…``).

A provider is ``NAME=KIND,BASE_URL,KEY_ENV``: a name (the first part of the gateway's paths),
its API's kind (``openai``: the OpenAI API and every compatible one; ``anthropic``), the base
URL its SDK would use (``https://api.openai.com/v1``, ``https://api.anthropic.com``) and the
server's environment variable holding its key. The key is read from the server's environment
when the node starts and kept in its memory only: never in the database, never in an answer,
never in a sandbox's environment or files.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from theazo.core import defaults
from theazo.gateway.prices import PriceTable

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What an agent's SDK is told it talks to; the gateway replaces it with the real key.
DUMMY_KEY = "theazo-model-gateway"


class Kind(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: Kind
    base_url: str
    key_env: str
    key: str = field(default="", repr=False, compare=False)  # never printed

    @classmethod
    def parse(cls, spec: str, environ: Mapping[str, str] | None = None) -> Provider:
        """``NAME=KIND,BASE_URL,KEY_ENV``, its key read from ``environ`` (the server's)."""
        env = os.environ if environ is None else environ
        name, sep, rest = spec.strip().partition("=")
        parts = [p.strip() for p in rest.split(",")]
        if not sep or len(parts) != 3:
            raise ValueError(f"{spec!r} is not NAME=KIND,BASE_URL,KEY_ENV")
        kind_text, base_url, key_env = parts
        name = name.strip().lower()
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a provider name (a-z, 0-9, - and _)")
        try:
            kind = Kind(kind_text.lower())
        except ValueError:
            raise ValueError(f"{kind_text!r} is not a provider kind (openai, anthropic)") from None
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname or url.query:
            raise ValueError(f"{base_url!r} is not an http(s) base URL")
        if not _ENV_NAME.match(key_env):
            raise ValueError(f"{key_env!r} is not an environment variable's name")
        key = env.get(key_env, "")
        if not key.strip():
            raise ValueError(
                f"{key_env} is not set in the server's environment (the key of {name})"
            )
        return cls(name, kind, base_url.rstrip("/"), key_env, key.strip())


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    providers: tuple[Provider, ...]
    prices: PriceTable = field(default_factory=PriceTable.bundled)
    port: int = defaults.MODEL_GATEWAY_PORT
    requests_per_minute: int = 0  # per session; 0: no limit
    tokens_per_minute: int = 0  # per session; 0: no limit
    task_spend_cap_micros: int = 0  # model spend of one task; 0: no cap
    read_timeout_seconds: float = defaults.MODEL_GATEWAY_READ_TIMEOUT_SECONDS
    connect_timeout_seconds: float = defaults.MODEL_GATEWAY_CONNECT_TIMEOUT_SECONDS

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def first(self, kind: Kind) -> Provider | None:
        return next((p for p in self.providers if p.kind is kind), None)

    def sandbox_environment(self) -> dict[str, str]:
        """What every sandbox is given: where its SDKs find the gateway (each kind's first
        provider; any provider at ``THEAZO_MODEL_GATEWAY_URL/NAME``), dummy keys, and the
        marker that its model calls are metered here (framework adapters then charge none)."""
        root = f"http://127.0.0.1:{self.port}"
        env = {"THEAZO_MODEL_GATEWAY": "1", "THEAZO_MODEL_GATEWAY_URL": root}
        env["THEAZO_MODEL_PROVIDERS"] = ",".join(f"{p.name}={p.kind}" for p in self.providers)
        openai = self.first(Kind.OPENAI)
        if openai is not None:
            env["OPENAI_BASE_URL"] = f"{root}/{openai.name}"
            env["OPENAI_API_KEY"] = DUMMY_KEY
        anthropic = self.first(Kind.ANTHROPIC)
        if anthropic is not None:
            env["ANTHROPIC_BASE_URL"] = f"{root}/{anthropic.name}"
            env["ANTHROPIC_API_KEY"] = DUMMY_KEY
        return env


def parse_providers(
    specs: tuple[str, ...] | list[str], environ: Mapping[str, str] | None = None
) -> tuple[Provider, ...]:
    providers: dict[str, Provider] = {}
    for spec in specs:
        provider = Provider.parse(spec, environ)
        if provider.name in providers:
            raise ValueError(f"the provider {provider.name!r} is declared twice")
        providers[provider.name] = provider
    return tuple(providers.values())
