"""`crossgroup open`: verify and decrypt one package, e.g. for an auditor."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import ModeOption, PassphraseEnvOption, input_file_option, load_keys


def open_(
    package: Annotated[Path, input_file_option("--package", "package", "The .cgpkg file.")],
    keys: Annotated[Path, typer.Option("--keys", help="The recipient's key directory.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for manifest.json and tables.")],
    mode: ModeOption = 0o600,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Verify a package against the registry, decrypt it, and write its manifest and tables.

    Writes OUT/manifest.json and OUT/<table>.parquet, atomically, readable by their owner
    only unless --mode says otherwise. Does not record the
    package as accepted, so opening it does not consume it, and a package the recipient
    already accepted (processed export, imported return) still opens: it is fully
    authenticated, and a note says it is in the recipient's ledger.

    Example: crossgroup open --package inbox/export-aurelle-to-processor-2026-09.cgpkg
    --keys demo-keys/processor --out audit/aurelle
    """
    from crossgroup.crypto.ledger import accepted_ids
    from crossgroup.crypto.package import open_package
    from crossgroup.io import private_workdir, staged_output

    party = load_keys(keys, passphrase_env)
    with private_workdir(party=party.party_id) as work:
        # Reading without acting: the ledger guards consumers (process, import), not audits.
        opened = open_package(package, party, work, check_replay=False)
        with staged_output(out, mode=mode, party=party.party_id) as staging:
            (staging / "manifest.json").write_text(opened.manifest.to_json(), encoding="utf-8")
            for name, path in opened.tables.items():
                shutil.move(path, staging / f"{name}.parquet")
    m = opened.manifest
    typer.echo(f"Verified {m.kind} package {m.package_id} from {m.sender} to {m.recipient}")
    if m.package_id in accepted_ids(party.directory):
        typer.echo(
            f"Note: {m.package_id} was already accepted by {party.party_id} (in its ledger); "
            "opened for reading only, nothing recorded"
        )
    for name, table in m.tables.items():
        typer.echo(f"  {name}: {table['rows']} rows -> {out / (name + '.parquet')}")
