"""Is a validation split carved from Gowalla's train.txt distributed like its test file?

    python benchmarks/gowalla_splits.py [--val-frac 0.2] [--val-popularity 0.1,0.15,0.2] \\
        [--out FILE]

``reproduce_paper.py --tune`` chooses the recipe on a random share of ``train.txt``; the
result is then measured on the authors' ``test.txt``. This script compares the two held-out
sets *on the same training graph* (``train.txt`` minus the validation share), so that only the
held-out pairs differ: how popular their items are in training, and what the popularity
baseline (every user gets the most-liked items) scores on each — a model-free measure of how
much a split rewards ranking popular items. The full-training-file row is the test run's own
setting. Only aggregate statistics of the test file are read; nothing is tuned on them.

``--val-popularity EXP[,EXP...]`` adds validation shares drawn with probability proportional
to (item's training degree)^EXP (:func:`popularity_carve`; 0 is the random carve): the
exponent at which the popularity baseline scores on the validation share what it scores on
``test.txt`` gives a validation split that rewards popular items as much as the test file
does (``reproduce_paper.py --tune --val-popularity EXP``). Choosing that exponent reads one
model-free statistic of the test file (the popularity baseline's score); no model or
hyper-parameter is ever evaluated on it.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lightgcn_helpers.baselines import popularity_scorer  # noqa: E402
from lightgcn_helpers.datasets import load_dataset  # noqa: E402
from lightgcn_helpers.graph import ColdStartWarning, EdgeSplit, InteractionGraph  # noqa: E402
from lightgcn_helpers.metrics import evaluate_scores  # noqa: E402


def popularity_carve(train: torch.Tensor, num_items: int, frac: float, exponent: float,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``train`` (``(2, E)``) into ``(rest, held)``: ``round(frac * E)`` pairs held out,
    drawn without replacement with probability proportional to (their item's degree in
    ``train``)^``exponent``; ``exponent=0`` is a uniform random carve. Seeded, in order."""
    if not 0 < frac < 1:
        raise ValueError(f"frac={frac} must be in (0, 1)")
    n_held = round(frac * train.shape[1])
    gen = torch.Generator().manual_seed(seed)
    degree = torch.bincount(train[1], minlength=num_items).double()
    weight = degree[train[1]] ** exponent
    idx = torch.multinomial(weight, n_held, replacement=False, generator=gen)
    held = torch.zeros(train.shape[1], dtype=torch.bool)
    held[idx] = True
    return train[:, ~held], train[:, held]


def popularity_validation(graph: InteractionGraph, frac: float, exponent: float,
                          seed: int = 0) -> InteractionGraph:
    """``graph`` as ``reproduce_paper.py --tune`` loads it (``val_frac=frac``), with its validation
    share drawn again from the whole training file by :func:`popularity_carve`. The draw depends
    on the order of the pairs: the training file is taken as the random carve's training pairs,
    then its validation pairs — the split every ``--val-popularity`` run and row was made on."""
    everything = torch.cat([graph.split.train, graph.split.val], dim=1)
    rest, held = popularity_carve(everything, graph.num_items, frac, exponent, seed)
    return replace(graph, split=EdgeSplit(train=rest, val=held, test=graph.split.test))


def describe(train: torch.Tensor, held: torch.Tensor, num_users: int, num_items: int) -> dict:
    """Training degree of the held-out pairs' items, held-out per training pair of a user, and
    the popularity baseline's Recall/NDCG@20 on ``held`` (training items masked)."""
    item_deg = torch.bincount(train[1], minlength=num_items).float()[held[1]]
    user_train = torch.bincount(train[0], minlength=num_users).float()
    user_held = torch.bincount(held[0], minlength=num_users).float()
    has = user_held > 0
    pop = evaluate_scores(popularity_scorer(train, num_items), held, num_items, [train], ks=(20,))
    return {"pairs": held.shape[1], "item_train_degree_median": item_deg.median().item(),
            "item_train_degree_mean": round(item_deg.mean().item(), 1),
            "held_per_train_pair_median": round(
                (user_held[has] / user_train[has].clamp(min=1)).median().item(), 3),
            "popularity_recall@20": round(pop["recall@20"],
                                          4), "popularity_ndcg@20": round(pop["ndcg@20"], 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="gowalla", choices=["gowalla", "yelp2018", "amazon-book"])
    p.add_argument("--val-frac", type=float, default=0.2,
                   help="share of train.txt held out (as --tune)")
    p.add_argument("--val-popularity", default="",
                   help="exponents of popularity-weighted validation shares to add, e.g. "
                        "0.1,0.15,0.2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON file to write")
    args = p.parse_args(argv)
    ds = load_dataset(args.dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        full = ds.graph(val_frac=0.0, seed=args.seed)
        tune = ds.graph(val_frac=args.val_frac, seed=args.seed)
    n_u, n_i = full.num_users, full.num_items
    rows = {
        f"validation ({args.val_frac:.0%} of train.txt), training on the rest":
            describe(tune.split.train, tune.split.val, n_u, n_i),
        "test.txt, training on the same rest":
            describe(tune.split.train, tune.split.test, n_u, n_i),
        "test.txt, training on all of train.txt (the test run)":
            describe(full.split.train, full.split.test, n_u, n_i),
    }
    for exp in [float(e) for e in args.val_popularity.split(",") if e.strip()]:
        split = popularity_validation(tune, args.val_frac, exp, seed=args.seed).split
        rows[f"validation drawn with p ∝ degree^{exp:g}, training on the rest"] = describe(
            split.train, split.val, n_u, n_i)
        rows[f"test.txt, training on that rest (degree^{exp:g})"] = describe(split.train,
                                                                             split.test, n_u, n_i)
    print(f"| {args.dataset}: held-out pairs | pairs | items' training degree, median / mean | "
          "held-out per training "
          f"pair (user median) | popularity Recall@20 | popularity NDCG@20 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['pairs']:,} | {r['item_train_degree_median']:.0f} / "
              f"{r['item_train_degree_mean']:.1f} | "
              f"{r['held_per_train_pair_median']:.3f} | {r['popularity_recall@20']:.4f} | "
              f"{r['popularity_ndcg@20']:.4f} |")
    out = {"command": "python benchmarks/gowalla_splits.py "
                      + " ".join(argv if argv is not None else sys.argv[1:]),
           "dataset": args.dataset, "val_frac": args.val_frac,
           "val_popularity": args.val_popularity, "seed": args.seed, "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
