"""The analyst notebook runs top to bottom against demo output, so it cannot rot."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from demo_support import demo_output

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "segment-analysis.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes_against_demo_output(tmp_path_factory, monkeypatch):
    from nbclient import NotebookClient

    root = demo_output(tmp_path_factory)
    analyst = root / "maisons" / "aurelle" / "analyst"
    monkeypatch.setenv("CROSSGROUP_SEGMENTS_DIR", str(analyst))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    text = "\n".join(
        out.get("text", "") or str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert "segments:" in text and str(analyst) in text
    assert "own sector: Watches & Jewelry" in text
    # every relinked row joins back to the CRM extract it came from
    matched = re.search(r"([\d,]+) of ([\d,]+) rows matched the CRM extract", text)
    assert matched and matched.group(1) == matched.group(2)
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert len(images) >= 2
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
