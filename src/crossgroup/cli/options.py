"""Options several commands share, declared once so their names and help never drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MaisonConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Maison config (pipelines/maisons/<ID>.toml).")
]
TaxonomyOption = Annotated[
    Path | None, typer.Option("--taxonomy", help="Group taxonomy (pipelines/taxonomy.toml).")
]
FxOption = Annotated[Path | None, typer.Option("--fx", help="EUR rates (pipelines/fx.toml).")]
PipelineOption = Annotated[
    Path | None,
    typer.Option("--pipeline", help="Batch settings (default: pipelines/group.toml)."),
]
