"""The `crossgroup` command: thin Typer commands, one module per role."""
