"""Options several commands share, declared once so their names, help and checks never drift.

Each typed option parses its value while Typer reads the command line, before the command does
any work; a bad value raises InputError, which the app prints as one line with exit code 2.
A file the command reads (`input_file_option`) must already be a readable regular file.
`load_keys` is the one place a command loads a party's private keys.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crossgroup.config import ENGINES, PARTY_ID
from crossgroup.errors import InputError

if TYPE_CHECKING:
    from crossgroup.config import GroupConfig, MaisonConfig, Taxonomy
    from crossgroup.crypto.keys import PartyKeys

# A batch or request id travels in manifests and file names: short, no path separators.
SHORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The dates a date option accepts. Commands count back from their date (the 3-year export
# window, synth's 5-year history, retention periods of up to 100 years) and a day forward, so
# a date outside this range would overflow the calendar mid-command; it is a typo anyway.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)


# -- parse functions: the one check per kind of value, each naming the option it read ----------


def parse_date(value: str | date, option: str) -> date:
    """A YYYY-MM-DD date between EARLIEST_DATE and LATEST_DATE.

    Example: parse_date("2026-09-30", "--as-of")
    """
    if isinstance(value, date):  # a default declared as a date
        return value
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise InputError(
            f"{option} {value} is out of range: dates run from {EARLIEST_DATE} to {LATEST_DATE}"
        )
    return parsed


def parse_party_id(value: str, option: str) -> str:
    """A party id as the registry spells it (config.PARTY_ID). Example: "aurelle"."""
    if not PARTY_ID.match(value):
        raise InputError(
            f"{option} {value!r} is not a party id (2-32 lower-case letters, digits or '-', "
            "starting with a letter)"
        )
    return value


def parse_short_id(value: str, option: str) -> str:
    """A batch or request id: 1-64 letters, digits, '.', '_' or '-'. Example: "2026-09"."""
    if not SHORT_ID.match(value):
        raise InputError(
            f"{option} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def parse_folder(value: str | Path, option: str) -> Path:
    """An existing folder to read from (an inbox, a returns folder)."""
    path = Path(value)
    if not path.is_dir():
        raise InputError(f"{option} {path} is not a folder")
    return path


def parse_input_file(value: str | Path, label: str) -> Path:
    """An existing, readable regular file: a FIFO, device or folder is refused unread.

    Example: parse_input_file("crm/customers.parquet", "customers")
    """
    from crossgroup.io import require_readable_file  # deferred: io imports polars

    return require_readable_file(value, label)


def parse_env_name(value: str, option: str) -> str:
    """The name of a set, non-empty environment variable (its value is read later, never shown)."""
    if not os.environ.get(value):
        raise InputError(f"{option} {value}: that environment variable is not set or empty")
    return value


def parse_engine(value: str, option: str) -> str:
    """An engine the processor's stages run on (config.ENGINES). Example: "spark"."""
    if value not in ENGINES:
        raise InputError(f"{option} {value!r}: expected one of {', '.join(ENGINES)}")
    return value


def parse_mode(value: str | int, option: str) -> int:
    """A file mode in octal (0600, 640) that keeps the owner's read and write and grants no
    execute or write to others: who else may read decrypted files is a deliberate choice."""
    text = f"{value:o}" if isinstance(value, int) else str(value).strip()  # int: the default
    if not re.fullmatch(r"0?[0-7]{3}", text):
        raise InputError(f"{option} {value!r}: expected an octal file mode such as 0600 or 0640")
    mode = int(text, 8)
    if mode & 0o600 != 0o600 or mode & 0o133:
        raise InputError(
            f"{option} {text}: the owner keeps read and write, others may only be given read "
            "(e.g. 0600, 0640, 0644)"
        )
    return mode


def _parser(parse: Callable[[Any, str], Any], option: str) -> Callable[[Any], Any]:
    def parse_option(value: Any) -> Any:
        return parse(value, option)

    return parse_option


# -- option declarations -----------------------------------------------------------------------


def date_option(name: str, help: str) -> Any:
    """A YYYY-MM-DD date option (--as-of, purge --now), parsed by `parse_date`."""
    return typer.Option(name, parser=_parser(parse_date, name), metavar="YYYY-MM-DD", help=help)


def short_id_option(name: str, help: str) -> Any:
    """A batch or request id option, checked by `parse_short_id`."""
    return typer.Option(name, parser=_parser(parse_short_id, name), help=help)


