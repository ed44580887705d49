"""`crossgroup keys`: generate, rotate and show party keys (keys/README.md: the ceremony)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import PassphraseEnvOption, passphrase_from_env

keys_app = typer.Typer(
    name="keys",
    help="Generate, rotate and show party keys. See keys/README.md for the key ceremony.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@keys_app.command("init")
def init(
    dir: Annotated[Path, typer.Option("--dir", help="Key directory to create.")],
    maisons: Annotated[str, typer.Option("--maisons", help="Maison ids, comma-separated.")],
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Generate the matching secret, every party's keys and the public registry.

    Example: crossgroup keys init --dir demo-keys --maisons aurelle,kessler,vautrin
    """
    from crossgroup.crypto.keys import init_keys

    ids = [m.strip() for m in maisons.split(",") if m.strip()]
    registry = init_keys(dir, ids, passphrase=passphrase_from_env(passphrase_env))
    typer.echo(f"Keys for {len(registry.parties)} parties in {dir}")
    typer.echo(f"matching key id: {registry.matching_key_id}")
    for p in registry.parties:
        typer.echo(f"  {p.id:<12} {p.role:<9} {p.signing_key_id}  {p.hpke_key_id}  {p.hpke_kem}")
    typer.echo(f"Public registry: {dir / 'registry.toml'} (also copied into every party directory)")


@keys_app.command("rotate")
def rotate(
    dir: Annotated[Path, typer.Option("--dir", help="Key directory made by `keys init`.")],
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Start a new matching-key epoch; old epochs stay read-only for old packages.

    Example: crossgroup keys rotate --dir demo-keys
    """
    from crossgroup.crypto.keys import rotate_matching_key

    registry = rotate_matching_key(dir, passphrase=passphrase_from_env(passphrase_env))
    typer.echo(
        f"New matching key {registry.matching_key_id} (epoch {registry.matching_epoch}) "
        f"written to {len(registry.maisons())} maison directories; registry updated everywhere"
    )


@keys_app.command("show")
def show(
    keys: Annotated[Path, typer.Option("--keys", help="One party's key directory.")],
) -> None:
    """Show a party's key ids and fingerprints (never any secret byte).

    Example: crossgroup keys show --keys demo-keys/aurelle
    """
    from crossgroup.crypto.keys import describe_party

    info = describe_party(keys)
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        typer.echo(f"{key:<26} {'-' if value is None else value}")
