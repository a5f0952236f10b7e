"""``--agents-file agents.toml``: what it declares, and one clear line for each mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import theazo.agents.examples
from theazo.agents_file import AgentsFileError, load_agents_file
from theazo.command_agents import CommandAgent

EXAMPLES = Path(theazo.agents.examples.__file__).parent / "commands"


def _script(folder: Path, name: str = "agent.sh", mode: int = 0o755) -> Path:
    script = folder / name
    script.write_text("#!/bin/sh\n")
    script.chmod(mode)
    return script


def test_the_shipped_file_declares_both_examples_with_their_schemas() -> None:
    bash, node, helper = load_agents_file(EXAMPLES / "agents.toml")
    assert (bash.name, bash.path) == ("count_bash", str(EXAMPLES / "count.sh"))
    assert bash.description is not None and bash.description.startswith("Counts to n in Bash")
    assert bash.input_schema is not None
    assert bash.input_schema["properties"]["n"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 1000,
    }
    assert (node.name, node.path) == ("count_node", str(EXAMPLES / "count.mjs"))
    assert node.input_schema == json.loads((EXAMPLES / "count.schema.json").read_text())
    assert helper.files == (str(EXAMPLES / "theazo-agent.mjs"),)
    assert helper.input_schema == node.input_schema


def test_paths_are_relative_to_the_files_folder(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script = _script(tmp_path / "bin")
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    file = tmp_path / "agents.toml"
    file.write_text('[agents.mine]\ncommand = "bin/agent.sh"\ninput_schema = "schema.json"\n')
    assert load_agents_file(file) == (CommandAgent("mine", str(script), None, {"type": "object"}),)


def test_an_agent_without_schema_or_description_takes_any_input(tmp_path: Path) -> None:
    _script(tmp_path)
    file = tmp_path / "agents.toml"
    file.write_text('[agents.plain]\ncommand = "agent.sh"\n')
    (plain,) = load_agents_file(file)
    assert (plain.description, plain.input_schema) == (None, None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[agents.x\n", r"agents\.toml is not TOML: Expected '\]' .* \(at line 1, column 10\)"),
        (
            '[agent.x]\ncommand = "agent.sh"\n',
            r"unknown table 'agent'; agents go in \[agents.NAME\]",
        ),
        ('agents = "x"\n', "'agents' must be a table"),
        ("[agents.x]\n", r"\[agents.x\]: 'command' \(the executable's path\) is missing"),
        ('[agents.x]\ncommand = "agent.sh"\nschema = {}\n', r"unknown key 'schema' \(known: "),
        (
            '[agents.x]\ncommand = "nowhere.sh"\n',
            r"'.*nowhere.sh' \(for the agent 'x'\) is not a file",
        ),
        ('[agents.x]\ncommand = "plain.txt"\n', r"is not executable \(chmod \+x\)"),
        ('[agents."my-agent"]\ncommand = "agent.sh"\n', "'my-agent' is not an agent name"),
        ('[agents.x]\ncommand = "agent.sh"\ndescription = 3\n', "'description' must be a string"),
        ('[agents.x]\ncommand = "agent.sh"\ninput_schema = 3\n', "must be a JSON Schema"),
        (
            '[agents.x]\ncommand = "agent.sh"\ninput_schema = { type = "objekt" }\n',
            "the input schema is not a valid JSON Schema: 'objekt' is not valid",
        ),
        (
            '[agents.x]\ncommand = "agent.sh"\ninput_schema = "missing.json"\n',
            r"cannot read the input schema .*missing.json: No such file or directory",
        ),
        (
            '[agents.x]\ncommand = "agent.sh"\ninput_schema = "broken.json"\n',
            r"broken.json is not JSON: Expecting",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    _script(tmp_path)
    _script(tmp_path, "plain.txt", 0o644)
    (tmp_path / "broken.json").write_text("{nope")
    file = tmp_path / "agents.toml"
    file.write_text(text)
    with pytest.raises(AgentsFileError, match=says) as refused:
        load_agents_file(file)
    message = str(refused.value)
    assert "\n" not in message
    assert str(file) in message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(AgentsFileError, match=r"cannot read the agents file .*: No such file"):
        load_agents_file(tmp_path / "agents.toml")


def test_files_are_shown_next_to_their_command(tmp_path: Path) -> None:
    script = _script(tmp_path)
    (tmp_path / "helper.mjs").write_text("export {}\n")
    file = tmp_path / "agents.toml"
    file.write_text('[agents.x]\ncommand = "agent.sh"\nfiles = ["helper.mjs"]\n')
    (declared,) = load_agents_file(file)
    assert declared.files == (str(tmp_path / "helper.mjs"),)
    assert declared.shown_files() == [
        (str(script), "/theazo-commands/x/agent.sh"),
        (str(tmp_path / "helper.mjs"), "/theazo-commands/x/helper.mjs"),
    ]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ('"helper.mjs"', "'files' must be a list of paths"),
        ('["missing.mjs"]', "'missing.mjs' in 'files' is not a file"),
        ('["sub/helper.mjs"]', r"'sub/helper.mjs' in 'files' is not in the folder of its command"),
    ],
)
def test_a_wrong_file_is_refused(tmp_path: Path, files: str, says: str) -> None:
    _script(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "helper.mjs").write_text("export {}\n")
    file = tmp_path / "agents.toml"
    file.write_text(f'[agents.x]\ncommand = "agent.sh"\nfiles = {files}\n')
    with pytest.raises(AgentsFileError, match=says):
        load_agents_file(file)
