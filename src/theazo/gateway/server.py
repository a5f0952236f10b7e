"""The model gateway's HTTP/1.1 server: one per node, answering every sandbox's loopback port
``MODEL_GATEWAY_PORT`` through the egress proxy's service hook (sandbox/egress.py), so it
knows which task each connection comes from without trusting anything the agent says.

A request to ``/NAME/PATH`` goes to the provider NAME at ``BASE_URL/PATH``, with the agent's
credentials removed and the provider's key added. Before it goes: the model must have a price,
the session must be under its rate limits, the task under its model spend cap, the session
under its budget. The answer comes back as it comes (a stream event by event), its usage is
metered (metering.py) and charged to the task. Whatever goes wrong, the agent gets an HTTP
error in the shape both providers' SDKs read (``{"type": "error", "error": {...}}``), never a
hang: the provider has ``read_timeout_seconds`` between two bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx

from theazo.core import cost, defaults
from theazo.core.errors import StoreUnavailable
from theazo.core.rates import RateLimits
from theazo.core.usage import Tokens
from theazo.gateway.accounts import Accounts, TaskAccount
from theazo.gateway.limits import RateCounts, SessionRates
from theazo.gateway.metering import Metered, StreamMeter, meter_body
from theazo.gateway.prices import ModelPrice
from theazo.gateway.providers import GatewaySettings, Kind, Provider

log = logging.getLogger("theazo.gateway")

_READ_BYTES = 64 * 1024
# Never passed on, either way: the connection's own, the agent's credentials, the encoding
# (the gateway reads answers to meter them, so it asks for them unencoded).
_DROPPED_REQUEST = {
    b"host", b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
    b"te", b"trailer", b"transfer-encoding", b"upgrade", b"content-length",
    b"authorization", b"x-api-key", b"api-key", b"accept-encoding", b"cookie",
}  # fmt: skip
_DROPPED_RESPONSE = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
    "set-cookie", "trailer", "upgrade",
}  # fmt: skip
_ANTHROPIC_VERSION = "2023-06-01"


class GatewayError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What the gateway reads of a request's JSON body."""

    data: dict[str, Any] | None
    model: str
    stream: bool
    max_tokens: int

    @classmethod
    def of(cls, body: bytes) -> ModelRequest:
        data: Any = None
        if body:
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                data = None
        if not isinstance(data, dict):
            return cls(None, "", False, 0)
        model = data.get("model")
        limit = next(
            (
                value
                for key in ("max_tokens", "max_completion_tokens", "max_output_tokens")
                if isinstance(value := data.get(key), int) and not isinstance(value, bool)
            ),
            0,
        )
        return cls(data, model if isinstance(model, str) else "", data.get("stream") is True, limit)


