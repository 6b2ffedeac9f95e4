"""How much do the series' MovieLens results move with the training seed?

    python benchmarks/movielens_seeds.py                 # ~20 minutes on a 2-core CPU
    python benchmarks/movielens_seeds.py --seeds 0 1     # fewer runs

Trains, on the split of notebook 02 (``build_movielens_graph(ratings)``, seed 1), each with its
own recipe tuned on the validation split only:

* LightGCN (3 layers, 64 dimensions) with ``TrainConfig()`` (notebook 05) and MF-BPR (0 layers)
  with ``RECIPES["mf-movielens"]`` (its learning rate and λ chosen on validation,
  ``benchmarks/movielens_tuning.py``), for every seed of ``--seeds`` (default 0–4);
* LightGCN with 1, 2 and 4 layers (``TrainConfig()``) for the seeds of ``--layer-seeds``
  (default 0–2);

each evaluated once on the test split (training and validation likes masked), next to the
deterministic baselines on the same protocol: popularity, EASE (λ chosen on validation) and
GF-CF (``k`` and ``alpha`` chosen on validation), as in notebook 06. Writes
``benchmarks/records/movielens_seeds.json`` (every run, mean and standard deviation per model,
the validation search of each baseline, the machine and the command) and prints a table.
Notebook 06 reads this record and checks that its own seed-0 runs match it.
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

from lightgcn_helpers.baselines import GFCF, ease_scorer, popularity_scorer  # noqa: E402
from lightgcn_helpers.data import load_ratings  # noqa: E402
from lightgcn_helpers.env import machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, build_movielens_graph  # noqa: E402
from lightgcn_helpers.metrics import evaluate_scores  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.train import RECIPES, TrainConfig, evaluate_model, train_bpr  # noqa: E402

EASE_LAMBDAS = (20, 50, 100, 200, 500, 1000)
GFCF_KS = (16, 32, 64, 128, 256, 512)  # singular vectors (MovieLens has 610 users)
GFCF_ALPHAS = (0.0, 0.1, 0.3, 1.0)
RECORD = HERE / "records" / "movielens_seeds.json"


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs]
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def train_runs(graph, device, seeds, layer_seeds) -> list[dict]:
    """Every seeded run: 3-layer LightGCN and MF-BPR for ``seeds``, 1/2/4 layers for
    ``layer_seeds``, each with its recipe; test metrics of the best validation weights."""
    train, val, test = (e.to(device) for e in (graph.split.train, graph.split.val,
                                               graph.split.test))
    adj = graph.train_adjacency("csr").to(device)
    plan = [(3, s) for s in seeds] + [(0, s) for s in seeds] + [
        (layers, s) for layers in (1, 2, 4) for s in layer_seeds]
    runs = []
    for layers, seed in plan:
        cfg = replace(RECIPES["mf-movielens"] if layers == 0 else TrainConfig(), seed=seed)
        seed_everything(seed)
        model = LightGCN(graph.num_users, graph.num_items, 64, layers).to(device)
        result = train_bpr(model, adj, train, val, cfg, progress=False)
        m = evaluate_model(model, adj, test, [train, val], ks=(20,))
        runs.append({"layers": layers, "seed": seed, "val_recall@20": result.best_val,
                     "best_epoch": result.best_epoch, "epochs": result.epochs[-1],
                     "seconds": round(result.seconds, 1), "recall@20": m["recall@20"],
                     "ndcg@20": m["ndcg@20"]})
        print(f"layers {layers} seed {seed}: test Recall@20 {m['recall@20']:.4f} NDCG@20 "
              f"{m['ndcg@20']:.4f} (best validation {result.best_val:.4f} at epoch "
              f"{result.best_epoch}, {result.seconds:.0f} s)", flush=True)
    return runs


def chosen_on_validation(graph, scorers: dict) -> tuple[object, dict]:
    """The setting of ``scorers`` (setting → score_fn) with the best validation Recall@20, and
    every setting's validation Recall@20."""
    train, val = graph.split.train, graph.split.val
    val_recall = {key: evaluate_scores(fn, val, graph.num_items, [train], ks=(20,),
                                       chunk_size=1024)["recall@20"] for key, fn in scorers.items()}
    return max(val_recall, key=val_recall.get), val_recall


def baselines(graph) -> tuple[dict, dict]:
    """Popularity, EASE and GF-CF on the test split, EASE's λ and GF-CF's (k, alpha) chosen on
    validation; returns (test metrics by name, validation search by baseline)."""
    train, val, test = graph.split.train, graph.split.val, graph.split.test
    n_users, n_items = graph.num_users, graph.num_items

    def test_metrics(fn):
        m = evaluate_scores(fn, test, n_items, [train, val], ks=(20,), chunk_size=1024)
        return {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"]}

    out = {"popularity": test_metrics(popularity_scorer(train, n_items))}
    lam, ease_val = chosen_on_validation(
        graph, {lam: ease_scorer(train, n_users, n_items, lam) for lam in EASE_LAMBDAS})
    out[f"EASE (lambda {lam})"] = test_metrics(ease_scorer(train, n_users, n_items, lam))
    gf = GFCF(train, n_users, n_items, k=max(GFCF_KS), alpha=1.0)
    grid = {(k, a): gf.with_filter(k, a) for k in GFCF_KS for a in GFCF_ALPHAS
            if a or k == GFCF_KS[0]}  # alpha 0 (the linear filter alone) needs no k
    (k, a), gf_val = chosen_on_validation(graph, grid)
    name = f"GF-CF (k {k}, alpha {a:g})" if a else "GF-CF (linear filter only)"
    out[name] = test_metrics(gf.with_filter(k, a))
    search = {"EASE lambda": {str(key): v for key, v in ease_val.items()},
              "GF-CF (k, alpha)": {f"{kk}, {aa:g}" if aa else "linear filter only": v
                                   for (kk, aa), v in gf_val.items()}}
    return out, search


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
    t_start = time.perf_counter()
    runs = train_runs(graph, device, args.seeds, args.layer_seeds)
    base, search = baselines(graph)
    models = {}
    for layers in sorted({r["layers"] for r in runs}):
        sel = [r for r in runs if r["layers"] == layers]
        plural = "s" if layers > 1 else ""
        name = "MF-BPR (0 layers)" if layers == 0 else f"LightGCN ({layers} layer{plural})"
        models[name] = {k: summary(sel, k) for k in ("recall@20", "ndcg@20", "val_recall@20",
                                                     "seconds")}
    out = {"config": asdict(TrainConfig()), "mf_config": asdict(RECIPES["mf-movielens"]),
           "device": str(device), "seeds": args.seeds, "layer_seeds": args.layer_seeds,
           "command": "python benchmarks/movielens_seeds.py "
                      + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine, "wall_seconds": round(time.perf_counter() - t_start, 1),
           "runs": runs, "models": models, "baselines": base, "validation_search": search}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print("\n| model | test Recall@20 | test NDCG@20 | seeds |\n|---|---:|---:|---:|")
    for name, s in models.items():
        r, n = s["recall@20"], s["ndcg@20"]
        print(f"| {name} | {r['mean']:.4f} ± {r['sd']:.4f} | {n['mean']:.4f} ± {n['sd']:.4f} | "
              f"{r['n']} |")
    for name, b in base.items():
        print(f"| {name} | {b['recall@20']:.4f} | {b['ndcg@20']:.4f} | deterministic |")
    return out


if __name__ == "__main__":
    main()
