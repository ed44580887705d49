"""Retention on the processor: what it keeps after a run, for how long, and `purge`.

Settings are whole days in `[retention]` of the pipeline file (docs/erasure-and-retention.md):
`input_packages_days` (0 or absent: inputs are deleted after a successful run),
`returns_days` (returns and reports), `suppression_ledger_days` and `replay_ledger_days`
(absent: kept for ever). Dropping a replay-ledger entry must never make its package
replayable: `check_package_age` refuses a package created `replay_ledger_days` or more ago,
and `replay_entry_expiry` keeps each entry until that refusal holds whatever the clocks did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from crossgroup import audit, jsonl
from crossgroup.config import GroupConfig
from crossgroup.crypto.keys import PartyKeys, require_processor_keys
from crossgroup.crypto.ledger import LEDGER
from crossgroup.errors import InputError, SecurityError
from crossgroup.group.erasure import SUPPRESSION_LEDGER

RETAINED = "retained"
CLOCK_SKEW = dt.timedelta(days=1)


def utc_now(now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def retention_days(group: GroupConfig, key: str) -> int | None:
    """A `[retention]` setting in days, or None when the pipeline sets none."""
    value = group.retention.get(key)
    return None if value is None else int(value)


def check_package_age(manifest, group: GroupConfig, *, now: dt.datetime | None = None) -> None:
    """Refuse a package from the future or older than the replay ledger's window.

    A package passes while created_at - CLOCK_SKEW <= now < created_at + replay_ledger_days;
    the ledger keeps its id at least that long (`replay_entry_expiry`), so it can never come
    back as new.
    """
    now = utc_now(now)
    created = manifest.created_at
    if created > now + CLOCK_SKEW:
        raise SecurityError(f"package created in the future ({created.date()}): refused")
    window = retention_days(group, "replay_ledger_days")
    if window is not None and now - created >= dt.timedelta(days=window):
        raise SecurityError(
            f"package created {created.date()} is older than the replay ledger's {window}-day "
            "window: it can no longer be told apart from a replay"
        )


def replay_entry_expiry(entry: dict, max_age: dt.timedelta) -> dt.datetime:
    """When `purge` may drop a replay-ledger entry: the one statement of the replay window.

    `check_package_age` accepts a package while now < created_at + max_age (max_age is
    `replay_ledger_days`), and accepted it at some accepted_at >= created_at - CLOCK_SKEW. The
    entry is kept until max(accepted_at, created_at) + max_age + CLOCK_SKEW: past the last
    moment the age check could pass, with a skew to spare for a clock set back. A line written
    before ledgers recorded created_at is kept until accepted_at + max_age + 2 * CLOCK_SKEW,
    the latest its package's created_at (<= accepted_at + CLOCK_SKEW) allows.
    """
    accepted = dt.datetime.fromisoformat(entry["accepted_at"])
    if "created_at" not in entry:
        return accepted + max_age + 2 * CLOCK_SKEW
    return max(accepted, dt.datetime.fromisoformat(entry["created_at"])) + max_age + CLOCK_SKEW


# ---------------------------------------------------------------- inputs after a run


def retained_packages(out_dir: Path) -> list[Path]:
    """Input packages kept under retention: DIR/retained/<accept date>/<package file>."""
    return sorted((Path(out_dir) / RETAINED).glob("*/*.cgpkg"))


def plan_dispositions(
    packages, group: GroupConfig, now: dt.datetime, suppressed: dict[str, int]
) -> dict[str, str]:
    """Per inbox file: 'deleted', or where it is retained. A package that carried an
    erased record is never retained: the processor cannot re-sign it as its sender."""
    days = retention_days(group, "input_packages_days") or 0
    plan = {}
    for package in packages:
        keep = days > 0 and not suppressed.get(package.maison)
        name = package.path.name
        plan[name] = f"{RETAINED}/{utc_now(now).date().isoformat()}/{name}" if keep else "deleted"
    return plan


def dispose_inputs(tx, packages, out_dir: Path, plan: dict[str, str]) -> None:
    """Add `plan` to the run's commit: inputs go when its outputs and ledger lines land."""
    for package in packages:
        where = plan.get(package.path.name, "deleted")
        if where == "deleted":
            tx.remove(package.path)
        else:
            tx.move(package.path, Path(out_dir) / where)  # folders created 0700


# ---------------------------------------------------------------- purge


@dataclass
class PurgeResult:
    """What `purge` removed: one row per file and per ledger, digests and counts only."""

    deleted: list[dict] = field(default_factory=list)
    ledgers: dict[str, dict] = field(default_factory=dict)
    audit_head: str = audit.GENESIS


def output_times(log: Path) -> dict[str, dt.datetime]:
    """When each output file was last written, from the audit log's process entries."""
    times: dict[str, dt.datetime] = {}
    for entry in audit.read_entries(log):
        when = dt.datetime.fromisoformat(entry.get("time", "1970-01-01T00:00:00+00:00"))
        for output in entry.get("outputs", []):
            if isinstance(output, dict) and "action" not in output and "file" in output:
                times[str(output["file"])] = when
    return times


