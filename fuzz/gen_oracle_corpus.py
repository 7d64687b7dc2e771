#!/usr/bin/env python3
"""Writes corpus/canonical/oracle-NNN: seeded random JSON documents for the CPython comparison.

A coverage-minimised corpus keeps few valid JSON documents (the fuzzer's inputs are mostly
not JSON, and coverage does not grow with variety of values), so these add, for
`tests/fuzz_corpus.rs`'s byte-for-byte comparison with CPython's `json.dumps(value,
sort_keys=True)`: strings from every Unicode plane (controls, bidi marks, U+2028, non-BMP,
no lone surrogates), floats of every magnitude (random bit patterns, subnormals, the fixed/
exponent boundaries 1e-4 and 1e16, integral floats, ties between two shortest digit strings),
64-bit integers near their limits, unsorted keys, and nesting, written in varied layouts.
Deterministic: the same files every run.

    python3 gen_oracle_corpus.py            # from fuzz/
"""
import json
import math
import os
import random
import struct

COUNT = 300
rng = random.Random(20261122)


def rand_char():
    pool = rng.random()
    if pool < 0.35:
        return chr(rng.randint(0x20, 0x7E))
    if pool < 0.45:
        return chr(rng.choice([*range(0x00, 0x20), 0x7F, 0x85, 0xA0, 0xAD]))
    if pool < 0.55:
        return rng.choice('"\\/\u2028\u2029\u200d\u200e\u202e\u2066\ufeff\ufffd\uffff')
    if pool < 0.75:
        return chr(rng.randint(0xA0, 0x7FF))
    if pool < 0.9:
        c = rng.randint(0x800, 0xFFFF)
        return chr(c) if not 0xD800 <= c <= 0xDFFF else "\ue000"
    return chr(rng.randint(0x10000, 0x10FFFF))


def rand_str():
    return "".join(rand_char() for _ in range(rng.choice([0, 1, 2, 5, 12, 30])))


def rand_float():
    kind = rng.random()
    if kind < 0.3:
        while True:
            f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if math.isfinite(f):
                return f
    if kind < 0.5:
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-330, 308)
    if kind < 0.7:
        edge = rng.choice([1e-4, 1e16, 1e-5, 1e15, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308])
        ulps = rng.randint(-3, 3)
        f = edge
        for _ in range(abs(ulps)):
            f = math.nextafter(f, math.inf if ulps > 0 else 0.0)
        return rng.choice([1, -1]) * f
    if kind < 0.8:
        return float(rng.randint(-(2**60), 2**60)) * rng.choice([1, 0.5, 0.25, 0.1])
    if kind < 0.85:
        # Two shortest strings equally close (1000000000000000.25): Python takes the even one.
        return float(rng.randint(10**15, 2**51)) + rng.choice([0.125, 0.25, 0.375, 0.75])
    return rng.choice([0.0, -0.0, 0.1, 1.5, 100.0, 1e22, 123456789.0])


def rand_int():
    edge = rng.choice([0, 2**31, 2**53, 2**63, 2**64 - 1, 10**15, 10**16])
    n = edge + rng.randint(-5, 5) if edge else rng.randint(-1000, 1000)
    if rng.random() < 0.4:
        n = -n
    return max(-(2**63), min(2**64 - 1, n))


def rand_value(depth):
    kind = rng.random()
    if depth > 0 and kind < 0.25:
        return {rand_str(): rand_value(depth - 1) for _ in range(rng.randint(0, 6))}
    if depth > 0 and kind < 0.4:
        return [rand_value(depth - 1) for _ in range(rng.randint(0, 6))]
    if kind < 0.6:
        return rand_str()
    if kind < 0.8:
        return rand_float()
    if kind < 0.93:
        return rand_int()
    return rng.choice([None, True, False])


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "canonical")
    os.makedirs(out, exist_ok=True)
    for i in range(COUNT):
        text = ""
        while not text or len(text.encode()) > 2000:  # under libFuzzer's default max_len
            value = {rand_str(): rand_value(rng.randint(0, 4)) for _ in range(rng.randint(1, 6))}
            text = json.dumps(
                value,
                ensure_ascii=rng.random() < 0.5,
                indent=rng.choice([None, None, 0, 2]),
                separators=rng.choice([None, (",", ":"), (" ,", " : ")]),
            )
        with open(os.path.join(out, f"oracle-{i:03}"), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
