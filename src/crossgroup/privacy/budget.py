"""The privacy-budget ledger: the epsilon each DP release spent, per recipient (DESIGN §5.10).

`KEYDIR/processor/privacy-budget.jsonl` (mode 0600, crossgroup.jsonl), one line per recipient
of a release in DP mode: the batch, its as-of date, the recipient (a maison, or `group` for
the processor's own reports), the mechanism, epsilon, delta and noise scale; no count about
anyone. Lines are staged in the batch's transaction, so a release is recorded if and only if
it is committed.

The budget is rolling: a release is refused (exit 3) when, for any recipient, its epsilon plus
the epsilon of every recorded release whose as-of date is less than a year from its own (on
either side, so a batch processed late cannot slip under) or that was recorded less than a
year ago would exceed `epsilon_budget_per_year`. Any 365 days of as-of dates, and any 365
days of processing, thus hold at most the budget. An exact (threshold-mode) release within
that window of a DP one is refused too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from crossgroup import jsonl
from crossgroup.errors import PrivacyCheckError

LEDGER = "privacy-budget.jsonl"
WHAT = "privacy-budget ledger"
GROUP = "group"  # the recipient of the processor's reports (reports/, group_report.html)
WINDOW = dt.timedelta(days=365)


def ledger_path(party_dir: Path) -> Path:
    return Path(party_dir) / LEDGER


def _entry(record: dict) -> tuple[str, dt.date, float]:
    return (
        str(record["recipient"]),
        dt.date.fromisoformat(record["as_of"]),
        float(record["epsilon"]),
    )


def _in_window(record: dict, as_of: dt.date, now: dt.datetime | None) -> bool:
    """Whether a recorded release counts against one of `as_of`: its as-of date is less than a
    year from this one's, or it was recorded less than a year before `now` (so an as-of date
    set far from the others cannot slip a release past the budget)."""
    near = abs(dt.date.fromisoformat(record["as_of"]) - as_of) < WINDOW
    recent = now is not None and now - dt.datetime.fromisoformat(record["recorded_at"]) < WINDOW
    return near or recent


def spent(
    party_dir: Path,
    recipients: Iterable[str],
    as_of: dt.date,
    now: dt.datetime | None = None,
    *,
    audited: Sequence[Mapping] = (),
) -> dict[str, float]:
    """Epsilon each recipient has already spent within the window of a release as of `as_of`
    made at `now` (`_in_window`); an unreadable ledger is a refusal, never an empty one.
    `audited`: the entries of the processor's audit log (hash-chained and signed), whose
    recorded spend counts too, recipient by recipient whichever is more: a deleted or edited
    ledger cannot free budget."""
    entries = jsonl.read(ledger_path(party_dir), WHAT, lambda r: (_entry(r), r))
    totals = dict.fromkeys(recipients, 0.0)
    for (recipient, _, epsilon), record in entries:
        if recipient in totals and _in_window(record, as_of, now):
            totals[recipient] += epsilon
    for recipient, epsilon in _audited(audited, totals, as_of, now).items():
        totals[recipient] = max(totals[recipient], epsilon)
    return totals


def _audited(entries, recipients, as_of: dt.date, now: dt.datetime | None) -> dict[str, float]:
    """The spend per recipient the audit log's process entries record within the window."""
    totals = dict.fromkeys(recipients, 0.0)
    for entry in entries:
        settings = entry.get("settings") or {}
        recorded = settings.get("privacy_budget")
        if entry.get("command") != "process" or not recorded:
            continue
        record = {"as_of": settings["as_of"], "recorded_at": entry["time"]}
        if _in_window(record, as_of, now):
            for recipient, epsilon in recorded["spent"].items():
                if recipient in totals:
                    totals[recipient] += float(epsilon)
    return totals


def refuse_release(
    party_dir: Path, batch, group, now: dt.datetime, audited: Sequence[Mapping] = ()
) -> dict[str, float]:
    """Refuse (PrivacyCheckError, exit 3) before anything is decrypted, under the processor's
    lock: in DP mode, a release over the budget (`refuse_over_budget`); in threshold mode, an
    exact release within the window of a DP one, which would undo what its noise protects.
    `audited`: the processor's audit entries, whose recorded spend counts too (`spent`).
    Returns what each recipient has spent within the window so far."""
    recipients = [*batch.maisons, GROUP]
    if group.group_figures == "dp":
        return refuse_over_budget(
            party_dir, recipients, batch.as_of, epsilon=group.epsilon_per_release,
            budget=group.epsilon_budget_per_year, now=now, audited=audited,
        )  # fmt: skip
    so_far = spent(party_dir, recipients, batch.as_of, now, audited=audited)
    if any(so_far.values()):
        raise PrivacyCheckError(
            "privacy budget: releases within a year of this one were made with differential "
            "privacy, and an exact release now would undo what their noise protects; nothing "
            'was written. Keep [privacy] group_figures = "dp" until a year has passed'
        )
    return so_far


def refuse_over_budget(
    party_dir: Path,
    recipients: Iterable[str],
    as_of: dt.date,
    *,
    epsilon: float,
    budget: float,
    now: dt.datetime | None = None,
    audited: Sequence[Mapping] = (),
) -> dict[str, float]:
    """Refuse (PrivacyCheckError, exit 3) a release of `epsilon` that would take a recipient
    over `budget` within the rolling year; returns what each has spent so far."""
    so_far = spent(party_dir, recipients, as_of, now, audited=audited)
    over = sorted(r for r, e in so_far.items() if e + epsilon > budget + 1e-9)
    if over:
        worst = max(so_far[r] for r in over)
        raise PrivacyCheckError(
            f"privacy budget: this release (epsilon {epsilon:g}) would take {', '.join(over)} "
            f"past the yearly budget of {budget:g} (already spent within a year of {as_of}: "
            f"{worst:g}); nothing was written. Wait until older releases leave the window, or "
            "raise [privacy] epsilon_budget_per_year in the pipeline to release anyway"
        )
    return so_far


def records(
    *, batch_id: str, as_of: dt.date, spends: Mapping[str, float], noise: Mapping, now: dt.datetime
) -> list[dict]:
    """The ledger lines of one release: one per recipient, with what it spent."""
    at = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    return [
        {"batch_id": batch_id, "as_of": as_of.isoformat(), "recipient": recipient,
         "epsilon": epsilon, "delta": noise["delta"], "mechanism": noise["mechanism"],
         "noise_scale": noise["noise_scale"], "recorded_at": at}
        for recipient, epsilon in sorted(spends.items())
    ]  # fmt: skip


def spend_summary(party_dir: Path) -> dict:
    """What the ledger says, for the register: per recipient, its DP releases, the epsilon
    they spent in all and within a year of the latest release's as-of date."""
    entries = jsonl.read(ledger_path(party_dir), WHAT, _entry)
    if not entries:
        return {"latest_as_of": None, "by_recipient": {}}
    latest = max(day for _, day, _ in entries)
    out: dict[str, dict] = {}
    for recipient, day, epsilon in entries:
        r = out.setdefault(
            recipient, {"releases": 0, "epsilon_total": 0.0, "epsilon_within_a_year": 0.0}
        )
        r["releases"] += 1
        r["epsilon_total"] += epsilon
        if latest - day < WINDOW:
            r["epsilon_within_a_year"] += epsilon
    return {"latest_as_of": latest.isoformat(), "by_recipient": dict(sorted(out.items()))}
