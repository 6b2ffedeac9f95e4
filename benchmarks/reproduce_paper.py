"""Reproduce the LightGCN paper's Gowalla result with the series' helpers.

    python benchmarks/reproduce_paper.py                      # the series' recipe, CPU
    python benchmarks/reproduce_paper.py --recipe paper --epochs 20
    python benchmarks/reproduce_paper.py --tune               # validation carved from train.txt
    python benchmarks/reproduce_paper.py --tune --val-popularity 0.15   # ... as popular as test.txt
    python benchmarks/reproduce_paper.py --device cuda

The paper's protocol (He et al., SIGIR 2020, Table 3): the authors' Gowalla split
(29,858 users, 40,981 items, 810,128 training and 217,242 test interactions, loaded
through ``lightgcn_helpers.datasets``), 3 layers, 64 dimensions, Recall@20 and NDCG@20 over
all users with a test interaction, ranking all items with the training items masked.
Paper: Recall@20 0.1830, NDCG@20 0.1554.

Recipes (``--recipe``):

* ``paper``: one uniform negative per (user, item) pair, Adam lr 1e-3, batch 2,048,
  λ = 1e-4, constant learning rate; the paper trains about 1,000 epochs.
* ``series-gowalla`` (default): the series' recipe (negatives shared per user, each pair
  against the hardest of them, decaying learning rate) with the batch size, learning rate,
  decay and λ chosen for this graph on a **validation split carved from the training
  file** (``--tune``), never on the test file; the number of epochs is fixed in advance;
* ``series-gowalla-64``: the same with the hardest 8 of 64 candidates and 300 epochs, best on
  validation but not on the test file (``benchmarks/README.md``, ``gowalla_splits.py``);
* ``series-gowalla-pairs``: ``series-gowalla`` with the candidates drawn for every pair rather
  than once per user and batch, best on a validation share drawn to be as popular as the test
  file (``--tune --val-popularity 0.15``);
* ``series-gowalla-mix``: ``series-gowalla`` trained against one *synthesised* negative per pair
  (MixGCF: in every layer the hardest of 64 candidates, mixed with the liked item; λ 3e-3),
  chosen on the same popularity-matched validation share;
* ``series``: ``TrainConfig()`` as tuned on MovieLens.

Without ``--tune`` the test split is evaluated every ``--eval-every`` epochs; these
evaluations only *record* the trajectory (nothing is chosen by them) and are timed
separately. Writes a JSON file (``--out``) with the machine, the command, the
configuration and the trajectory (one record per evaluation with ``"recall@20"`` and
``"ndcg@20"``), and prints a table next to the paper's figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402

from lightgcn_helpers.datasets import load_dataset  # noqa: E402
from lightgcn_helpers.env import load_average, machine_info, pick_device, seed_everything  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning  # noqa: E402
from lightgcn_helpers.model import LightGCN  # noqa: E402
from lightgcn_helpers.train import RECIPES, TrainConfig, evaluate_model, train_bpr  # noqa: E402

from gowalla_splits import popularity_validation  # noqa: E402

PAPER = {"gowalla": {"recall@20": 0.1830, "ndcg@20": 0.1554}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="gowalla", choices=["gowalla", "yelp2018", "amazon-book"])
    p.add_argument("--recipe", default="series-gowalla", choices=sorted(RECIPES),
                   help="a preset of lightgcn_helpers.train.RECIPES (default series-gowalla)")
    p.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    p.add_argument("--eval-every", type=int,
                   help="epochs between evaluations (default: the recipe's eval_every)")
    p.add_argument("--eval-epochs", default="", help="more epochs to evaluate at, e.g. 1,2,3")
    p.add_argument("--tune", action="store_true",
                   help="evaluate on a validation split carved from train.txt")
    p.add_argument("--val-frac", type=float, default=0.2,
                   help="share of train.txt held out with --tune (default 0.2, as "
                        "RECIPES['series-gowalla'] was chosen)")
    p.add_argument("--val-popularity", type=float, metavar="EXP",
                   help="with --tune: draw the validation share with probability proportional to "
                        "(item's training "
                        "degree)^EXP instead of uniformly (gowalla_splits.py shows which EXP "
                        "matches test.txt)")
    p.add_argument("--alpha", metavar="A0,A1,A2,A3",
                   help="LightGCN's layer weights (default 1/4 each, as the paper); the paper "
                        "calls them a hyper-parameter")
    p.add_argument("--minutes", type=float,
                   help="stop after this much wall time (training + evaluation)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field, e.g. --set lr=0.01 --set batch_size=65536")
    p.add_argument("--out", type=Path,
                   help="JSON file to write (default benchmarks/results/<dataset>-<recipe>.json)")
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    return p.parse_args(argv)


def config_from(args) -> TrainConfig:
    cfg = replace(RECIPES[args.recipe], seed=args.seed)
    if args.eval_every:
        cfg = replace(cfg, eval_every=args.eval_every)
    if args.epochs:
        cfg = replace(cfg, epochs=args.epochs)
    fields = TrainConfig.__dataclass_fields__
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item}: TrainConfig has no field {key!r} (fields: "
                             f"{', '.join(fields)})")
        default = getattr(TrainConfig(), key)
        if value == "None":
            parsed = None
        elif isinstance(default, bool):
            parsed = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int) or default is None:  # None: hard_/synthetic_negatives
            parsed = int(value)
        else:
            parsed = float(value)
        cfg = replace(cfg, **{key: parsed})
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.val_popularity is not None and not args.tune:
        raise SystemExit("--val-popularity shapes the validation split: use it with --tune")
    cfg = config_from(args)
    device = pick_device(args.device)
    machine = machine_info(device)  # load_at_start: read before anything runs
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t_wall = time.perf_counter()
    seed_everything(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        graph = load_dataset(args.dataset).graph(val_frac=args.val_frac if args.tune else 0.0,
                                                 seed=args.seed)
        # the validation share drawn again, favouring popular items
        if args.val_popularity is not None:
            graph = popularity_validation(graph, args.val_frac, args.val_popularity, args.seed)
    part = "validation" if args.tune else "test"
    train = graph.split.train.to(device)
    target = (graph.split.val if args.tune else graph.split.test).to(device)
    adj = graph.train_adjacency("csr").to(device)
    say(f"{graph}\n{args.recipe} recipe on {device}: {cfg}\nevaluating on the {part} split every "
        f"{cfg.eval_every} epochs ({graph.split.sizes()[1 if args.tune else 2]:,} interactions)")
    alpha = torch.tensor([float(a) for a in args.alpha.split(",")]) if args.alpha else None
    model = LightGCN(graph.num_users, graph.num_items, 64, 3, alpha=alpha).to(device)
    trajectory = []
    t_start = time.perf_counter()
    eval_total = [0.0]

    extra = {int(e) for e in args.eval_epochs.split(",") if e.strip()}

    def record(epoch: int, result) -> bool:
        if epoch % cfg.eval_every and epoch != cfg.epochs and epoch not in extra:
            return False
        t0 = time.perf_counter()
        m = evaluate_model(model, adj, target, [train], ks=(20,))
        eval_s = time.perf_counter() - t0
        eval_total[0] += eval_s
        rec = {"epoch": epoch, "train_seconds": round(result.seconds, 2),
               "eval_seconds": round(eval_s, 2),
               "wall_seconds": round(time.perf_counter() - t_start,
                                     2), "loss": round(result.loss[-1], 6),
               "recall@20": round(m["recall@20"], 5), "ndcg@20": round(m["ndcg@20"], 5)}
        trajectory.append(rec)
        say(f"epoch {epoch:4d}  loss {rec['loss']:.4f}  {part} Recall@20 {rec['recall@20']:.4f}  "
            f"NDCG@20 {rec['ndcg@20']:.4f}  train {rec['train_seconds']:7.1f} s  eval "
            f"{eval_s:5.1f} s  "
            f"wall {rec['wall_seconds'] / 60:5.1f} min")
        return args.minutes is not None and rec["wall_seconds"] > 60 * args.minutes

    result = train_bpr(model, adj, train, None, cfg, progress=False, callback=record)
    epochs_run = result.epochs[-1] if result.epochs else 0
    if not trajectory or trajectory[-1]["epoch"] != epochs_run:
        record(cfg.epochs, result)  # the final state is always evaluated
    final = trajectory[-1]
    out = {
        "load_at_end": load_average(),
        "dataset": args.dataset, "split": part, "val_popularity": args.val_popularity,
        "alpha": [round(a, 6) for a in model.alpha.tolist()], "recipe": args.recipe,
        "config": asdict(cfg),
        "command": "python benchmarks/reproduce_paper.py "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": str(device), "machine": machine,
        "graph": {"users": graph.num_users, "items": graph.num_items,
                  "train": graph.split.sizes()[0],
                  "evaluated": graph.split.sizes()[1 if args.tune else 2]},
        "paper": PAPER.get(args.dataset), "trajectory": trajectory, "final": final,
        "train_seconds": round(result.seconds, 1), "eval_seconds": round(eval_total[0], 1),
        "seconds_per_epoch": round(result.seconds / max(epochs_run, 1), 2),
        "wall_seconds": round(time.perf_counter() - t_wall, 1),
    }
    tuned = "-tune" if args.tune else ""
    path = args.out or HERE / "results" / f"{args.dataset}-{args.recipe}{tuned}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    paper = PAPER.get(args.dataset) or {}
    print(f"\n| {args.dataset} ({part}) | Recall@20 | NDCG@20 | epochs | time "
          "|\n|---|---:|---:|---:|---:|")
    if paper and not args.tune:
        print(f"| LightGCN paper (3 layers, 64 dims) | {paper['recall@20']:.4f} | "
              f"{paper['ndcg@20']:.4f} | ~1000 | |")
    print(f"| this run, {args.recipe} recipe, {device} | {final['recall@20']:.4f} | "
          f"{final['ndcg@20']:.4f} | "
          f"{final['epoch']} | {out['wall_seconds'] / 60:.1f} min wall "
          f"({out['seconds_per_epoch']:.1f} s/epoch "
          f"training, {out['eval_seconds']:.0f} s evaluating) |")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return out


if __name__ == "__main__":
    main()
