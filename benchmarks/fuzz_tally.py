"""Outcome classes of the fuzz properties (issue 19), for a source tree: how many cases gave an
obscure error (A), a silently wrong result (B), a hang or runaway allocation (C), executed
untrusted data (D), or behaved (E: a right answer or a clear error naming the argument).

    python benchmarks/fuzz_tally.py                        # this tree, slow profile
    python benchmarks/fuzz_tally.py --tree OLD --label before --profile ci

``--tree`` runs the same properties (``tests/fuzz``) against another checkout of the package
(``git worktree add /tmp/before <commit>``); results from every label are kept side by side
in ``results/fuzz_tally.json`` and the table ``results/fuzz_tally.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, markdown, write

ROOT = Path(__file__).resolve().parent.parent
CLASSES = "ABCDE"


def run(tree: Path, profile: str, workers: int) -> tuple[list[dict], float]:
    """Every fuzz case's record, from one pytest run in tally mode."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        tally = f.name
    env = {**os.environ, "NEURALSDE_FUZZ_TALLY": tally, "NEURALSDE_FUZZ_PROFILE": profile,
           "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}  # fmt: skip
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n",
                    str(workers), str(ROOT / "tests" / "fuzz")], env=env, cwd="/",
                   check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in Path(tally).read_text().splitlines()]
    os.unlink(tally)
    return rows, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    parser.add_argument("--profile", default="slow", choices=("ci", "slow"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows, seconds = run(args.tree.resolve(), args.profile, args.workers)
    counts = collections.defaultdict(collections.Counter)
    examples = collections.defaultdict(dict)
    for r in rows:
        counts[r["property"]][r["class"]] += 1
        if r["class"] != "E":
            examples[r["property"]].setdefault(r["class"], r["detail"][:200])
    path = RESULTS / "fuzz_tally.json"
    payload = json.loads(path.read_text()) if path.exists() else {}
    payload.pop("machine", None)
    payload[args.label] = {
        "tree": str(args.tree), "profile": args.profile, "seconds": round(seconds, 1),
        "cases": len(rows), "counts": {k: dict(v) for k, v in sorted(counts.items())},
        "examples": examples,
    }  # fmt: skip
    labels = [k for k in payload if isinstance(payload[k], dict) and "counts" in payload[k]]
    props = sorted({p for k in labels for p in payload[k]["counts"]})
    header = ["property", *[f"{k} {c}" for k in labels for c in CLASSES]]
    table = []
    for p in [*props, "all"]:
        cells = []
        for k in labels:
            per = payload[k]["counts"]
            got = collections.Counter()
            for q in props if p == "all" else [p]:
                got.update(per.get(q, {}))
            cells += [got.get(c, 0) for c in CLASSES]
        table.append([p, *cells])
    note = "; ".join(f"{k}: {payload[k]['cases']} cases ({payload[k]['profile']} profile) in "
                     f"{payload[k]['seconds']:.0f} s" for k in labels)  # fmt: skip
    write("fuzz_tally", payload, markdown(header, table) + f"\n\n{note}")


if __name__ == "__main__":
    main()
