"""Validation-only tuning runs on MovieLens that back two statements of the series.

    python benchmarks/movielens_tuning.py              # both studies, ~35 minutes on 2 cores
    python benchmarks/movielens_tuning.py --study mf   # MF-BPR's learning rate and lambda only
    python benchmarks/movielens_tuning.py --study mf --lrs 0.03 --lambdas 0.01 0.02 --out ...

* ``mf``: MF-BPR (``LightGCN(num_layers=0)``) gets its own learning rate and λ, chosen on the
  **validation** split over a small grid (three seeds each), as EASE's λ and LightGCN's recipe
  were; everything else is ``TrainConfig()``. The winner is ``RECIPES["mf-movielens"]``, which
  notebook 06 and ``benchmarks/movielens_seeds.py`` train.
* ``lightgcn``: ``TrainConfig()`` (3 layers) at other values of λ (``--lambdas``), to check
  the recipe's λ the same way.
* ``long``: notebook 05's ablation measures λ and the learning-rate decay at a short budget; this
  study trains the three last rows of that ablation to the end (early stopping on validation,
  three seeds), to see whether they pay off in full-length runs.

Only validation metrics are computed: the test split is never read. Writes
``benchmarks/records/movielens_tuning.json`` (every run, the means, the machine, the command);
when that file exists, the new rows are added to it (``commands`` lists every run that made it)
and each study's best row is chosen again over all of its rows.
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

from lightgcn_helpers.data import load_ratings  # noqa: E402
from lightgcn_helpers.env import machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, build_movielens_graph  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.train import TrainConfig, evaluate_model, train_bpr  # noqa: E402

RECORD = HERE / "records" / "movielens_tuning.json"
MF_LRS = (0.003, 0.01, 0.03)
MF_LAMBDAS = (5e-4, 2e-3, 5e-3)
SERIES = TrainConfig()
LONG = {  # notebook 05's last three ablation rows, trained to the end
    "hardest 8 (lambda 1e-4, constant lr)": dict(layers=3, l2_lambda=1e-4, lr_decay=1.0),
    f"+ lambda {SERIES.l2_lambda:g}": dict(layers=3, l2_lambda=SERIES.l2_lambda, lr_decay=1.0),
    f"+ lr decay {SERIES.lr_decay} (TrainConfig())": dict(layers=3),
}


def grid(study: str, lrs=MF_LRS, lambdas=MF_LAMBDAS) -> dict[str, dict]:
    if study == "mf":
        return {f"MF lr {lr:g} lambda {lam:g}": dict(layers=0, lr=lr, l2_lambda=lam)
                for lr in lrs for lam in lambdas}
    if study == "lightgcn":
        return {f"LightGCN lambda {lam:g}": dict(layers=3, l2_lambda=lam) for lam in lambdas}
    return LONG


def one_run(graph, device, setting: dict, seed: int) -> dict:
    setting = dict(setting)
    layers = setting.pop("layers")
    cfg = replace(SERIES, seed=seed, **setting)
    train, val = graph.split.train.to(device), graph.split.val.to(device)
    adj = graph.train_adjacency("csr").to(device)
    seed_everything(seed)
    model = LightGCN(graph.num_users, graph.num_items, 64, layers).to(device)
    result = train_bpr(model, adj, train, val, cfg, progress=False)
    m = evaluate_model(model, adj, val, [train], ks=(20,))  # the restored best weights
    return {"seed": seed, "val_recall@20": m["recall@20"], "val_ndcg@20": m["ndcg@20"],
            "best_epoch": result.best_epoch, "epochs": result.epochs[-1],
            "seconds": round(result.seconds, 1), "config": asdict(cfg), "layers": layers}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", choices=["mf", "long", "lightgcn", "all"], default="all",
                   help="all: mf and long; lightgcn: TrainConfig() at each of --lambdas")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lrs", type=float, nargs="+", default=list(MF_LRS), help="MF learning rates")
    p.add_argument("--lambdas", type=float, nargs="+", default=list(MF_LAMBDAS), help="MF lambdas")
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=RECORD)
    args = p.parse_args(argv)
    device = pick_device(args.device)
    machine = machine_info(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        graph = build_movielens_graph(load_ratings())
    t0 = time.perf_counter()
    studies = ["mf", "long"] if args.study == "all" else [args.study]
    command = "python benchmarks/movielens_tuning.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out = {"commands": [], "machine": machine, "seeds": args.seeds, "split": "validation",
           "studies": {}}
    if args.out.is_file():  # add to the record: earlier grids stay, the best is chosen over all
        out = json.loads(args.out.read_text())
    out["commands"].append({"command": command, "machine": machine})
    for study in studies:
        rows = out["studies"].get(study, {}).get("rows", {})
        for name, setting in grid(study, args.lrs, args.lambdas).items():
            runs = [one_run(graph, device, setting, s) for s in args.seeds]
            rec, ndcg = [r["val_recall@20"] for r in runs], [r["val_ndcg@20"] for r in runs]
            rows[name] = {"runs": runs, "val_recall@20": statistics.fmean(rec),
                          "val_recall@20_sd": statistics.stdev(rec) if len(rec) > 1 else 0.0,
                          "val_ndcg@20": statistics.fmean(ndcg)}
            print(f"{study:4} {name:44} validation Recall@20 {rows[name]['val_recall@20']:.4f} ± "
                  f"{rows[name]['val_recall@20_sd']:.4f}  NDCG@20 {rows[name]['val_ndcg@20']:.4f}  "
                  f"epochs {[r['epochs'] for r in runs]}", flush=True)
        best = max(rows, key=lambda n: rows[n]["val_recall@20"])
        out["studies"][study] = {"rows": rows, "best": best}
    out["commands"][-1]["wall_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for study, res in out["studies"].items():
        print(f"{study}: best on validation = {res['best']}")
    return out


if __name__ == "__main__":
    main()
