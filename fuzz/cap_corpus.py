#!/usr/bin/env python3
"""Cuts a fuzz corpus down to at most N files that keep as many coverage edges as they can.

`cargo fuzz cmin` keeps every input that adds a feature, which for the targets that reach the
public suffix list (every suffix is its own branch) or mail-parser leaves thousands of inputs
of one edge each. This keeps the inputs a greedy set cover picks, most new edges first, up to
N (default 1000), plus every file with a name of its own (`seed-*`, `regression-*`,
`oracle-*`: anything but libFuzzer's 40-hex-digit names), and says how many edges are kept.

    cargo +nightly fuzz build -s none <target>
    python3 cap_corpus.py <target> [N]          # from fuzz/, rewrites corpus/<target>/
"""
import heapq
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    target = sys.argv[1]
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = os.path.join(here, "corpus", target)
    binary = os.path.join(here, "target", "x86_64-unknown-linux-gnu", "release", target)
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        # A merge into an empty directory records each input's edges in the control file.
        subprocess.run(
            [binary, "-merge=1", "-use_counters=0", f"-merge_control_file={control}", empty, corpus],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = open(control).read().split("\n")
    count = int(lines[0])
    files = lines[2:2 + count]
    edges = {}
    for line in lines[2 + count:]:
        if line.startswith("COV "):
            parts = line.split()
            edges[int(parts[1])] = set(map(int, parts[2:]))
    every = set().union(*edges.values()) if edges else set()
    hashed = re.compile(r"[0-9a-f]{40}")
    keep = [i for i, f in enumerate(files) if not hashed.fullmatch(os.path.basename(f))]
    covered = set().union(*(edges.get(i, set()) for i in keep))
    heap = [(-len(e), os.path.getsize(files[i]), i) for i, e in edges.items() if e]
    heapq.heapify(heap)
    chosen = []
    while heap and len(chosen) < cap:
        _, size, i = heapq.heappop(heap)
        gain = len(edges[i] - covered)
        if gain == 0:
            continue
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, size, i))  # lazy greedy: re-rank and retry
            continue
        covered |= edges[i]
        chosen.append(i)
    selected = {files[i] for i in keep + chosen}
    for path in files:
        if path not in selected:
            os.remove(path)
    print(f"{target}: kept {len(selected)} of {count} files, "
          f"{len(covered)} of {len(every)} edges ({100 * len(covered) / max(1, len(every)):.1f}%)")


if __name__ == "__main__":
    main()
