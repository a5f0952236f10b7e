"""Every decision of the SDK that does no I/O, shared by ``Theazo`` and ``AsyncTheazo``.

Configuration (API key, base URL, time-outs, headers), the ``httpx.Request`` of each endpoint,
turning a response into a model or a typed exception, and the protocols that take more than one
request. Those protocols (``wait``, ``run``) are generators that yield requests and receive
responses; the sync and async clients only send what they yield.
"""

from __future__ import annotations

import enum
import os
import random
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx
import pydantic

from theazo import __version__
from theazo.core import defaults
from theazo.core.durations import parse_duration
from theazo.sdk._events import STREAM_READ_TIMEOUT_SECONDS, StreamFollower
from theazo.sdk._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    RateLimitError,
    TheazoError,
    error_class,
)
from theazo.sdk._models import Cost, Limits, SessionInfo, Task, TaskPage, Usage, WireModel

API_KEY_ENV: Final = "THEAZO_API_KEY"
BASE_URL_ENV: Final = "THEAZO_BASE_URL"
DEFAULT_BASE_URL: Final = f"http://{defaults.HOST}:{defaults.PORT}"  # `theazo serve` unflagged
DEFAULT_TIMEOUT_SECONDS: Final = 30.0  # every call but a long poll answers far within this
WAIT_HOLD_CAP_SECONDS: Final = defaults.MAX_WAIT_SECONDS  # the server holds no longer anyway
WAIT_READ_MARGIN_SECONDS: Final = 10.0  # a hold's answer may come late on a slow network
MAX_ERROR_BODY_CHARS: Final = 500  # enough of a proxy's error page to recognise it
DEFAULT_MAX_RETRIES: Final = 5  # 503s in a row before giving up: about 15 s of waiting
RETRY_FIRST_WAIT_SECONDS: Final = 0.5  # the wait before the first retry; doubling after
RETRY_MAX_WAIT_SECONDS: Final = 30.0  # the longest wait between two tries, whatever the hint
RETRY_JITTER: Final = 0.2  # ±20%: clients turned away together do not return together
RETRIED_STATUSES: Final = frozenset({503})  # the server's database failed for a moment

Priority = Literal["high", "normal", "low"]
Duration = str | float
M = TypeVar("M", bound=WireModel)
T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]
"""A protocol of several requests: yields each request, receives its response, returns T."""


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""The default of arguments for which ``None`` means something (``budget=None``: no budget)."""


class SubmitOptions(TypedDict, total=False):
    """The optional submit arguments that ``Session.run`` passes through to ``Tasks.submit``."""

    webhook: str | None
    webhook_events: Sequence[str] | None
    metadata: Mapping[str, str] | None
    retries: int | None
    idempotency_key: str | None


# --- configuration --------------------------------------------------------------------------
def resolve_api_key(api_key: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The API key given, else ``THEAZO_API_KEY``; raise ``TheazoError`` if neither is set."""
    key = api_key or environ.get(API_KEY_ENV)
    if not key:
        raise TheazoError(
            f"no API key: pass Theazo(api_key='th_live_…') or set {API_KEY_ENV} "
            "(`theazo keys create` makes one)"
        )
    return key


