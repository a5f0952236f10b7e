"""The ``theazo`` command."""

from __future__ import annotations

import typer

from theazo.cli import client, keys, run, serve, webhooks

app = typer.Typer(
    name="theazo",
    help="Run AI agents as asynchronous, sandboxed tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("run")(run.run)
app.add_typer(keys.app, name="keys")
app.command("submit")(client.submit)
app.add_typer(client.tasks_app, name="tasks")
app.command("agents")(client.agents)
app.add_typer(webhooks.app, name="webhooks")


def main() -> None:
    app()
