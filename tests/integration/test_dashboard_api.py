"""The dashboard's HTTP side as a browser would use it (and as an attacker would try it), on
every backend: signing in, what the cookie may do and where, the origin and CSRF checks,
tenancy, filters and pages, bulk cancel of exactly what was counted, sessions, the overview and
the live stream. tests/browser drives the same through the page itself."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.fake_models import (
    ONE_OPENAI_CALL,
    FakeProvider,
    expected_usage,
    gateway_options,
)
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, new_api_key
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session

OTHER_KEY = new_api_key()


@pytest.fixture(scope="module")
def server(
    start_server: StartServer,
    api_key: str,
    openai_fake: FakeProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    # A model gateway, so that tasks have tokens to show.
    gateway, env = gateway_options(openai_fake, tmp_path_factory.mktemp("gateway"))
    # Private webhooks: the receiver of the redeliver test is on loopback.
    with start_server(
        "--allow-private-webhooks", *gateway, api_keys=[api_key, OTHER_KEY], env=env
    ) as process:
        yield process


class Browser:
    """What a page of the dashboard sends: its cookie, its origin, its CSRF token."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = server.base_url
        self.http = httpx.Client(base_url=f"{self.base}/dashboard/api", timeout=10)
        self.csrf = ""

    def sign_in(self, key: str) -> httpx.Response:
        answer = self.http.post("/sign-in", json={"apiKey": key}, headers={"Origin": self.base})
        if answer.status_code == 200:
            self.csrf = answer.json()["csrfToken"]
        return answer

    def change(self, method: str, path: str, body: object = None, **headers: str) -> httpx.Response:
        sent = {"Origin": self.base, "X-CSRF-Token": self.csrf, **headers}
        return self.http.request(method, path, json=body, headers=sent)


BrowserFactory = Callable[[], Browser]


@pytest.fixture
def new_browser(server: ServerProcess) -> Iterator[BrowserFactory]:
    """Fresh browsers (no cookie yet), closed at the end of the test."""
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(server))
        return made[-1]

    yield make
    for page in made:
        page.http.close()


@pytest.fixture
def browser(new_browser: BrowserFactory, api_key: str) -> Browser:
    page = new_browser()
    assert page.sign_in(api_key).status_code == 200
    return page


@pytest.fixture
def held(session: Session) -> Session:
    """A session whose tasks stay queued."""
    return session.update_limits(max_running=0)


def _problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


