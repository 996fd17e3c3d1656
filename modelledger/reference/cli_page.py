"""The command line's reference: typer's own Markdown for every command and option."""

from __future__ import annotations

import typer
import typer.main
from typer.cli import get_docs_for_click

from modelledger.cli import app
from modelledger.reference.markdown import generated_from

INTRO = """\
`make run` installs `modelledger` into `.venv/bin`: from the clone, run it as
`.venv/bin/modelledger` (or `source .venv/bin/activate` first). `python -m modelledger`
does the same. Every command reads the [settings](settings.md) from the environment.

"""


def render() -> str:
    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="modelledger")
    body = get_docs_for_click(obj=command, ctx=context, name="modelledger")
    body = body.split("\n", 2)[2]  # typer's page starts with its own title: ours comes first
    return (
        generated_from("Command line", "`modelledger/cli.py` (typer)") + INTRO + body.strip() + "\n"
    )
