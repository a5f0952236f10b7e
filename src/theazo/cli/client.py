"""``theazo submit``, ``theazo tasks …`` and ``theazo agents``: the SDK from the shell."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from theazo.core import defaults, json_values

if TYPE_CHECKING:  # the SDK (httpx, pydantic) is imported when a command runs
    from theazo.sdk import LogEvent, LogLine, Session, Task, Theazo

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

DEFAULT_BASE_URL = f"http://{defaults.HOST}:{defaults.PORT}"
DEFAULT_USER = "cli"

ApiKey = Annotated[
    str | None, typer.Option(envvar="THEAZO_API_KEY", help="An API key (th_live_…).")
]
BaseUrl = Annotated[str, typer.Option(envvar="THEAZO_BASE_URL", help="The server's URL.")]
User = Annotated[
    str,
    typer.Option(envvar="THEAZO_USER", help="The end user whose session the task belongs to."),
]
SessionId = Annotated[
    str | None, typer.Option("--session", help="A session id (sess_…) instead of --user.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_LABELS: dict[Priority, Literal["high", "normal", "low"]] = {
    Priority.HIGH: "high",
    Priority.NORMAL: "normal",
    Priority.LOW: "low",
}


tasks_app = typer.Typer(help="Inspect, wait for and cancel tasks.", no_args_is_help=True)


@contextmanager
def _client(api_key: str | None, base_url: str) -> Iterator[Theazo]:
    """A client; any API error becomes one line on stderr and exit status 1."""
    from theazo.sdk import APIConnectionError, APIError, Theazo, TheazoError

    try:
        with Theazo(api_key=api_key, base_url=base_url) as theazo:
            yield theazo
    except APIConnectionError as exc:
        _fail(f"cannot reach the server at {base_url}: {exc}")
    except APIError as exc:
        _fail(f"{exc.status} {exc.code}: {exc.detail}")
    except TheazoError as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    err.print(f"[red]theazo: {message}[/red]", highlight=False)
    raise typer.Exit(1)


def _session(theazo: Theazo, user: str, session_id: str | None) -> Session:
    if session_id:
        return theazo.sessions.get(session_id)
    return theazo.sessions.for_user(user)


def _parse_json(value: str, what: str) -> Any:
    try:
        parsed = json_values.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is not JSON: {exc.msg}") from None
    reason = json_values.why_not_storable(parsed)
    if reason is not None:
        raise typer.BadParameter(f"{what} cannot be sent: {reason}")
    return parsed


def _parse_metadata(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"metadata {pair!r} is not KEY=VALUE")
        metadata[key] = value
    return metadata


def submit(
    agent: Annotated[str, typer.Argument(help="The agent to run.")],
    input: Annotated[str, typer.Option("--input", "-i", help="The input, as JSON.")] = "null",
    priority: Annotated[Priority, typer.Option(help="Queue order.")] = Priority.NORMAL,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until it ends.")] = False,
    timeout: Annotated[str | None, typer.Option(help="The task's wall-clock limit.")] = None,
    webhook: Annotated[str | None, typer.Option(help="URL to POST the result to.")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE, repeatable.")
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Re-runs after a lost worker.")] = 0,
    idempotency_key: Annotated[str | None, typer.Option(help="Submit at most once.")] = None,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """Submit a task; print its id, or follow it to the end with --wait."""
    payload = _parse_json(input, "--input")
    with _client(api_key, base_url) as theazo:
        session = _session(theazo, user, session_id)
        task = session.tasks.submit(
            agent,
            payload,
            priority=PRIORITY_LABELS[priority],
            timeout=timeout,
            webhook=webhook,
            metadata=_parse_metadata(metadata),
            retries=retries or None,
            idempotency_key=idempotency_key,
        )
        if wait:
            task = _follow(session, task, quiet=as_json)
    _show(task, as_json, brief=not wait)
    if wait and task.status != "completed":
        raise typer.Exit(1)


def _follow(session: Session, task: Task, *, quiet: bool, timeout: str | None = None) -> Task:
    """Follow the task's event stream: a live bar of its progress and message, and the
    agent's log lines printed above it (on stderr, as the bar is), until it ends."""
    from theazo.sdk import EndEvent, LogEvent, ProgressEvent, StatusEvent

    columns = (
        TextColumn("[bold]{task.fields[status]:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=err, disable=quiet, transient=True) as bar:
        line = bar.add_task(_describe_live(task), total=1.0, status=task.status)
        for event in session.tasks.stream(task.task_id, timeout=timeout):
            if isinstance(event, StatusEvent | EndEvent):
                task = event.task
                bar.update(
                    line,
                    completed=task.progress or 0.0,
                    status=task.status,
                    description=_describe_live(task),
                )
            elif isinstance(event, ProgressEvent):
                if event.progress is not None:
                    bar.update(line, completed=event.progress)
                if event.message is not None:
                    bar.update(line, description=event.message)
            elif isinstance(event, LogEvent) and not quiet:
                bar.console.print(_log_text(event), highlight=False, markup=False)
    if not task.is_terminal:  # the timeout passed: show the task as it is now
        task = session.tasks.get(task.task_id)
    return task


def _log_text(line: LogEvent | LogLine) -> Any:
    from rich.text import Text

    return Text(line.text, style="yellow" if line.stream == "stderr" else "")


def _describe_live(task: Task) -> str:
    if task.status == "queued" and task.queue_position is not None:
        ahead = task.queue_position
        return "next to start" if ahead == 0 else f"{ahead} task(s) ahead in the queue"
    return task.message or ""


def _show(task: Task, as_json: bool, *, brief: bool = False) -> None:
    if as_json:
        out.print_json(task.model_dump_json(by_alias=True))
        return
    if brief:
        out.print(f"{task.task_id} {task.status}", highlight=False)
        return
    table = Table(show_header=False, box=None)
    rows: list[tuple[str, Any]] = [
        ("task", task.task_id),
        ("agent", task.agent),
        ("status", task.status),
        ("priority", task.priority),
        ("progress", "" if task.progress is None else f"{task.progress:.0%}"),
        ("message", task.message or ""),
        ("cost", f"{task.cost.amount} ({task.cost.currency} minor units)"),
        ("created", task.created_at),
        ("completed", task.completed_at or ""),
    ]
    if task.queue_position is not None:
        rows.append(("queue position", task.queue_position))
    if task.error is not None:
        rows.append(("error", f"{task.error.code}: {task.error.message}"))
    if task.output is not None:
        rows.append(("output", json.dumps(task.output, indent=2, ensure_ascii=False)))
    for name, value in rows:
        table.add_row(f"[dim]{name}[/dim]", str(value))
    out.print(table)


def _with_task(
    task_id: str,
    user: str,
    session_id: str | None,
    api_key: str | None,
    base_url: str,
    action: Callable[[Session, str], T],
) -> T:
    with _client(api_key, base_url) as theazo:
        return action(_session(theazo, user, session_id), task_id)
    raise AssertionError("unreachable")  # _client exits on error


TaskId = Annotated[str, typer.Argument(help="A task id (task_…).")]


@tasks_app.command("get")
def get(
    task_id: TaskId,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """Show a task: status, progress, cost and output."""
    task = _with_task(task_id, user, session_id, api_key, base_url, lambda s, t: s.tasks.get(t))
    _show(task, as_json)


@tasks_app.command("wait")
def wait(
    task_id: TaskId,
    timeout: Annotated[str | None, typer.Option(help="Give up after this long.")] = None,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """Wait for a task to end (or the timeout to pass), showing its progress and log, then
    show it."""

    def follow(session: Session, task_id: str) -> Task:
        return _follow(session, session.tasks.get(task_id), quiet=as_json, timeout=timeout)

    task = _with_task(task_id, user, session_id, api_key, base_url, follow)
    _show(task, as_json)
    if not task.is_terminal:
        raise typer.Exit(2)


@tasks_app.command("logs")
def logs(
    task_id: TaskId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the task ends.")
    ] = False,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """Print what the task's agent wrote: its stdout lines on stdout, its stderr on stderr."""
    with _client(api_key, base_url) as theazo:
        session = _session(theazo, user, session_id)
        after = 0
        while True:
            page = session.tasks.logs(task_id, after=after, limit=defaults.LOG_PAGE_MAX)
            for line in page:
                _print_log_line(line, as_json)
            if page.data:
                after = page.data[-1].seq
            if page.next_cursor is None:
                break
        if follow:
            from theazo.sdk import LogEvent

            for event in session.tasks.stream(task_id, after=after):
                if isinstance(event, LogEvent):
                    _print_log_line(event, as_json)


def _print_log_line(line: LogEvent | LogLine, as_json: bool) -> None:
    if as_json:
        from theazo.sdk import LogLine

        seq = line.seq if isinstance(line, LogLine) else line.id
        at = None if line.at is None else line.at.isoformat()
        record = {"seq": seq, "stream": line.stream, "text": line.text, "at": at}
        out.print(json.dumps(record, ensure_ascii=False), highlight=False, soft_wrap=True)
        return
    console = err if line.stream == "stderr" else out
    console.print(line.text, highlight=False, markup=False, soft_wrap=True)


@tasks_app.command("cancel")
def cancel(
    task_id: TaskId,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """Cancel a queued or running task."""
    task = _with_task(task_id, user, session_id, api_key, base_url, lambda s, t: s.tasks.cancel(t))
    _show(task, as_json, brief=True)


@tasks_app.command("list")
def list_tasks(
    status: Annotated[str | None, typer.Option(help="e.g. running, or failed,cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=defaults.LIST_MAX_LIMIT)] = 20,
    user: User = DEFAULT_USER,
    session_id: SessionId = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
) -> None:
    """List a session's tasks, newest first."""
    with _client(api_key, base_url) as theazo:
        page = _session(theazo, user, session_id).tasks.list(status=status, limit=limit)
    if as_json:
        out.print_json(page.model_dump_json(by_alias=True))
        return
    table = Table("task", "agent", "status", "progress", "cost", "created")
    for task in page:
        progress = "" if task.progress is None else f"{task.progress:.0%}"
        table.add_row(
            task.task_id,
            task.agent,
            task.status,
            progress,
            str(task.cost.amount),
            str(task.created_at),
        )
    out.print(table)


def agents(
    as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = DEFAULT_BASE_URL
) -> None:
    """List the agents the server can run."""
    with _client(api_key, base_url) as theazo:
        found = theazo.agents.list()
    if as_json:
        out.print_json(json.dumps([a.model_dump(by_alias=True) for a in found]))
        return
    table = Table("agent", "description")
    for item in found:
        table.add_row(item.name, item.description)
    out.print(table)
