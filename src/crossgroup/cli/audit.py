"""`crossgroup audit verify`: check a party's hash-chained audit log and say what broke."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import input_file_option
from crossgroup.errors import SecurityError

audit_app = typer.Typer(
    help="Check the hash-chained audit logs every party keeps.\n\n"
    "Example: crossgroup audit verify --log keys/aurelle/audit.jsonl",
    no_args_is_help=True,
)


@audit_app.command("verify")
def verify(
    log: Annotated[Path, input_file_option("--log", "audit log", "The audit log (audit.jsonl).")],
    registry: Annotated[
        Path | None,
        input_file_option(
            "--registry",
            "registry",
            "Public registry: also check the head's signature by the log's party.",
        ),
    ] = None,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="A head digest kept elsewhere (anchors the log)."),
    ] = None,
) -> None:
    """Verify an audit log: exit 0 when intact, 3 naming each edited, deleted, inserted,
    reordered or truncated entry (one line per problem on stderr, a summary first).

    Truncation is caught by the head file beside the log (audit.jsonl.head) or by
    --expect-head; a log rewritten whole, by --registry (the head is signed by the party).

    Example: crossgroup audit verify --log keys/aurelle/audit.jsonl --registry keys/registry.toml
    """
    from crossgroup import audit
    from crossgroup.crypto.keys import load_registry

    reg = load_registry(registry) if registry is not None else None
    problems = audit.verify_log(log, registry=reg, expect_head=expect_head)
    if problems:
        raise SecurityError(
            f"audit log {log} is NOT intact: {len(problems)} problem(s)", details=problems
        )
    checks = ["chain"]
    if audit.head_path(log).is_file():
        checks.append("head" + (" signature" if reg is not None else ""))
    if expect_head is not None:
        checks.append("anchored head")
    entries, head = len(audit.read_entries(log)), audit.head_digest(log)
    typer.echo(f"audit log {log} intact: {entries} entries, head {head} ({', '.join(checks)})")
