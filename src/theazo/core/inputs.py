"""Checking a task's input against its agent's input schema, as a submit does (a 422 before
the task queues) and as a run without a server does (``theazo run``, ``run_agent``)."""

from __future__ import annotations

from typing import Any

import jsonschema

from theazo.core.errors import InvalidField
from theazo.core.models import AgentInfo


class InputChecker:
    """Validators by agent, each built once from the agent's schema."""

    def __init__(self) -> None:
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def check(self, agent: AgentInfo, value: Any) -> None:
        """Raise ``InvalidField`` (code ``invalid_input``) naming the first wrong part."""
        if agent.input_schema is None:
            return
        validator = self._validators.get(agent.name)
        if validator is None:
            cls = jsonschema.validators.validator_for(agent.input_schema)
            validator = cls(agent.input_schema)
            self._validators[agent.name] = validator
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "input" + "".join(f"[{p!r}]" for p in error.absolute_path)
            raise InvalidField(
                where,
                f"{where} does not fit agent {agent.name!r}: {error.message}",
                code="invalid_input",
            )
