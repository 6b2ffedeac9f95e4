"""How much do the series' MovieLens results move with the training seed?

    python benchmarks/movielens_seeds.py                 # ~15 minutes on a 2-core CPU
    python benchmarks/movielens_seeds.py --seeds 0 1     # fewer runs

Trains, on the split of notebook 02 (``build_movielens_graph(ratings)``, seed 1) and with
``TrainConfig()`` — the series' recipe, tuned on the validation split only —

* LightGCN (3 layers, 64 dimensions) and MF-BPR (0 layers) for every seed of ``--seeds``
  (default 0–4);
* LightGCN with 1, 2 and 4 layers for the seeds of ``--layer-seeds`` (default 0–2);

each evaluated once on the test split (training and validation likes masked), next to the
two deterministic baselines on the same protocol: popularity and EASE (λ chosen on
validation as in notebook 06). Writes ``benchmarks/records/movielens_seeds.json`` (every
run, mean and standard deviation per model, the machine and the command) and prints a
table. Notebook 06 reads this record and checks that its own seed-0 runs match it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lightgcn_helpers.baselines import ease_scorer, popularity_scorer  # noqa: E402
from lightgcn_helpers.data import load_ratings  # noqa: E402
from lightgcn_helpers.env import machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, build_movielens_graph  # noqa: E402
from lightgcn_helpers.metrics import evaluate_scores  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.train import TrainConfig, evaluate_model, train_bpr  # noqa: E402

EASE_LAMBDAS = (20, 50, 100, 200, 500, 1000)
RECORD = HERE / "records" / "movielens_seeds.json"


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs]
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--layer-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=RECORD)
    args = p.parse_args(argv)
    device = pick_device(args.device)
    machine = machine_info(device)  # load_at_start: read before anything runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        graph = build_movielens_graph(load_ratings())
    train, val, test = (e.to(device) for e in (graph.split.train, graph.split.val,
                                               graph.split.test))
    adj = graph.train_adjacency("csr").to(device)
    cfg = TrainConfig()
    t_start = time.perf_counter()
    runs = []
    plan = [(3, s) for s in args.seeds] + [(0, s) for s in args.seeds] + [
        (layers, s) for layers in (1, 2, 4) for s in args.layer_seeds]
    for layers, seed in plan:
        seed_everything(seed)
        model = LightGCN(graph.num_users, graph.num_items, 64, layers).to(device)
        result = train_bpr(model, adj, train, val, replace(cfg, seed=seed), progress=False)
        m = evaluate_model(model, adj, test, [train, val], ks=(20,))
        runs.append({"layers": layers, "seed": seed, "val_recall@20": result.best_val,
                     "best_epoch": result.best_epoch,
                     "epochs": result.epochs[-1], "seconds": round(result.seconds, 1),
                     "recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"]})
        print(f"layers {layers} seed {seed}: test Recall@20 {m['recall@20']:.4f} NDCG@20 "
              f"{m['ndcg@20']:.4f} "
              f"(best validation {result.best_val:.4f} at epoch {result.best_epoch}, "
              f"{result.seconds:.0f} s)", flush=True)
    baselines = {"popularity": evaluate_scores(popularity_scorer(train, graph.num_items), test,
                                               graph.num_items,
                                               [train, val], ks=(20,))}
    def ease(lam):
        return ease_scorer(train, graph.num_users, graph.num_items, lam)

    val_recall = {lam: evaluate_scores(ease(lam), val, graph.num_items, [train],
                                       ks=(20,))["recall@20"] for lam in EASE_LAMBDAS}
    lam = max(val_recall, key=val_recall.get)
    baselines[f"EASE (lambda {lam})"] = evaluate_scores(ease(lam), test, graph.num_items,
                                                        [train, val], ks=(20,))
    models = {}
    for layers in sorted({r["layers"] for r in runs}):
        sel = [r for r in runs if r["layers"] == layers]
        plural = "s" if layers > 1 else ""
        name = "MF-BPR (0 layers)" if layers == 0 else f"LightGCN ({layers} layer{plural})"
        models[name] = {k: summary(sel, k) for k in ("recall@20", "ndcg@20", "val_recall@20",
                                                     "seconds")}
    out = {"config": asdict(cfg), "device": str(device), "seeds": args.seeds,
           "layer_seeds": args.layer_seeds,
           "command": "python benchmarks/movielens_seeds.py "
                      + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine,
           "wall_seconds": round(time.perf_counter() - t_start, 1), "runs": runs, "models": models,
           "baselines": {k: {"recall@20": v["recall@20"],
                             "ndcg@20": v["ndcg@20"]} for k, v in baselines.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print("\n| model | test Recall@20 | test NDCG@20 | seeds |\n|---|---:|---:|---:|")
    for name, s in models.items():
        r, n = s["recall@20"], s["ndcg@20"]
        print(f"| {name} | {r['mean']:.4f} ± {r['sd']:.4f} | {n['mean']:.4f} ± {n['sd']:.4f} | "
              f"{r['n']} |")
    for name, b in out["baselines"].items():
        print(f"| {name} | {b['recall@20']:.4f} | {b['ndcg@20']:.4f} | deterministic |")
    return out


if __name__ == "__main__":
    main()
