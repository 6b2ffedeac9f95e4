"""The training loop learns a planted structure and keeps its best weights."""
import torch

from lightgcn_helpers.graph import normalized_adjacency
from lightgcn_helpers.model import LightGCN
from lightgcn_helpers.train import TrainConfig, evaluate_model, train_bpr


def two_communities(users=40, items=20, seed=0):
    """Users 0..19 like items 0..9, users 20..39 like items 10..19 (each a random 6)."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    for block in range(2):
        u = torch.arange(block * users // 2, (block + 1) * users // 2).repeat_interleave(6)
        i = torch.stack([torch.randperm(items // 2, generator=g)[:6] for _ in range(users // 2)]).flatten()
        rows.append(u)
        cols.append(i + block * items // 2)
    edges = torch.stack([torch.cat(rows), torch.cat(cols)])
    perm = torch.randperm(edges.shape[1], generator=g)
    return edges[:, perm[:-40]], edges[:, perm[-40:]]


def test_training_lowers_loss_and_beats_chance():
    train, val = two_communities()
    torch.manual_seed(0)
    model = LightGCN(40, 20, embedding_dim=8, num_layers=2)
    adj = normalized_adjacency(train, 40, 20)
    before = evaluate_model(model, adj, val, [train], k=5)["recall@5"]
    cfg = TrainConfig(epochs=40, batch_size=64, lr=0.05, eval_every=5, patience=8, k=5, seed=0)
    res = train_bpr(model, adj, train, val, cfg, progress=False)
    after = evaluate_model(model, adj, val, [train], k=5)["recall@5"]
    assert res.loss[-1] < res.loss[0]
    assert min(res.loss) >= 0  # BPR is lower-bounded
    assert after > max(before, 0.5)  # chance (random 5 of the ~14 unseen items) is far lower
    assert after == max(res.val_metric)  # best weights restored
    assert res.best_epoch in res.eval_epochs


def test_config_rejects_more_hard_negatives_than_candidates():
    import pytest

    with pytest.raises(ValueError, match="hard_negatives=8 must be between 1 and num_negatives=4"):
        TrainConfig(num_negatives=4)
    assert TrainConfig(num_negatives=4, hard_negatives=None).hard_negatives is None
    assert TrainConfig(num_negatives=4, hard_negatives=4).hard_negatives == 4


def test_train_cached_reuses_identical_runs_only(tmp_path, monkeypatch):
    from lightgcn_helpers.train import train_cached

    train, val = two_communities()
    adj = normalized_adjacency(train, 40, 20)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=0.05, eval_every=2, k=5, seed=0)

    def fresh(seed):
        torch.manual_seed(seed)
        return LightGCN(40, 20, embedding_dim=8, num_layers=2)

    first_model = fresh(0)
    first = train_cached(first_model, adj, train, val, cfg, progress=False, cache_dir=tmp_path)
    assert not first.from_cache and len(list(tmp_path.glob("*.pt"))) == 1
    calls = []
    monkeypatch.setattr("lightgcn_helpers.train.train_bpr", lambda *a, **k: calls.append(1))
    again_model = fresh(0)
    again = train_cached(again_model, adj, train, val, cfg, progress=False, cache_dir=tmp_path)
    assert again.from_cache and calls == []  # loaded, not trained
    assert torch.equal(again_model.embedding.weight, first_model.embedding.weight)
    assert again.val_metric == first.val_metric and again.best_epoch == first.best_epoch
    monkeypatch.undo()
    other = train_cached(fresh(1), adj, train, val, cfg, progress=False, cache_dir=tmp_path)  # another seed
    assert not other.from_cache and len(list(tmp_path.glob("*.pt"))) == 2
    (next(iter(sorted(tmp_path.glob("*.pt"))))).write_bytes(b"damaged")
    for seed in (0, 1):  # a damaged file is trained again, never trusted
        assert train_cached(fresh(seed), adj, train, val, cfg, progress=False, cache_dir=tmp_path).val_metric
