#!/usr/bin/env python3
"""The results tables of README.md and docs/results.md, made from the committed records (never
typed by hand).

    python tools/results_table.py            # print every table
    python tools/results_table.py --write    # put each between its markers in README and docs

MovieLens: ``benchmarks/records/movielens_seeds.json`` (LightGCN and MF-BPR over five seeds,
the deterministic baselines with their settings chosen on validation). Gowalla:
``gowalla-series-mix*.json`` (the reproduction, one record per seed), ``gowalla-baselines.json``
(popularity, GF-CF) and ``gowalla-published.json`` (numbers from papers, marked as such).
Speed, scaling and mini-batch lines: ``gowalla_speed.json``, ``scaling.json``,
``minibatch_vs_fullgraph.json``. ``tests/test_readme.py`` fails when a table in README.md or
docs/results.md differs from what this prints.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "records"
TUNED = {"popularity": "nothing to tune", "MF-BPR": "lr, λ (benchmarks/movielens_tuning.py)",
         "EASE": "λ", "GF-CF": "k, α", "LightGCN": "TrainConfig() (notebook 05)"}


def load(name: str) -> dict:
    return json.loads((RECORDS / name).read_text())


def spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def movielens() -> dict[str, tuple[str, str]]:
    rec = load("movielens_seeds.json")
    rows = {}
    for name, layers in (("MF-BPR", 0), ("LightGCN", 3)):
        runs = [r for r in rec["runs"] if r["layers"] == layers]
        rows[name] = (spread([r["recall@20"] for r in runs]), spread([r["ndcg@20"] for r in runs]))
    for name, b in rec["baselines"].items():
        label = name.split(" (")[0]
        rows[label] = (f"{b['recall@20']:.4f}", f"{b['ndcg@20']:.4f}")
    return rows


def reproduction() -> list[dict]:
    """The reproduction's records, one per seed, in seed order."""
    return sorted((json.loads(p.read_text()) for p in RECORDS.glob("gowalla-series-mix*.json")),
                  key=lambda r: r["config"]["seed"])


def gowalla() -> tuple[dict[str, tuple[str, str]], int]:
    finals = [r["final"] for r in reproduction()]
    rows = {"LightGCN": (spread([f["recall@20"] for f in finals]),
                         spread([f["ndcg@20"] for f in finals]))}
    for name, m in load("gowalla-baselines.json")["models"].items():
        if name == "popularity" or name.startswith("GF-CF (k"):
            label = name.split(" (")[0]
            rows[label] = (f"{m['recall@20']:.4f}", f"{m['ndcg@20']:.4f}")
    published = load("gowalla-published.json")["models"]
    for label, key in (("MF-BPR", "MF-BPR (BARS)"), ("EASE", "EASE^R (BARS)"),
                       ("LightGCN, the paper", "LightGCN (paper)")):
        p = published[key]
        rows[label] = (f"{p['recall@20']:.4f}*", f"{p['ndcg@20']:.4f}*")
    return rows, len(finals)


