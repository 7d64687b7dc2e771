#!/usr/bin/env python3
"""Test vectors for pane-agent's envelope signatures, made by CPython itself.

The signature is the pane agents note's prototype, unchanged:
    msg = ts + cmd + json.dumps(args, sort_keys=True)
    sig = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()

Usage:
    gen_vectors.py > envelopes.json          regenerate the fixed vectors
    gen_vectors.py sign SECRET CMD ARGS_JSON print one envelope signed now (used by the
                                             integration tests to drive the real binary)
"""
import hashlib
import hmac
import json
import sys
from datetime import datetime, timezone


def sign(secret, ts, cmd, args):
    msg = ts + cmd + json.dumps(args, sort_keys=True)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


CASES = [
    ("list", {}),
    ("status", {"context": "notion"}),
    ("enroll", {"url": "https://aa.com", "alias": "travel-aa-2025", "card": {"limit": 0},
                "identity": "placeholder", "note": "placeholder \u2014 call to complete with real name"}),
    ("status", {"context": "caf\u00e9", "emoji": "\U0001F600\U0001F9D1\u200D\U0001F4BB", "cjk": "\u65e5\u672c\u8a9e",
                "rtl": "\u05e9\u05dc\u05d5\u05dd", "zwj": "a\u200db"}),
    ("audit", {"nested": {"z": [1, 2, {"b": None, "a": True}], "a": {"y": False, "x": []}}, "limit": 10}),
    ("audit", {"ints": [0, -1, 1, 9007199254740993, -9223372036854775808, 18446744073709551615]}),
    ("audit", {"floats": [1.0, 0.1, -0.0, 1e16, 1e15, 1.5e-05, 123.456, 1e100, 2.5e-300, 3.141592653589793]}),
    ("audit", {"escapes": "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f nul\u0000 del\u007f c1\u0085"}),
    ("audit", {"\u00e9": 1, "e": 2, "E": 3, "\U0001F600": 4, "\uffff": 5, "": 6, " ": 7}),
    ("approve", {"code": "ABCDE-FGHJK"}),
    ("card.fund", {"context": "aa", "limit": 12345}),
    ("audit", {"deep": [[[[[{"k": [None, True, False, "s", 1, 1.5]}]]]]]}),
]

SECRETS = [
    "6f1c0d6b1c5e4b7a9e2d3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8",
    "p\u00e4ssw\u00f6rd-with-unicode-and-more-than-32-bytes!",
]


def vectors():
    out = []
    for i, (cmd, args) in enumerate(CASES):
        secret = SECRETS[i % len(SECRETS)]
        ts = "2026-11-22T10:00:%02dZ" % i
        out.append({
            "secret": secret,
            "ts": ts,
            "cmd": cmd,
            "args_json": json.dumps(args),
            "canonical": json.dumps(args, sort_keys=True),
            "sig": sign(secret, ts, cmd, args),
        })
    return out


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "sign":
        secret, cmd, args_json = sys.argv[2], sys.argv[3], sys.argv[4]
        args = json.loads(args_json)
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(json.dumps({"ts": ts, "cmd": cmd, "args": args, "sig": sign(secret, ts, cmd, args)}))
        return
    print(json.dumps(vectors(), indent=1))


if __name__ == "__main__":
    main()
