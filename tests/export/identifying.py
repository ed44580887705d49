"""A test-side recognizer of direct identifiers (DESIGN §5 invariant 3), written apart from
the product: nothing here imports crossgroup, so a broken product check cannot also blind
the test that is meant to catch it.

What identifies a person, per kind:
- email: anything shaped local@domain (the domain may be cut short: "jane.doe@example");
- phone: any number `phonenumbers.PhoneNumberMatcher` finds valid with FR, GB, US, IT, CH or
  JP as the default region, or in E.164; and the digits of any phone of the input CRM (ISO
  dates and times, UUIDs and hex digests are blanked first);
- customer_id, order_id: the input's own values, case-insensitively, as a whole value, and
  as a substring when they hold a digit and at least 5 characters;
- name: the words of the input's first and last names (3+ letters, or any non-ASCII word),
  case-insensitively, as whole words;
- email_local: the local part of an input e-mail (6+ characters), as a substring.

Binary values (the pseudonyms) are identifying when they read as text that is an identifier
("jane.doe@example", 16 bytes cut from an e-mail) or as at least 6 printable ASCII bytes
padded with NUL or spaces to the column's width; or when their latin-1 or UTF-8 reading
holds an input needle of 6+ characters (an id, name or e-mail local part among other bytes),
or the digits of an input phone. Random 16-byte HMAC output is all printable with
probability (95/256)^16, about 1.3e-7 per value, and is then flagged only if that text also
reads as an identifier, so a test over fresh random keys does not fail by chance. Numbers
are identifying when their integral part is an input phone's digits, or a valid phone of 8+
digits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import phonenumbers
import polars as pl

REGIONS = ("FR", "GB", "US", "IT", "CH", "JP", "ZZ")  # ZZ: only +E.164 numbers parse
EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\/-]{4,}\d")
# The manifest's machine values are blanked before looking for phones: ISO dates and times
# (read as a phone, "05:09:07.347957" holds a valid Italian number), UUIDs and hex digests
# or ids of 32+ digits (their digit groups can read as phones).
MACHINE_VALUES = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{32,}\b"
)
WORD = re.compile(r"[^\W_]+")
PRINTABLE = frozenset(range(0x20, 0x7F))
BINARY_NEEDLE_MIN = 6  # shorter needles would turn up by chance in random bytes


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def phone_digit_forms(raw: str, country: str | None) -> set[str]:
    """The digit strings a CRM phone may be written as: as typed, E.164, national."""
    forms = {_digits(raw)}
    for region in dict.fromkeys([country or "ZZ", *REGIONS]):
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            nsn = phonenumbers.national_significant_number(number)
            forms |= {f"{number.country_code}{nsn}", nsn, "0" + nsn}
        break
    return {f for f in forms if len(f) >= 7}


@dataclass
class Recognizer:
    """Needles from the test's own CRM input, and generic email and phone shapes."""

    customer_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    email_locals: set[str] = field(default_factory=set)
    phone_digits: set[str] = field(default_factory=set)

    @classmethod
    def from_crm(cls, customers: pl.DataFrame, purchases: pl.DataFrame) -> Recognizer:
        def values(frame: pl.DataFrame, column: str) -> list[str]:
            if column not in frame.columns:
                return []
            return [v for v in frame[column].cast(pl.String).to_list() if v and v.strip()]

        names = {
            w.casefold()
            for c in ("first_name", "last_name")
            for v in values(customers, c)
            for w in WORD.findall(v)
            if len(w) >= 3 or not w.isascii()
        }
        locals_ = {e.strip().split("@")[0].casefold() for e in values(customers, "email")}
        phones: set[str] = set()
        if "phone" in customers.columns:
            countries = customers["country"] if "country" in customers.columns else None
            for i, raw in enumerate(customers["phone"].to_list()):
                if raw:
                    phones |= phone_digit_forms(raw, None if countries is None else countries[i])
        return cls(
            customer_ids={v.strip().casefold() for v in values(customers, "customer_id")}
            | {v.strip().casefold() for v in values(purchases, "customer_id")},
            order_ids={v.strip().casefold() for v in values(purchases, "order_id")},
            names=names,
            email_locals={e for e in locals_ if len(e) >= 6},
            phone_digits=phones,
        )

    # --- one value -------------------------------------------------------------------------

    def _needles(self) -> Iterator[tuple[str, set[str]]]:
        yield "customer_id", self.customer_ids
        yield "order_id", self.order_ids
        yield "email_local", self.email_locals

    def text(self, value: str) -> set[str]:
        """The kinds of identifier found in a string."""
        found = set()
        if EMAIL.search(value):
            found.add("email")
        undated = MACHINE_VALUES.sub(" ", value)
        for region in REGIONS:
            if next(iter(phonenumbers.PhoneNumberMatcher(undated, region)), None):
                found.add("phone")
                break
        if any(_digits(run) in self.phone_digits for run in DIGIT_RUN.findall(undated)):
            found.add("phone")
        folded = value.strip().casefold()
        for kind, needles in self._needles():
            if folded in needles or any(
                n in folded
                for n in needles
                if len(n) >= 5 and (kind == "email_local" or re.search(r"\d", n))
            ):
                found.add(kind)
        if any(w.casefold() in self.names for w in WORD.findall(value)):
            found.add("name")
        return found

    def binary(self, value: bytes) -> set[str]:
        """The kinds found in a binary value; "text" when it reads as printable ASCII."""
        found = set()
        body = value.rstrip(b"\0 ")
        if len(body) >= 6 and all(b in PRINTABLE for b in body):
            found |= self.text(body.decode("ascii"))
            if found or len(body) < len(value):  # an identifier, or text padded to the width
                found.add("text")
        readings = {value.decode("latin-1").casefold(),
                    value.decode("utf-8", "replace").casefold()}  # fmt: skip
        needles = [*self._needles(), ("name", self.names)]
        for kind, pool in needles:
            if any(n in r for r in readings for n in pool if len(n) >= BINARY_NEEDLE_MIN):
                found.add(kind)
        digits = _digits(value.decode("latin-1"))
        if any(p in digits for p in self.phone_digits if len(p) >= 9):
            found.add("phone")
        return found

    def number(self, value: float) -> set[str]:
        if isinstance(value, float) and not math.isfinite(value):
            return set()
        digits = str(int(abs(value)))
        if digits in self.phone_digits:
            return {"phone"}
        if len(digits) >= 8 and any(
            next(iter(phonenumbers.PhoneNumberMatcher(d, r)), None)
            for r in REGIONS for d in (digits, "+" + digits)
        ):  # fmt: skip
            return {"phone"}
        return set()

    def value(self, value: object) -> set[str]:
        if value is None or isinstance(value, bool):
            return set()
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.binary(bytes(value))
        if isinstance(value, (int, float)):
            return self.number(value)
        return self.text(str(value))

    # --- whole exports ---------------------------------------------------------------------

    def scan_frame(self, name: str, frame: pl.DataFrame) -> list[tuple[str, str]]:
        """(table.column, kind) for every identifier found in any value of the frame."""
        hits = []
        for column in frame.columns:
            for v in frame[column].unique().to_list():
                hits += [(f"{name}.{column}", kind) for kind in sorted(self.value(v))]
        return hits

    def scan_json(self, document: object, where: str = "manifest") -> list[tuple[str, str]]:
        """Every key and scalar of a parsed JSON document."""
        hits: list[tuple[str, str]] = []

        def walk(node: object, path: str) -> None:
            if isinstance(node, dict):
                for key, child in node.items():
                    hits.extend((f"{path}.{key} (key)", k) for k in sorted(self.text(str(key))))
                    walk(child, f"{path}.{key}")
            elif isinstance(node, list):
                for i, child in enumerate(node):
                    walk(child, f"{path}[{i}]")
            else:
                hits.extend((path, k) for k in sorted(self.value(node)))

        walk(json.loads(json.dumps(document)) if not isinstance(document, str) else
             json.loads(document), where)  # fmt: skip
        return hits


def scan_export(
    recognizer: Recognizer, tables: dict[str, pl.DataFrame], manifest: dict,
    extra_text: Iterable[str] = (),
) -> list[tuple[str, str]]:  # fmt: skip
    """Findings over every column of every table, the manifest and any further text."""
    hits = [h for name, frame in tables.items() for h in recognizer.scan_frame(name, frame)]
    hits += recognizer.scan_json(manifest)
    for text in extra_text:
        hits += [(text, kind) for kind in sorted(recognizer.text(text))]
    return hits
