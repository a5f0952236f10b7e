"""The runnable examples of docs/agents.md are the files the tests run, word for word."""

from __future__ import annotations

from tests.support.server import REPO

AGENTS_MD = (REPO / "docs" / "agents.md").read_text()


def _block_after(heading: str, first_line: str) -> str:
    section = AGENTS_MD.split(heading, 1)[1]
    return section.split(f"```python\n{first_line}\n", 1)[1].split("```\n", 1)[0]


def test_the_testing_example_is_the_test_that_runs() -> None:
    shown = _block_after("## Testing agents", "# tests/test_greeter.py")
    test_file = REPO / "tests" / "integration" / "test_docs_testing_example.py"
    docstring, body = test_file.read_text().split('"""\n', 1)
    assert shown == body.lstrip("\n"), "docs/agents.md and the test file differ"
    assert "docs/agents.md" in docstring
