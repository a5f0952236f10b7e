"""The model gateway, as a deployment and an agent use it: ``theazo serve --llm-provider``
with fake OpenAI- and Anthropic-compatible providers on 127.0.0.1, agents calling them with
the official SDKs, unchanged, and the tokens metered, charged and shown on the task."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.fake_models import (
    PRICES_TOML,
    WRITTEN,
    FakeProvider,
    expected_usage,
)
from tests.support.server import ServerProcess
from theazo import Theazo
from theazo.gateway.prices import PriceTable, Tokens
from theazo.sdk import ChargeEvent, ProgressEvent

pytestmark = pytest.mark.usefixtures("backend")

KEY_ENV = "THEAZO_TEST_PROVIDER_KEY"
ANTHROPIC_KEY_ENV = "THEAZO_TEST_ANTHROPIC_KEY"
PRICES = PriceTable.parse(PRICES_TOML)
NODE_AGENT = Path(__file__).parents[1] / "support" / "commands" / "model_call.mjs"


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {
        KEY_ENV: f"sk-real-{secrets.token_hex(16)}",
        ANTHROPIC_KEY_ENV: f"sk-ant-real-{secrets.token_hex(20)}",
    }


@pytest.fixture(scope="module")
def gateway_server(
    start_server: StartServer,
    openai_fake: FakeProvider,
    anthropic_fake: FakeProvider,
    keys: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    prices = tmp_path_factory.mktemp("prices") / "prices.toml"
    prices.write_text(PRICES_TOML)
    args = [
        "--llm-provider", f"fake=openai,{openai_fake.base_url},{KEY_ENV}",
        "--llm-provider", f"claude=anthropic,{anthropic_fake.base_url},{ANTHROPIC_KEY_ENV}",
        # The discard port: nothing listens there.
        "--llm-provider", f"down=openai,http://127.0.0.1:9/v1,{KEY_ENV}",
        "--llm-prices", str(prices),
        "--llm-timeout", "2s",
        "--compute-price", "0",
        # Each test has its own session, and makes fewer calls than this unless it tests it.
        "--llm-requests-per-minute", "4",
        "--llm-tokens-per-minute", "2500",  # a fake call uses about 1,020 tokens
        "--llm-task-spend-cap", "1000",  # cents; a fake-gpt call costs 187
        "--command-agent", f"node_model={NODE_AGENT}",
    ]  # fmt: skip
    with start_server(*args, env=keys) as server:
        yield server


def run_code(
    server: ServerProcess,
    api_key: str,
    code: str,
    user: str,
    budget: int | None = None,
    **input: Any,
) -> Any:
    with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
        session = theazo.sessions.for_user(user)
        if budget is not None:
            session.update_limits(budget=budget)
        return session.run(agent="attacker", input={"code": textwrap.dedent(code), **input})


def cents(model: str, tokens: Tokens) -> Decimal:
    return PRICES.cost(model, tokens)


OPENAI_CALL = """
import openai
client = openai.OpenAI(max_retries=0, timeout=20)
kwargs = {"stream_options": input["stream_options"]} if input.get("stream_options") else {}
if input.get("stream"):
    stream = client.chat.completions.create(
        model=input["model"], messages=[{"role": "user", "content": "hello world"}],
        stream=True, **kwargs)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage.model_dump() for c in chunks if c.usage]
else:
    answer = client.chat.completions.create(
        model=input["model"], messages=[{"role": "user", "content": "hello world"}])
    text, usage = answer.choices[0].message.content, [answer.usage.model_dump()]
