"""Realism properties of the generated world: the things matching, export and segmentation
must cope with. Each assertion fails if the generator stops producing that property."""

from __future__ import annotations

import re
from datetime import datetime

import phonenumbers
import polars as pl
import pytest

from crossgroup.synth import world
from crossgroup.synth.customers import JUNK_PHONES

AS_OF = datetime(2026, 9, 30)
BOUNDARY = datetime(2023, 9, 30)
START = datetime(2021, 9, 30)
RESERVED = re.compile(r"@((?:[a-z0-9-]+\.)*example\.(?:com|net|org)|(?:[a-z0-9-]+\.)*example)$")


def _norm_email() -> pl.Expr:
    return pl.col("email").str.strip_chars().str.to_lowercase()


def test_overlap_most_at_one_maison_a_minority_at_two_or_three(synth_world):
    per_person = synth_world.truth.group_by("person_id", "archetype").len()
    share = per_person["len"].value_counts(normalize=True)
    at = dict(zip(share["len"], share["proportion"], strict=True))
    assert 0.45 <= at[1] <= 0.75
    assert 0.20 <= at.get(2, 0) + at.get(3, 0) <= 0.45
    assert 0.01 <= sum(v for k, v in at.items() if k >= 4) <= 0.12
    breadth = per_person.group_by("archetype").agg(pl.col("len").mean())
    mean = dict(zip(breadth["archetype"], breadth["len"], strict=True))
    assert mean["omni-luxury"] > 1.5 * max(v for k, v in mean.items() if k != "omni-luxury")


def test_archetypes_drive_which_sectors_people_buy_from(synth_world):
    sector = {m.id: m.sector for m in synth_world.maisons}
    t = synth_world.truth.with_columns(sector=pl.col("maison").replace_strict(sector))
    overall = (t["archetype"] == "jewelry collector").mean()
    jewelry = t.filter(pl.col("sector") == "Watches & Jewelry")
    assert (jewelry["archetype"] == "jewelry collector").mean() > 2 * overall


def test_consent_rates_within_bounds_and_differ_between_maisons(synth_world):
    rates = synth_world.customers.group_by("maison").agg(pl.col("cross_group_consent").mean())
    r = rates["cross_group_consent"]
    assert r.min() >= 0.30 and r.max() <= 0.70
    assert r.max() - r.min() >= 0.10


def test_consent_timestamps_restrictions_and_late_consents(synth_world):
    c = synth_world.customers
    consenting = c.filter("cross_group_consent")
    assert consenting["consent_updated_at"].null_count() == 0
    refusing = c.filter(~pl.col("cross_group_consent"))
    assert 0.5 < refusing["consent_updated_at"].is_not_null().mean() < 1.0
    late = consenting.filter(pl.col("consent_updated_at") > AS_OF)
    assert 0 < late.height < 0.1 * consenting.height
    assert late["consent_updated_at"].min() >= datetime(2026, 10, 1)  # never on the as-of day
    assert 0.003 <= c["restricted"].mean() <= 0.04


def test_boundary_and_future_rows(synth_world):
    p = synth_world.purchases
    for m in synth_world.maisons:
        mine = p.filter(pl.col("maison") == m.id)["purchased_at"]
        assert (mine == BOUNDARY).sum() >= 1, m.id
        assert (mine == AS_OF).sum() >= 1, m.id
        assert (mine > AS_OF).sum() >= 1, m.id
    future = p.filter(pl.col("purchased_at") > AS_OF)
    assert future.height < 0.005 * p.height
    assert future["purchased_at"].min() >= datetime(2026, 10, 1)
    # Only the deliberate edge rows fall on the as-of day or the 3-year boundary day.
    day = pl.col("purchased_at").dt.date()
    on_edge_days = p.filter(day.is_in([AS_OF.date(), BOUNDARY.date()]))
    assert on_edge_days["purchased_at"].dt.time().cast(pl.Int64).max() == 0