class ModelGateway:
    def __init__(
        self,
        settings: GatewaySettings,
        accounts: Accounts,
        rates: RateCounts,
    ) -> None:
        """``rates``: where the sessions' rate windows are counted (the node's store)."""
        self.settings = settings
        self._accounts = accounts
        self._limits = SessionRates(
            RateLimits(settings.requests_per_minute, settings.tokens_per_minute), rates
        )
        self._client: httpx.AsyncClient | None = None
        self._secrets = tuple(p.key.encode() for p in settings.providers if p.key)

    @property
    def port(self) -> int:
        return self.settings.port

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    self.settings.read_timeout_seconds,
                    connect=self.settings.connect_timeout_seconds,
                ),
                limits=httpx.Limits(
                    max_connections=defaults.MODEL_GATEWAY_CONNECTIONS,
                    max_keepalive_connections=defaults.MODEL_GATEWAY_CONNECTIONS // 4,
                ),
                trust_env=False,  # the server's own proxy settings are not the sandboxes'
                follow_redirects=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- a connection ------------------------------------------------------------------
    async def serve(
        self, task_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer one connection of a sandbox (the egress proxy's ServiceHandler): requests
        one after another while it is kept alive."""
        conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=defaults.MODEL_GATEWAY_HEAD_BYTES
        )
        _no_delay(writer)
        while True:
            try:
                received = await _read_request(conn, reader, writer)
            except GatewayError as exc:
                await _send_error(conn, writer, exc)
                return
            if received is None:
                return
            request, body = received
            try:
                await self._answer(task_id, request, body, conn, writer)
            except GatewayError as exc:
                if conn.our_state is not h11.SEND_RESPONSE:
                    return  # the answer had begun: only ending the connection tells
                await _send_error(conn, writer, exc)
            if h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    # --- a request ---------------------------------------------------------------------
    async def _answer(
        self,
        task_id: str,
        request: h11.Request,
        body: bytes,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
    ) -> None:
        account = self._accounts(task_id)
        if account is None:
            raise GatewayError(403, "task_not_running", "this sandbox's task is not running")
        provider, path = self._route(request.method, request.target.decode("latin-1"))
        call = ModelRequest.of(body) if request.method == b"POST" else ModelRequest.of(b"")
        price = self._price(call)
        try:
            limited = await self._limits.admit(account.session_id)
        except StoreUnavailable as exc:
            raise GatewayError(
                503,
                "store_unavailable",
                "the session's rate limits cannot be counted now (the deployment's database "
                "is unavailable)",
                retry_after=exc.retry_after_seconds,
            ) from None
        if limited is not None:
            raise GatewayError(
                429, "rate_limited", limited.reason, retry_after=limited.retry_after_seconds
            )
        await self._check_spend(account, price, call)
        body, drop_usage_chunk = _with_stream_usage(provider, path, call, body)
        upstream = self._http().build_request(
            request.method.decode("ascii"),
            f"{provider.base_url}/{path}",
            headers=_upstream_headers(provider, request.headers),
            content=body,
        )
        response = await self._send(provider, upstream)
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await self._relay_stream(
                    account, call, response, drop_usage_chunk, conn, writer, provider
                )
            else:
                await self._relay_whole(account, call, response, conn, writer, provider)
        finally:
            await response.aclose()

    def _route(self, method: bytes, target: str) -> tuple[Provider, str]:
        url = urlsplit(target)
        name, _, rest = url.path.lstrip("/").partition("/")
        provider = self.settings.provider(name)
        if provider is None:
            known = ", ".join(f"/{p.name}/…" for p in self.settings.providers)
            raise GatewayError(
                404, "unknown_provider", f"no provider {name!r} here; this deployment has {known}"
            )
        if not _allowed(provider.kind, method, rest):
            raise GatewayError(
                403,
                "endpoint_not_allowed",
                f"{method.decode('latin-1')} /{rest} is not a model call this gateway passes on "
                "(it passes completions, chat completions, responses, embeddings, messages "
                "and model lists)",
            )
        return provider, rest + (f"?{url.query}" if url.query else "")

    def _price(self, call: ModelRequest) -> ModelPrice | None:
        if not call.model:
            return None
        price = self.settings.prices.price_for(call.model)
        if price is None:
            raise GatewayError(
                400,
                "model_not_priced",
                f"the model {call.model!r} has no price in this deployment's price table, so "
                "its calls cannot be billed; the operator can add it (--llm-prices FILE)",
            )
        return price

    async def _check_spend(
        self, account: TaskAccount, price: ModelPrice | None, call: ModelRequest
    ) -> None:
        """Refuse a call once the task's cap or the session's budget is reached, or when its
        longest answer (``max_tokens``) would pass them; input tokens are not known before
        the provider counts them."""
        worst = 0
        if price is not None and call.max_tokens > 0:
            worst = price.cost_micros(Tokens(output=call.max_tokens))
        left = await account.budget_left_micros()
        if left is not None and (left <= 0 or worst > left):
            message = (
                "the session's budget is spent"
                if left <= 0
                else f"this call could cost {_amount(worst)} minor units, more than the "
                f"{_amount(left)} left of the session's budget"
            )
            account.stop_for_budget(f"a model call was refused: {message}")
            raise GatewayError(402, "budget_exceeded", f"{message}; the task is stopped")
        cap = self.settings.task_spend_cap_micros
        spent = account.model_spent_micros
        if cap and (spent >= cap or spent + worst > cap):
            raise GatewayError(
                402,
                "model_spend_cap",
                f"this task's model calls cost {_amount(spent)} minor units, and its cap is "
                f"{_amount(cap)}"
                + (f"; this call could cost {_amount(worst)} more" if spent < cap else ""),
            )

    async def _send(self, provider: Provider, request: httpx.Request) -> httpx.Response:
        try:
            return await self._http().send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise GatewayError(
                504,
                "provider_timeout",
                f"the provider {provider.name!r} did not answer in time ({type(exc).__name__})",
            ) from None
        except httpx.HTTPError as exc:
            raise GatewayError(
                502,
                "provider_unreachable",
                f"cannot reach the provider {provider.name!r}: {type(exc).__name__}: {exc}",
            ) from None

    # --- answers -----------------------------------------------------------------------
    async def _relay_whole(
        self,
        account: TaskAccount,
        call: ModelRequest,
        response: httpx.Response,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        provider: Provider,
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > defaults.MODEL_GATEWAY_MAX_RESPONSE_BYTES:
                    raise GatewayError(
                        502, "answer_too_large", "the provider's answer is too large"
                    )
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise GatewayError(
                504, "provider_timeout", f"the provider {provider.name!r} stopped answering"
            ) from None
        except httpx.HTTPError as exc:
            raise GatewayError(
                502, "provider_failed", f"the provider {provider.name!r}'s answer broke: {exc}"
            ) from None
        body = b"".join(chunks)
        if response.status_code in (401, 403):
            # Its words may show part of the key ("Incorrect API key provided: sk-…"): not
            # for the agent.
            raise GatewayError(
                502,
                "provider_refused_key",
                f"the provider {provider.name!r} refused the deployment's key "
                f"(HTTP {response.status_code}); the operator must check it",
            )
        if response.is_success:
            metered = meter_body(body, call.model)
            if metered is not None:
                await self._charge(account, call, metered)
        body = self._scrubbed(body)
        headers = [*_response_headers(response), (b"content-length", str(len(body)).encode())]
        head = h11.Response(status_code=response.status_code, headers=headers)
        await _write(conn, writer, head, h11.Data(data=body), h11.EndOfMessage())

    async def _relay_stream(
        self,
        account: TaskAccount,
        call: ModelRequest,
        response: httpx.Response,
        drop_usage_chunk: bool,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        provider: Provider,
    ) -> None:
        meter = StreamMeter(call.model, drop_usage_chunk=drop_usage_chunk)
        headers = _response_headers(response)
        await _write(conn, writer, h11.Response(status_code=response.status_code, headers=headers))
        try:
            async for chunk in response.aiter_raw():
                out = meter.feed(chunk)
                if out:
                    await _write(conn, writer, h11.Data(data=self._scrubbed(out)))
            rest = meter.rest()
            if rest:
                await _write(conn, writer, h11.Data(data=self._scrubbed(rest)))
            await _write(conn, writer, h11.EndOfMessage())
        except httpx.HTTPError as exc:
            # The status is sent: a broken-off body is how the agent's client learns of it.
            log.info("the stream of provider %s broke off: %s", provider.name, exc)
            raise GatewayError(502, "provider_failed", str(exc)) from None
        finally:
            metered = meter.metered  # charged even when the agent went away meanwhile
            if metered is not None and response.is_success:
                await self._charge(account, call, metered)

    async def _charge(self, account: TaskAccount, call: ModelRequest, metered: Metered) -> None:
        prices = self.settings.prices
        priced_as = metered.model if prices.knows(metered.model) else call.model
        price = prices.price_for(priced_as)
        micros = 0 if price is None else price.cost_micros(metered.tokens)
        account.record_model_call(metered.model, metered.tokens, micros)
        await self._limits.used(account.session_id, metered.tokens.total)

    def _scrubbed(self, data: bytes) -> bytes:
        """Never pass a key on, whatever a provider echoes."""
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, b"[redacted]")
        return data


def _amount(micros: int) -> str:
    return f"{micros / cost.MICROS:.4f}".rstrip("0").rstrip(".")


# What an agent may call with the deployment's key: model calls, whose tokens are metered,
# and the lists of models. Not files, batches, fine-tuning, assistants or an organisation's
# administration: work billed later or elsewhere, and data that is not the task's.
_ALLOWED: dict[Kind, tuple[tuple[bytes, re.Pattern[str]], ...]] = {
    Kind.OPENAI: (
        (b"POST", re.compile(r"(chat/)?completions|responses|embeddings|moderations")),
        (b"GET", re.compile(r"models(/[\w:-][\w.:-]*)?")),
    ),
    Kind.ANTHROPIC: (
        (b"POST", re.compile(r"v1/(messages(/count_tokens)?|complete)")),
        (b"GET", re.compile(r"v1/models(/[\w:-][\w.:-]*)?")),
    ),
}


def _allowed(kind: Kind, method: bytes, path: str) -> bool:
    return any(method == allowed and pattern.fullmatch(path) for allowed, pattern in _ALLOWED[kind])


def _with_stream_usage(
    provider: Provider, path: str, call: ModelRequest, body: bytes
) -> tuple[bytes, bool]:
    """An OpenAI chat completion streamed without usage gets ``include_usage`` (or it could
    not be metered); returns the body to send and whether the extra chunk is to be dropped."""
    if provider.kind is not Kind.OPENAI or not call.stream or call.data is None:
        return body, False
    if not path.split("?")[0].endswith("chat/completions"):
        return body, False
    options = call.data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    data = dict(call.data)
    data["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return json.dumps(data).encode(), True


def _upstream_headers(
    provider: Provider, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name.lower() not in _DROPPED_REQUEST]
    kept.append((b"accept-encoding", b"identity"))
    if provider.kind is Kind.ANTHROPIC:
        kept.append((b"x-api-key", provider.key.encode()))
        if not any(name.lower() == b"anthropic-version" for name, _ in kept):
            kept.append((b"anthropic-version", _ANTHROPIC_VERSION.encode()))
    else:
        kept.append((b"authorization", b"Bearer " + provider.key.encode()))
    return kept


def _response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.multi_items()
        if name.lower() not in _DROPPED_RESPONSE
    ]


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[h11.Request, bytes] | None:
    """The next request and its body; None once the client closed or went idle."""
    event = await _next_event(conn, reader, defaults.MODEL_GATEWAY_IDLE_SECONDS, idle=True)
    if event is None or not isinstance(event, h11.Request):
        return None
    chunks: list[bytes] = []
    size = 0
    if conn.client_is_waiting_for_100_continue:  # curl does, for a large body
        data = conn.send(h11.InformationalResponse(status_code=100, headers=[]))
        if data:
            writer.write(data)
    while True:
        part = await _next_event(conn, reader, defaults.EGRESS_HEAD_TIMEOUT_SECONDS)
        if part is None:
            return None
        if isinstance(part, h11.EndOfMessage):
            return event, b"".join(chunks)
        if isinstance(part, h11.Data):
            size += len(part.data)
            if size > defaults.MODEL_GATEWAY_MAX_REQUEST_BYTES:
                raise GatewayError(
                    413,
                    "request_too_large",
                    f"a model call may send at most {defaults.MODEL_GATEWAY_MAX_REQUEST_BYTES} "
                    "bytes",
                )
            chunks.append(part.data)


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, timeout: float, *, idle: bool = False
) -> Any:
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise GatewayError(400, "bad_request", f"not an HTTP/1.1 request: {exc}") from None
        if event is not h11.NEED_DATA:
            return None if isinstance(event, h11.ConnectionClosed) else event
        try:
            data = await asyncio.wait_for(reader.read(_READ_BYTES), timeout)
        except TimeoutError:
            if idle:
                return None
            raise GatewayError(408, "request_timeout", "the request came too slowly") from None
        conn.receive_data(data)


async def _write(conn: h11.Connection, writer: asyncio.StreamWriter, *events: Any) -> None:
    """Send events in one write: a head and its body in separate segments would cost a round
    trip more to a client that reads them together."""
    data = b"".join(conn.send(event) or b"" for event in events)
    if data:
        writer.write(data)
        await writer.drain()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Each event of a stream goes out as it comes, not held back for an acknowledgement."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _send_error(
    conn: h11.Connection, writer: asyncio.StreamWriter, error: GatewayError
) -> None:
    """The error as both providers' SDKs read it; after a broken request, the connection
    ends with it."""
    body = json.dumps(
        {
            "type": "error",
            "error": {
                "type": error.code,
                "code": error.code,
                "message": f"theazo model gateway: {error}",
            },
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    if error.status not in (429, 502, 503, 504):  # what trying again cannot change
        headers.append((b"x-should-retry", b"false"))
    with contextlib.suppress(ConnectionError, RuntimeError):
        if conn.our_state is h11.SEND_RESPONSE:
            response = h11.Response(status_code=error.status, headers=headers)
            await _write(conn, writer, response, h11.Data(data=body), h11.EndOfMessage())
        else:  # no request was read: h11 answers nothing, so the bytes are written here
            head = f"HTTP/1.1 {error.status} Error\r\nConnection: close\r\n".encode()
            lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            writer.write(head + lines + b"\r\n" + body)
            await writer.drain()
