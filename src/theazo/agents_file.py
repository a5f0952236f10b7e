"""An agents file (``--agents-file agents.toml``): the deployment's command agents, each with
a description and an input schema, which ``GET /v1/agents`` shows and a submit is checked
against (docs/agents.md, "Declaring command agents: agents.toml")::

    [agents.count_node]
    command = "commands/count.mjs"          # relative to this file's folder
    description = "Counts to n, in Node."
    input_schema = { type = "object", properties = { n = { type = "integer", minimum = 0 } } }

    [agents.count_bash]
    command = "commands/count.sh"
    input_schema = "schemas/count.json"     # or a JSON Schema file, relative to this folder

Every mistake is an ``AgentsFileError`` of one line that names the file and the agent.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import jsonschema

from theazo.command_agents import CommandAgent, check_name, executable

_KEYS = {"command", "description", "input_schema", "files"}


class AgentsFileError(ValueError):
    """What is wrong with an agents file, in one line."""


def load_agents_file(path: str | os.PathLike[str]) -> tuple[CommandAgent, ...]:
    """The command agents ``path`` declares, in its order, each checked: an executable, a
    text description, a valid JSON Schema."""
    file = Path(path)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentsFileError(f"cannot read the agents file {file}: {_reason(exc)}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentsFileError(f"{file} is not TOML: {exc}") from None
    unknown = sorted(set(document) - {"agents"})
    if unknown:
        raise AgentsFileError(f"{file}: unknown table {unknown[0]!r}; agents go in [agents.NAME]")
    agents = document.get("agents", {})
    if not isinstance(agents, dict):
        raise AgentsFileError(f"{file}: 'agents' must be a table of [agents.NAME] tables")
    return tuple(_agent(file, name, entry) for name, entry in agents.items())


def _agent(file: Path, name: str, entry: Any) -> CommandAgent:
    where = f"{file}: [agents.{name}]"
    if not isinstance(entry, dict):
        raise AgentsFileError(f"{where} must be a table with a 'command'")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise AgentsFileError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        raise AgentsFileError(f"{where}: 'command' (the executable's path) is missing")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        raise AgentsFileError(f"{where}: 'description' must be a string")
    try:
        check_name(name)
        path = executable(str(file.parent / command), name)
    except ValueError as exc:
        raise AgentsFileError(f"{where}: {exc}") from None
    schema = _schema(file, where, entry.get("input_schema"))
    files = _files(file, where, path, entry.get("files", []))
    return CommandAgent(name, path, description, schema, files)


def _files(file: Path, where: str, command: str, value: Any) -> tuple[str, ...]:
    """Files shown next to the executable (a module it imports, its data), read-only. Each
    must lie in the executable's folder, so that it is found next to it in every tier: at
    /theazo-commands/NAME/ in a sandbox, on the host in the process tier."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AgentsFileError(f"{where}: 'files' must be a list of paths")
    folder = os.path.dirname(command)
    found: dict[str, str] = {os.path.basename(command): command}
    for given in value:
        real = os.path.realpath(file.parent / given)
        if not os.path.isfile(real):
            raise AgentsFileError(f"{where}: {given!r} in 'files' is not a file")
        if os.path.dirname(real) != folder:
            raise AgentsFileError(
                f"{where}: {given!r} in 'files' is not in the folder of its command ({folder})"
            )
        if ":" in real:
            raise AgentsFileError(f"{where}: {real!r}: a shown file's path may not contain ':'")
        found.setdefault(os.path.basename(real), real)
    return tuple(p for p in found.values() if p != command)


def _schema(file: Path, where: str, value: Any) -> dict[str, Any] | None:
    """The input schema: a table in the file, or the path of a JSON file holding it."""
    if value is None:
        return None
    if isinstance(value, str):
        schema_file = file.parent / value
        try:
            value = json.loads(schema_file.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise AgentsFileError(
                f"{where}: cannot read the input schema {schema_file}: {_reason(exc)}"
            ) from None
        except ValueError as exc:
            raise AgentsFileError(f"{where}: {schema_file} is not JSON: {exc}") from None
        where = f"{where}: {schema_file}"
    if not isinstance(value, dict):
        raise AgentsFileError(
            f"{where}: 'input_schema' must be a JSON Schema (a table) or the path of a JSON file"
        )
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.exceptions.SchemaError as exc:
        at = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise AgentsFileError(
            f"{where}: the input schema is not a valid JSON Schema: {exc.message}"
            + (f" (at {at})" if at else "")
        ) from None
    return value


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else "it is not UTF-8 text"