def test_history_spans_five_years(synth_world):
    at = synth_world.purchases.filter(pl.col("purchased_at") <= AS_OF)["purchased_at"]
    assert START <= at.min() <= datetime(2021, 11, 1)
    assert at.max() == AS_OF
    in_window = ((at > BOUNDARY) & (at <= AS_OF)).mean()
    assert 0.5 < in_window < 0.85  # the 3-year window drops a real share of history


def test_seasonality_december_and_gifting_peaks(synth_world):
    month = synth_world.purchases["purchased_at"].dt.month()
    counts = month.value_counts().sort("purchased_at")
    per_month = dict(zip(counts["purchased_at"], counts["count"], strict=True))
    mean = sum(per_month.values()) / 12
    assert per_month[12] > 1.5 * mean
    assert per_month[12] > max(per_month[m] for m in (1, 3, 4, 6, 8, 9))


def test_returns_are_negative_and_about_three_percent(synth_world):
    amount = synth_world.purchases["amount"]
    assert 0.015 <= (amount < 0).mean() <= 0.05
    refunds = synth_world.purchases.filter(pl.col("amount") < 0)
    assert refunds["order_id"].str.ends_with("-R").all()


def test_spend_is_long_tailed(synth_world):
    amounts = synth_world.purchases.filter((pl.col("currency") == "EUR") & (pl.col("amount") > 0))[
        "amount"
    ].cast(pl.Float64)
    assert amounts.mean() > 1.5 * amounts.median()
    assert amounts.quantile(0.99) > 20 * amounts.median()


def test_currency_follows_the_customer_country(synth_world):
    home = {c.code: c.currency for c in world.COUNTRIES}
    lines = synth_world.purchases.join(
        synth_world.customers.select("maison", "customer_id", "country"),
        on=["maison", "customer_id"],
    ).filter(pl.col("country").is_not_null())
    expected = pl.col("country").replace_strict(home)
    at_home = (pl.col("currency") == expected).mean()
    assert lines.select(at_home).item() > 0.85
    # Abroad, customers pay the travel currency, never a third one.
    abroad = lines.filter(pl.col("currency") != expected)
    assert set(abroad["currency"].unique()) <= {world.TRAVEL_CURRENCY}


def test_only_reserved_email_domains(synth_world):
    emails = synth_world.customers.select(_norm_email()).drop_nulls()["email"]
    assert emails.len() > 0
    bad = [e for e in emails.to_list() if not RESERVED.search(e)]
    assert bad == []


def test_placeholders_shared_by_many_customers_of_each_maison(synth_world):
    limit = 3
    for m in synth_world.maisons:
        c = synth_world.customers.filter(pl.col("maison") == m.id)
        emails = c.select(_norm_email()).drop_nulls().group_by("email").len()
        phones = c.drop_nulls("phone").group_by("phone").len()
        assert emails["len"].max() > limit, m.id
        assert phones["len"].max() > limit, m.id


def test_phone_formats_vary(synth_world):
    phones = synth_world.customers["phone"].drop_nulls()
    share = {
        "e164": phones.str.contains(r"^\+\d{8,15}$").mean(),
        "international spaces": phones.str.contains(r"^\+\d{1,3} \d").mean(),
        "international dashes": phones.str.contains(r"^\+\d{1,3}-\d").mean(),
        "national": phones.str.contains(r"^[0(1-9]").mean(),
    }
    for name, value in share.items():
        assert value >= 0.05, name


def test_phones_are_valid_for_their_country_except_deliberate_junk(synth_world):
    c = synth_world.customers.filter(
        pl.col("phone").is_not_null()
        & pl.col("country").is_not_null()
        & ~pl.col("phone").is_in(list(JUNK_PHONES))
    )
    shared = c.group_by("maison", "phone").len().filter(pl.col("len") > 3)
    c = c.join(shared, on=["maison", "phone"], how="anti")  # boutique placeholders
    invalid = []
    for phone, country in c.select("phone", "country").iter_rows():
        try:
            ok = phonenumbers.is_valid_number(phonenumbers.parse(phone, country))
        except phonenumbers.NumberParseException:
            ok = False
        if not ok:
            invalid.append((phone, country))
    assert c.height > 1000
    assert invalid == []
    junk = synth_world.customers["phone"].is_in(list(JUNK_PHONES)).sum()
    assert junk > 0


