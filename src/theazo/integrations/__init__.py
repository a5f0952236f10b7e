"""Agents written with an agent framework, served as Theazo agents in a line or two.

One module per framework, each needing its optional extra (``pip install 'theazo[NAME]'``):

* ``theazo.integrations.pydantic_ai``: a Pydantic AI ``Agent`` (extra ``pydantic-ai``);
* ``theazo.integrations.openai_agents``: an OpenAI Agents SDK ``Agent`` (extra
  ``openai-agents``);
* ``theazo.integrations.langgraph``: a compiled LangGraph graph (extra ``langgraph``).

Each has a ``serve(...)`` that registers the framework's agent under a name, as ``@agent``
registers a function: call it in a module given to ``theazo serve --agents``. The task's
input becomes the run's input, the framework's events become progress messages and log
lines, its final output the task's output, its token usage charges, and a cancel stops the
run. docs/agents.md shows each with a complete example.
"""
