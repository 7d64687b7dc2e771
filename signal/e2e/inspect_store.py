"""Reads pane-signal's presage store (SQLCipher) with the passphrase and prints, as JSON,
the row count of every table and any plaintext command text found in the store's files.

    PANE_SIGNAL_PASSPHRASE=... python3 inspect_store.py <data-dir>/signal/presage.db3

Needs `sqlcipher3` (pip install sqlcipher3-binary: SQLCipher 4, as libsqlite3-sys bundles).
"""

import json
import os
import sys

import sqlcipher3

# Text of every envelope and reply the harness sends: none of it may be readable on disk.
MARKERS = [b'"cmd"', b'"sig"', b'"count"', b"approve "]


def main(path):
    key = os.environ["PANE_SIGNAL_PASSPHRASE"].replace("'", "''")
    db = sqlcipher3.connect(path)
    db.execute(f"PRAGMA key = '{key}'")
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    tables = {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    db.close()
    plaintext = []
    for suffix in ("", "-wal", "-shm"):
        f = path + suffix
        if os.path.exists(f):
            data = open(f, "rb").read()
            plaintext += [f"{os.path.basename(f)}: {m.decode()}" for m in MARKERS if m in data]
    print(json.dumps({"tables": tables, "plaintext": plaintext}))


if __name__ == "__main__":
    main(sys.argv[1])