def input_file_option(name: str, label: str, help: str) -> Any:
    """A file the command reads, checked by `parse_input_file` (errors say "{label} file")."""
    return typer.Option(name, parser=_parser(parse_input_file, label), help=help)


def folder_option(name: str, help: str) -> Any:
    """An existing folder the command reads, checked by `parse_folder`."""
    return typer.Option(name, parser=_parser(parse_folder, name), help=help)


AsOfOption = Annotated[date, date_option("--as-of", "As-of date, YYYY-MM-DD.")]
MaisonOption = Annotated[
    str,
    typer.Option(
        "--maison", parser=_parser(parse_party_id, "--maison"), help="Maison id, e.g. aurelle."
    ),
]
MaisonKeysOption = Annotated[Path, typer.Option("--keys", help="The maison's key directory.")]
ProcessorKeysOption = Annotated[Path, typer.Option("--keys", help="The processor's key directory.")]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        parser=_parser(parse_env_name, "--passphrase-env"),
        metavar="VAR",
        help=(
            "Name of an environment variable holding the passphrase (never pass it in argv). "
            "Without this option, a protected key directory is unlocked with the variable "
            "CROSSGROUP_PASSPHRASE."
        ),
    ),
]
MaisonConfigOption = Annotated[
    Path | None,
    input_file_option("--config", "maison config", "Maison config (pipelines/maisons/<ID>.toml)."),
]
TaxonomyOption = Annotated[
    Path | None,
    input_file_option("--taxonomy", "taxonomy", "Group taxonomy (pipelines/taxonomy.toml)."),
]
FxOption = Annotated[
    Path | None, input_file_option("--fx", "fx rates", "EUR rates (pipelines/fx.toml).")
]
ModeOption = Annotated[
    int,
    typer.Option(
        "--mode",
        parser=_parser(parse_mode, "--mode"),
        metavar="OCTAL",
        help=(
            "File mode of the decrypted files written (default 0600: owner only). Give 0640 to "
            "share them with the folder's group; the folder gets the matching mode."
        ),
    ),
]
PipelineOption = Annotated[
    Path | None,
    input_file_option("--pipeline", "pipeline", "Batch settings (default: pipelines/group.toml)."),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        parser=_parser(parse_engine, "--engine"),
        metavar="duckdb|spark",
        # "\\[" is a literal "[" in the rich help, which would read [spark] as markup
        help="duckdb (embedded, the default) or spark (pip install 'crossgroup\\[spark]', "
        "Java 17); overrides the pipeline's \\[engine] kind.",
    ),
]
CustomersOption = Annotated[
    Path, input_file_option("--customers", "customers", "Customers .parquet or .csv.")
]
PurchasesOption = Annotated[
    Path, input_file_option("--purchases", "purchases", "Purchases .parquet or .csv.")
]


# -- the one boundary that loads what a command needs ------------------------------------------


def passphrase_from_env(var: str | None) -> str | None:
    """The passphrase held by environment variable `var`, so it never appears in argv."""
    if var is None:
        return None
    return os.environ.get(parse_env_name(var, "--passphrase-env"))


def load_keys(path: Path, passphrase_env: str | None = None) -> PartyKeys:
    """Load one party's keys for a command: the only place the CLI reads private key files.

    Without `passphrase_env`, a protected directory is unlocked with CROSSGROUP_PASSPHRASE.
    Example: load_keys(Path("keys/aurelle"), "AURELLE_PASSPHRASE")
    """
    from crossgroup.crypto.keys import load_party

    return load_party(path, passphrase=passphrase_from_env(passphrase_env))


def load_pipeline(path: Path | None = None, engine: str | None = None) -> GroupConfig:
    """The batch settings (default pipelines/group.toml), `--engine` over their [engine] kind.

    Example: load_pipeline(Path("pipelines/group.toml"), "spark")
    """
    from crossgroup.config import load_group

    group = load_group(path)
    return group if engine is None else dataclasses.replace(group, engine=engine)


def load_maison_config(
    maison: str, path: Path | None = None, taxonomy: Taxonomy | None = None
) -> MaisonConfig:
    """The maison's config (default pipelines/maisons/<ID>.toml), refused if it is another's."""
    from crossgroup.config import load_maison, maison_config_path

    config = load_maison(path or maison_config_path(maison), taxonomy)
    if config.id != maison:
        raise InputError(f"maison config {path} is for {config.id!r}, not {maison!r}")
    return config