def _written(path: Path, rel: str, times: dict[str, dt.datetime]) -> dt.datetime:
    if rel in times:
        return times[rel]
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def _retained_date(path: Path) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(path.parent.name)
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    except ValueError:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def expired_files(out_dir: Path, group: GroupConfig, now: dt.datetime) -> list[tuple]:
    """(path, what, age in days, period) of every output past its retention period."""
    out_dir = Path(out_dir)
    times = output_times(out_dir / "audit.jsonl")
    found = []
    returns_days = retention_days(group, "returns_days")
    if returns_days is not None:
        for what, pattern in (("return", "returns/*/*.cgpkg"), ("report", "reports/*")):
            for path in sorted(out_dir.glob(pattern)):
                if path.is_file():
                    written = _written(path, str(path.relative_to(out_dir)), times)
                    found.append((path, what, now - written, returns_days))
    input_days = retention_days(group, "input_packages_days") or 0
    for path in retained_packages(out_dir):
        found.append((path, "retained input", now - _retained_date(path), input_days))
    return [
        (path, what, age.days, days)
        for path, what, age, days in found
        if age >= dt.timedelta(days=days)
    ]


def _log_purge(tx, out_dir: Path, keys, counts: dict, outputs: list[dict], now) -> dict:
    """One `purge` entry in DIR/audit.jsonl, its head signed by the processor."""
    return tx.audit(
        Path(out_dir) / "audit.jsonl",
        party=keys.party_id,
        command="purge",
        counts=counts,
        outputs=outputs,
        signer=keys.signing_key,
        now=now,
    )


def _purge_ledger(tx, path: Path, keep, what: str, days: int) -> dict:
    """Stage the ledger without its expired lines; figures for the audit entry."""
    dropped, kept = jsonl.kept_lines(path, keep, what)
    staged = tx.put(path, "".join(line + "\n" for line in kept).encode()) if dropped else path
    return {"dropped": dropped, "kept": len(kept), "days": days,
            "sha256": audit.file_digest(staged) if staged.exists() else None}  # fmt: skip


def purge_ledgers(tx, party_dir: Path, group: GroupConfig, now: dt.datetime) -> dict[str, dict]:
    """Drop suppression and replay ledger entries past their periods (absent: keep)."""
    result = {}
    days = retention_days(group, "suppression_ledger_days")
    if days is not None:
        cutoff = now.date() - dt.timedelta(days=days)
        result[SUPPRESSION_LEDGER] = _purge_ledger(
            tx, Path(party_dir) / SUPPRESSION_LEDGER,
            lambda e: dt.date.fromisoformat(e["added"]) > cutoff, "suppression ledger", days,
        )  # fmt: skip
    days = retention_days(group, "replay_ledger_days")
    if days is not None:
        max_age = dt.timedelta(days=days)
        result[LEDGER] = _purge_ledger(
            tx, Path(party_dir) / LEDGER,
            lambda e: now < replay_entry_expiry(e, max_age), "replay ledger", days,
        )  # fmt: skip
    return result


def purge(
    out_dir: Path, keys: PartyKeys, group: GroupConfig, *, now: dt.datetime | None = None
) -> PurgeResult:
    """Remove every output, retained input and ledger entry past its retention period.

    Each deletion is its own audit entry in DIR/audit.jsonl (file digest, age, period); all
    of them and the deletions are one commit, under the processor's lock.
    Example: purge(Path("processed"), load_party(Path("keys/processor")), load_group())
    """
    from crossgroup.commit import party_session, transaction

    out_dir, now = Path(out_dir), utc_now(now)
    if not out_dir.is_dir():
        raise InputError(f"output folder not found: {out_dir}")
    require_processor_keys(keys, keys.directory)
    result = PurgeResult()
    with (
        party_session(keys.directory, party=keys.party_id, command="purge"),
        transaction(keys.directory) as tx,
    ):
        audit.require_intact(out_dir / "audit.jsonl")  # before anything is deleted
        for path, what, age, days in expired_files(out_dir, group, now):
            row = {"file": str(path.relative_to(out_dir)), "sha256": audit.file_digest(path),
                   "action": "deleted"}  # fmt: skip
            tx.remove(path)
            _log_purge(tx, out_dir, keys, {"removed": what, "age_days": age,
                       "retention_days": days}, [row], now)  # fmt: skip
            result.deleted.append({**row, "what": what, "age_days": age})
        result.ledgers = purge_ledgers(tx, keys.directory, group, now)
        for name, figures in result.ledgers.items():
            if figures["dropped"]:
                _log_purge(tx, out_dir, keys,
                           {"ledger": name, "entries_dropped": figures["dropped"],
                            "entries_kept": figures["kept"], "retention_days": figures["days"]},
                           [{"file": name, "sha256": figures.pop("sha256")}], now)  # fmt: skip
            figures.pop("sha256", None)
    for folder in sorted((out_dir / RETAINED).glob("*")):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    result.audit_head = audit.head_digest(out_dir / "audit.jsonl")
    return result