def glance() -> str:
    """README's table: both datasets, the strongest models."""
    ml = movielens()
    gw, n_seeds = gowalla()
    order = ["popularity", "MF-BPR", "EASE", "GF-CF", "LightGCN", "LightGCN, the paper"]
    lines = ["| model | MovieLens Recall@20 | MovieLens NDCG@20 | Gowalla Recall@20 "
             "| Gowalla NDCG@20 |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in order:
        a, b = ml.get(name, ("—", "—"))
        c, d = gw.get(name, ("—", "—"))
        label = f"**{name}**" if name == "LightGCN" else name
        lines.append(f"| {label} | {a} | {b} | {c} | {d} |")
    lines.append("")
    lines.append(f"LightGCN and MF-BPR: mean ± standard deviation over seeds (MovieLens 5, "
                 f"Gowalla {n_seeds}); the others are deterministic. \\* published on the same "
                 "split (BARS benchmark; the LightGCN paper), not re-run here.")
    return "\n".join(lines)


def movielens_full() -> str:
    """docs/results.md: every MovieLens model of the seeds record, with how it was tuned."""
    rec = load("movielens_seeds.json")
    lines = ["| model | test Recall@20 | test NDCG@20 | lowest seed (Recall) | seeds | tuned on "
             "validation |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, m in rec["models"].items():
        r, n = m["recall@20"], m["ndcg@20"]
        how = TUNED["MF-BPR"] if name.startswith("MF") else TUNED["LightGCN"]
        lines.append(f"| {name} | {r['mean']:.4f} ± {r['sd']:.4f} | {n['mean']:.4f} ± "
                     f"{n['sd']:.4f} | {r['min']:.4f} | {r['n']} | {how} |")
    for name, b in rec["baselines"].items():
        how = TUNED[name.split(" (")[0]]
        lines.append(f"| {name} | {b['recall@20']:.4f} | {b['ndcg@20']:.4f} | — | "
                     f"deterministic | {how} |")
    return "\n".join(lines)


def gowalla_full() -> str:
    """docs/results.md: the Gowalla ladder, measured (with wall time) and published."""
    rows = []
    for name, m in load("gowalla-baselines.json")["models"].items():
        rows.append((m["recall@20"], name, f"{m['ndcg@20']:.4f}", f"{m['seconds'] / 60:.1f} min",
                     "measured, no training (gowalla-baselines.json)"))
    series = load("gowalla-series.json")
    rows.append((series["final"]["recall@20"], "LightGCN, series-gowalla (1 seed)",
                 f"{series['final']['ndcg@20']:.4f}", f"{series['wall_seconds'] / 60:.1f} min",
                 "measured, trained (gowalla-series.json)"))
    seeds = reproduction()
    rec = [r["final"]["recall@20"] for r in seeds]
    rows.append((statistics.fmean(rec), f"LightGCN, series-gowalla-mix ({len(seeds)} seeds)",
                 spread([r["final"]["ndcg@20"] for r in seeds]),
                 f"{seeds[0]['wall_seconds'] / 60:.1f} min (seed 0)",
                 "measured, trained (gowalla-series-mix*.json)"))
    for name, p in load("gowalla-published.json")["models"].items():
        rows.append((p["recall@20"], name, f"{p['ndcg@20']:.4f}", "—", f"published: {p['source']}"))
    lines = ["| model | test Recall@20 | test NDCG@20 | wall time, 2-core CPU | source |",
             "| --- | ---: | ---: | ---: | --- |"]
    for recall, name, ndcg, minutes, source in sorted(rows):
        shown = spread(rec) if name.startswith("LightGCN, series-gowalla-mix") else f"{recall:.4f}"
        lines.append(f"| {name} | {shown} | {ndcg} | {minutes} | {source} |")
    return "\n".join(lines)


def gowalla_seeds() -> str:
    """docs/results.md: every seed of the reproduction, with the conditions it ran in."""
    seeds = reproduction()
    lines = ["| seed | test Recall@20 | test NDCG@20 | epochs | wall time | torch threads | load "
             "average at the start |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in seeds:
        m, t = r["machine"], r["final"]
        lines.append(f"| {r['config']['seed']} | {t['recall@20']:.4f} | {t['ndcg@20']:.4f} | "
                     f"{t['epoch']} | {r['wall_seconds'] / 60:.1f} min | {m['torch_threads']} | "
                     f"{m['load_at_start']:.1f} |")
    return "\n".join(lines)


BLOCKS = {  # file -> {block name: function}
    "README.md": {"results": glance},
    "docs/results.md": {"movielens": movielens_full, "gowalla": gowalla_full,
                        "gowalla-seeds": gowalla_seeds},
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def render(path: str = "README.md", name: str = "results") -> str:
    return BLOCKS[path][name]()


def main(argv: list[str]) -> int:
    for path, blocks in BLOCKS.items():
        file = ROOT / path
        text = file.read_text()
        for name, make in blocks.items():
            table = make()
            if "--write" not in argv:
                print(f"{path}, {name}:\n{table}\n")
                continue
            start, end = markers(name)
            block = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
            if not block.search(text):
                print(f"{path} has no {start} ... {end} block", file=sys.stderr)
                return 1
            text = block.sub(lambda _, t=table, s=start, e=end: f"{s}\n{t}\n{e}", text)
        if "--write" in argv:
            file.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
