"""What an agent receives as ``ctx``: its task's identity and a line back to the server."""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

from theazo.core import defaults
from theazo.sandbox import protocol


class Context:
    """The running task, as its agent sees it.

    Attributes:
        task_id: the task's public id (``task_…``).
        session_id: the session the task runs in (``sess_…``).
        user_id: the end user that session belongs to.
        agent: the agent's registered name.
        attempt: 1 for the first run; higher when the task is re-run after a lost worker.
        metadata: the metadata given at submit.
        workdir: a private directory for this run, deleted when the run ends.
        resources: what the agent's ``setup`` built (``@agent(setup=…)``), or None.
    """

    def __init__(
        self,
        channel: socket.socket,
        *,
        task_id: str,
        session_id: str,
        user_id: str,
        agent: str,
        attempt: int,
        metadata: dict[str, str],
        workdir: Path,
        resources: Any = None,
    ) -> None:
        self._channel = channel
        self.resources = resources
        self.task_id = task_id
        self.session_id = session_id
        self.user_id = user_id
        self.agent = agent
        self.attempt = attempt
        self.metadata = metadata
        self.workdir = workdir
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """True once the task was cancelled or must stop; check it in long loops."""
        return self._cancelled

    def mark_cancelled(self) -> None:
        self._cancelled = True

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report how far the task is, as a fraction in [0, 1], and/or a short message.

        The last report is what ``tasks.get`` shows as ``progress`` and ``message``.
        """
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, int | float):
                raise TypeError("progress must be a number between 0 and 1")
            if not math.isfinite(fraction) or not 0 <= fraction <= 1:
                raise ValueError(f"progress must be between 0 and 1, not {fraction!r}")
            fraction = float(fraction)
        if message is not None:
            message = str(message)[: defaults.MAX_MESSAGE_CHARS]
        if fraction is None and message is None:
            return
        protocol.send_frame(self._channel, {"t": "progress", "p": fraction, "m": message})

    def charge(self, amount: float | int | str, description: str | None = None) -> None:
        """Add ``amount`` (in the currency's minor units, e.g. cents; may be fractional) to
        the task's cost, for example for the model tokens a step used."""
        if isinstance(amount, bool):
            raise TypeError("a charge is a number of minor units")
        value = float(amount)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a charge must be a finite, non-negative amount, not {amount!r}")
        protocol.send_frame(
            self._channel, {"t": "charge", "amount": str(amount), "description": description}
        )

    def __repr__(self) -> str:
        return f"Context(task_id={self.task_id!r}, agent={self.agent!r})"


def context_kwargs(init: dict[str, Any], workdir: Path) -> dict[str, Any]:
    return {
        "task_id": init["task_id"],
        "session_id": init["session_id"],
        "user_id": init["user_id"],
        "agent": init["agent"],
        "attempt": init["attempt"],
        "metadata": init.get("metadata") or {},
        "workdir": workdir,
    }
