"""The dashboard as a person uses it, in headless Chromium against a real ``theazo serve``:
sign in, watch a task live, open it, cancel it; bulk-cancel; another project sees nothing of
this one; a form on another site cannot cancel a task; a task's and a session's model tokens."""

from __future__ import annotations

import re
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import PHONE, artifacts_dir
from tests.support.fake_models import ONE_OPENAI_CALL, expected_usage
from tests.support.server import ServerProcess, free_port
from theazo import Theazo

if TYPE_CHECKING:
    from playwright.sync_api import Page

LONG_TICKER = {"steps": 600, "every": 0.1}  # a minute of progress and log lines


@pytest.fixture
def theazo(server: ServerProcess, keys: tuple[str, str]) -> Iterator[Theazo]:
    with Theazo(api_key=keys[0], base_url=server.base_url) as client:
        yield client


def sign_in(page: Page, server: ServerProcess, key: str) -> None:
    page.goto(f"{server.base_url}/dashboard/")
    page.fill("#api-key", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#bar:not([hidden])")


def progress_of(page: Page, selector: str) -> float:
    value = page.get_attribute(selector, "data-progress")
    return float(value) if value else 0.0


def wait_for_progress_past(page: Page, selector: str, floor: float) -> float:
    page.wait_for_function(
        "([selector, floor]) => Number(document.querySelector(selector)?.dataset.progress || 0)"
        " > floor",
        arg=[selector, floor],
    )
    return progress_of(page, selector)


def test_sign_in_watch_a_running_task_open_it_and_cancel_it(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    session = theazo.sessions.for_user(f"alice_{uuid.uuid4().hex[:6]}")
    task = session.tasks.submit(agent="ticker", input=LONG_TICKER)
    sign_in(page, server, keys[0])

    # The list: the task is there, and its progress bar moves without a reload.
    row = f"tr[data-task='{task.task_id}']"
    bar = f"{row} .progress"
    page.wait_for_selector(f"{row}[data-status=running]")
    first = wait_for_progress_past(page, bar, 0.0)
    wait_for_progress_past(page, bar, first)

    # The task: its log streams in, and its progress moves there too.
    page.click(f"{row} a[href*='{task.task_id}']")
    page.wait_for_selector("#task-log .line")
    lines = page.locator("#task-log .line").count()
    page.wait_for_function(
        "n => document.querySelectorAll('#task-log .line').length > n", arg=lines
    )
    assert page.locator("#task-log .line").first.text_content() == "tick 1\n"
    shown = wait_for_progress_past(page, ".facts .progress", 0.0)
    wait_for_progress_past(page, ".facts .progress", shown)

    page.click("#cancel-task")
    page.click("#dialog-confirm")
    page.wait_for_selector(".task-head .badge[data-status=cancelled]")
    assert page.locator("#cancel-task").count() == 0
    assert session.tasks.get(task.task_id).status == "cancelled"
    page.wait_for_selector(".attempts .badge[data-status=cancelled]")  # how attempt 1 ended

    # Back on the list, it shows cancelled (at phone width, too).
    page.click(".crumbs a")
    page.wait_for_selector(f"{row}[data-status=cancelled]")
    page.set_viewport_size(PHONE)
    page.wait_for_selector(f"{row} .narrow-only")
    page.screenshot(path=str(artifacts_dir() / "task-list-phone.png"), full_page=True)


def test_bulk_cancel_three_queued_tasks(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    user = f"bob_{uuid.uuid4().hex[:6]}"
    held = theazo.sessions.for_user(user).update_limits(max_running=0)  # they stay queued
    queued = [held.tasks.submit(agent="noop", input={}) for _ in range(3)]
    bystander = theazo.sessions.for_user(f"carol_{uuid.uuid4().hex[:6]}")
    other = bystander.update_limits(max_running=0).tasks.submit(agent="noop", input={})

    sign_in(page, server, keys[0])
    page.goto(f"{server.base_url}/dashboard/#/tasks?status=queued&userId={user}")
    page.wait_for_function("() => document.querySelectorAll('#task-rows tr').length === 3")
    page.click("#bulk-cancel")
    assert page.text_content("#dialog-title") == "Cancel 3 tasks?"
    page.click("#dialog-confirm")
    page.wait_for_selector(".toast-success:has-text('Cancelled 3 tasks')")
    page.wait_for_selector(".empty:has-text('No tasks match these filters')")

    assert [held.tasks.get(t.task_id).status for t in queued] == ["cancelled"] * 3
    assert bystander.tasks.get(other.task_id).status == "queued"  # outside the filter
    bystander.tasks.cancel(other.task_id)


def test_a_second_project_sees_none_of_the_first(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    session = theazo.sessions.for_user(f"dave_{uuid.uuid4().hex[:6]}")
    task = session.tasks.submit(agent="echo", input={"secret": "first project's"})

    sign_in(page, server, keys[1])
    page.wait_for_selector(".empty:has-text('No tasks yet')")
    page.goto(f"{server.base_url}/dashboard/#/sessions")
    page.wait_for_selector(".empty:has-text('No sessions yet')")
    page.goto(f"{server.base_url}/dashboard/#/task/{session.session_id}/{task.task_id}")
    page.wait_for_selector(".empty:has-text('No such task')")
    status = page.evaluate(
        "url => fetch(url).then(r => r.status)",
        f"/dashboard/api/sessions/{session.session_id}/tasks/{task.task_id}",
    )
    assert status == 404
    assert "first project's" not in page.content()


class _Attacker(BaseHTTPRequestHandler):
    """Another origin's page: a plain HTML form that posts to the dashboard's cancel action."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<!doctype html><form id="evil" method="post" action="{self.target}">'
            '<input type="hidden" name="x" value="1">'
            '<button id="go" type="submit">Win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, type[_Attacker]]]:
    handler = type("Handler", (_Attacker,), {})
    site = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/", handler
    finally:
        site.shutdown()
        site.server_close()


def test_a_cross_site_form_cannot_cancel_a_task(
    page: Page,
    server: ServerProcess,
    keys: tuple[str, str],
    theazo: Theazo,
    attacker_site: tuple[str, type[_Attacker]],
) -> None:
    session = theazo.sessions.for_user(f"erin_{uuid.uuid4().hex[:6]}")
    task = session.update_limits(max_running=0).tasks.submit(agent="noop", input={})
    sign_in(page, server, keys[0])  # the victim is signed in: the browser holds the cookie

    url, handler = attacker_site
    handler.target = (
        f"{server.base_url}/dashboard/api/sessions/{session.session_id}/tasks/{task.task_id}/cancel"
    )
    # Another port of the same host is another origin but the same site, so SameSite=Strict
    # does not keep the cookie off this request: the origin check must refuse it.
    page.goto(url)
    with page.expect_response(re.compile(r".*/cancel$")) as answer:
        page.click("#go")
    assert answer.value.status == 403
    assert answer.value.header_value("content-type") == "application/problem+json"
    assert '"foreign_origin"' in answer.value.text()
    assert session.tasks.get(task.task_id).status == "queued"
    session.tasks.cancel(task.task_id)


def test_edit_a_sessions_limits_and_see_the_deployment(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    user = f"frank_{uuid.uuid4().hex[:6]}"
    session = theazo.sessions.for_user(user)
    held = theazo.sessions.for_user(f"{user}_held").update_limits(max_running=0)
    waiting = held.tasks.submit(agent="noop", input={}, priority="high")
    sign_in(page, server, keys[0])

    page.click("[data-nav=sessions]")
    row = f"tr[data-session='{session.session_id}']"
    page.click(f"{row} button:has-text('Edit limits')")
    form = page.locator(f"{row} + tr.editor form")
    form.locator("input[name=maxRunning]").fill("2")
    form.locator("input[name=budget]").fill("250")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"{row} td:has-text('0 / 2')")
    page.wait_for_selector(f"{row}:has-text('$2.50')")
    limits = session.refresh().limits
    assert (limits.max_running, limits.budget) == (2, 250)

    page.click("[data-nav=deployment]")
    page.wait_for_selector("#oldest-wait .tile-value:not(:has-text('—'))")
    assert page.locator("tr[data-priority=high] td").nth(1).text_content() != "0"
    page.wait_for_selector(".agents li:has-text('ticker')")
    page.wait_for_selector("td:has-text('free of')")  # this node's slots
    held.tasks.cancel(waiting.task_id)


def digits(text: str | None) -> int:
    """A count as the page shows it, whatever the locale's digit grouping."""
    return int(re.sub(r"\D", "", text or ""))


def test_a_tasks_model_tokens_by_model_and_its_sessions_totals(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    user = f"grace_{uuid.uuid4().hex[:6]}"
    session = theazo.sessions.for_user(user)
    code = textwrap.dedent(ONE_OPENAI_CALL)
    tasks = [session.run(agent="attacker", input={"code": code}) for _ in range(2)]
    assert [t.status for t in tasks] == ["completed"] * 2, [t.error for t in tasks]
    plain = session.run(agent="echo", input=1)
    given, output, cached = expected_usage(1, "echo: hello world")
    sign_in(page, server, keys[0])

    # The task: its tokens by the model the provider named, and in all.
    page.goto(f"{server.base_url}/dashboard/#/task/{session.session_id}/{tasks[0].task_id}")
    model = page.locator("#task-tokens tbody tr[data-model='fake-gpt-2026-01-01']")
    model.wait_for()
    assert page.locator("#task-tokens tbody tr").count() == 1
    assert model.locator("td").first.text_content() == "fake-gpt-2026-01-01"
    for row in (model, page.locator("#task-tokens tfoot tr.total")):
        shown = {
            kind: digits(row.locator(f"td[data-tokens={kind}]").text_content())
            for kind in ("input", "cached", "output")
        }
        assert shown == {"input": given, "cached": cached, "output": output}
    assert digits(page.text_content("#task-tokens-total")) == given + output
    page.screenshot(path=str(artifacts_dir() / "task-tokens.png"), full_page=True)

    # A task without model calls says so.
    page.goto(f"{server.base_url}/dashboard/#/task/{session.session_id}/{plain.task_id}")
    page.wait_for_selector("#no-model-calls")
    assert digits(page.text_content("#task-tokens-total")) == 0

    # The session: both tasks' tokens together.
    page.click("[data-nav=sessions]")
    cell = page.locator(f"tr[data-session='{session.session_id}'] td.tokens-cell")
    cell.wait_for()
    totals = {
        kind: digits(cell.locator(f"[data-tokens={kind}]").text_content())
        for kind in ("total", "input", "cached", "output")
    }
    assert totals == {
        "total": 2 * (given + output),
        "input": 2 * given,
        "cached": 2 * cached,
        "output": 2 * output,
    }


def test_a_running_tasks_tokens_show_as_its_model_calls_are_made(
    page: Page, server: ServerProcess, keys: tuple[str, str], theazo: Theazo
) -> None:
    session = theazo.sessions.for_user(f"heidi_{uuid.uuid4().hex[:6]}")
    # Its call waits for the page to be open (5 s: a sign-in and a page take well under), and
    # the task runs on after it.
    waits = "import time\ntime.sleep(5)\n"
    code = waits + textwrap.dedent(ONE_OPENAI_CALL) + "time.sleep(30)\n"
    task = session.tasks.submit(agent="attacker", input={"code": code})
    sign_in(page, server, keys[0])
    page.goto(f"{server.base_url}/dashboard/#/task/{session.session_id}/{task.task_id}")
    page.wait_for_selector(".task-head .badge[data-status=running]")
    page.wait_for_selector("#no-model-calls")
    # No reload: the model call's charge on the task's stream brings its tokens.
    page.wait_for_selector("#task-tokens tbody tr[data-model='fake-gpt-2026-01-01']")
    given, output, _ = expected_usage(1, "echo: hello world")
    assert digits(page.text_content("#task-tokens-total")) == given + output
    assert session.tasks.get(task.task_id).status == "running"
    session.tasks.cancel(task.task_id)
