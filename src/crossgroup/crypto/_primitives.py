"""HAZARDOUS MATERIALS: the low-level primitives under crossgroup's crypto recipes.

Nothing outside `crossgroup.crypto` should import this module. It holds HKDF, HMAC-SHA256
(a compiled batch path that reuses the key's SHA-256 midstates, plus the `hmac.digest`
reference) and the STREAM chunked AEAD. The safe recipes (`tokens`, `keys`, `package`) fix
the algorithms, labels and key sizes; these functions take whatever they are given.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:  # numpy is loaded only with the compiled kernel, for batches of millions
    import numpy as np

# ---------------------------------------------------------------- HKDF (RFC 5869)


def hkdf_sha256(ikm: bytes, *, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 extract-and-expand; `salt=None` means the RFC's all-zero salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """The reference HMAC-SHA256 (OpenSSL through the standard library)."""
    return hmac.digest(key, data, "sha256")


# ---------------------------------------------------------------- HMAC-SHA256, batch path
#
# HMAC(k, m) = H((k' ^ opad) || H((k' ^ ipad) || m)). Each pad is exactly one SHA-256 block,
# so the state after compressing it (the "midstate") depends on the key only. We compute
# both midstates once per key and, per value, run only the message blocks of the inner hash
# and the single block of the outer hash: 2 compressions for a value under 56 bytes.
#
# Two implementations give identical bytes. The standard library one copies the two hashlib
# states per value (about 0.7-1.1 us per value, nothing to load). The numba kernel is about
# 1.3x (one core) to 2x (two idle cores) faster per value but costs 0.6-1.0 s to import and
# load from its on-disk cache in every process, so it only pays on batches of millions of
# values: below _KERNEL_MIN_VALUES it is never imported (the fixed cost of every command at
# the S and M scales; see benchmarks/README.md).

_KERNEL_MIN_VALUES = 2_000_000
_batch_kernel: Callable | None = None
_kernel_error: str | None = None


def _build_kernel() -> Callable | None:
    """Load the numba kernel (compiled once, then cached on disk); None when unavailable."""
    global _batch_kernel, _kernel_error
    if _batch_kernel is not None or _kernel_error is not None:
        return _batch_kernel
    if os.environ.get("CROSSGROUP_NO_JIT"):
        _kernel_error = "disabled by CROSSGROUP_NO_JIT"
        return None
    try:
        from crossgroup.crypto import _hmac_kernel
    except ImportError as e:  # pragma: no cover - numba is a pinned dependency
        _kernel_error = f"numba unavailable: {e}"
        return None

    def run(key: bytes, offsets: np.ndarray, data: np.ndarray, out_len: int) -> np.ndarray:
        inner, outer = _midstates(key, _hmac_kernel.midstate, _hmac_kernel.K_TABLE)
        return _hmac_kernel.kernel(inner, outer, offsets, data, out_len, _hmac_kernel.K_TABLE)

    _batch_kernel = run
    return run


def _padded_key(key: bytes) -> bytes:
    """The HMAC block key k' (RFC 2104): hashed if longer than a block, zero-padded to 64."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    return key.ljust(64, b"\x00")


def _midstates(key: bytes, midstate: Callable, k_table: np.ndarray) -> tuple:
    """The SHA-256 states after one block of key^ipad and of key^opad (RFC 2104)."""
    import numpy as np

    padded = np.frombuffer(_padded_key(key), dtype=np.uint8)
    inner = midstate(padded ^ np.uint8(0x36), k_table)
    outer = midstate(padded ^ np.uint8(0x5C), k_table)
    return inner, outer


def fast_hmac_available() -> bool:
    """Whether the compiled batch path can run here (large batches; else the hashlib loop)."""
    return _build_kernel() is not None


def kernel_pays(n: int) -> bool:
    """Whether `n` values are enough to load the compiled kernel (and numpy) for."""
    return n >= _KERNEL_MIN_VALUES and fast_hmac_available()