def resolve_base_url(base_url: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The base URL given, else ``THEAZO_BASE_URL``, else the local default; no trailing ``/``."""
    url = (base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    if httpx.URL(url).scheme not in ("http", "https"):
        raise TheazoError(f"base URL {url!r} must start with http:// or https://")
    return url


def resolve_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Seconds for each phase of a call (``None``: no limit), or an ``httpx.Timeout``."""
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


# --- request bodies -------------------------------------------------------------------------
def submit_body(
    agent: str,
    input: Any = None,
    *,
    priority: Priority = "normal",
    webhook: str | None = None,
    webhook_events: Sequence[str] | None = None,
    timeout: Duration | None = None,
    metadata: Mapping[str, str] | None = None,
    retries: int | None = None,
) -> dict[str, Any]:
    """The JSON of one submit; optional fields are sent only when given."""
    body: dict[str, Any] = {"agent": agent, "input": input, "priority": priority}
    optional = {
        "webhook": webhook,
        "webhookEvents": None if webhook_events is None else list(webhook_events),
        "timeout": timeout,
        "metadata": None if metadata is None else dict(metadata),
        "retries": retries,
    }
    body.update((name, value) for name, value in optional.items() if value is not None)
    return body


def batch_body(tasks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON of a batch: each item takes ``Tasks.submit``'s keyword names, snake_case."""
    items = []
    for task in tasks:
        options = dict(task)
        idempotency_key = options.pop("idempotency_key", None)
        body = submit_body(**options)
        if idempotency_key is not None:
            body["idempotencyKey"] = idempotency_key
        items.append(body)
    return {"tasks": items}


def limits_body(
    max_running: int | _Unset = UNSET,
    max_queued: int | _Unset = UNSET,
    budget: int | _Unset | None = UNSET,
) -> dict[str, Any]:
    """The JSON of a limits change: only the limits given; ``budget=None`` removes the budget."""
    given = {"maxRunning": max_running, "maxQueued": max_queued, "budget": budget}
    return {"limits": {name: value for name, value in given.items() if value is not UNSET}}


def format_hold(seconds: float) -> str:
    """A hold for the ``wait`` query, to the millisecond: ``12.5`` → ``"12.5s"``."""
    return f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".") + "s"


# --- responses ------------------------------------------------------------------------------
def parse(response: httpx.Response, model: type[M]) -> M:
    """The response's body as ``model``; raise the typed ``APIError`` for an error status."""
    if not response.is_success:
        raise error_from_response(response)
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise TheazoError(
            f"the server's answer ({response.status_code}) is not a {model.__name__}: {exc}"
        ) from exc


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error response, from its problem+json (or whatever body it has)."""
    status = response.status_code
    reason = response.reason_phrase or "HTTP error"
    problem = _json_object(response)
    if problem is None:
        text = response.text.strip()
        if len(text) > MAX_ERROR_BODY_CHARS:
            text = text[:MAX_ERROR_BODY_CHARS] + "…"
        code, title, detail, field, problem = "http_error", reason, text or reason, None, {}
    else:
        code = str(problem.get("code") or "http_error")
        title = str(problem.get("title") or reason)
        detail = str(problem.get("detail") or title)
        named = problem.get("field")
        field = named if isinstance(named, str) else None
    cls = error_class(status)
    if issubclass(cls, RateLimitError):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return cls(
            status, code, detail, title=title, field=field, problem=problem, retry_after=retry_after
        )
    return cls(status, code, detail, title=title, field=field, problem=problem)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None
    return body if isinstance(body, dict) else None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date); ``None`` if unreadable."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


def retry_delay(
    response: httpx.Response,
    retries_done: int,
    max_retries: int,
    *,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before sending the request again, or ``None`` to answer with this
    response. Only a 503 is retried (the server's database failed for a moment: nothing was
    done, or, for a submit, the same Idempotency-Key makes the retry harmless), after its
    ``Retry-After`` or a doubling back-off, whichever is longer."""
    if response.status_code not in RETRIED_STATUSES or retries_done >= max_retries:
        return None
    backoff: float = RETRY_FIRST_WAIT_SECONDS * 2.0**retries_done
    hinted = parse_retry_after(response.headers.get("Retry-After")) or 0.0
    spread = 1 + RETRY_JITTER * (2 * rng() - 1)
    return min(max(backoff, hinted) * spread, RETRY_MAX_WAIT_SECONDS)


def new_idempotency_key() -> str:
    """A key for a submit the caller gave none, so that retrying it cannot store it twice."""
    return f"theazo-sdk-{uuid.uuid4().hex}"


def transport_error(exc: httpx.RequestError, request: httpx.Request) -> APIConnectionError:
    """The SDK's exception for a request that got no answer."""
    what = f"{request.method} {request.url}"
    if isinstance(exc, httpx.TimeoutException):
        message = f"no answer in time to {what} ({type(exc).__name__})"
        return APITimeoutError(message, request=request)
    return APIConnectionError(f"no answer to {what}: {exc or type(exc).__name__}", request=request)


# --- requests and protocols -----------------------------------------------------------------
class RequestBuilder:
    """Builds the ``httpx.Request`` of every endpoint, and the multi-request protocols."""

    def __init__(
        self,
        base_url: str,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
        *,
        retries: bool = True,
    ) -> None:
        self.base_url = base_url
        self.headers = headers
        self.timeout = timeout
        self.retries = retries  # a submit without a key gets one, to be retried safely

    def request(
        self,
        method: str,
        *segments: str,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        """A request to ``/v1/<segments…>``, each path segment URL-quoted."""
        if not all(segments):
            raise ValueError(f"an identifier in {'/'.join(segments)!r} is empty")
        url = f"{self.base_url}/v1/" + "/".join(quote(s, safe="") for s in segments)
        all_headers = self.headers.copy()
        all_headers.update(headers or {})
        extensions = {"timeout": (timeout or self.timeout).as_dict()}
        return httpx.Request(
            method, url, params=params, json=json, headers=all_headers, extensions=extensions
        )

    def create_session(self, user_id: str) -> httpx.Request:
        return self.request("POST", "sessions", json={"userId": user_id})

    def get_session(self, session_id: str) -> httpx.Request:
        return self.request("GET", "sessions", session_id)

    def update_session(self, session_id: str, body: dict[str, Any]) -> httpx.Request:
        return self.request("PATCH", "sessions", session_id, json=body)

    def list_agents(self) -> httpx.Request:
        return self.request("GET", "agents")

    def submit(
        self,
        session_id: str,
        body: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        hold: float = 0.0,
    ) -> httpx.Request:
        """A submit; with ``hold`` > 0 it asks the server (``Prefer: wait``) to answer only
        once the task has ended, or after ``hold`` seconds: a run in one round trip."""
        if idempotency_key is None and self.retries:
            idempotency_key = new_idempotency_key()
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        if hold <= 0:
            return self.request("POST", "sessions", session_id, "tasks", json=body, headers=headers)
        headers["Prefer"] = f"wait={format_hold(hold).removesuffix('s')}"
        return self.request(
            "POST", "sessions", session_id, "tasks",
            json=body, headers=headers, timeout=self._holding(hold),
        )  # fmt: skip

    def submit_batch(self, session_id: str, body: dict[str, Any]) -> httpx.Request:
        return self.request("POST", "sessions", session_id, "tasks", "batch", json=body)

    def get_task(self, session_id: str, task_id: str) -> httpx.Request:
        return self.request("GET", "sessions", session_id, "tasks", task_id)

    def cancel_task(self, session_id: str, task_id: str) -> httpx.Request:
        return self.request("POST", "sessions", session_id, "tasks", task_id, "cancel")

    def deliveries(self, session_id: str, task_id: str) -> httpx.Request:
        return self.request("GET", "sessions", session_id, "tasks", task_id, "deliveries")

    def redeliver(self, session_id: str, task_id: str) -> httpx.Request:
        return self.request(
            "POST", "sessions", session_id, "tasks", task_id, "deliveries", "redeliver"
        )

    def webhook_secret(self) -> httpx.Request:
        return self.request("GET", "webhook-secret")

    def rotate_webhook_secret(self) -> httpx.Request:
        return self.request("POST", "webhook-secret", "rotate")

    def list_tasks(
        self,
        session_id: str,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> httpx.Request:
        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        return self.request("GET", "sessions", session_id, "tasks", params=params)

    def next_page(self, request: httpx.Request, page: TaskPage) -> httpx.Request | None:
        """The request for the page after ``page`` (got by ``request``), or None if it was last."""
        if page.next_cursor is None or not page.data:
            return None
        url = request.url.copy_set_param("cursor", page.next_cursor)
        return httpx.Request(
            request.method, url, headers=request.headers, extensions=request.extensions
        )

    def wait_task(self, session_id: str, task_id: str, hold: float) -> httpx.Request:
        """One long poll asking the server to hold up to ``hold`` seconds.

        Its read time-out outlasts the hold, so the client never gives up before the server.
        """
        return self.request(
            "GET", "sessions", session_id, "tasks", task_id, "wait",
            params={"timeout": format_hold(hold)}, timeout=self._holding(hold),
        )  # fmt: skip

    # --- events and logs ---------------------------------------------------------------------
    def task_events(self, session_id: str, task_id: str, after: int | None) -> httpx.Request:
        return self._stream("sessions", session_id, "tasks", task_id, "events", after=after)

    def session_events(self, session_id: str, after: int | None) -> httpx.Request:
        return self._stream("sessions", session_id, "events", after=after)

    def _stream(self, *segments: str, after: int | None) -> httpx.Request:
        """A stream's request: resumed after ``after`` (the ``Last-Event-ID`` a browser sends
        too), with a read time-out that spans the server's keep-alives."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        timeout = httpx.Timeout(
            connect=self.timeout.connect,
            read=STREAM_READ_TIMEOUT_SECONDS,
            write=self.timeout.write,
            pool=self.timeout.pool,
        )
        return self.request("GET", *segments, headers=headers, timeout=timeout)

    def follow_task(
        self,
        session_id: str,
        task_id: str,
        after: int | None = None,
        timeout: Duration | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> StreamFollower:
        """The state of a task's stream, until its ``end`` or ``timeout``."""
        deadline = None if timeout is None else clock() + parse_duration(timeout)
        return StreamFollower(
            lambda last: self.task_events(session_id, task_id, last),
            after=after, ends=True, clock=clock, deadline=deadline,
        )  # fmt: skip

    def follow_session(
        self,
        session_id: str,
        after: int | None = None,
        timeout: Duration | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> StreamFollower:
        """The state of a session's stream, until ``timeout`` (None: until closed)."""
        deadline = None if timeout is None else clock() + parse_duration(timeout)
        return StreamFollower(
            lambda last: self.session_events(session_id, last),
            after=after, ends=False, clock=clock, deadline=deadline,
        )  # fmt: skip

    def task_logs(
        self, session_id: str, task_id: str, after: int | str | None, limit: int | None
    ) -> httpx.Request:
        params: dict[str, str | int] = {}
        if after is not None:
            params["after"] = str(after)
        if limit is not None:
            params["limit"] = limit
        return self.request("GET", "sessions", session_id, "tasks", task_id, "logs", params=params)

    def stream_token(self, session_id: str, ttl: Duration | None) -> httpx.Request:
        body = {} if ttl is None else {"ttl": ttl}
        return self.request("POST", "sessions", session_id, "tokens", json=body)

    def _holding(self, hold: float) -> httpx.Timeout:
        """Time-outs for a request the server holds up to ``hold`` seconds."""
        read = self.timeout.read
        return httpx.Timeout(
            connect=self.timeout.connect,
            read=None if read is None else max(read, hold + WAIT_READ_MARGIN_SECONDS),
            write=self.timeout.write,
            pool=self.timeout.pool,
        )

    def wait(
        self,
        session_id: str,
        task_id: str,
        timeout: Duration | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Flow[Task]:
        """Long-poll until the task is terminal or ``timeout`` passes (``None``: no limit).

        Returns the task as it is at the end, terminal or not. The duration is checked here,
        before any request.
        """
        seconds = None if timeout is None else parse_duration(timeout)
        return self._wait(session_id, task_id, seconds, clock)

    def run(
        self,
        session_id: str,
        agent: str,
        input: Any = None,
        *,
        priority: Priority = "normal",
        timeout: Duration | None = None,
        wait_timeout: Duration | None = None,
        clock: Callable[[], float] = time.monotonic,
        **submit_opts: Unpack[SubmitOptions],
    ) -> Flow[Task]:
        """Submit, then wait as ``wait`` does; ``wait_timeout`` counts from the submit."""
        unknown = submit_opts.keys() - SubmitOptions.__optional_keys__
        if unknown:
            raise TypeError(f"run() got unexpected keyword arguments: {sorted(unknown)}")
        body = submit_body(
            agent, input, priority=priority, timeout=timeout,
            webhook=submit_opts.get("webhook"), webhook_events=submit_opts.get("webhook_events"),
            metadata=submit_opts.get("metadata"), retries=submit_opts.get("retries"),
        )  # fmt: skip
        seconds = None if wait_timeout is None else parse_duration(wait_timeout)
        hold = WAIT_HOLD_CAP_SECONDS if seconds is None else min(seconds, WAIT_HOLD_CAP_SECONDS)
        request = self.submit(session_id, body, submit_opts.get("idempotency_key"), hold=hold)
        return self._run(request, seconds, clock)

    def _run(
        self, submit: httpx.Request, seconds: float | None, clock: Callable[[], float]
    ) -> Flow[Task]:
        deadline = None if seconds is None else clock() + seconds
        task = parse((yield submit), Task)
        if task.is_terminal:
            return task
        return (yield from self._poll(task.session_id, task.task_id, deadline, clock))

    def _wait(
        self, session_id: str, task_id: str, seconds: float | None, clock: Callable[[], float]
    ) -> Flow[Task]:
        deadline = None if seconds is None else clock() + seconds
        return (yield from self._poll(session_id, task_id, deadline, clock))

    def _poll(
        self, session_id: str, task_id: str, deadline: float | None, clock: Callable[[], float]
    ) -> Flow[Task]:
        while True:
            hold = WAIT_HOLD_CAP_SECONDS
            if deadline is not None:
                hold = min(hold, max(deadline - clock(), 0.0))
            task = parse((yield self.wait_task(session_id, task_id, hold)), Task)
            if task.is_terminal or (deadline is not None and clock() >= deadline):
                return task


# --- what the sync and async clients share --------------------------------------------------
class BaseTheazo:
    """Configuration shared by ``Theazo`` and ``AsyncTheazo``.

    Attributes:
        base_url: Where the API is, without a trailing slash.
        timeout: The time-outs of every call; a long poll's read time-out is extended to
            outlast its hold.
        max_retries: How many times a call answered 503 is sent again before its error is
            raised.
    """

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        client_headers: httpx.Headers | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self._api_key = resolve_api_key(api_key)
        self.base_url = resolve_base_url(base_url)
        self.timeout = resolve_timeout(timeout)
        self.max_retries = max_retries
        headers = httpx.Headers(client_headers)
        headers.update(
            {
                "Authorization": f"Bearer {self._api_key}",
                "User-Agent": f"theazo-python/{__version__}",
                "Accept": "application/json",
            }
        )
        self._requests = RequestBuilder(
            self.base_url, headers, self.timeout, retries=max_retries > 0
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class SessionBase:
    """What sync and async sessions share: the session's last known state."""

    def __init__(self, info: SessionInfo) -> None:
        self._info = info

    @property
    def info(self) -> SessionInfo:
        """The session as the server last reported it."""
        return self._info

    @property
    def session_id(self) -> str:
        """``"sess_…"``."""
        return self._info.session_id

    @property
    def user_id(self) -> str:
        """The application's identifier of the end user."""
        return self._info.user_id

    @property
    def created_at(self) -> datetime | None:
        """When the session was created."""
        return self._info.created_at

    @property
    def limits(self) -> Limits:
        """Its limits when last fetched (``refresh()`` fetches again)."""
        return self._info.limits

    @property
    def usage(self) -> Usage:
        """What it had used when last fetched (``refresh()`` fetches again)."""
        return self._info.usage

    @property
    def cost(self) -> Cost:
        """Its total spend when last fetched; the same as ``usage.cost``."""
        return self._info.usage.cost

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r}, user_id={self.user_id!r})"
