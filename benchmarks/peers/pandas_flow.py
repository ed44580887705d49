"""The peer: the same computation as crossgroup's export + process, in plain pandas + hashlib.

Written the way a competent data team would write it without crossgroup: vectorized pandas
for filters, joins and group-bys; hmac/hashlib over each distinct value; phonenumbers over
each distinct (phone, country) pair; SciPy connected components for person linking; the
same KMeans segmentation (silhouette-chosen K on a sample) from scikit-learn. It reads the
same synthetic Parquet files and applies the same rules (consent as of the as-of day,
restriction, the 3-year window, placeholder guards), so its counts can be checked against
crossgroup's. It does not seal, verify, generalize or release anything: crossgroup does
that extra privacy work, so the comparison is in the peer's favour.

    python benchmarks/peers/pandas_flow.py --data benchmarks/data/S-20260930 --json peer.json
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import time
import tomllib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CHANNELS = ("online", "boutique")


def _window_start(as_of: date) -> date:
    try:
        return as_of.replace(year=as_of.year - 3)
    except ValueError:
        return as_of.replace(year=as_of.year - 3, day=28)


def _e164(raw: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _tokens(key: bytes, values: pd.Series) -> pd.Series:
    """Keyed HMAC-SHA256 (128-bit) of each distinct value, mapped back onto the rows."""
    distinct = values.dropna().unique()
    digests = {v: hmac.digest(key, v.encode(), "sha256")[:16] for v in distinct}
    return values.map(digests)


def _placeholder_free(values: pd.Series, limit: int) -> pd.Series:
    """Null the values shared by more than `limit` customers (boutique phones, noemail@)."""
    shared = values.map(values.value_counts()) > limit
    return values.mask(shared)


def export_maison(folder: Path, as_of: date, secrets: dict[str, bytes], taxonomy: dict) -> dict:
    """One maison's export: eligible customers, windowed monthly activity, tokens and refs."""
    config = tomllib.loads((folder / "maison.toml").read_text())
    fx = tomllib.loads((ROOT / "pipelines/fx.toml").read_text())["eur_per_unit"]
    limit = config.get("placeholder_max_customers", 3)
    catch_all = taxonomy["catch_all"][config["sector"]]
    timings = {}

    t = time.perf_counter()
    customers = pd.read_parquet(
        folder / "customers.parquet",
        columns=[
            "customer_id",
            "email",
            "phone",
            "country",
            "cross_group_consent",
            "consent_updated_at",
            "restricted",
        ],
    )
    purchases = pd.read_parquet(
        folder / "purchases.parquet",
        columns=[
            "customer_id",
            "order_id",
            "purchased_at",
            "category",
            "amount",
            "currency",
            "channel",
        ],
        dtype_backend="pyarrow",
    )
    purchases["amount"] = purchases["amount"].astype("float64")
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    cutoff = pd.Timestamp(as_of + timedelta(days=1))
    eligible = (
        customers["cross_group_consent"].fillna(False).astype(bool)
        & ~customers["restricted"].fillna(False).astype(bool)
        & customers["consent_updated_at"].notna()
        & (customers["consent_updated_at"] < cutoff)
    )
    day = purchases["purchased_at"].astype("datetime64[us]").dt.normalize()
    in_window = (day > pd.Timestamp(_window_start(as_of))) & (day < cutoff)
    rows = purchases[in_window & purchases["customer_id"].isin(customers["customer_id"][eligible])]
    rate = rows["currency"].map(fx)
    if rate.isna().any():
        raise SystemExit(f"{folder.name}: unknown currency in purchases")
    rows = rows.assign(
        month=day[rows.index].dt.to_period("M").dt.to_timestamp(),
        group_category=rows["category"].map(config["categories"]).fillna(catch_all),
        amount_eur=rows["amount"] * rate.astype("float64"),
    )
    timings["filter"] = time.perf_counter() - t

    t = time.perf_counter()
    activity = (
        rows.groupby(["customer_id", "month", "group_category", "channel"], observed=True)
        .agg(orders=("order_id", "nunique"), amount_eur=("amount_eur", "sum"))
        .reset_index()
    )
    activity["amount_eur"] = activity["amount_eur"].round(2)
    exported = pd.Index(activity["customer_id"].unique())
    timings["aggregate"] = time.perf_counter() - t

    t = time.perf_counter()
    email = customers["email"].str.normalize("NFKC").str.strip().str.lower()
    email = _placeholder_free(email.where(email.str.match(EMAIL_SHAPE, na=False)), limit)
    # Parse phones of exported customers, and of any customer whose last 8 digits are shared
    # beyond the limit (only there can a placeholder hide): thousands, not millions.
    tail = customers["phone"].str.replace(r"\D", "", regex=True).str[-8:]
    tail = tail.where(tail.str.len() > 0)
    parse = customers["customer_id"].isin(exported) | (tail.map(tail.value_counts()) > limit)
    pairs = customers.loc[parse, ["phone", "country"]].dropna(subset=["phone"]).drop_duplicates()
    regions = [None if pd.isna(c) else c for c in pairs["country"]]
    pairs["e164"] = [_e164(p, c) for p, c in zip(pairs["phone"], regions, strict=True)]
    phone = customers[["phone", "country"]].merge(pairs, how="left", on=["phone", "country"])
    phone = _placeholder_free(pd.Series(phone["e164"].to_numpy(), index=customers.index), limit)
    timings["normalize"] = time.perf_counter() - t

    t = time.perf_counter()
    mine = customers["customer_id"].isin(exported)
    ids = customers.loc[mine, "customer_id"]
    identities = pd.DataFrame(
        {
            "maison_ref": [hmac.digest(secrets["local"], v.encode(), "sha256")[:16] for v in ids],
            "email_token": _tokens(secrets["email"], email[mine]).to_numpy(),
            "phone_token": _tokens(secrets["phone"], phone[mine]).to_numpy(),
            "customer_id": ids.to_numpy(),
        }
    )
    activity = activity.merge(identities[["customer_id", "maison_ref"]], on="customer_id")
    timings["tokenize"] = time.perf_counter() - t
    return {
        "identities": identities.drop(columns="customer_id"),
        "activity": activity.drop(columns="customer_id"),
        "timings": timings,
    }


