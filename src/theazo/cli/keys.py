"""``theazo keys …``: API keys, made and stored (as hashes) straight in the database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from theazo.cli.serve import Database
from theazo.config import DEFAULT_DATABASE
from theazo.core import ids
from theazo.store import StoreSettings, UnsupportedDatabase, create_store

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
err = Console(stderr=True)


@app.command("create")
def create(
    database: Database = DEFAULT_DATABASE,
    project: Annotated[
        str | None,
        typer.Option(help="Add the key to this project (proj_…); a new project otherwise."),
    ] = None,
    test: Annotated[bool, typer.Option("--test", help="Make a th_test_ key.")] = False,
) -> None:
    """Create an API key and print it. It is shown only this once; only its hash is kept."""
    try:
        key, project_id = asyncio.run(_create(database, project, live=not test))
    except (UnsupportedDatabase, LookupError) as exc:
        err.print(f"[red]theazo: {exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(key)
    err.print(f"(project {project_id}; this key is not shown again)", highlight=False)


async def _create(database: str, project: str | None, *, live: bool) -> tuple[str, str]:
    store = create_store(database, StoreSettings())
    await store.open()
    try:
        if project is None:
            project = await store.create_project()
        elif not await store.project_exists(project):
            raise LookupError(f"no project {project!r} in this database")
        key = ids.new_api_key(live=live)
        await store.add_api_key(project, ids.hash_api_key(key), ids.key_hint(key))
        return key, project
    finally:
        await store.close()
