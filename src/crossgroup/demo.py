"""`crossgroup demo`: the whole product on synthetic data, every party in its own folder.

The demo calls the same library functions as the commands (no subprocesses), and moves
packages between parties' folders the way files would travel between companies:

    OUT/keys/                      registry.toml, processor/, <maison>/ (generated, private)
    OUT/maisons/<id>/              customers.parquet, purchases.parquet, maison.toml (synth)
                     outbox/       the sealed export package
                     inbox/        the return package received from the group
                     analyst/      segments.parquet, segments.csv, report.html (import)
    OUT/group/inbox/               export packages received from the maisons
             returns/ reports/ audit.jsonl   (process)
    OUT/truth.parquet              synthetic ground truth (no party has it in real life)

Re-running into the same folder starts clean: the demo removes what it created before (it
leaves a marker file) and refuses a non-empty folder it did not create.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossgroup.errors import InputError

if TYPE_CHECKING:
    from crossgroup.config import GroupConfig

MARKER = ".crossgroup-demo"
CREATED = ("keys", "maisons", "group", "truth.parquet", "demo-summary.json", MARKER)
DEFAULT_PERSONS = 50_000
MAX_MONTHS = 36  # the export window


@dataclass
class MaisonOutcome:
    """One maison's trip through the demo: counts and where its analyst files are."""

    maison: str
    name: str
    customers: int = 0
    exported: int = 0
    returned: int = 0
    relinked: int = 0
    dropped: int = 0
    segments: int = 0
    report: str = ""


@dataclass
class BatchOutcome:
    """One monthly batch of a demo series: what the processor did with the segment model."""

    batch_id: str
    as_of: str
    model: str = ""  # "reused" or "refitted: <why>"
    returned: int = 0


@dataclass
class DemoResult:
    out_dir: str
    persons: int
    seed: int
    as_of: str
    maisons: list[MaisonOutcome] = field(default_factory=list)  # the last batch's
    batches: list[BatchOutcome] = field(default_factory=list)
    persons_resolved: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    group_reports: list[str] = field(default_factory=list)
    audit_log: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def prepare_out_dir(out_dir: Path) -> None:
    """Start clean: remove what an earlier demo created; refuse a folder holding anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise InputError(
                f"--out {out_dir} is not empty and was not created by crossgroup demo; "
                "choose an empty or new folder"
            )
        for name in CREATED:
            target = out_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(
        "Created by `crossgroup demo`; the next demo run into this folder replaces it.\n"
    )


class _Steps:
    """Progress reporting: a rich progress bar in the CLI, silence in library use and tests."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.timings: dict[str, float] = {}
        self._progress = None
        self._task = None

    def __enter__(self) -> _Steps:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("[dim]{task.fields[detail]}"),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("demo", total=self.total, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def step(self, label: str, timing_key: str | None = None) -> Iterator[Callable[[str], None]]:
        """One unit of the bar; yields a callback for finer-grained detail lines."""
        start = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._task, description=label, detail="")

        def detail(line: str) -> None:
            if self._progress is not None:
                self._progress.update(self._task, detail=line[:60])

        yield detail
        key = timing_key or label
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
        if self._progress is not None:
            self._progress.advance(self._task)