def link_persons(identities: pd.DataFrame, max_records_per_token: int) -> pd.Series:
    """Person id per record: connected components over shared tokens, placeholders dropped."""
    n = len(identities)
    memberships = pd.concat(
        [
            pd.DataFrame(
                {
                    "record": np.arange(n),
                    "maison": identities["maison"],
                    "token": identities[col],
                    "kind": kind,
                }
            )
            for kind, col in ((1, "email_token"), (2, "phone_token"))
        ]
    ).dropna(subset=["token"])
    per_maison = memberships.groupby(["kind", "token", "maison"])["record"].transform("size")
    crowded = memberships.loc[per_maison > max_records_per_token, ["kind", "token"]]
    usable = memberships.merge(crowded.drop_duplicates(), how="left", indicator=True)
    usable = usable[usable["_merge"] == "left_only"]
    token_id = pd.factorize(pd.MultiIndex.from_frame(usable[["kind", "token"]]))[0] + n
    size = n + (token_id.max() - n + 1 if len(token_id) else 0)
    graph = coo_matrix(
        (np.ones(len(token_id)), (usable["record"].to_numpy(), token_id)), shape=(size, size)
    )
    _, labels = connected_components(graph, directed=False)
    return pd.Series(pd.factorize(labels[:n])[0], index=identities.index, name="person_id")


def person_features(
    identities: pd.DataFrame, activity: pd.DataFrame, as_of: date, category_sector: dict
) -> pd.DataFrame:
    """Per person: value, frequency, recency, breadth, channel, season and sector shares."""
    lines = activity.merge(
        identities[["maison", "maison_ref", "person_id"]], on=["maison", "maison_ref"]
    )
    lines["sector"] = lines["group_category"].map(category_sector)
    month_index = lines["month"].dt.year * 12 + lines["month"].dt.month - 1
    lines["month_index"] = month_index
    g = lines.groupby("person_id")
    as_of_month = as_of.year * 12 + as_of.month - 1
    out = pd.DataFrame(
        {
            "total_spend_eur": g["amount_eur"].sum(),
            "orders": g["orders"].sum(),
            "active_months": g["month_index"].nunique(),
            "recency_months": (as_of_month - g["month_index"].max()).clip(lower=0),
            "tenure_months": (as_of_month - g["month_index"].min()).clip(lower=0),
        }
    )
    out["n_maisons"] = identities.groupby("person_id")["maison"].nunique()

    def shares(column: pd.Series, prefix: str) -> pd.DataFrame:
        nets = lines.pivot_table(
            index="person_id", columns=column, values="amount_eur", aggfunc="sum", fill_value=0
        ).clip(lower=0)
        total = nets.sum(axis=1)
        return nets.div(total.where(total > 0), axis=0).fillna(0).add_prefix(prefix)

    channel = lines["channel"].where(lines["channel"].isin(CHANNELS), "other")
    season = np.where(lines["month"].dt.month >= 10, "q4", "q1_q3")
    out = out.join(shares(channel, "ch_")).join(shares(pd.Series(season, lines.index), "s_"))
    out = out.join(shares(lines["sector"], "share_"))
    return out.fillna(0)


