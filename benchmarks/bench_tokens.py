"""Tokenization throughput: the batch HMAC kernel vs a plain hmac.digest loop, and phones.

Prints a table and a JSON line; with --readme appends both to benchmarks/README.md under
"Tokenization". The HMAC ratio is measured in one run over the same distinct values, next
to `openssl speed -hmac sha256` for the same value size as the ceiling (per core).

    .venv/bin/python benchmarks/bench_tokens.py                 # 2M emails, 200k phones
    .venv/bin/python benchmarks/bench_tokens.py --n 20000 --phones 5000   # quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import phonenumbers
import polars as pl

from crossgroup.crypto import _primitives
from crossgroup.crypto.tokens import hmac_tokens, normalize_phones

README = Path(__file__).with_name("README.md")


def _emails(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    domains = ["example.com", "example.net", "example.org", "mail.example.com"]
    picks = rng.integers(0, len(domains), n)
    return [f"client.{i:08d}.{rng_i}@{domains[d]}" for i, (rng_i, d) in
            enumerate(zip(rng.integers(0, 10**6, n), picks, strict=True))]  # fmt: skip


def _phones(n: int, seed: int = 11) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    fmts = [
        (lambda d: f"06 {d[0:2]} {d[2:4]} {d[4:6]} {d[6:8]}", "FR"),
        (lambda d: f"+33 6 {d[0:2]} {d[2:4]} {d[4:6]} {d[6:8]}", "FR"),
        (lambda d: f"(212) 555-{d[0:4]}", "US"),
        (lambda d: f"+44 7700 9{d[0:5]}", "GB"),
        (lambda d: f"+39 06 {d[0:4]} {d[4:8]}", "IT"),
    ]
    digits = rng.integers(0, 10**8, n)
    which = rng.integers(0, len(fmts), n)
    phones, countries = [], []
    for d, w in zip(digits, which, strict=True):
        fmt, country = fmts[w]
        phones.append(fmt(f"{d:08d}"))
        countries.append(country)
    return phones, countries


def _openssl_rate(size: int) -> float | None:
    """OpenSSL's HMAC-SHA256 values/s (one core) for `size`-byte inputs, if openssl runs."""
    try:
        out = subprocess.run(
            ["openssl", "speed", "-mr", "-seconds", "2", "-bytes", str(size), "-hmac", "sha256"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\+F:\d+:hmac\(sha256\):([0-9.]+)", out)
    return float(m.group(1)) / size if m else None


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(n: int, n_phones: int, repeat: int) -> dict:
    key = os.urandom(32)
    emails = _emails(n)
    raw = [e.encode() for e in emails]
    series = pl.Series("email", emails)
    mean_len = round(sum(map(len, raw)) / n)
    hmac_tokens(key, series.head(1000))  # load the compiled kernel outside the timing

    loop_s = _best(lambda: [hmac.digest(key, v, "sha256") for v in raw], repeat)
    fast_s = _best(lambda: hmac_tokens(key, series), repeat)
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(v) for v in raw])
    data = np.frombuffer(b"".join(raw), dtype=np.uint8)
    kernel_s = _best(lambda: _primitives.hmac_sha256_batch(key, offsets, data, out_len=16), repeat)
    openssl = _openssl_rate(mean_len)

    phones, countries = _phones(n_phones)

    def slow_phones() -> list:
        out = []
        for p, c in zip(phones, countries, strict=True):
            try:
                parsed = phonenumbers.parse(p, c)
            except phonenumbers.NumberParseException:
                out.append(None)
                continue
            ok = phonenumbers.is_valid_number(parsed)
            out.append(phonenumbers.format_number(parsed, 0) if ok else None)
        return out

    phone_series, country_series = pl.Series(phones), pl.Series(countries)
    slow_p = _best(slow_phones, 1)
    fast_p = _best(lambda: normalize_phones(phone_series, country_series), 1)
    assert normalize_phones(phone_series, country_series).to_list() == slow_phones()

    return {
        "benchmark": "tokens",
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "distinct_values": n,
        "mean_value_bytes": mean_len,
        "hmac_digest_loop_per_s": round(n / loop_s),
        "hmac_tokens_per_s": round(n / fast_s),
        "kernel_only_per_s": round(n / kernel_s),
        "ratio_tokens_vs_loop": round(loop_s / fast_s, 2),
        "openssl_hmac_per_s_one_core": None if openssl is None else round(openssl),
        "fast_path": _primitives.fast_hmac_available(),
        "phones": n_phones,
        "phone_parse_loop_per_s": round(n_phones / slow_p),
        "normalize_phones_per_s": round(n_phones / fast_p),
        "ratio_phones": round(slow_p / fast_p, 2),
    }


def table(r: dict) -> str:
    rows = [
        ("hmac.digest loop, 1 process", r["hmac_digest_loop_per_s"], 1.0),
        ("hmac_tokens (distinct, kernel, join back)", r["hmac_tokens_per_s"],
         r["ratio_tokens_vs_loop"]),
        ("batch kernel only", r["kernel_only_per_s"],
         r["kernel_only_per_s"] / r["hmac_digest_loop_per_s"]),
        ("openssl speed -hmac sha256 (1 core, ceiling)", r["openssl_hmac_per_s_one_core"], None),
        ("phones: phonenumbers loop", r["phone_parse_loop_per_s"], 1.0),
        ("phones: normalize_phones", r["normalize_phones_per_s"], r["ratio_phones"]),
    ]  # fmt: skip
    lines = ["| step | values/s | × baseline |", "|---|---:|---:|"]
    for name, rate, ratio in rows:
        rate_s = "n/a" if rate is None else f"{rate:,.0f}"
        lines.append(f"| {name} | {rate_s} | {'' if ratio is None else f'{ratio:.2f}×'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="distinct email values")
    ap.add_argument("--phones", type=int, default=200_000, help="phone values")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--readme", action="store_true", help="append to benchmarks/README.md")
    args = ap.parse_args()
    result = run(args.n, args.phones, args.repeat)
    text = table(result)
    print(text)
    print(json.dumps(result))
    if args.readme:
        with open(README, "a", encoding="utf-8") as f:
            if "## Tokenization" not in (README.read_text() if README.exists() else ""):
                f.write("\n## Tokenization\n\n`benchmarks/bench_tokens.py`: see its docstring.\n")
            f.write(f"\n{result['date']}, {result['machine']}, {args.n:,} distinct emails\n\n")
            f.write(text + "\n\n```json\n" + json.dumps(result) + "\n```\n")


if __name__ == "__main__":
    main()
