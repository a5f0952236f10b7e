"""The example agents served when ``theazo serve`` is given no ``--agents``.

Each is a small, real program and the documentation of how to write an agent:

* ``echo``: returns its input; the smallest possible agent.
* ``data_processor``: per-column statistics of a CSV, reporting progress per chunk.
* ``researcher``: ranks passages of a text corpus (bundled in ``corpus/``) for a query with
  BM25, and charges for the work.
* ``assistant``: answers a question with a model (the ``openai`` SDK, through the model
  gateway), in a few tool-using steps.
"""

from __future__ import annotations

from theazo.agents.examples import assistant, data_processor, echo, researcher

__all__ = ["assistant", "data_processor", "echo", "researcher"]