def hmac_sha256_values(key: bytes, values: Iterable[bytes], *, out_len: int = 32) -> list[bytes]:
    """HMAC-SHA256 of each value, truncated to `out_len`, with the standard library: the two
    key midstates are hashlib objects computed once and copied per value (no per-value key
    schedule, unlike `hmac.digest`)."""
    padded = _padded_key(key)
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy
    digests = []
    append = digests.append
    for value in values:
        h = inner()
        h.update(value)
        o = outer()
        o.update(h.digest())
        append(o.digest()[:out_len])
    return digests


def hmac_sha256_batch(
    key: bytes, offsets: np.ndarray, data: np.ndarray, *, out_len: int = 32
) -> np.ndarray:
    """HMAC-SHA256 of every value `data[offsets[i]:offsets[i+1]]`, truncated to `out_len`.

    Returns an (n, out_len) uint8 array: from the compiled midstate kernel over both cores
    for a batch of at least _KERNEL_MIN_VALUES values, else from `hmac_sha256_values`;
    both give identical bytes.
    """
    import numpy as np

    if not 1 <= out_len <= 32:
        raise ValueError("out_len must be between 1 and 32")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    n = len(offsets) - 1
    if kernel_pays(n):
        return _batch_kernel(key, offsets, data, out_len)
    raw, bounds = data.tobytes(), offsets.tolist()
    values = (raw[bounds[i] : bounds[i + 1]] for i in range(n))
    flat = b"".join(hmac_sha256_values(key, values, out_len=out_len))
    return np.frombuffer(flat, dtype=np.uint8).reshape(n, out_len).copy()


# ---------------------------------------------------------------- STREAM chunked AEAD
#
# Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and its
# Nonce-Reuse Misuse-Resistance" (CRYPTO 2015), as used by age and Tink: the payload is cut
# into fixed-size chunks; chunk i is sealed under nonce = prefix(7) || i (32-bit BE) || last,
# where last = 1 only on the final chunk. A dropped, added, moved or duplicated chunk then
# fails authentication. The key must be fresh per stream (the prefix is fixed).

STREAM_TAG = 16
_NONCE_PREFIX = b"\x00" * 7
_MAX_CHUNKS = 2**32


class StreamError(Exception):
    """Raised by the stream primitives; the recipes turn it into a SecurityError."""

    def __init__(self, reason: str, index: int = -1):
        super().__init__(reason)
        self.reason, self.index = reason, index


def stream_chunk_count(plain_len: int, chunk_size: int) -> int:
    """Number of chunks for a plaintext: at least one, so an empty payload is still sealed."""
    return max(1, -(-plain_len // chunk_size))


def stream_ciphertext_len(plain_len: int, chunk_size: int) -> int:
    return plain_len + STREAM_TAG * stream_chunk_count(plain_len, chunk_size)


def _nonce(index: int, last: bool) -> bytes:
    return _NONCE_PREFIX + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def stream_encrypt(
    key: bytes, aad: bytes, source: BinaryIO, plain_len: int, sink: BinaryIO, chunk_size: int
) -> None:
    """Encrypt exactly `plain_len` bytes from `source` into `sink`, one chunk in memory."""
    n = stream_chunk_count(plain_len, chunk_size)
    if n > _MAX_CHUNKS:
        raise StreamError("payload too large for the chunk counter")
    aead = AESGCM(key)
    remaining = plain_len
    for i in range(n):
        want = min(chunk_size, remaining)
        chunk = source.read(want)
        if len(chunk) != want:
            raise StreamError("source ended early", i)
        remaining -= want
        sink.write(aead.encrypt(_nonce(i, i == n - 1), chunk, aad))


def stream_decrypt(
    key: bytes, aad: bytes, source: BinaryIO, plain_len: int, chunk_size: int
) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raise StreamError at the first bad chunk.

    The caller must have checked the exact ciphertext length first, so a short read here
    means the file changed underneath us.
    """
    n = stream_chunk_count(plain_len, chunk_size)
    aead = AESGCM(key)
    remaining = plain_len
    for i in range(n):
        want = min(chunk_size, remaining)
        sealed = source.read(want + STREAM_TAG)
        if len(sealed) != want + STREAM_TAG:
            raise StreamError("truncated", i)
        try:
            chunk = aead.decrypt(_nonce(i, i == n - 1), sealed, aad)
        except Exception:
            raise StreamError("chunk", i) from None
        remaining -= want
        yield chunk
    if source.read(1):
        raise StreamError("extended", n)
