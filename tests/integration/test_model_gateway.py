"""The model gateway, as a deployment and an agent use it: ``theazo serve --llm-provider``
with fake OpenAI- and Anthropic-compatible providers on 127.0.0.1, agents calling them with
the official SDKs, unchanged, and the tokens metered, charged and shown on the task."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.fake_models import PRICES_TOML, FakeProvider, expected_usage, fake_provider
from tests.support.server import ServerProcess
from theazo import Theazo
from theazo.gateway.prices import PriceTable, Tokens
from theazo.sdk import ChargeEvent

pytestmark = pytest.mark.usefixtures("backend")

KEY_ENV = "THEAZO_TEST_PROVIDER_KEY"
ANTHROPIC_KEY_ENV = "THEAZO_TEST_ANTHROPIC_KEY"
PRICES = PriceTable.parse(PRICES_TOML)


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeProvider]:
    with fake_provider("openai") as provider:
        yield provider


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[FakeProvider]:
    with fake_provider("anthropic") as provider:
        yield provider


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
    ]  # fmt: skip
    with start_server(*args, env=keys) as server:
        yield server


def run_code(server: ServerProcess, api_key: str, code: str, user: str, **input: Any) -> Any:
    with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
        session = theazo.sessions.for_user(user)
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
