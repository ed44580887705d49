"""Customer records: one per (person, maison), stored the way each maison's CRM stores them.

The same person gets a different customer_id at every maison, and the identifiers drift:
case and spacing of emails, phone formats, another email at one maison, missing values,
placeholders typed by staff, junk phones. Consent is drawn per maison around its own rate,
with a latent per-person propensity so the same people tend to consent everywhere.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from crossgroup.synth import world
from crossgroup.synth.identifiers import (
    EMAIL_VARIANTS,
    PHONE_FORMATS,
    customer_ids,
    render_emails,
    render_phones,
)
from crossgroup.synth.maisons import MaisonPlan
from crossgroup.synth.persons import PersonChunk
from crossgroup.synth.pools import phone_pool

CUSTOMER_COLUMNS = (
    "customer_id",
    "email",
    "phone",
    "country",
    "cross_group_consent",
    "consent_updated_at",
    "restricted",
    "first_name",
    "last_name",
    "birth_date",
    "address",
)
JUNK_PHONES = ("n/a", "0000000000", "123", "tel", "+0 000")
_DAY_US = 86_400_000_000


def _shares(rng: np.random.Generator, table: tuple, n: int) -> np.ndarray:
    p = np.array([s for s, _ in table])
    return rng.choice(len(p), size=n, p=p / p.sum())


def _placeholder_rows(
    rng: np.random.Generator, rec_maison: np.ndarray, eligible: np.ndarray, rate: float, m: int
) -> np.ndarray:
    """Rows of maison m given a placeholder: a binomial share, but never fewer than a few."""
    rows = np.flatnonzero((rec_maison == m) & eligible)
    k = max(world.PLACEHOLDER_MIN, int(rng.binomial(len(rows), rate)))
    k = min(k, len(rows) // 4)
    return rng.choice(rows, size=k, replace=False) if k else rows[:0]


def _phones(rng: np.random.Generator, persons: PersonChunk, rec_person: np.ndarray) -> pl.Series:
    """Each record's phone in a format drawn per record, rendered region by region."""
    nsn = persons.frame["phone_nsn"].gather(rec_person)
    fmt = _shares(rng, PHONE_FORMATS, len(rec_person))
    country = persons.country[rec_person]
    phone = pl.Series("phone", [None] * len(rec_person), dtype=pl.String)
    for c, country_def in enumerate(world.COUNTRIES):
        rows = np.flatnonzero(country == c)
        if len(rows):
            pool = phone_pool(country_def.code)
            phone.scatter(rows, render_phones(pool, nsn.gather(rows), fmt[rows]))
    return phone


def generate_customers(
    rng: np.random.Generator,
    persons: PersonChunk,
    plans: list[MaisonPlan],
    as_of: date,
) -> pl.DataFrame:
    """All customer records of a chunk, maison by maison, with private columns for later steps.

    Private columns (dropped before writing): `_maison` (plan index), `_person` (row in the
    chunk), `person_id`, `archetype`.
    """
    per_maison = [np.flatnonzero(persons.membership[:, p.index]) for p in plans]
    rec_person = np.concatenate(per_maison)
    rec_maison = np.repeat(np.arange(len(plans)), [len(x) for x in per_maison])
    n = len(rec_person)
    person_id = persons.person_id[rec_person]
    ids = [
        customer_ids(p.id, p.id_style, persons.person_id[rows], p.customer_key)
        for p, rows in zip(plans, per_maison, strict=True)
    ]
    customer_id = pl.concat(ids) if ids else pl.Series([], dtype=pl.String)

    # Emails: the person's email, or their other one at the maison where they used it.
    is_alt = persons.alt_maison[rec_person] == rec_maison
    email = persons.frame["email"].gather(rec_person)
    alt_rows = np.flatnonzero(is_alt)
    email.scatter(alt_rows, persons.frame["alt_email"].gather(rec_person[alt_rows]))
    open_rows = ~is_alt
    email.scatter(np.flatnonzero(open_rows & (rng.random(n) < world.EMAIL_MISSING)), None)
    phone = _phones(rng, persons, rec_person)
    phone.scatter(np.flatnonzero(open_rows & (rng.random(n) < world.PHONE_MISSING)), None)
    junk = np.flatnonzero(open_rows & (rng.random(n) < world.INVALID_PHONE))
    phone.scatter(junk, pl.Series(JUNK_PHONES).gather(rng.integers(0, len(JUNK_PHONES), len(junk))))
    for p in plans:
        rows = _placeholder_rows(rng, rec_maison, open_rows, world.PLACEHOLDER_EMAIL, p.index)
        which = np.where(rng.random(len(rows)) < 0.7, 0, 1)
        email.scatter(rows, pl.Series(p.placeholder_emails).gather(which))
        rows = _placeholder_rows(rng, rec_maison, open_rows, world.PLACEHOLDER_PHONE, p.index)
        phone.scatter(rows, pl.Series([p.placeholder_phone] * len(rows), dtype=pl.String))
    email = render_emails(email, _shares(rng, EMAIL_VARIANTS, n))

    codes = pl.Series([c.code for c in world.COUNTRIES])
    country = codes.gather(persons.country[rec_person])
    country.scatter(np.flatnonzero(rng.random(n) < world.COUNTRY_MISSING), None)

    rate = np.array([p.consent_rate for p in plans])[rec_maison]
    logit = np.log(rate / (1 - rate)) + persons.consent_z[rec_person]
    consent = rng.random(n) < 1 / (1 + np.exp(-logit))
    as_of_us = np.datetime64(as_of, "D").astype(np.int64) * _DAY_US
    before = as_of_us - rng.integers(1, 4 * 365 * 86_400, n) * 1_000_000
    after = as_of_us + _DAY_US + rng.integers(0, 120 * 86_400, n) * 1_000_000
    late = consent & (rng.random(n) < world.CONSENT_AFTER_AS_OF)
    asked = consent | (rng.random(n) >= world.CONSENT_NEVER_ASKED)
    updated = pl.Series(np.where(late, after, before)).cast(pl.Datetime("us"))
    updated.scatter(np.flatnonzero(~asked), None)

    pii = persons.frame.select("first_name", "last_name", "birth_date", "address")[rec_person]
    return pl.DataFrame(
        {
            "customer_id": customer_id,
            "email": email,
            "phone": phone,
            "country": country,
            "cross_group_consent": consent,
            "consent_updated_at": updated,
            "restricted": rng.random(n) < world.RESTRICTED,
        }
    ).with_columns(
        *pii.get_columns(),
        _maison=pl.Series(rec_maison, dtype=pl.Int16),
        _person=pl.Series(rec_person, dtype=pl.Int64),
        person_id=pl.Series(person_id, dtype=pl.Int64),
        archetype=pl.Series(world.ARCHETYPE_NAMES).gather(persons.archetype[rec_person]),
    )
