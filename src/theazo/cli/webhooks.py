"""``theazo webhooks secret`` and ``theazo webhooks rotate``: the project's signing secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from theazo.cli.client import DEFAULT_BASE_URL, ApiKey, AsJson, BaseUrl, _client

if TYPE_CHECKING:
    from theazo.sdk import WebhookSecret

app = typer.Typer(help="The webhook signing secret of the key's project.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("secret")
def secret(
    as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = DEFAULT_BASE_URL
) -> None:
    """Print the secret (whsec_…) that signs the project's webhooks."""
    with _client(api_key, base_url) as theazo:
        current = theazo.webhooks.secret()
    _show(current, as_json)


@app.command("rotate")
def rotate(
    as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = DEFAULT_BASE_URL
) -> None:
    """Make a new secret and print it; the old one keeps signing until its window ends."""
    with _client(api_key, base_url) as theazo:
        current = theazo.webhooks.rotate()
    _show(current, as_json)


def _show(current: WebhookSecret, as_json: bool) -> None:
    if as_json:
        out.print_json(current.model_dump_json(by_alias=True))
        return
    typer.echo(current.secret)  # alone on stdout, for $(theazo webhooks secret)
    for previous in current.previous:
        err.print(
            f"(the previous secret {previous.secret} also signs until {previous.expires_at})",
            highlight=False,
        )
