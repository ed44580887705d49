"""The leak scanner finds what it looks for (planted needles in every encoding and file kind),
and with it nothing the processor keeps, nor any analyst output, holds a token or a ref.

The scanner and its needles are test-side (tests/leak_scan.py): hmac and HKDF from the spec,
libphonenumber directly; nothing here asks crossgroup how a token is made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from demo_support import demo_output, demo_summary
from leak_scan import crm_needles, hkdf_sha256, scan

NEEDLE = hashlib.sha256(b"planted needle").digest()[:16]
OTHER = hashlib.sha256(b"an unrelated value").digest()[:16]


def encodings(needle: bytes) -> dict[str, str | bytes]:
    std, url = base64.b64encode(needle).decode(), base64.urlsafe_b64encode(needle).decode()
    # a needle inside a longer blob, at an offset that is not a multiple of 3 bytes
    blob = base64.b64encode(b"\x01\x02" + needle + b"tail").decode()
    return {
        "raw": needle,
        "hex": needle.hex(),
        "HEX": needle.hex().upper(),
        "hex in text": f"ref={needle.hex()};",
        "base64": std,
        "base64 unpadded": std.rstrip("="),
        "base64url": url,
        "base64url unpadded": url.rstrip("="),
        "base64 misaligned in a blob": f"data:{blob}",
    }


def _as_text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("latin-1")


def test_the_spec_hkdf_matches_rfc_5869_test_case_3():
    """RFC 5869 A.3 (SHA-256, no salt, no info): the test's own HKDF is the standard one."""
    okm = hkdf_sha256(bytes([0x0B] * 22), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@pytest.mark.parametrize("form", list(encodings(NEEDLE)))
def test_scanner_finds_a_needle_in_a_zstd_parquet(form, tmp_path):
    value = encodings(NEEDLE)[form]
    noise = [OTHER.hex()] * 299
    frame = pl.DataFrame(
        {
            "plain": [*noise, value] if isinstance(value, str) else [*noise, "x"],
            "binary": [OTHER] * 299 + [value if isinstance(value, bytes) else b"x"],
            "nested": [[{"k": "a", "v": b"y"}]] * 299 + [[{"k": "b", "v": value}]]
            if isinstance(value, bytes)
            else [[{"k": "a", "v": "y"}]] * 299 + [[{"k": "b", "v": value}]],
        }
    )
    path = tmp_path / "out.parquet"
    frame.write_parquet(path, compression="zstd")
    found = scan([path], {NEEDLE})
    assert found.files == {str(path): "parquet"}
    where = {w for _, w, _ in found.hits}
    assert where >= {"nested", "binary" if isinstance(value, bytes) else "plain"}, found.hits


def test_a_raw_byte_search_of_zstd_parquet_misses_what_the_scanner_finds(tmp_path):
    """Why values are decoded: 300 hex refs in a compressed Parquet are not in its bytes."""
    refs = [hashlib.sha256(bytes([i, j])).digest()[:16] for i in range(30) for j in range(10)]
    path = tmp_path / "refs.parquet"
    pl.DataFrame({"ref": [r.hex() for r in refs]}).write_parquet(path, compression="zstd")
    data = path.read_bytes()
    assert sum(r.hex().encode() in data for r in refs) < len(refs)
    found = scan([path], refs)
    assert len([h for h in found.hits if h[1] == "ref" and h[2] == "hex"]) == len(refs)


@pytest.mark.parametrize("form", list(encodings(NEEDLE)))
def test_scanner_finds_a_needle_in_json_jsonl_and_html(form, tmp_path):
    planted = encodings(NEEDLE)[form]
    value = _as_text(planted)  # raw bytes travel in JSON as code points below 256
    doc = {"entries": [{"counts": {"n": 3}, "note": value}]}
    (tmp_path / "a.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"x": 1}) + "\n" + json.dumps({value: 2}) + "\n", encoding="utf-8"
    )
    cell = planted if isinstance(planted, bytes) else planted.encode()
    (tmp_path / "a.html").write_bytes(
        b"<html><body><table><tr><td>" + cell + b"</td></tr></table></body></html>"
    )
    found = scan([tmp_path], {NEEDLE})
    kinds = {"a.html": "bytes", "a.json": "json", "a.jsonl": "json"}
    assert found.files == {str(tmp_path / n): k for n, k in kinds.items()}
    assert {Path(p).name for p, _, _ in found.hits} == {"a.json", "a.jsonl", "a.html"}


def _package(header: dict, payload: bytes) -> bytes:
    sender, head = b"aurelle", json.dumps(header).encode()
    framing = b"CGPKG\x00" + struct.pack(">HB", 1, len(sender)) + sender
    return framing + struct.pack(">I", len(head)) + head + os.urandom(64) + payload


def test_a_package_header_is_scanned_and_its_payload_is_opaque(tmp_path):
    clean = {"format": "crossgroup-package/v1", "manifest": {"tables": {"t": {"rows": 3}}}}
    leaky = {"format": "crossgroup-package/v1", "manifest": {"note": [NEEDLE.hex()]}}
    (tmp_path / "clean.cgpkg").write_bytes(_package(clean, NEEDLE + os.urandom(1000)))
    (tmp_path / "leaky.cgpkg").write_bytes(_package(leaky, os.urandom(1000)))
    found = scan([tmp_path], {NEEDLE})
    assert set(found.files.values()) == {"package"}
    assert found.hits == [(str(tmp_path / "leaky.cgpkg"), "header", "hex")]
    assert found.opaque_bytes == 2016


def test_scanner_finds_nothing_in_clean_files_but_reads_them(tmp_path):
    frame = pl.DataFrame({"ref": [OTHER, OTHER], "label": [OTHER.hex(), "Top"]})
    frame.write_parquet(tmp_path / "t.parquet", compression="zstd")
    (tmp_path / "r.html").write_text(f"<p>{base64.b64encode(OTHER).decode()}</p>")
    (tmp_path / "raw.bin").write_bytes(OTHER * 4)
    found = scan([tmp_path], {NEEDLE})
    assert found.hits == [] and len(found.files) == 3 and found.values >= 8
    assert scan([tmp_path / "raw.bin"], {NEEDLE, OTHER}).hits == [
        (str(tmp_path / "raw.bin"), "file", "raw")
    ]


# ---------------------------------------------------------------- the demo group's outputs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_output(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_needles(demo: Path) -> dict[str, tuple[set[bytes], set[bytes]]]:
    """Per maison: (refs, tokens) of every CRM customer, from the key files and the spec."""
    from crossgroup.crypto.keys import load_party  # reads key bytes; computes nothing

    out = {}
    for m in (m["maison"] for m in demo_summary(demo)["maisons"]):
        keys = load_party(demo / "keys" / m)
        crm = pl.read_parquet(demo / "maisons" / m / "customers.parquet")
        rows = crm.select("customer_id", "email", "phone", "country").to_dicts()
        out[m] = crm_needles(
            rows,
            local_secret=keys.local_secret,
            matching_secret=keys.matching.secret,
            epoch=keys.matching.epoch,
        )
    return out


def test_the_needles_are_the_real_tokens_of_an_export(demo, demo_needles, tmp_path):
    """The scan below is meaningful only if its needles are what maisons really export."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import open_package

    refs, tokens = demo_needles["aurelle"]
    (package,) = (demo / "maisons" / "aurelle" / "outbox").glob("export-*.cgpkg")
    processor = load_party(demo / "keys" / "processor")
    opened = open_package(package, processor, tmp_path, kind="export", check_replay=False)
    ident = pl.read_parquet(opened.tables["identities"])
    assert ident.height > 100
    assert set(ident["maison_ref"]) <= refs
    exported = {t for c in ("email_token", "phone_token") for t in ident[c].drop_nulls()}
    assert len(exported) > ident.height  # both kinds of tokens are present
    assert exported <= tokens


def test_nothing_the_processor_keeps_holds_a_token_or_ref(demo, demo_needles):
    """Invariant 9 on the demo: out folder (returns, reports, audit log) and processor state."""
    needles = set().union(*(r | t for r, t in demo_needles.values()))
    found = scan([demo / "group", demo / "keys" / "processor"], needles)
    assert found.hits == []
    kinds = set(found.files.values())
    assert {"parquet", "json", "package", "bytes"} <= kinds, kinds
    assert len(found.files) >= 15 and found.values > 1000 and found.opaque_bytes > 0


def test_analyst_outputs_hold_no_token_or_ref(demo, demo_needles):
    """Analysts get customer ids by design, never a token, nor the maison's own refs."""
    for m, (refs, tokens) in demo_needles.items():
        analyst = demo / "maisons" / m / "analyst"
        found = scan([analyst], refs | tokens)
        assert found.hits == [], m
        assert set(found.files.values()) == {"parquet", "bytes"}  # segments, csv, report