result = {"text": text, "usage": usage}
"""


def test_an_openai_call_is_metered_and_charged_to_the_task_and_session(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider, keys: dict[str, str]
) -> None:
    task = run_code(gateway_server, api_key, OPENAI_CALL, "openai-whole", model="fake-gpt")
    assert task.status == "completed", task.error
    assert task.output["text"] == "echo: hello world"
    given, output, cached = expected_usage(1, "echo: hello world")
    tokens = Tokens(given, output, cached)
    assert task.usage.tokens.model_dump() == {"input": given, "output": output, "cached": cached}
    assert {m: t.model_dump() for m, t in task.usage.by_model.items()} == {
        "fake-gpt-2026-01-01": tokens.as_json()
    }
    expected = cents("fake-gpt", tokens)  # 801 x 0.2 + 200 x 0.05 + 21 x 0.8 = 187 cents
    assert expected == Decimal("187.0")
    assert task.cost.amount == 187
    # The provider got the deployment's key, not the agent's dummy one.
    sent = openai_fake.received[-1]
    assert sent.headers["authorization"] == f"Bearer {keys[KEY_ENV]}"
    assert sent.path == "/v1/chat/completions"
    with Theazo(api_key=api_key, base_url=gateway_server.base_url) as theazo:
        session = theazo.sessions.for_user("openai-whole")
        assert session.refresh().info.usage.tokens.model_dump() == tokens.as_json()
        charges = [e for e in session.tasks.stream(task.task_id) if isinstance(e, ChargeEvent)]
    assert [c.amount for c in charges] == [187]
    assert "fake-gpt" in (charges[0].description or "")


def test_a_client_built_by_an_agents_setup_reaches_the_gateway(
    gateway_server: ServerProcess, api_key: str
) -> None:
    """A setup runs once, before the sandboxes exist: the client it builds must still have
    read the environment every sandbox gets (the gateway's address), not the loader's."""
    with Theazo(api_key=api_key, base_url=gateway_server.base_url) as theazo:
        session = theazo.sessions.for_user("openai-setup")
        task = session.run(agent="prepared_model", input={"model": "fake-gpt"})
    assert task.status == "completed", task.error
    assert task.output["text"] == "echo: hello world"
    assert "api.openai.com" not in task.output["base_url"]
    assert task.cost.amount == 187


def test_a_streamed_openai_call_is_metered_without_the_agent_asking(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    task = run_code(
        gateway_server, api_key, OPENAI_CALL, "openai-stream", model="fake-gpt", stream=True
    )
    assert task.status == "completed", task.error
    assert task.output["text"].strip() == "echo: hello world"
    # The gateway asked for the usage chunk and kept it from the agent, which had not.
    assert openai_fake.received[-1].body["stream_options"] == {"include_usage": True}
    assert task.output["usage"] == []
    given, output, cached = expected_usage(1, "echo: hello world")
    assert task.usage.tokens.model_dump() == {"input": given, "output": output, "cached": cached}
    assert task.cost.amount == 187


def test_an_agent_that_asks_for_stream_usage_gets_it(
    gateway_server: ServerProcess, api_key: str
) -> None:
    task = run_code(
        gateway_server,
        api_key,
        OPENAI_CALL,
        "openai-stream-usage",
        model="fake-gpt",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert task.status == "completed", task.error
    assert [u["prompt_tokens"] for u in task.output["usage"]] == [1001]
    assert task.usage.tokens.input == 1001 and task.cost.amount == 187


ANTHROPIC_CALL = """
import anthropic
client = anthropic.Anthropic(max_retries=0, timeout=20)
request = dict(model="fake-claude", max_tokens=100,
               messages=[{"role": "user", "content": "hi there you"}])
if input.get("cache"):  # a system prompt to write to the prompt cache
    request["system"] = [{"type": "text", "text": "You echo.",
                          "cache_control": {"type": "ephemeral"}}]
if input.get("stream"):
    with client.messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
else:
    final = client.messages.create(**request)
    text = final.content[0].text
result = {"text": text.strip(), "output_tokens": final.usage.output_tokens}
"""


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_call_is_metered_whole_or_streamed(
    gateway_server: ServerProcess,
    api_key: str,
    anthropic_fake: FakeProvider,
    keys: dict[str, str],
    stream: bool,
) -> None:
    task = run_code(gateway_server, api_key, ANTHROPIC_CALL, f"claude-{stream}", stream=stream)
    assert task.status == "completed", task.error
    answer = "echo: hi there you"
    assert task.output["text"] == answer
    given, output, cached = expected_usage(1, answer)
    tokens = Tokens(given, output, cached)
    assert task.usage.tokens.model_dump() == tokens.as_json()
    assert list(task.usage.by_model) == ["fake-claude"]
    # 801 x 0.3 + 200 x 0.03 + 28 x 1.5 = 288.3 cents
    assert cents("fake-claude", tokens) == Decimal("288.3")
    assert task.cost.amount == 288
    sent = anthropic_fake.received[-1]
    assert sent.headers["x-api-key"] == keys[ANTHROPIC_KEY_ENV]
    assert "authorization" not in sent.headers


@pytest.mark.parametrize("stream", [False, True])
def test_tokens_written_to_anthropics_prompt_cache_cost_the_cache_write_price(
    gateway_server: ServerProcess, api_key: str, anthropic_fake: FakeProvider, stream: bool
) -> None:
    user = f"claude-cache-{stream}"
    task = run_code(gateway_server, api_key, ANTHROPIC_CALL, user, stream=stream, cache=True)
    assert task.status == "completed", task.error
    assert anthropic_fake.received[-1].body["system"][0]["cache_control"] == {"type": "ephemeral"}
    given, output, cached = expected_usage(1, "echo: hi there you")
    # The written tokens are input tokens on the task, as before; only their price differs.
    assert task.usage.tokens.model_dump() == {"input": given, "output": output, "cached": cached}
    # 501 plain x 0.3 + 200 read x 0.03 + 300 written x 0.375 + 28 output x 1.5 = 310.8 cents
    # (at the input price the writes would make it 288.3)
    tokens = Tokens(given, output, cached, written=WRITTEN)
    assert cents("fake-claude", tokens) == Decimal("310.8")
    with Theazo(api_key=api_key, base_url=gateway_server.base_url) as theazo:
        events = theazo.sessions.for_user(user).tasks.stream(task.task_id)
        charges = [e for e in events if isinstance(e, ChargeEvent)]
    assert [c.amount for c in charges] == [310.8]
    assert "300 written to the cache" in (charges[0].description or "")
    assert task.cost.amount == 311


def test_a_model_without_a_price_is_refused_before_it_is_called(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    before = len(openai_fake.received)
    code = """
import openai
try:
    openai.OpenAI(max_retries=0).chat.completions.create(
        model="unpriced-model", messages=[{"role": "user", "content": "x"}])
    result = "called"
except openai.BadRequestError as exc:
    result = str(exc)
"""
    task = run_code(gateway_server, api_key, code, "unpriced")
    assert task.status == "completed", task.error
    assert "has no price" in task.output and "--llm-prices" in task.output
    assert len(openai_fake.received) == before
    assert not task.usage.by_model


def test_a_slow_provider_gives_the_agent_a_clear_error_not_a_hang(
    gateway_server: ServerProcess, api_key: str
) -> None:
    code = """
import time, openai
started = time.monotonic()
try:
    openai.OpenAI(max_retries=0, timeout=60).chat.completions.create(
        model="slow-gpt", messages=[{"role": "user", "content": "x"}])
    result = {"error": None}
except openai.APIStatusError as exc:
    result = {"status": exc.status_code, "error": str(exc)}
result["seconds"] = time.monotonic() - started
"""
    task = run_code(gateway_server, api_key, code, "slow")
    assert task.status == "completed", task.error
    assert task.output["status"] == 504
    assert "did not answer in time" in task.output["error"]
    assert task.output["seconds"] < 10  # --llm-timeout 2s


def test_a_provider_that_is_down_gives_the_agent_a_clear_error(
    gateway_server: ServerProcess, api_key: str
) -> None:
    code = """
import os, openai
client = openai.OpenAI(max_retries=0, base_url=os.environ["THEAZO_MODEL_GATEWAY_URL"] + "/down")
try:
    client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    result = None
except openai.APIStatusError as exc:
    result = {"status": exc.status_code, "error": str(exc)}
"""
    task = run_code(gateway_server, api_key, code, "down")
    assert task.status == "completed", task.error
    assert task.output["status"] == 502
    assert "cannot reach the provider 'down'" in task.output["error"]


def test_the_key_is_nowhere_a_sandbox_or_a_client_can_look(
    gateway_server: ServerProcess, api_key: str, keys: dict[str, str], openai_fake: FakeProvider
) -> None:
    code = """
import os, pathlib, re, openai
looks_like_a_key = re.compile(r"sk-(?:ant-)?real-[0-9a-f]*")
key_env = {k: v for k, v in os.environ.items() if "KEY" in k or "BASE_URL" in k}
texts = [repr(dict(os.environ))]
for proc in pathlib.Path("/proc").iterdir():
    for name in ("environ", "cmdline"):
        try:
            texts.append((proc / name).read_bytes().decode("latin-1"))
        except OSError:
            pass
for top in ("/tmp", "/workspace", "/etc", "/run", "/var", "/dev/shm", os.environ["HOME"]):
    for folder, _, files in os.walk(top):
        for file in files:
            try:
                with open(os.path.join(folder, file), "rb") as handle:
                    texts.append(handle.read(1_000_000).decode("latin-1"))
            except OSError:
                pass
answer = openai.OpenAI(max_retries=0).chat.completions.create(
    model="leaky-gpt", messages=[{"role": "user", "content": "x"}])
texts.append(answer.model_dump_json())
direct = None
try:
    import httpx
    httpx.get(input["fake"] + "/models", timeout=5)
    direct = "reached"
except Exception as exc:
    direct = type(exc).__name__
found = sorted({key for text in texts for key in looks_like_a_key.findall(text)})
result = {"found": found, "env": key_env, "leak": answer.choices[0].message.content,
          "direct": direct, "looked_at": len(texts)}
"""
    task = run_code(gateway_server, api_key, code, "key-hunt", fake=openai_fake.base_url)
    assert task.status == "completed", task.error
    secret = keys[KEY_ENV]
    # The provider did echo the key; the agent got it scrubbed.
    assert task.output["leak"] == "your key is Bearer [redacted]"
    assert task.output["found"] == [] and task.output["looked_at"] > 100
    port = task.output["env"]["OPENAI_BASE_URL"].split(":")[2].split("/")[0]
    assert task.output["env"] == {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/fake",
        "OPENAI_API_KEY": "theazo-model-gateway",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}/claude",
        "ANTHROPIC_API_KEY": "theazo-model-gateway",
    }
    # The sandbox has no route to the provider but the gateway (the proxy refuses loopback).
    assert task.output["direct"] != "reached"
    with httpx.Client(
        base_url=gateway_server.base_url, headers={"Authorization": f"Bearer {api_key}"}
    ) as client:
        path = f"/v1/sessions/{task.session_id}"
        answers = [
            client.get(path).text,
            client.get(f"{path}/tasks/{task.task_id}").text,
            client.get(f"{path}/tasks/{task.task_id}/events").text,
            client.get(f"{path}/tasks/{task.task_id}/logs").text,
            client.get("/healthz").text,
            client.get("/openapi.json").text,
        ]
    assert all(answer for answer in answers)
    for answer in answers:
        assert secret not in answer and keys[ANTHROPIC_KEY_ENV] not in answer
    assert secret not in gateway_server.log()


CALLS = """
import openai
client = openai.OpenAI(max_retries=0)
outcomes = []
for max_tokens in input["calls"]:
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    try:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hello world"}], **extra)
        outcomes.append("ok")
    except openai.APIStatusError as exc:
        outcomes.append({"status": exc.status_code, "error": str(exc),
                         "retry_after": exc.response.headers.get("retry-after")})
        ctx.progress(None, f"refused: {exc.status_code}")
result = outcomes
"""


def test_a_call_once_the_budget_is_spent_is_refused_and_the_task_ends_budget_exceeded(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    # 187 cents a call: the second passes the budget of 300 (its cost is not known before),
    # and the task is stopped; a third, if the agent gets that far, is refused.
    task = run_code(gateway_server, api_key, CALLS, "budget-spent", budget=300, calls=[0, 0, 0])
    assert task.status == "failed" and task.error.code == "budget_exceeded", (
        task.output,
        task.cost,
    )
    assert task.cost.amount == 374
    assert task.usage.tokens.input == 2 * 1001


def test_a_call_that_could_cross_the_budget_is_refused_before_the_provider_is_called(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    before = len(openai_fake.received)
    # max_tokens 1,000 could cost 800 cents of output alone: more than the 300 left.
    task = run_code(gateway_server, api_key, CALLS, "budget-cross", budget=300, calls=[1000])
    assert task.status == "failed" and task.error.code == "budget_exceeded", (
        task.output,
        task.cost,
    )
    assert "could cost 800 minor units, more than the 300 left" in task.error.message
    assert len(openai_fake.received) == before
    assert task.cost.amount == 0 and not task.usage.by_model


def test_a_tasks_model_spend_cap_refuses_the_call_that_could_pass_it(
    gateway_server: ServerProcess, api_key: str
) -> None:
    # 187 cents spent; a second call of up to 1,100 output tokens (880 cents) could pass 1,000.
    task = run_code(gateway_server, api_key, CALLS, "task-cap", calls=[0, 1100])
    assert task.status == "completed", task.error
    first, second = task.output
    assert first == "ok"
    assert second["status"] == 402
    assert "cost 187 minor units, and its cap is 1000" in second["error"]
    assert "could cost 880 more" in second["error"]
    assert task.cost.amount == 187


def test_a_sessions_tokens_per_minute_are_limited_with_retry_after(
    gateway_server: ServerProcess, api_key: str
) -> None:
    # About 1,020 tokens a call: after three, the session passed 2,500 this minute.
    task = run_code(gateway_server, api_key, CALLS, "tokens-per-minute", calls=[0, 0, 0, 0])
    assert task.status == "completed", task.error
    *passed, refused = task.output
    assert passed == ["ok", "ok", "ok"]
    assert refused["status"] == 429 and "tokens in the last minute" in refused["error"]
    assert 1 <= int(refused["retry_after"]) <= 60


def test_a_sessions_requests_per_minute_are_limited_with_retry_after(
    gateway_server: ServerProcess, api_key: str
) -> None:
    code = """
import os, httpx
url = os.environ["OPENAI_BASE_URL"] + "/models"
answers = [httpx.get(url, timeout=10) for _ in range(5)]
result = [(a.status_code, a.headers.get("retry-after")) for a in answers]
"""
    task = run_code(gateway_server, api_key, code, "requests-per-minute")
    assert task.status == "completed", task.error
    statuses = [status for status, _ in task.output]
    assert statuses[:4] != [429] * 4 and statuses[4] == 429
    assert 1 <= int(task.output[4][1]) <= 60


def test_the_assistant_answers_in_tool_using_steps_billed_through_the_gateway(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    with Theazo(api_key=api_key, base_url=gateway_server.base_url) as theazo:
        session = theazo.sessions.for_user("assistant")
        task = session.run(
            agent="assistant",
            input={
                "question": "How do workers claim jobs, and what is 6 * 7?",
                "model": "fake-gpt",
            },
        )
        events = list(session.tasks.stream(task.task_id))
    progress = [e.message for e in events if isinstance(e, ProgressEvent)]
    assert task.status == "completed", task.error
    output = task.output
    assert output["steps"] == 3
    assert [tool["name"] for tool in output["tools"]] == ["search_notes", "calculate"]
    assert output["tools"][1]["arguments"] == {"expression": "6 * 7"}
    # The fake answers with the tools' results: the notes' passage and the product.
    assert "[task-queues.md]" in output["answer"] and "| 42" in output["answer"]
    assert any("search_notes" in (text or "") for text in progress)
    assert progress[-1] == "Answered in 3 steps"
    # Three model calls, metered by the gateway (the agent charged nothing itself).
    assert sum(t.input for t in task.usage.by_model.values()) == task.usage.tokens.input
    assert task.usage.tokens.input == (1000 + 2) + (1000 + 4) + (1000 + 6)
    assert openai_fake.received[-1].headers["authorization"].startswith("Bearer sk-real-")


@pytest.mark.parametrize("stream", [False, True])
def test_nodes_fetch_reaches_the_gateway_unchanged(
    gateway_server: ServerProcess, api_key: str, stream: bool
) -> None:
    with Theazo(api_key=api_key, base_url=gateway_server.base_url) as theazo:
        session = theazo.sessions.for_user(f"node-{stream}")
        task = session.run(
            agent="node_model", input={"model": "fake-gpt", "text": "from node", "stream": stream}
        )
        log = [line.text for line in session.tasks.logs(task.task_id).data]
    assert task.status == "completed", (task.error, log[:5])
    assert task.output["status"] == 200
    assert "echo:" in task.output["text"] and "node" in task.output["text"]
    if stream:  # the usage chunk the gateway asked for is not passed on
        assert '"choices": []' not in task.output["text"] and "[DONE]" in task.output["text"]
    given, output, cached = expected_usage(1, "echo: from node")
    assert task.usage.tokens.model_dump() == {"input": given, "output": output, "cached": cached}
    assert task.cost.amount == round(cents("fake-gpt", Tokens(given, output, cached)))


def test_only_model_calls_are_passed_on_with_the_key(
    gateway_server: ServerProcess, api_key: str, openai_fake: FakeProvider
) -> None:
    code = """
import os, httpx
root = os.environ["THEAZO_MODEL_GATEWAY_URL"]
tries = [("POST", "/fake/files"), ("POST", "/fake/batches"), ("GET", "/fake/organization/users"),
         ("GET", "/fake/models/../files"), ("POST", "/claude/v1/files"), ("GET", "/nobody/models")]
result = [httpx.request(method, root + path, json={}, timeout=10).status_code
          for method, path in tries]
"""
    before = len(openai_fake.received)
    task = run_code(gateway_server, api_key, code, "endpoints")
    assert task.status == "completed", task.error
    assert task.output == [403, 403, 403, 403, 403, 404]
    assert len(openai_fake.received) == before


def test_a_client_that_expects_100_continue_is_told_to_go_on(
    gateway_server: ServerProcess, api_key: str
) -> None:
    code = """
import json, os, socket
host, port = os.environ["THEAZO_MODEL_GATEWAY_URL"].removeprefix("http://").split(":")
body = json.dumps({"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
with socket.create_connection((host, int(port)), timeout=10) as sock:
    sock.sendall(b"POST /fake/chat/completions HTTP/1.1\\r\\nHost: x\\r\\n"
                 b"Content-Type: application/json\\r\\nExpect: 100-continue\\r\\n"
                 b"Connection: close\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body))
    interim = sock.recv(100)
    sock.sendall(body)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
head, _, rest = answer.partition(b"\\r\\n\\r\\n")
result = {"interim": interim.decode().split("\\r\\n")[0],
          "final": head.decode().split("\\r\\n")[0],
          "text": json.loads(rest)["choices"][0]["message"]["content"]}
"""
    task = run_code(gateway_server, api_key, code, "expect-100")
    assert task.status == "completed", task.error
    assert task.output == {
        "interim": "HTTP/1.1 100 ",
        "final": "HTTP/1.1 200 ",
        "text": "echo: hi",
    }
