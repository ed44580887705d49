"""HAZARDOUS MATERIALS: SHA-256 compression and the batch HMAC kernel, compiled with numba.

Imported lazily by `_primitives` (numba takes a moment to import). Functions are module-level
so numba caches the compiled code on disk. Values are int64 holding 32-bit words, masked
after every addition; validated against RFC 4231 and `hmac.digest` in tests/crypto.
"""

from __future__ import annotations

import numba
import numpy as np

from crossgroup.crypto._primitives import _CHUNK, _SHA256_IV, _SHA256_K

K_TABLE = np.array(_SHA256_K, dtype=np.int64)
IV = np.array(_SHA256_IV, dtype=np.int64)
M32 = 0xFFFFFFFF


@numba.njit(cache=True, inline="always")
def rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & M32


@numba.njit(cache=True)
def compress(state, w, k_table):
    """One SHA-256 compression of the block in w[0:16] into `state` (w is 64 words scratch)."""
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)
        s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & M32
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
        ch = (e & f) ^ ((~e) & g & M32)
        t1 = (h + s1 + ch + k_table[t] + w[t]) & M32
        s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (s0 + maj) & M32
        h, g, f, e = g, f, e, (d + t1) & M32
        d, c, b, a = c, b, a, (t1 + t2) & M32
    state[0] = (state[0] + a) & M32
    state[1] = (state[1] + b) & M32
    state[2] = (state[2] + c) & M32
    state[3] = (state[3] + d) & M32
    state[4] = (state[4] + e) & M32
    state[5] = (state[5] + f) & M32
    state[6] = (state[6] + g) & M32
    state[7] = (state[7] + h) & M32


@numba.njit(cache=True)
def midstate(block, k_table):
    """SHA-256 state after compressing one 64-byte block from the IV (a key pad)."""
    st = IV.copy()
    w = np.empty(64, dtype=np.int64)
    for word in range(16):
        w[word] = (
            (np.int64(block[4 * word]) << 24)
            | (np.int64(block[4 * word + 1]) << 16)
            | (np.int64(block[4 * word + 2]) << 8)
            | np.int64(block[4 * word + 3])
        )
    compress(st, w, k_table)
    return st


@numba.njit(cache=True, parallel=True)
def kernel(inner, outer, offsets, data, out_len, k_table):
    """HMAC of every value from the two key midstates: inner blocks, then one outer block."""
    n = offsets.shape[0] - 1
    out = np.empty((n, out_len), dtype=np.uint8)
    n_items = (n + _CHUNK - 1) // _CHUNK
    for item in numba.prange(n_items):
        w = np.empty(64, dtype=np.int64)
        st = np.empty(8, dtype=np.int64)
        for i in range(item * _CHUNK, min(n, (item + 1) * _CHUNK)):
            start = offsets[i]
            length = offsets[i + 1] - start
            n_blocks = (length + 9 + 63) // 64
            bit_len = (64 + length) * 8  # the ipad block counts towards the length
            for j in range(8):
                st[j] = inner[j]
            for blk in range(n_blocks):
                base = blk * 64
                for word in range(16):
                    pos0 = base + word * 4
                    if pos0 + 3 < length:  # the whole word is message bytes: no padding logic
                        p = start + pos0
                        w[word] = (
                            (np.int64(data[p]) << 24)
                            | (np.int64(data[p + 1]) << 16)
                            | (np.int64(data[p + 2]) << 8)
                            | np.int64(data[p + 3])
                        )
                        continue
                    v = 0
                    for byte in range(4):
                        pos = base + word * 4 + byte
                        if pos < length:
                            bv = np.int64(data[start + pos])
                        elif pos == length:
                            bv = 0x80
                        elif pos >= n_blocks * 64 - 8:
                            bv = (bit_len >> (8 * (n_blocks * 64 - 1 - pos))) & 0xFF
                        else:
                            bv = 0
                        v = (v << 8) | bv
                    w[word] = v
                compress(st, w, k_table)
            for j in range(8):
                w[j] = st[j]
                st[j] = outer[j]
            w[8] = 0x80000000
            for j in range(9, 15):
                w[j] = 0
            w[15] = (64 + 32) * 8
            compress(st, w, k_table)
            for j in range(out_len):
                out[i, j] = (st[j >> 2] >> (24 - 8 * (j & 3))) & 0xFF
    return out