def test_signing_in_sets_a_strict_httponly_cookie_that_holds_no_key(
    new_browser: BrowserFactory, api_key: str
) -> None:
    page = new_browser()
    _problem(page.sign_in("th_test_" + "x" * 43), 401, "unauthorized")
    _problem(page.http.get("/me"), 401, "unauthorized")

    answer = page.sign_in(api_key)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("theazo_dashboard=thds_")
    for attribute in ("HttpOnly", "Path=/", "SameSite=strict", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; over HTTPS it is Secure
    assert api_key not in cookie and api_key not in answer.text
    me = page.http.get("/me").json()
    assert me["csrfToken"] == page.csrf and me["projectId"].startswith("proj_")

    _problem(page.change("POST", "/sign-out", Origin="https://evil.example"), 403, "foreign_origin")
    assert page.change("POST", "/sign-out").status_code == 204
    _problem(page.http.get("/me"), 401, "unauthorized")


def test_a_cookie_is_no_key_for_the_public_api(browser: Browser) -> None:
    answer = httpx.get(f"{browser.base}/v1/agents", cookies=browser.http.cookies)
    _problem(answer, 401, "unauthorized")


def test_a_tampered_or_foreign_cookie_is_refused(browser: Browser) -> None:
    cookie = browser.http.cookies["theazo_dashboard"]
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    answer = httpx.get(f"{browser.base}/dashboard/api/me", cookies={"theazo_dashboard": forged})
    _problem(answer, 401, "unauthorized")


def test_changes_need_the_pages_origin_and_its_csrf_token(browser: Browser, held: Session) -> None:
    task = held.tasks.submit(agent="noop", input={})
    cancel = f"/sessions/{held.session_id}/tasks/{task.task_id}/cancel"

    _problem(browser.change("POST", cancel, **{"X-CSRF-Token": ""}), 403, "csrf_token_missing")
    _problem(browser.change("POST", cancel, **{"X-CSRF-Token": "nope"}), 403, "csrf_token_missing")
    _problem(browser.change("POST", cancel, Origin="http://127.0.0.1:1"), 403, "foreign_origin")
    _problem(browser.change("POST", cancel, Origin="null"), 403, "foreign_origin")
    _problem(
        browser.change("POST", cancel, **{"Sec-Fetch-Site": "same-site"}), 403, "foreign_origin"
    )
    # What a cross-site HTML form sends: a form body, its origin, no header of ours.
    form = browser.http.post(
        cancel,
        content=b"x=1",
        headers={
            "Origin": "http://127.0.0.1:1",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    _problem(form, 403, "foreign_origin")
    assert held.tasks.get(task.task_id).status == "queued"

    done = browser.change("POST", cancel)
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert held.tasks.get(task.task_id).status == "cancelled"


def test_another_projects_tasks_and_sessions_are_not_found(
    new_browser: BrowserFactory, held: Session
) -> None:
    task = held.tasks.submit(agent="noop", input={})
    stranger = new_browser()
    stranger.sign_in(OTHER_KEY)
    where = f"/sessions/{held.session_id}/tasks/{task.task_id}"
    _problem(stranger.http.get(where), 404, "task_not_found")
    _problem(stranger.change("POST", f"{where}/cancel"), 404, "task_not_found")
    _problem(
        stranger.http.get(f"/sessions/{held.session_id}/stream-token"), 404, "session_not_found"
    )
    patch = stranger.change("PATCH", f"/sessions/{held.session_id}", {"limits": {"maxRunning": 5}})
    _problem(patch, 404, "session_not_found")
    assert stranger.http.get("/tasks").json()["data"] == []
    assert stranger.http.get("/sessions").json()["data"] == []
    assert held.tasks.get(task.task_id).status == "queued"


def test_the_list_filters_across_sessions_and_pages(browser: Browser, theazo: Theazo) -> None:
    user = f"lister_{uuid.uuid4().hex[:8]}"
    mine = theazo.sessions.for_user(user).update_limits(max_running=0)
    tasks = [mine.tasks.submit(agent="noop", input={"n": n}, priority="low") for n in range(3)]
    theazo.sessions.for_user(f"other_{uuid.uuid4().hex[:8]}").tasks.submit(agent="echo", input=1)

    first = browser.http.get("/tasks", params={"userId": user, "limit": 2}).json()
    assert [t["taskId"] for t in first["data"]] == [tasks[2].task_id, tasks[1].task_id]
    assert first["data"][0]["userId"] == user and first["data"][0]["queuePosition"] is not None
    rest = browser.http.get(
        "/tasks", params={"userId": user, "limit": 2, "cursor": first["nextCursor"]}
    ).json()
    assert [t["taskId"] for t in rest["data"]] == [tasks[0].task_id] and rest["nextCursor"] is None

    def count(**params: str) -> int:
        return len(browser.http.get("/tasks", params={"userId": user, **params}).json()["data"])

    assert count(status="queued,running", agent="noop", priority="low") == 3
    assert count(sessionId=mine.session_id) == 3
    assert count(status="completed") == 0 and count(agent="echo") == 0
    assert count(priority="high") == 0
    assert count(since="2999-01-01T00:00:00Z") == 0 and count(until="2999-01-01T00:00:00Z") == 3

    _problem(browser.http.get("/tasks", params={"status": "done"}), 422, "invalid_status")
    _problem(browser.http.get("/tasks", params={"cursor": "bm9wZQ"}), 422, "invalid_cursor")
    _problem(
        browser.http.get("/tasks", params={"since": "2026-01-01T00:00:00"}), 422, "validation_error"
    )
    _problem(browser.http.get("/tasks", params={"limit": 0}), 422, "validation_error")
    for task in tasks:
        mine.tasks.cancel(task.task_id)


def test_bulk_cancel_stops_what_was_counted_and_nothing_newer(
    browser: Browser, held: Session
) -> None:
    counted = [held.tasks.submit(agent="noop", input={}) for _ in range(3)]
    filters = {"sessionId": held.session_id}
    selection = browser.http.get("/tasks/selection", params=filters).json()
    assert (selection["count"], selection["capped"]) == (3, False)
    newer = held.tasks.submit(agent="noop", input={})

    done = browser.change("POST", "/tasks/cancel", {**filters, "through": selection["through"]})
    assert done.status_code == 200, done.text
    assert sorted(done.json()["cancelled"]) == sorted(t.task_id for t in counted)
    assert held.tasks.get(newer.task_id).status == "queued"
    again = browser.change("POST", "/tasks/cancel", {**filters, "through": selection["through"]})
    assert again.json() == {"cancelled": [], "alreadyEnded": 0}
    _problem(browser.change("POST", "/tasks/cancel", {"status": ["done"]}), 422, "invalid_status")
    _problem(
        browser.http.post("/tasks/cancel", json=filters),
        403,
        "csrf_token_missing",
    )
    held.tasks.cancel(newer.task_id)


def test_a_tasks_detail_shows_its_timeline_attempts_and_deliveries(
    browser: Browser, session: Session
) -> None:
    task = session.run(agent="echo", input={"hello": "dashboard"})
    detail = browser.http.get(f"/sessions/{session.session_id}/tasks/{task.task_id}").json()
    assert detail["task"]["output"] == {"hello": "dashboard"}
    statuses = [(e["status"], e["end"]) for e in detail["timeline"]]
    assert statuses[0] == ("queued", False) and ("running", False) in statuses
    assert statuses[-1] == ("completed", True)
    assert [(a["number"], a["outcome"]) for a in detail["attempts"]] == [(1, "completed")]
    assert detail["deliveries"] == []
    token = browser.http.get(f"/sessions/{session.session_id}/stream-token").json()["token"]
    logs = httpx.get(
        f"{browser.base}/v1/sessions/{session.session_id}/tasks/{task.task_id}/logs",
        params={"token": token},
    )
    assert logs.status_code == 200


def test_a_tasks_model_tokens_are_shown_by_model_and_summed_on_its_session(
    browser: Browser, session: Session
) -> None:
    calls = [session.run(agent="attacker", input={"code": textwrap.dedent(ONE_OPENAI_CALL)})]
    calls.append(session.run(agent="attacker", input={"code": textwrap.dedent(ONE_OPENAI_CALL)}))
    assert [t.status for t in calls] == ["completed", "completed"], [t.error for t in calls]
    given, output, cached = expected_usage(1, "echo: hello world")
    one = {"input": given, "output": output, "cached": cached}
    detail = browser.http.get(f"/sessions/{session.session_id}/tasks/{calls[0].task_id}").json()
    usage = detail["task"]["usage"]
    assert usage["tokens"] == one
    assert usage["byModel"] == {"fake-gpt-2026-01-01": one}
    # A task without model calls shows none.
    plain = session.run(agent="echo", input=1)
    shown = browser.http.get(f"/sessions/{session.session_id}/tasks/{plain.task_id}").json()
    assert shown["task"]["usage"]["tokens"] == {"input": 0, "output": 0, "cached": 0}
    assert shown["task"]["usage"]["byModel"] == {}
    # The session: both tasks' tokens, on its row and in the task list.
    sessions = browser.http.get("/sessions", params={"limit": 500}).json()["data"]
    (row,) = [s for s in sessions if s["sessionId"] == session.session_id]
    assert row["usage"]["tokens"] == {k: 2 * v for k, v in one.items()}
    listed = browser.http.get("/tasks", params={"sessionId": session.session_id}).json()["data"]
    assert {t["taskId"]: t["usage"]["tokens"]["input"] for t in listed} == {
        calls[0].task_id: given,
        calls[1].task_id: given,
        plain.task_id: 0,
    }


def test_a_finished_tasks_webhook_is_shown_and_sent_again(
    browser: Browser, session: Session
) -> None:
    with Receiver().running() as receiver:
        task = session.run(agent="echo", input={"n": 1}, webhook=receiver.url("/done"))
        receiver.wait_for("/done")
        where = f"/sessions/{session.session_id}/tasks/{task.task_id}"

        def delivered() -> list[dict[str, object]] | None:
            found: list[dict[str, object]] = browser.http.get(where).json()["deliveries"]
            return found if found and found[0]["status"] == "delivered" else None

        (shown,) = eventually(delivered, what="the delivery recorded")
        assert shown["url"] == receiver.url("/done") and shown["attempts"] == 1

        _problem(browser.http.post(f"{where}/redeliver"), 403, "csrf_token_missing")
        again = browser.change("POST", f"{where}/redeliver")
        assert again.status_code == 202, again.text
        (first, second) = receiver.wait_for("/done", count=2)
        assert first.payload == second.payload  # the same message again (docs/webhooks.md)


def test_sessions_show_limits_and_usage_and_take_new_limits(
    browser: Browser, session: Session
) -> None:
    session.run(agent="echo", input=1)
    found = {
        s["sessionId"]: s
        for s in browser.http.get("/sessions", params={"limit": 500}).json()["data"]
    }
    shown = found[session.session_id]
    assert shown["usage"]["tasks"] == 1 and shown["limits"]["budget"] is None

    where = f"/sessions/{session.session_id}"
    changed = browser.change("PATCH", where, {"limits": {"maxRunning": 3, "budget": 500}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["limits"] == {"maxRunning": 3, "maxQueued": 10_000, "budget": 500}
    assert session.refresh().limits.max_running == 3
    _problem(
        browser.change("PATCH", where, {"limits": {"maxRunning": -1}}), 422, "validation_error"
    )
    _problem(
        browser.http.patch(where, json={"limits": {"budget": None}}),
        403,
        "csrf_token_missing",
    )


def test_the_overview_counts_this_projects_queue(browser: Browser, held: Session) -> None:
    before = browser.http.get("/overview").json()
    held.tasks.submit(agent="noop", input={}, priority="high")
    after = browser.http.get("/overview").json()
    high = next(p for p in after["queue"] if p["priority"] == "high")
    was = next(p for p in before["queue"] if p["priority"] == "high")
    assert high["queued"] == was["queued"] + 1
    assert after["oldestQueuedSeconds"] is not None
    assert any(n["slots"] for n in after["nodes"])
    assert "echo" in {a["name"] for a in after["agents"]}


def test_the_live_stream_tells_of_each_change_in_the_project(
    browser: Browser, session: Session
) -> None:
    seen: list[dict[str, object]] = []
    with browser.http.stream("GET", "/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        event = ""
        task = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if event == "resync" and task is None:
                    task = session.tasks.submit(agent="echo", input=1)  # once the stream is open
                elif event == "task":
                    seen.append(data)
                    if task is not None and (data["taskId"], data["status"]) == (
                        task.task_id,
                        "completed",
                    ):
                        break
    assert task is not None
    mine = [e["status"] for e in seen if e["taskId"] == task.task_id and e["kind"] == "status"]
    assert mine[-1] == "completed" and "running" in mine
    eventually(lambda: session.tasks.get(task.task_id).status == "completed")
