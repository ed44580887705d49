"""HAZARDOUS MATERIALS: SHA-256 compression and the batch HMAC kernel, compiled with numba.

Imported lazily by `_primitives` (numba takes a moment to import). Functions are module-level
so numba caches the compiled code on disk. Values are int64 holding 32-bit words, masked
after every addition; validated against RFC 4231 and `hmac.digest` in tests/crypto.
"""

from __future__ import annotations

import numba
import numpy as np

_SHA256_IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip
_SHA256_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
    0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
    0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
    0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
    0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
    0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
    0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
    0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
    0xC67178F2,
)  # fmt: skip

_CHUNK = 4096  # values per parallel work item: amortizes the per-item scratch allocation

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