def _records(synth_world) -> pl.DataFrame:
    return synth_world.customers.join(synth_world.truth, on=["maison", "customer_id"])


def test_same_person_email_varies_in_case_or_spacing_across_maisons(synth_world):
    r = _records(synth_world).drop_nulls("email").with_columns(norm=_norm_email())
    pairs = r.join(r, on=["person_id", "norm"], suffix="_b").filter(
        pl.col("maison") < pl.col("maison_b")
    )
    assert pairs.height > 100
    differ = (pairs["email"] != pairs["email_b"]).mean()
    assert 0.3 <= differ <= 0.9


def _e164(phone: str, country: str | None) -> str | None:
    try:
        n = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def test_some_persons_use_another_email_at_one_maison_but_the_same_phone(synth_world):
    r = _records(synth_world).drop_nulls(["email", "phone"]).with_columns(norm=_norm_email())
    r = r.with_columns(
        e164=pl.struct("phone", "country").map_elements(
            lambda s: _e164(s["phone"], s["country"]), return_dtype=pl.String
        )
    )
    pairs = r.join(r, on="person_id", suffix="_b").filter(
        (pl.col("maison") < pl.col("maison_b"))
        & (pl.col("norm") != pl.col("norm_b"))
        & (pl.col("e164") == pl.col("e164_b"))
    )
    assert pairs.height >= 5


@pytest.mark.parametrize("column", ["email", "phone"])
def test_some_customers_have_only_one_identifier(synth_world, column):
    other = "phone" if column == "email" else "email"
    c = synth_world.customers
    only = c.filter(pl.col(column).is_not_null() & pl.col(other).is_null())
    assert 0.02 < only.height / c.height < 0.4


def test_pii_columns_look_real(synth_world):
    c = synth_world.customers
    assert c["first_name"].null_count() == 0 and c["last_name"].null_count() == 0
    assert c["first_name"].n_unique() > 500
    age = (AS_OF.date() - c["birth_date"]).dt.total_days() / 365.25
    assert age.min() >= 17.9 and age.max() <= 92.1
    assert c["address"].str.contains(r"^\d+ .+, ").all()


def test_about_ten_purchase_lines_per_person(synth_world):
    per_person = synth_world.summary.purchase_lines / synth_world.summary.persons
    assert 7 <= per_person <= 13


def test_channel_mix_follows_archetype_and_drifts_online(synth_world):
    lines = synth_world.purchases.join(synth_world.truth, on=["maison", "customer_id"])
    online = pl.col("channel") == "online"
    by_arch = lines.group_by("archetype").agg(online.mean().alias("online"))
    share = dict(zip(by_arch["archetype"], by_arch["online"], strict=True))
    assert share["beauty loyalist"] > 2 * share["jewelry collector"]
    year = pl.col("purchased_at").dt.year()
    early = lines.filter(year == 2022).select(online.mean()).item()
    late = lines.filter(year == 2026).select(online.mean()).item()
    assert late > early + 0.03
    # Customers have their own habits: the spread of per-customer online shares is well
    # beyond the binomial spread that one shared rate per archetype would give (about 2x).
    per_customer = (
        lines.group_by("maison", "customer_id", "archetype")
        .agg(online.mean().alias("share"), pl.len().alias("n"))
        .filter(pl.col("n") >= 5)
        .join(by_arch, on="archetype")
    )
    observed = per_customer.select(((pl.col("share") - pl.col("online")) ** 2).mean()).item()
    binomial = per_customer.select((pl.col("online") * (1 - pl.col("online")) / pl.col("n")).mean())
    assert observed > 2.8 * binomial.item()
