"""``AsyncTheazo``, the asyncio client: sends what ``_base`` builds, over an ``httpx.AsyncClient``.

The same surface as ``Theazo``, every call awaited; see ``_client`` for the arguments' meaning.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import closing
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast

import httpx

from theazo.sdk._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    UNSET,
    BaseTheazo,
    Duration,
    Flow,
    Priority,
    SessionBase,
    SubmitOptions,
    _Unset,
    batch_body,
    limits_body,
    parse,
    retry_delay,
    submit_body,
    transport_error,
)
from theazo.sdk._events import StreamFollower
from theazo.sdk._models import (
    Agent,
    AgentList,
    Delivery,
    DeliveryList,
    LogPage,
    SessionInfo,
    SessionStreamEvent,
    StreamEvent,
    StreamToken,
    Task,
    TaskBatch,
    TaskPage,
    TaskStreamEvent,
    WebhookSecret,
    WireModel,
)

M = TypeVar("M", bound=WireModel)
T = TypeVar("T")


class AsyncTheazo(BaseTheazo):
    """The asyncio client of a Theazo server.

    Example:
        >>> async with AsyncTheazo() as theazo:
        ...     session = await theazo.sessions.for_user("user_123")
        ...     task = await session.run("researcher", {"query": "..."})

    Args:
        api_key: A ``th_live_…`` or ``th_test_…`` key; defaults to ``THEAZO_API_KEY``.
        base_url: Where the server is; defaults to ``THEAZO_BASE_URL``, else
            ``http://127.0.0.1:8321``.
        timeout: Seconds allowed for each phase of a call (connect, read, write), or an
            ``httpx.Timeout``; ``None`` for no limit. Long polls extend their read time-out.
        http_client: An ``httpx.AsyncClient`` to send with; its headers are kept, but not its
            base URL or time-out. The caller closes it. Its ``limits`` cap the waits held at
            once (httpx's default is 100 connections). For many hundreds, several clients
            with a hundred or so connections each cost far less CPU than one large pool,
            which httpx walks on every request (encode/httpcore#1035).
        max_retries: How many times a call answered 503 (the server's database failed for a
            moment) is sent again, after its ``Retry-After`` and a doubling back-off, before
            ``ServerError`` is raised; 0 to never retry. A submit without an
            ``idempotency_key`` is given one, so that its retry cannot store it twice.

    Raises:
        TheazoError: No API key was given or found in the environment.

    Attributes:
        sessions: The sessions of the project.
        agents: The agents the deployment can run.
        webhooks: The project's webhook signing secret.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT_SECONDS,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        headers = None if http_client is None else http_client.headers
        super().__init__(api_key, base_url, timeout, headers, max_retries)
        self._owns_http = http_client is None
        self._http = httpx.AsyncClient() if http_client is None else http_client
        self.sessions = AsyncSessions(self)
        self.agents = AsyncAgents(self)
        self.webhooks = AsyncWebhooks(self)

    async def aclose(self) -> None:
        """Close the connections, unless the ``httpx.AsyncClient`` was passed in by the caller."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send, and send again after a 503 as ``retry_delay`` decides."""
        retries = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.RequestError as exc:
                raise transport_error(exc, request) from exc
            delay = retry_delay(response, retries, self.max_retries)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)
            retries += 1

    async def _call(self, request: httpx.Request, model: type[M]) -> M:
        return parse(await self._send(request), model)

    async def _follow(self, follower: StreamFollower) -> AsyncIterator[StreamEvent]:
        """Read a stream, connecting again from the last id whenever the connection drops."""
        while not follower.done:
            request = follower.request()
            try:
                response = await self._http.send(request, stream=True)
            except httpx.RequestError as exc:
                follower.failed(transport_error(exc, request))
            else:
                try:
                    if not response.is_success:
                        await response.aread()
                    if follower.opened(response):
                        async for line in response.aiter_lines():
                            event = follower.feed(line)
                            if event is not None:
                                yield event
                            if follower.done:
                                return
                        follower.closed()
                except httpx.RequestError as exc:
                    follower.failed(transport_error(exc, request))
                finally:
                    await response.aclose()
            if not follower.done:
                await asyncio.sleep(follower.delay())

    async def _drive(self, flow: Flow[T]) -> T:
        with closing(flow):
            request = next(flow)
            while True:
                response = await self._send(request)
                try:
                    request = flow.send(response)
                except StopIteration as done:
                    result: T = done.value
                    return result


class AsyncSessions:
    """The sessions of the project: one per end user of the application."""

    def __init__(self, client: AsyncTheazo) -> None:
        self._client = client

    async def for_user(self, user_id: str) -> AsyncSession:
        """Get the session of an end user, creating it on first use.

        Args:
            user_id: The application's identifier of the end user.

        Returns:
            The user's session.
        """
        request = self._client._requests.create_session(user_id)
        return AsyncSession(self._client, await self._client._call(request, SessionInfo))

    async def get(self, session_id: str) -> AsyncSession:
        """Get a session by its ID.

        Args:
            session_id: ``"sess_…"``.

        Returns:
            The session.

        Raises:
            NotFoundError: No such session in this project.
        """
        request = self._client._requests.get_session(session_id)
        return AsyncSession(self._client, await self._client._call(request, SessionInfo))


class AsyncAgents:
    """The agents the deployment can run."""

    def __init__(self, client: AsyncTheazo) -> None:
        self._client = client

    async def list(self) -> builtins.list[Agent]:
        """List the agents, by name.

        Returns:
            Each agent's name, description and input schema.
        """
        return (await self._client._call(self._client._requests.list_agents(), AgentList)).data


class AsyncWebhooks:
    """The project's webhook signing secret (Standard Webhooks ``whsec_…``)."""

    def __init__(self, client: AsyncTheazo) -> None:
        self._client = client

    async def secret(self) -> WebhookSecret:
        """Get the secret that signs the project's webhooks (made on first use).

        Returns:
            The current secret, and any rotated-out ones that still sign.
        """
        return await self._client._call(self._client._requests.webhook_secret(), WebhookSecret)

    async def rotate(self) -> WebhookSecret:
        """Make a new secret; the old one keeps signing too until its window ends.

        Returns:
            The new current secret, with the old one under ``previous``.
        """
        request = self._client._requests.rotate_webhook_secret()
        return await self._client._call(request, WebhookSecret)


class AsyncSession(SessionBase):
    """One end user's session: its tasks, limits and usage.

    Attributes:
        tasks: The session's tasks.
    """

    def __init__(self, client: AsyncTheazo, info: SessionInfo) -> None:
        super().__init__(info)
        self._client = client
        self.tasks = AsyncTasks(client, info.session_id)

    async def refresh(self) -> AsyncSession:
        """Fetch the session's limits and usage again.

        Returns:
            This session, updated.
        """
        request = self._client._requests.get_session(self.session_id)
        self._info = await self._client._call(request, SessionInfo)
        return self

    async def update_limits(
        self,
        *,
        max_running: int | _Unset = UNSET,
        max_queued: int | _Unset = UNSET,
        budget: int | _Unset | None = UNSET,
    ) -> AsyncSession:
        """Change some of the session's limits; those not given stay as they are.

        Args:
            max_running: How many of its tasks may run at once.
            max_queued: How many of its tasks may wait at once.
            budget: Total spend allowed, in minor units (cents); ``None`` removes the budget.

        Returns:
            This session, updated.
        """
        body = limits_body(max_running, max_queued, budget)
        request = self._client._requests.update_session(self.session_id, body)
        self._info = await self._client._call(request, SessionInfo)
        return self

    async def run(
        self,
        agent: str,
        input: Any = None,
        *,
        priority: Priority = "normal",
        timeout: Duration | None = None,
        wait_timeout: Duration | None = None,
        **submit_opts: Unpack[SubmitOptions],
    ) -> Task:
        """Submit a task and wait until it ends.

        Args:
            agent: The agent's name.
            input: Any JSON value; the agent receives it as is.
            priority: ``"high"``, ``"normal"`` or ``"low"``.
            timeout: The task's wall-clock limit, e.g. ``"5m"`` or seconds.
            wait_timeout: How long to wait, from the submit (``None``: until the task ends).
            **submit_opts: ``webhook``, ``webhook_events``, ``metadata``, ``retries``,
                ``idempotency_key``, as for ``AsyncTasks.submit``.

        Returns:
            The task: terminal, unless ``wait_timeout`` passed first.
        """
        flow = self._client._requests.run(
            self.session_id, agent, input, priority=priority, timeout=timeout,
            wait_timeout=wait_timeout, **submit_opts,
        )  # fmt: skip
        return await self._client._drive(flow)

    def events(
        self, *, after: int | None = None, timeout: Duration | None = None
    ) -> AsyncIterator[SessionStreamEvent]:
        """Follow the status and progress of every task of the session, live (``async for``);
        see ``Session.events``."""
        follower = self._client._requests.follow_session(self.session_id, after, timeout)
        return cast(AsyncIterator[SessionStreamEvent], self._client._follow(follower))

    async def stream_token(self, ttl: Duration | None = None) -> StreamToken:
        """Make a short-lived token that reads this session's streams and logs, for a
        browser; see ``Session.stream_token``."""
        request = self._client._requests.stream_token(self.session_id, ttl)
        return await self._client._call(request, StreamToken)


class AsyncTasks:
    """The tasks of one session."""

    def __init__(self, client: AsyncTheazo, session_id: str) -> None:
        self._client = client
        self._requests = client._requests
        self.session_id = session_id

    async def submit(
        self,
        agent: str,
        input: Any = None,
        *,
        priority: Priority = "normal",
        webhook: str | None = None,
        webhook_events: Sequence[str] | None = None,
        timeout: Duration | None = None,
        metadata: Mapping[str, str] | None = None,
        retries: int | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Submit a task; it is queued at once and runs when the scheduler starts it.

        Args:
            agent: The agent's name.
            input: Any JSON value; the agent receives it as is.
            priority: ``"high"``, ``"normal"`` or ``"low"``.
            webhook: A URL the server POSTs the result to when the task ends.
            webhook_events: Which events go to the webhook: ``"completed"`` (every terminal
                state, the default), ``"started"``, ``"progress"``.
            timeout: The task's wall-clock limit, e.g. ``"5m"`` or seconds.
            metadata: String-to-string annotations kept with the task.
            retries: Automatic re-runs after the task's worker was lost (server default 0).
            idempotency_key: A repeated submit with the same key in this session returns the
                first task instead of a new one.

        Returns:
            The task, ``queued``.

        Raises:
            UnprocessableEntityError: A field is wrong, e.g. an unknown agent.
            RateLimitError: The session's queue is full.
            BudgetExhaustedError: The session's budget is spent.
        """
        body = submit_body(
            agent, input, priority=priority, webhook=webhook, webhook_events=webhook_events,
            timeout=timeout, metadata=metadata, retries=retries,
        )  # fmt: skip
        request = self._requests.submit(self.session_id, body, idempotency_key)
        return await self._client._call(request, Task)

    async def submit_batch(self, tasks: Iterable[Mapping[str, Any]]) -> builtins.list[Task]:
        """Submit up to 1,000 tasks at once, all or nothing.

        Args:
            tasks: One dict per task, with ``submit``'s keyword names (``agent``, ``input``,
                ``priority``, ``idempotency_key``…).

        Returns:
            The tasks, in the order given.

        Raises:
            TypeError: A dict has an unknown key or no ``agent``.
        """
        request = self._requests.submit_batch(self.session_id, batch_body(tasks))
        return (await self._client._call(request, TaskBatch)).data

    async def get(self, task_id: str) -> Task:
        """Get a task as it is now.

        Args:
            task_id: ``"task_…"``.

        Returns:
            The task.

        Raises:
            NotFoundError: No such task in this session.
        """
        return await self._client._call(self._requests.get_task(self.session_id, task_id), Task)

    async def list(
        self,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """List one page of the session's tasks, newest first.

        Args:
            status: Only tasks in this status, or in any of these statuses.
            limit: At most this many tasks (server default 50, maximum 500).
            cursor: ``next_cursor`` of the previous page.

        Returns:
            The page; iterate over it for its tasks.
        """
        request = self._requests.list_tasks(self.session_id, status, limit, cursor)
        return await self._client._call(request, TaskPage)

    async def iter(
        self, status: str | Sequence[str] | None = None, page_size: int | None = None
    ) -> AsyncIterator[Task]:
        """Iterate (``async for``) over all the session's tasks, newest first, page by page.

        Args:
            status: Only tasks in this status, or in any of these statuses.
            page_size: Tasks fetched per request.

        Yields:
            Each task.
        """
        request: httpx.Request | None = self._requests.list_tasks(
            self.session_id, status, page_size
        )
        while request is not None:
            page = await self._client._call(request, TaskPage)
            for task in page:
                yield task
            request = self._requests.next_page(request, page)

    async def wait(self, task_id: str, timeout: Duration | None = None) -> Task:
        """Wait until the task ends or ``timeout`` passes.

        Args:
            task_id: ``"task_…"``.
            timeout: ``"1500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or seconds; ``None`` waits
                until the task ends, however long.

        Returns:
            The task: terminal, unless ``timeout`` passed first.

        Raises:
            ValueError: ``timeout`` is not a duration.
        """
        return await self._client._drive(self._requests.wait(self.session_id, task_id, timeout))

    def stream(
        self, task_id: str, *, after: int | None = None, timeout: Duration | None = None
    ) -> AsyncIterator[TaskStreamEvent]:
        """Follow a task live until it ends (``async for``); see ``Tasks.stream``."""
        follower = self._requests.follow_task(self.session_id, task_id, after, timeout)
        return cast(AsyncIterator[TaskStreamEvent], self._client._follow(follower))

    async def logs(
        self, task_id: str, *, after: int | str | None = None, limit: int | None = None
    ) -> LogPage:
        """Get a page of what the task's agent wrote to stdout and stderr; see
        ``Tasks.logs``."""
        request = self._requests.task_logs(self.session_id, task_id, after, limit)
        return await self._client._call(request, LogPage)

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued or running task; returns once it is recorded ``cancelled``.

        Args:
            task_id: ``"task_…"``.

        Returns:
            The task, ``cancelled`` (also if it already was).

        Raises:
            ConflictError: The task already completed or failed.
        """
        return await self._client._call(self._requests.cancel_task(self.session_id, task_id), Task)

    async def deliveries(self, task_id: str) -> builtins.list[Delivery]:
        """List the task's webhook deliveries, each with every attempt.

        Args:
            task_id: ``"task_…"``.

        Returns:
            One delivery per event sent (or to be sent), oldest first.

        Raises:
            NotFoundError: No such task in this session.
        """
        request = self._requests.deliveries(self.session_id, task_id)
        return (await self._client._call(request, DeliveryList)).data

    async def redeliver(self, task_id: str) -> Delivery:
        """Send a finished task's final webhook again, now (same ``webhook-id``).

        Args:
            task_id: ``"task_…"``.

        Returns:
            The delivery, ``pending`` again.

        Raises:
            ConflictError: The task has not finished, or has no webhook.
        """
        request = self._requests.redeliver(self.session_id, task_id)
        return await self._client._call(request, Delivery)
