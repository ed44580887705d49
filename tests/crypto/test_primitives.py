"""The hazmat layer: RFC 4231 vectors, the batch HMAC against hmac.digest, STREAM tampering."""

from __future__ import annotations

import hmac
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossgroup.crypto import _primitives as P

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _batch(key: bytes, values: list[bytes], out_len: int = 32) -> list[bytes]:
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(v) for v in values])
    data = np.frombuffer(b"".join(values), dtype=np.uint8)
    out = P.hmac_sha256_batch(key, offsets, data, out_len=out_len)
    return [row.tobytes() for row in out]


@pytest.fixture(params=["kernel", "hashlib"])
def batch_path(request, monkeypatch):
    """Run a test through each batch implementation: the numba kernel (forced on small
    batches, which normally take the hashlib loop) and the hashlib midstate loop."""
    if request.param == "kernel":
        monkeypatch.setattr(P, "_KERNEL_MIN_VALUES", 0)
    else:
        monkeypatch.setattr(P, "_build_kernel", lambda: None)
    return request.param


def test_fast_path_is_available():
    assert P.fast_hmac_available(), "numba kernel should compile on the supported platform"


def test_small_batches_do_not_load_numba():
    code = (
        "import sys, numpy as np; from crossgroup.crypto import _primitives as P; "
        "P.hmac_sha256_batch(b'k' * 32, np.array([0, 3]), np.frombuffer(b'abc', np.uint8)); "
        "assert 'numba' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rfc4231_vectors(batch_path):
    doc = json.loads((VECTORS / "rfc4231_hmac_sha256.json").read_text())
    assert "RFC 4231" in doc["source"]
    for case in doc["cases"]:
        expected = bytes.fromhex(case["hmac_sha256"])
        key, data = bytes.fromhex(case["key"]), bytes.fromhex(case["data"])
        assert P.hmac_sha256(key, data)[: len(expected)] == expected, case["case"]
        assert _batch(key, [data], len(expected)) == [expected], case["case"]


@settings(
    max_examples=60,
    deadline=None,
    # the fixture only picks the implementation: nothing in it changes between inputs
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    key=st.binary(min_size=0, max_size=150),
    values=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=40),
)
def test_batch_hmac_equals_hmac_digest(batch_path, key, values):
    # Lengths up to 300 bytes cover 1 to 6 message blocks and every padding boundary.
    assert _batch(key, values) == [hmac.digest(key, v, "sha256") for v in values]


def test_batch_hmac_every_length_around_block_boundaries(batch_path):
    key = os.urandom(32)
    values = [os.urandom(n) for n in range(0, 200)]
    assert _batch(key, values, 16) == [hmac.digest(key, v, "sha256")[:16] for v in values]


def test_hkdf_rfc5869_case_1():
    # RFC 5869 appendix A.1.
    ikm = bytes.fromhex("0b" * 22)
    okm = P.hkdf_sha256(
        ikm,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def _seal(plain: bytes, chunk: int = 1024) -> tuple[bytes, bytes]:
    key, sink = os.urandom(32), io.BytesIO()
    P.stream_encrypt(key, b"aad", io.BytesIO(plain), len(plain), sink, chunk)
    return key, sink.getvalue()


def _open(key: bytes, sealed: bytes, n: int, chunk: int = 1024, aad: bytes = b"aad") -> bytes:
    return b"".join(P.stream_decrypt(key, aad, io.BytesIO(sealed), n, chunk))


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 5000])
def test_stream_round_trip(size):
    plain = os.urandom(size)
    key, sealed = _seal(plain)
    assert len(sealed) == P.stream_ciphertext_len(size, 1024)
    assert _open(key, sealed, size) == plain


def test_stream_detects_reorder_duplicate_truncate_extend_and_aad():
    plain = os.urandom(4096)  # exactly 4 chunks of 1024
    key, sealed = _seal(plain)
    c = 1024 + P.STREAM_TAG
    chunks = [sealed[i : i + c] for i in range(0, len(sealed), c)]
    swapped = chunks[1] + chunks[0] + chunks[2] + chunks[3]
    duplicated = chunks[0] + chunks[0] + chunks[2] + chunks[3]
    dropped_last = b"".join(chunks[:3])
    for bad, reason in [(swapped, "chunk"), (duplicated, "chunk")]:
        with pytest.raises(P.StreamError) as e:
            _open(key, bad, 4096)
        assert e.value.reason == reason
    with pytest.raises(P.StreamError) as e:
        _open(key, dropped_last, 4096)
    assert e.value.reason == "truncated"
    with pytest.raises(P.StreamError) as e:
        _open(key, sealed + b"x", 4096)
    assert e.value.reason == "extended"
    # Truncation at a chunk boundary with the length lowered: the last-chunk flag catches it.
    with pytest.raises(P.StreamError):
        _open(key, dropped_last, 3072)
    with pytest.raises(P.StreamError):
        _open(key, sealed, 4096, aad=b"other header")
