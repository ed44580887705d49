"""Identifiers of exported customers: normalized, placeholder-guarded, then keyed-hashed.

Normalization runs over every customer of the file, not only the exported ones, so that a
boutique phone or `noemail@…` shared by many customers is recognised as a placeholder even
when only a few of them consented (DESIGN §5.8): such a value gets no token for anyone.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.tokens import (
    email_token_key,
    hmac_tokens,
    maison_refs,
    normalize_emails,
    normalize_phones,
    phone_token_key,
)


def guard_placeholders(
    normalized: pl.DataFrame, *, placeholder_max_customers: int
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Null every email_norm / phone_norm shared by more than the limit of customers.

    Input and output columns: customer_id, email_norm, phone_norm (customer_id unique).
    Returns the guarded frame and, per identifier type, how many values were placeholders.
    """
    columns = ("email_norm", "phone_norm")
    # each window count once (it hashes every value of the column): the flags first, then
    # the placeholder counts and the nulled values from them
    flagged = normalized.with_columns(
        (
            pl.col(column).is_not_null()
            & (pl.col("customer_id").count().over(column) > placeholder_max_customers)
        ).alias(f"{column}_placeholder")
        for column in columns
    )
    counts = {
        column: flagged.filter(f"{column}_placeholder")[column].n_unique() for column in columns
    }
    guarded = flagged.with_columns(
        pl.when(f"{column}_placeholder").then(None).otherwise(pl.col(column)).alias(column)
        for column in columns
    )
    return guarded, {"email_values": counts["email_norm"], "phone_values": counts["phone_norm"]}


def _normalized(customers: pl.DataFrame) -> pl.DataFrame:
    """customer_id, email_norm, phone_norm and has_phone for every customer of the file."""
    return customers.select(
        "customer_id",
        normalize_emails(customers["email"]).alias("email_norm"),
        normalize_phones(customers["phone"], customers["country"]).alias("phone_norm"),
        (pl.col("phone").str.strip_chars().str.len_chars() > 0).fill_null(False).alias("has_phone"),
    )


def tokenizable_identifiers(
    customers: pl.DataFrame, exported: pl.Series, *, placeholder_max_customers: int
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Normalized, guarded identifiers of the exported customers, and the summary figures.

    `customers` has customer_id, email, phone, country for the whole file.
    """
    normalized = _normalized(customers)
    guarded, values = guard_placeholders(
        normalized, placeholder_max_customers=placeholder_max_customers
    )
    in_file = guarded.filter(pl.col("email_norm_placeholder") | pl.col("phone_norm_placeholder"))
    mine = guarded.filter(pl.col("customer_id").is_in(exported.implode()))
    affected = mine.filter(pl.col("email_norm_placeholder") | pl.col("phone_norm_placeholder"))
    unparseable = mine.filter(
        pl.col("has_phone") & pl.col("phone_norm").is_null() & ~pl.col("phone_norm_placeholder")
    )
    summary = {
        "placeholders": {
            **values,
            "customers_affected": affected.height,
            "customers_affected_in_file": in_file.height,
        },
        "phones_unparseable": unparseable.height,
        "identities": {
            "with_email_token": int(mine["email_norm"].is_not_null().sum()),
            "with_phone_token": int(mine["phone_norm"].is_not_null().sum()),
            "without_token": int(
                (mine["email_norm"].is_null() & mine["phone_norm"].is_null()).sum()
            ),
        },
    }
    return mine.select("customer_id", "email_norm", "phone_norm"), summary


def pseudonymize(identifiers: pl.DataFrame, keys: PartyKeys) -> pl.DataFrame:
    """customer_id, maison_ref, email_token, phone_token: the only link back to the CRM."""
    return identifiers.select(
        "customer_id",
        maison_refs(keys.local_secret, identifiers["customer_id"]).alias("maison_ref"),
        hmac_tokens(email_token_key(keys.matching), identifiers["email_norm"]).alias("email_token"),
        hmac_tokens(phone_token_key(keys.matching), identifiers["phone_norm"]).alias("phone_token"),
    )
