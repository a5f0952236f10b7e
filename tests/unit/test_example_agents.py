"""The bundled example agents, called as the sandbox calls them: with a real ``Context`` whose
frames the test reads back from the other end of the socket, as the server would."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest

from theazo import Context
from theazo.agent import BUNDLED_AGENT_MODULES, AgentFailed, load_agents
from theazo.agents.examples.assistant import AssistantInput, assistant, calculate, search_notes
from theazo.agents.examples.data_processor import DataProcessorInput, data_processor
from theazo.agents.examples.researcher import ResearcherInput, researcher
from theazo.sandbox import protocol

CUSTOMERS = """city,age,score,plan
Paris,20,1.5,pro
Lyon,30,2.5,free

Paris,,3.5,pro
Nice,40,,n/a
Paris,50,0.5,12
"""


class TaskChannel:
    """Both ends of a task channel: the agent's ``ctx``, and a thread reading every frame the
    agent sends, so that a full socket buffer can never block the agent."""

    def __init__(self, workdir: Path) -> None:
        self._agent_end, self._server_end = socket.socketpair()
        self.ctx = Context(
            self._agent_end,
            task_id="task_test",
            session_id="sess_test",
            user_id="user_123",
            agent="example",
            attempt=1,
            metadata={},
            workdir=workdir,
        )
        self._frames: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while (frame := protocol.recv_frame(self._server_end)) is not None:
            self._frames.append(frame)

    def frames(self) -> list[dict[str, Any]]:
        """Everything the agent sent; closes the agent's end first so the reader sees the end."""
        self.close()
        return self._frames

    def progress(self) -> list[tuple[float | None, str | None]]:
        return [(f["p"], f["m"]) for f in self.frames() if f["t"] == "progress"]

    def close(self) -> None:
        if self._reader.is_alive():
            self._agent_end.shutdown(socket.SHUT_RDWR)
            self._reader.join(timeout=10)
            assert not self._reader.is_alive(), "the frame reader did not stop"
        self._agent_end.close()
        self._server_end.close()


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[TaskChannel]:
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    task_channel = TaskChannel(workdir)
    yield task_channel
    task_channel.close()


def assert_progress_ends_complete(reports: list[tuple[float | None, str | None]]) -> None:
    fractions = [fraction for fraction, _ in reports if fraction is not None]
    assert fractions == sorted(fractions), "progress went backwards"
    assert fractions[-1] == 1.0


def test_the_examples_package_registers_every_example_agent() -> None:
    agents = load_agents(BUNDLED_AGENT_MODULES)

    assert {"echo", "data_processor", "researcher", "assistant"} <= set(agents)
    assert agents["assistant"].input_model is AssistantInput
    assert agents["data_processor"].input_model is DataProcessorInput
    assert agents["researcher"].input_model is ResearcherInput


# --- data_processor ------------------------------------------------------------------------
def test_data_processor_describes_every_column(channel: TaskChannel) -> None:
    output = data_processor(channel.ctx, DataProcessorInput(csv=CUSTOMERS))

    assert output["rows"] == 5  # the blank line is not a row
    assert list(output["columns"]) == ["city", "age", "score", "plan"]
    assert output["columns"]["city"] == {
        "type": "text",
        "count": 5,
        "missing": 0,
        "distinct": 3,
        "top": [
            {"value": "Paris", "count": 3},
            {"value": "Lyon", "count": 1},  # ties in alphabetical order
            {"value": "Nice", "count": 1},
        ],
    }
    age = output["columns"]["age"]
    assert age == {
        "type": "number",
        "count": 4,
        "missing": 1,
        "min": 20,
        "max": 50,
        "mean": 35.0,
        "median": 35.0,
        "stddev": pytest.approx(math.sqrt((15**2 + 5**2 + 5**2 + 15**2) / 3)),
    }
    score = output["columns"]["score"]
    assert (score["min"], score["max"], score["mean"], score["median"]) == (0.5, 3.5, 2.0, 2.0)
    assert score["stddev"] == pytest.approx(math.sqrt((1.5**2 + 0.5**2 * 2 + 1.5**2) / 3))
    plan = output["columns"]["plan"]  # one number among words does not make it numeric
    assert plan["type"] == "text"
    assert plan["top"][0] == {"value": "pro", "count": 2}