def month_ends(last: date, months: int) -> list[date]:
    """The `months` month ends up to the one of `last`'s month, oldest first."""
    ends = []
    year, month = last.year, last.month
    for _ in range(months):
        following = date(year + month // 12, month % 12 + 1, 1)
        ends.append(following - timedelta(days=1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return ends[::-1]


def run_demo(
    out_dir: Path | str,
    *,
    persons: int = DEFAULT_PERSONS,
    seed: int | None = None,
    as_of: date | None = None,
    months: int = 1,
    group: GroupConfig | None = None,
    progress: bool = False,
) -> DemoResult:
    """Keys, synth, then per monthly batch: export every maison, process, import every
    maison; return the outcome. With `months` > 1, one world is exported at each of the last
    `months` month ends up to `as_of`, the processor keeps its segment model from batch to
    batch, and each maison's analyst files of a month go to analyst/<batch>/, compared with
    the month before. `group`: the processor's settings (default: pipelines/group.toml).

    Example: run_demo(Path("demo-output"), persons=3000, months=2)
    """
    from crossgroup.config import demo_maisons, load_fx, load_group, load_maison, load_taxonomy
    from crossgroup.crypto.keys import init_keys

    if persons < 100:
        raise InputError("--persons must be at least 100")
    if not 1 <= months <= MAX_MONTHS:
        raise InputError(f"--months must be from 1 to {MAX_MONTHS}")
    from crossgroup.synth import world

    out_dir = Path(out_dir)
    as_of = as_of or world.DEFAULT_AS_OF
    seed = world.DEFAULT_SEED if seed is None else seed
    prepare_out_dir(out_dir)
    group = group or load_group()
    taxonomy, fx = load_taxonomy(), load_fx()
    configs = demo_maisons(taxonomy)
    maison_ids = [c.id for c in configs]
    keys_dir, maisons_dir = out_dir / "keys", out_dir / "maisons"
    result = DemoResult(str(out_dir), persons, seed, as_of.isoformat())
    batches = month_ends(as_of, months)

    with _Steps(total=2 + months * (1 + 2 * len(maison_ids)), enabled=progress) as steps:
        with steps.step("Generating keys", "keys"):
            init_keys(keys_dir, maison_ids)
        with steps.step("Synthesizing maisons", "synth") as detail:
            synth_counts = _synthesize(
                maisons_dir, out_dir, configs, persons, seed, as_of, taxonomy, fx, detail
            )
        configs = {m: load_maison(maisons_dir / m / "maison.toml", taxonomy) for m in maison_ids}
        previous: str | None = None
        for batch_as_of in batches:
            batch_id = batch_as_of.strftime("%Y-%m")
            analyst = "analyst" if months == 1 else f"analyst/{batch_id}"
            outcomes = {
                m: MaisonOutcome(m, configs[m].name, customers=synth_counts.get(m, 0))
                for m in maison_ids
            }
            batch, processed = _run_batch(
                out_dir, outcomes, configs, steps, group=group, taxonomy=taxonomy, fx=fx,
                as_of=batch_as_of, batch_id=batch_id, analyst=analyst, previous=previous,
            )  # fmt: skip
            result.batches.append(batch)
            previous = analyst
        result.persons_resolved = _persons(processed.counts)
        result.group_reports = [str(p) for p in processed.reports]
        result.audit_log = str(processed.audit_log)
        result.maisons = [outcomes[m] for m in maison_ids]
    result.timings = {k: round(v, 2) for k, v in steps.timings.items()}
    (out_dir / "demo-summary.json").write_text(result.to_json() + "\n")
    return result


def _run_batch(
    out_dir: Path, outcomes: dict[str, MaisonOutcome], configs: dict, steps: _Steps, *,
    group, taxonomy, fx, as_of: date, batch_id: str, analyst: str, previous: str | None,
) -> tuple[BatchOutcome, Any]:  # fmt: skip
    """One monthly batch: every maison exports at `as_of`, the group processes, every maison
    imports into its `analyst` folder (beside the `previous` month's, when there is one,
    whose segments file the import compares with: what changed since last month)."""
    from crossgroup import audit
    from crossgroup.crypto.keys import load_party
    from crossgroup.group.pipeline import process_batch
    from crossgroup.maison.export import export_maison
    from crossgroup.maison.import_ import import_return

    keys_dir, maisons_dir, group_dir = out_dir / "keys", out_dir / "maisons", out_dir / "group"
    for maison, outcome in outcomes.items():
        folder = maisons_dir / maison
        with steps.step(f"Exporting {maison} ({batch_id})", "export") as detail:
            exported = export_maison(
                folder / "customers.parquet",
                folder / "purchases.parquet",
                as_of=as_of,
                keys=load_party(keys_dir / maison),
                config=configs[maison],
                taxonomy=taxonomy,
                fx=fx,
                out_dir=folder / "outbox",
                batch_id=batch_id,
                progress=detail,
            )
        outcome.exported = int(exported.summary["customers"]["exported"])
        _deliver(exported.package_path, group_dir / "inbox")

    with steps.step(f"Processing batch {batch_id}", "process") as detail:
        processed = process_batch(
            group_dir / "inbox",
            load_party(keys_dir / "processor"),
            group_dir,
            group=group,
            taxonomy=taxonomy,
            progress=detail,
        )
    model = audit.read_entries(processed.audit_log)[-1]["settings"]["segment_model"]
    batch = BatchOutcome(
        batch_id, as_of.isoformat(), "reused" if model["reused"] else f"refitted: {model['reason']}"
    )
    for maison, outcome in outcomes.items():
        folder = maisons_dir / maison
        with steps.step(f"Importing {maison} ({batch_id})", "import"):
            if maison not in processed.returns:
                continue  # a maison with no consenting customer gets no return
            package = _deliver(processed.returns[maison], folder / "inbox")
            before = folder / previous / "segments.parquet" if previous else None
            imported = import_return(
                maison_id=maison,
                package=package,
                customers=folder / "customers.parquet",
                keys=load_party(keys_dir / maison),
                out_dir=folder / analyst,
                write_csv=True,
                # a maison with no return last month has nothing to compare with
                previous=before if before is not None and before.is_file() else None,
            )
        outcome.returned, outcome.relinked = imported.returned, imported.relinked
        outcome.dropped, outcome.segments = imported.dropped, imported.segments
        outcome.report = str(imported.report_path)
        batch.returned += imported.returned
    return batch, processed


def _deliver(package: Path, inbox: Path) -> Path:
    """Hand a package to another party: a copy lands in its inbox (as a file transfer would)."""
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / Path(package).name
    shutil.copy2(package, target)
    return target


def _persons(counts: dict) -> int | None:
    for key in ("persons", "persons_resolved"):
        value = counts.get(key)
        if isinstance(value, int):
            return value
    return None


def _synthesize(
    maisons_dir: Path, out_dir: Path, configs: list, persons: int, seed: int, as_of: date,
    taxonomy, fx, detail: Callable[[str], None],
) -> dict[str, int]:  # fmt: skip
    """Each maison's CRM and sales extracts in its own folder; the truth stays outside them."""
    from crossgroup.synth.writer import write_world

    summary = write_world(
        maisons_dir, configs, persons=persons, seed=seed, as_of=as_of, taxonomy=taxonomy, fx=fx,
        on_chunk=lambda done, total, s: detail(f"chunk {done}/{total}, {s.customers:,} customers"),
    )  # fmt: skip
    (maisons_dir / "truth.parquet").replace(out_dir / "truth.parquet")
    return {maison: counts.customers for maison, counts in summary.maisons.items()}


def print_summary(result: DemoResult) -> None:
    """The final table: per maison what went out, what came back, and where the report is."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Path(result.out_dir)
    table = Table(title=f"crossgroup demo: {result.persons:,} persons, as of {result.as_of}")
    table.add_column("Maison", no_wrap=True)
    for column in ("Customers", "Exported", "Returned", "Relinked", "Segments"):
        table.add_column(column, justify="right", no_wrap=True)
    for m in result.maisons:
        table.add_row(
            escape(m.name), f"{m.customers:,}", f"{m.exported:,}", f"{m.returned:,}",
            f"{m.relinked:,}", str(m.segments),
        )  # fmt: skip
    console = Console()
    console.print(table)
    if result.persons_resolved is not None:
        console.print(f"Persons resolved across maisons: {result.persons_resolved:,}")
    if len(result.batches) > 1:
        for b in result.batches:
            console.print(
                f"Batch {b.batch_id}: {b.returned:,} rows returned, model {escape(b.model)}"
            )
    console.print(f"Folder: {escape(str(out))}/  (keys/, maisons/<id>/, group/)")
    reports = [_relative(m.report, out) for m in result.maisons if m.report]
    if reports:
        console.print(f"Analyst reports: {escape(reports[0])} (one per maison, same place)")
    missing = [m.maison for m in result.maisons if not m.report]
    if missing:
        console.print(f"No return for: {escape(', '.join(missing))}")
    html_reports = [r for r in result.group_reports if r.endswith(".html")]
    for report in html_reports:
        console.print(f"Group report: {escape(_relative(report, out))}")
    console.print(f"Audit log: {escape(_relative(result.audit_log, out))}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    console.print(f"Timings: {timing} (total {sum(result.timings.values()):.1f} s)")


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path
