"""Training-free baselines on the LightGCN paper's Gowalla split, timed: popularity and GF-CF.

    python benchmarks/gowalla_baselines.py            # ~2 minutes on a 2-core CPU
    python benchmarks/gowalla_baselines.py --k 256 --alpha 0.3 --device cuda

GF-CF (Shen et al., CIKM 2021; ``lightgcn_helpers.baselines.GFCF``) with the official code's
Gowalla settings (``k = 256`` singular vectors, ``alpha = 0.3``), and its linear part alone
(``alpha = 0``, no SVD), next to popularity: the paper's protocol (all items ranked, training
items masked, every user with a test interaction). Nothing here is chosen on the test file:
the settings are the official ones. Writes ``benchmarks/records/gowalla-baselines.json`` (each
model's metrics, fit and evaluation seconds, the machine, the command) and prints a table.
Published numbers of models not re-run here are in ``benchmarks/records/gowalla-published.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lightgcn_helpers.baselines import GFCF, popularity_scorer  # noqa: E402
from lightgcn_helpers.datasets import load_dataset  # noqa: E402
from lightgcn_helpers.env import load_average, machine_info, pick_device  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning  # noqa: E402
from lightgcn_helpers.metrics import evaluate_scores  # noqa: E402

RECORD = HERE / "records" / "gowalla-baselines.json"
CHUNK = 1024  # users scored per GF-CF call: it multiplies by R̃ twice per call


def evaluate_baselines(graph, device, k: int = 256, alpha: float = 0.3) -> dict[str, dict]:
    """Popularity, GF-CF's linear filter and GF-CF on ``graph``'s test split, timed."""
    train, test = graph.split.train.to(device), graph.split.test.to(device)
    rows = {}
    models = {"popularity": lambda: popularity_scorer(train, graph.num_items),
              "GF-CF, linear filter only (alpha 0)":
                  lambda: GFCF(train, graph.num_users, graph.num_items, alpha=0.0),
              f"GF-CF (k {k}, alpha {alpha:g})":
                  lambda: GFCF(train, graph.num_users, graph.num_items, k=k, alpha=alpha)}
    for name, fit in models.items():
        t0 = time.perf_counter()
        score_fn = fit()
        t1 = time.perf_counter()
        m = evaluate_scores(score_fn, test, graph.num_items, [train], ks=(20,), chunk_size=CHUNK)
        t2 = time.perf_counter()
        rows[name] = {"recall@20": round(m["recall@20"], 5), "ndcg@20": round(m["ndcg@20"], 5),
                      "fit_seconds": round(t1 - t0, 1), "eval_seconds": round(t2 - t1, 1),
                      "seconds": round(t2 - t0, 1), "users": m["users"]}
        print(f"{name:38} Recall@20 {m['recall@20']:.4f}  NDCG@20 {m['ndcg@20']:.4f}  "
              f"fit {t1 - t0:6.1f} s  evaluate {t2 - t1:6.1f} s", flush=True)
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="gowalla", choices=["gowalla", "yelp2018", "amazon-book"])
    p.add_argument("--k", type=int, default=256, help="GF-CF's singular vectors (official: 256)")
    p.add_argument("--alpha", type=float, default=0.3,
                   help="GF-CF's low-pass weight (official: 0.3)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=RECORD)
    args = p.parse_args(argv)
    device = pick_device(args.device)
    machine = machine_info(device)  # load_at_start: read before anything runs
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        graph = load_dataset(args.dataset).graph(val_frac=0.0)
    rows = evaluate_baselines(graph, device, args.k, args.alpha)
    out = {"dataset": args.dataset, "split": "test", "device": str(device), "machine": machine,
           "command": "python benchmarks/gowalla_baselines.py " + " ".join(
               argv if argv is not None else sys.argv[1:]),
           "graph": {"users": graph.num_users, "items": graph.num_items,
                     "train": graph.split.sizes()[0], "evaluated": graph.split.sizes()[2]},
           "models": rows, "wall_seconds": round(time.perf_counter() - t0, 1),
           "load_at_end": load_average()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\n| {args.dataset} (test) | Recall@20 | NDCG@20 | time |\n|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['seconds']:.0f} s |")
    return out


if __name__ == "__main__":
    main()
