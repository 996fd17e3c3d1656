"""`modelledger keys`: issue, list and revoke API keys from the command line, and
the admin key `serve` issues when a store has never had one.

The CLI acts with the access of whoever can open the store, so its events name
the operating system user as the actor.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from eventsourcing.utils import get_topic

from adapters.file_modes import owner_only_file
from commands.errors import CommandError
from commands.keys import IssueKey, RevokeKey, issue_key, revoke_key
from commands.ports import StoreUnavailable
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from modelledger.cli_support import fail, open_ledger
from modelledger.settings import Settings
from queries.keys import keys_from_log
from write_model.access import Role
from write_model.api_key import ApiKey
from write_model.errors import DomainError

keys = typer.Typer(help="Issue, list and revoke API keys.")

ADMIN_KEY_FILE = "admin.key"


def cli_context() -> CommandContext:
    return CommandContext(actor=f"cli:{getpass.getuser()}")


@keys.command("create")
def create(
    name: Annotated[str, typer.Option(help="who holds the key (the actor on its events)")],
    role: Annotated[Role, typer.Option(help="viewer, editor or admin")],
    project: Annotated[
        list[str] | None, typer.Option(help="a project the key may see (repeat); default: all")
    ] = None,
) -> None:
    """Issue a key and print it once: it is not stored and cannot be shown again."""
    ledger = open_ledger(must_exist=False)
    try:
        command = IssueKey(name=name, role=role, projects=project or None)
        issued = issue_key(ledger.registry, command, cli_context())
    except (DomainError, CommandError, StoreUnavailable, ValueError) as error:
        fail(str(error))
    finally:
        ledger.close()
    typer.echo(
        f"issued key {issued.key.id} ({name}, {role.value}); it is shown only now:", err=True
    )
    typer.echo(issued.text)


@keys.command("list")
def list_(
    include_revoked: Annotated[bool, typer.Option("--all", help="revoked keys too")] = False,
) -> None:
    """Every active key: id, name, role, projects (never the key itself)."""
    ledger = open_ledger(must_exist=True)
    try:
        rows = [row for row in keys_from_log(ledger.event_log) if include_revoked or row["active"]]
    finally:
        ledger.close()
    for row in rows:
        projects = ",".join(row["projects"]) if row["projects"] else "*"
        state = "active" if row["active"] else f"revoked {row['revoked_at']}"
        typer.echo(f"{row['id']}  {row['name']}  {row['role']}  {projects}  {state}")


@keys.command("revoke")
def revoke(key_id: Annotated[UUID, typer.Argument(help="the key's id (keys list)")]) -> None:
    """Revoke a key: it stops working at once."""
    ledger = open_ledger(must_exist=True)
    try:
        revoke_key(ledger.registry, RevokeKey(key_id=key_id), cli_context())
    except (DomainError, CommandError, StoreUnavailable) as error:
        fail(error.detail)
    finally:
        ledger.close()
    typer.echo(f"revoked key {key_id}")


def ensure_admin_key(ledger: Ledger, settings: Settings) -> Path | None:
    """With auth on, no MODELLEDGER_ADMIN_KEY and no key ever issued, issue an admin
    key, print it once and keep it in DATA_DIR (mode 0600); the file's path, or None."""
    path = settings.data_dir / ADMIN_KEY_FILE
    if path.exists():
        owner_only_file(path)  # an earlier run's, perhaps with looser rights
    if not settings.auth or settings.admin_key is not None or _any_key_issued(ledger):
        return None
    issued = issue_key(
        ledger.registry, IssueKey(name="admin", role=Role.ADMIN), CommandContext(actor="serve")
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(issued.text + "\n")
    os.chmod(path, 0o600)  # also when the file was there already, with looser rights
    typer.echo(
        f"\nNo API key existed, so an admin key was issued (shown only now; also in {path}):\n"
        f"    {issued.text}\n"
        "Use it as 'Authorization: Bearer <key>'; issue personal keys with "
        "POST /api/v1/admin/keys or `modelledger keys create`.\n",
        err=True,
    )
    return path


def _any_key_issued(ledger: Ledger) -> bool:
    found = ledger.event_log.page(0, 1, topics=[get_topic(ApiKey.KeyIssued)])
    return bool(found)