def test_data_processor_reports_progress_per_chunk_of_rows(channel: TaskChannel) -> None:
    rows = "\n".join(f"{n},{n * n}" for n in range(7))

    data_processor(channel.ctx, DataProcessorInput(csv=f"n,square\n{rows}\n", chunk_size=3))

    reports = channel.progress()
    assert [message for _, message in reports] == [
        "Counting rows...",
        "Processing 3 of 7 rows...",
        "Processing 6 of 7 rows...",
        "Processing 7 of 7 rows...",
        "Processed 7 rows",
    ]
    assert [fraction for fraction, _ in reports] == [0.0, 3 / 7, 6 / 7, 1.0, 1.0]
    assert_progress_ends_complete(reports)


def test_data_processor_reads_a_file_given_as_a_path(
    channel: TaskChannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "spend.csv").write_text("id;spend\n1;10\n2;30\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the sandbox's current directory is the task's workdir

    absolute = data_processor(
        channel.ctx, DataProcessorInput(path=str(tmp_path / "spend.csv"), delimiter=";")
    )
    relative = data_processor(channel.ctx, DataProcessorInput(path="spend.csv", delimiter=";"))

    assert absolute["rows"] == 2
    assert absolute["columns"]["spend"]["mean"] == 20.0
    assert relative == absolute


def test_data_processor_reads_the_bundled_sample_dataset(channel: TaskChannel) -> None:
    result = data_processor(channel.ctx, DataProcessorInput(dataset="customers_q2.csv"))

    assert result["rows"] == 200
    assert result["columns"]["plan"]["type"] == "text"
    assert result["columns"]["mrr_usd"]["type"] == "number"
    assert "Processing 50 of 200 rows..." in [m for _, m in channel.progress()]


def test_data_processor_says_where_it_looked_for_a_missing_file(
    channel: TaskChannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(FileNotFoundError, match=r"no CSV file at .*nothing\.csv"):
        data_processor(channel.ctx, DataProcessorInput(path="nothing.csv"))
    with pytest.raises(FileNotFoundError, match=r"no sample dataset 'nope\.csv'"):
        data_processor(channel.ctx, DataProcessorInput(dataset="nope.csv"))


@pytest.mark.parametrize(
    ("csv_text", "error"),
    [
        ("", "the CSV is empty"),
        ("\n\n", "the CSV is empty"),
        ("a,b\n1,2\n3\n", "line 3 of the CSV has 1 fields, but the header has 2"),
        ("a,b,a\n1,2,3\n", "repeats the column name"),
    ],
)
def test_data_processor_refuses_a_malformed_csv(
    channel: TaskChannel, csv_text: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        data_processor(channel.ctx, DataProcessorInput(csv=csv_text))


def test_data_processor_refuses_a_file_that_is_not_utf8(
    channel: TaskChannel, tmp_path: Path
) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name\ncaf\xe9\n".encode("latin-1"))

    with pytest.raises(ValueError, match="the CSV file is not UTF-8 text"):
        data_processor(channel.ctx, DataProcessorInput(path=str(latin1)))


def test_data_processor_accepts_a_csv_with_a_header_and_no_rows(channel: TaskChannel) -> None:
    output = data_processor(channel.ctx, DataProcessorInput(csv="a,b\n"))

    empty = {"type": "text", "count": 0, "missing": 0, "distinct": 0, "top": []}
    assert output == {"rows": 0, "columns": {"a": empty, "b": empty}}
    assert channel.progress()[-1] == (1.0, "Processed 0 rows")


def test_data_processor_stops_when_the_task_is_cancelled(channel: TaskChannel) -> None:
    channel.ctx.mark_cancelled()

    with pytest.raises(RuntimeError, match="cancelled after 0 of 2 rows"):
        data_processor(channel.ctx, DataProcessorInput(csv="a\n1\n2\n"))


@pytest.mark.parametrize(
    "raw",
    [{}, {"csv": "a\n1\n", "path": "x.csv"}, {"csv": "a\n1\n", "chunk_size": 0}, {"cvs": "a"}],
)
def test_data_processor_input_needs_exactly_one_source(raw: dict[str, Any]) -> None:
    schema = DataProcessorInput.model_json_schema()

    with pytest.raises(pydantic.ValidationError):
        DataProcessorInput.model_validate(raw)
    with pytest.raises(jsonschema.ValidationError):  # refused at submit, too
        jsonschema.validate(raw, schema)


def test_the_product_pages_input_fits_the_published_schema() -> None:
    jsonschema.validate({"dataset": "customers_q2.csv"}, DataProcessorInput.model_json_schema())


# --- researcher ----------------------------------------------------------------------------
def bundled_documents() -> set[str]:
    corpus = resources.files("theazo.agents.examples").joinpath("corpus")
    return {entry.name for entry in corpus.iterdir()}


def test_researcher_finds_the_relevant_passage_in_the_bundled_corpus(
    channel: TaskChannel,
) -> None:
    output = researcher(channel.ctx, ResearcherInput(query="SQLite WAL mode and busy timeouts"))

    assert output["query"] == "SQLite WAL mode and busy timeouts"
    assert len(output["results"]) == 3
    best = output["results"][0]
    assert best["source"] == "sqlite.md"
    assert "Write-ahead logging (WAL mode)" in best["passage"]
    assert {result["source"] for result in output["results"]} <= bundled_documents()
    scores = [result["score"] for result in output["results"]]
    assert scores == sorted(scores, reverse=True)
    assert "WAL" in output["summary"]


def test_researcher_reports_progress_and_charges_for_the_passages_it_scored(
    channel: TaskChannel,
) -> None:
    researcher(channel.ctx, ResearcherInput(query="how do workers claim jobs?"))

    frames = channel.frames()
    reports = [(f["p"], f["m"]) for f in frames if f["t"] == "progress"]
    charges = [f for f in frames if f["t"] == "charge"]
    documents = len(bundled_documents())
    assert len(reports) == 2 * documents  # once per document indexed, once per scored
    assert reports[-1] == (1.0, f"Scoring {documents} of {documents} documents...")
    assert_progress_ends_complete(reports)
    assert len(charges) == documents
    assert sum(float(charge["amount"]) for charge in charges) > 0
    assert all(charge["description"].startswith("scored ") for charge in charges)


def test_researcher_searches_a_folder_of_the_users_files(
    channel: TaskChannel, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "zoo.txt").write_text(
        "The zoo opens at nine.\n\nZebras graze in the east paddock. Their stripes confuse "
        "flies.\n",
        encoding="utf-8",
    )
    (notes / "garden.md").write_text("# Garden\n\nRoses need pruning in spring.\n")
    (notes / "zebras.csv").write_text("zebra,zebra,zebra\n")  # not a document: ignored

    output = researcher(channel.ctx, ResearcherInput(query="zebra stripes", folder=str(notes)))

    [result] = output["results"]  # the only passage that mentions zebras or stripes
    assert result["source"] == "zoo.txt"
    assert result["passage"] == "Zebras graze in the east paddock. Their stripes confuse flies."
    assert result["score"] > 0
    assert output["summary"] == "Zebras graze in the east paddock. Their stripes confuse flies."
    charged = sum(float(f["amount"]) for f in channel.frames() if f["t"] == "charge")
    assert charged == pytest.approx(3 * 0.01)  # three passages; the heading is not one


def test_researcher_returns_no_results_when_nothing_matches(channel: TaskChannel) -> None:
    output = researcher(channel.ctx, ResearcherInput(query="xylophone", top_k=5))

    assert output["results"] == []
    assert output["summary"] == "No passage matches the query."


def test_researcher_refuses_a_query_without_words(channel: TaskChannel) -> None:
    with pytest.raises(ValueError, match="has no word to search for"):
        researcher(channel.ctx, ResearcherInput(query="what is the ?"))


def test_researcher_refuses_a_missing_folder(channel: TaskChannel, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no folder at"):
        researcher(channel.ctx, ResearcherInput(query="x", folder=str(tmp_path / "absent")))


@pytest.mark.parametrize(
    "raw",
    [{}, {"query": ""}, {"query": "   "}, {"query": "q", "top_k": 0}, {"query": "q", "top_k": 21}],
)
def test_researcher_input_is_checked(raw: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ResearcherInput.model_validate(raw)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, ResearcherInput.model_json_schema())


# --- assistant -----------------------------------------------------------------------------
# Its model calls are tested through the gateway, against a fake provider
# (tests/integration/test_model_gateway.py); here, what it does without one, and its tools.
@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {},
            "no model provider is configured for this deployment: start the server with "
            "--llm-provider",
        ),
        ({"THEAZO_MODEL_GATEWAY": "1"}, "has no OpenAI-compatible provider"),
    ],
)
def test_assistant_without_a_provider_says_so(
    channel: TaskChannel, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name in ("THEAZO_MODEL_GATEWAY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AgentFailed) as failed:
        assistant(channel.ctx, AssistantInput(question="What is 6 * 7?"))
    assert failed.value.code == "no_model_provider"
    assert says in failed.value.message


def test_assistant_tools_search_the_notes_and_do_arithmetic_only() -> None:
    assert "[task-queues.md]" in search_notes("how do workers claim jobs")
    assert calculate("6 * (3 + 4) / 2") == 21
    for hostile in ("__import__('os')", "2 ** 10000", "open('x')", "1 +"):
        with pytest.raises(ValueError, match=r"arithmetic|exponent|only numbers"):
            calculate(hostile)