def segment(features: pd.DataFrame, settings: dict, seed: int) -> tuple[np.ndarray, int, float]:
    """KMeans on standardized transformed features; K by best silhouette, fitted on a sample."""
    sectors = [c for c in features.columns if c.startswith("share_")]
    x = np.column_stack(
        [
            np.log1p(features["total_spend_eur"].clip(lower=0)),
            np.log1p(features["orders"].clip(lower=0)),
            np.log1p(features["active_months"].clip(lower=0)),
            np.log(features["n_maisons"].clip(lower=1)),
            features.get("ch_online", 0.0) * np.ones(len(features)),
            features.get("ch_boutique", 0.0) * np.ones(len(features)),
            features.get("s_q4", 0.0) * np.ones(len(features)),
            features[sectors].to_numpy(),
        ]
    )
    rng = np.random.default_rng(seed)
    z_all = StandardScaler().fit_transform(x)
    sample = rng.choice(len(z_all), min(settings["sample_size"], len(z_all)), replace=False)
    z = z_all[sample]
    sel = z[rng.choice(len(z), min(30_000, len(z)), replace=False)]
    scores = {}
    for k in range(settings["min_segments"], settings["max_segments"] + 1):
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(sel)
        scores[k] = silhouette_score(sel, labels, sample_size=min(4000, len(sel)), random_state=0)
    best = max(scores, key=scores.get)
    model = KMeans(n_clusters=best, n_init=3, random_state=seed).fit(z)
    return model.predict(z_all), best, float(scores[best])


def run(data: Path, as_of: date, seed: int = 1) -> dict:
    """The whole peer flow over a synth folder; returns timings and comparable counts."""
    taxonomy_raw = tomllib.loads((ROOT / "pipelines/taxonomy.toml").read_text())
    group = tomllib.loads((ROOT / "pipelines/group.toml").read_text())
    sectors = taxonomy_raw["sector"]
    category_sector = {c: s["name"] for s in sectors for c in (*s["categories"], s["catch_all"])}
    taxonomy = {"catch_all": {s["name"]: s["catch_all"] for s in sectors}}
    secrets = {k: os.urandom(32) for k in ("local", "email", "phone")}
    maisons = sorted(p.name for p in data.iterdir() if (p / "maison.toml").is_file())
    started = time.perf_counter()
    exports, timings = {}, {}
    for maison in maisons:
        exports[maison] = export_maison(data / maison, as_of, secrets, taxonomy)
        for step, seconds in exports[maison]["timings"].items():
            timings[f"export.{step}"] = timings.get(f"export.{step}", 0.0) + seconds
    export_s = time.perf_counter() - started

    t = time.perf_counter()
    identities = pd.concat(
        [e["identities"].assign(maison=m) for m, e in exports.items()], ignore_index=True
    )
    activity = pd.concat(
        [e["activity"].assign(maison=m) for m, e in exports.items()], ignore_index=True
    )
    identities["person_id"] = link_persons(identities, group["privacy"]["max_records_per_token"])
    timings["process.link"] = time.perf_counter() - t
    t = time.perf_counter()
    features = person_features(identities, activity, as_of, category_sector)
    timings["process.features"] = time.perf_counter() - t
    t = time.perf_counter()
    segments, k, silhouette = segment(features, group["segmentation"], seed)
    timings["process.segment"] = time.perf_counter() - t
    return {
        "maisons": len(maisons),
        "exported_customers": {m: len(e["identities"]) for m, e in exports.items()},
        "activity_rows": {m: len(e["activity"]) for m, e in exports.items()},
        "persons": int(features.shape[0]),
        "records": len(identities),
        "n_segments": k,
        "silhouette": round(silhouette, 4),
        "segmented": len(segments),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "export_s": round(export_s, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a `crossgroup synth` folder")
    ap.add_argument("--as-of", default="2026-09-30")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    result = run(args.data, date.fromisoformat(args.as_of))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
