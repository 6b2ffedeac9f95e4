"""benchmarks/gowalla_baselines.py's evaluation on a toy graph: every model gets metrics on the
test users and its timings, and on structured data a graph filter beats popularity."""
import sys
from pathlib import Path

import pandas as pd
import torch

from lightgcn_helpers.graph import build_graph

ROOT = Path(__file__).resolve().parent.parent


def test_gowalla_baselines_on_a_toy_graph():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gowalla_baselines import evaluate_baselines
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    g = torch.Generator().manual_seed(0)
    users = torch.randint(0, 40, (600,), generator=g)
    items = (users * 7 + torch.randint(0, 12, (600,), generator=g)) % 60  # some structure
    frame = pd.DataFrame({"userId": users.numpy(), "movieId": items.numpy()})
    graph = build_graph(frame, rating_col=None, val_frac=0.0, test_frac=0.2, seed=0)
    rows = evaluate_baselines(graph, torch.device("cpu"), k=8, alpha=0.3)
    assert list(rows) == ["popularity", "GF-CF, linear filter only (alpha 0)",
                          "GF-CF (k 8, alpha 0.3)"]
    for name, r in rows.items():
        assert 0.0 <= r["recall@20"] <= 1.0 and 0.0 <= r["ndcg@20"] <= 1.0, name
        assert r["users"] == torch.unique(graph.split.test[0]).numel()
        assert r["seconds"] >= r["fit_seconds"] >= 0.0
    # the structured toy data: a graph filter beats the global popularity list
    assert rows["GF-CF (k 8, alpha 0.3)"]["recall@20"] > rows["popularity"]["recall@20"]
