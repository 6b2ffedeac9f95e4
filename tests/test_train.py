"""The training loop learns a planted structure and keeps its best weights."""
import math

import pytest
import torch

from lightgcn_helpers.graph import normalized_adjacency
from lightgcn_helpers.loss import bpr_shared_negatives_loss
from lightgcn_helpers.model import LightGCN
from lightgcn_helpers.sampling import BPRSampler
from lightgcn_helpers.train import TrainConfig, evaluate_model, train_bpr


def two_communities(users=40, items=20, seed=0):
    """Users 0..19 like items 0..9, users 20..39 like items 10..19 (each a random 6)."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    for block in range(2):
        u = torch.arange(block * users // 2, (block + 1) * users // 2).repeat_interleave(6)
        i = torch.stack([torch.randperm(items // 2,
                                        generator=g)[:6] for _ in range(users // 2)]).flatten()
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
    assert res.loss[-1] < 0.5 * res.loss[0]
    # at initialization (std 0.1) every score is ~0, so each pair costs ~softplus(0) = ln 2
    assert abs(res.loss[0] - math.log(2)) < 0.02
    assert after > max(before, 0.5)  # chance (random 5 of the ~14 unseen items) is far lower
    assert after == max(res.val_metric)  # best weights restored
    assert res.best_epoch in res.eval_epochs


@pytest.mark.parametrize("shared", [True, False])
def test_reported_loss_is_the_mean_of_the_batch_losses(shared):
    """With lr = 0 the weights never move: the reported epoch loss must be the size-weighted mean
    of the BPR losses of the sampler's batches (same seed), movie nodes offset by num_users."""
    train, _ = two_communities()
    torch.manual_seed(0)
    model = LightGCN(40, 20, embedding_dim=8, num_layers=2)
    adj = normalized_adjacency(train, 40, 20)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.0, l2_lambda=0.5, num_negatives=6,
                      hard_negatives=2, seed=3,
                      shared_negatives=shared)
    with torch.no_grad():
        emb, emb0 = model.propagate_embeddings(adj), model.embedding.weight.clone()
        total, n = 0.0, 0
        sampler = BPRSampler(train, 40, 20, seed=3)
        if shared:  # negatives drawn per distinct user of the batch
            for users, pos, row, neg in sampler.epoch_shared(64, 6):
                loss = bpr_shared_negatives_loss(emb, emb0, users, pos + 40, row, neg + 40, 0.5,
                                                 hardest=2)
                total, n = total + loss.item() * users.numel(), n + users.numel()
        else:  # negatives drawn per (user, liked movie) pair
            for users, pos, neg in sampler.epoch(64, 6):
                row = torch.arange(users.numel())
                loss = bpr_shared_negatives_loss(emb, emb0, users, pos + 40, row, neg + 40, 0.5,
                                                 hardest=2)
                total, n = total + loss.item() * users.numel(), n + users.numel()
    assert n == train.shape[1]
    res = train_bpr(model, adj, train, None, cfg, progress=False)
    assert res.loss == [pytest.approx(total / n, rel=1e-6)]
    assert torch.equal(model.embedding.weight, emb0)  # lr = 0: unchanged


def test_mixed_negatives_train_reproducibly_and_beat_chance():
    """MixGCF's synthesised negatives (``synthetic_negatives``): training lowers the loss, ranks
    the held-out items far above chance, and the same seed gives the same weights."""
    train, val = two_communities()
    adj = normalized_adjacency(train, 40, 20)
    cfg = TrainConfig(epochs=30, batch_size=64, lr=0.05, num_negatives=6, hard_negatives=None,
                      eval_every=5, k=5, seed=0, synthetic_negatives=1)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LightGCN(40, 20, embedding_dim=8, num_layers=2)
        res = train_bpr(model, adj, train, val, cfg, progress=False)
        weights.append(model.embedding.weight.detach().clone())
    assert res.loss[-1] < 0.7 * res.loss[0]
    assert max(res.val_metric) > 0.5  # chance: 5 of the ~14 unseen items
    assert torch.equal(weights[0], weights[1])
    with pytest.raises(ValueError, match="set hard_negatives=None with it"):
        TrainConfig(synthetic_negatives=1)  # the default hard_negatives=8 means something else
    with pytest.raises(ValueError,
                       match="synthetic_negatives=7 must be between 1 and num_negatives=6"):
        TrainConfig(num_negatives=6, hard_negatives=None, synthetic_negatives=7)


def test_configs_saved_before_synthetic_negatives_read_and_key_as_before():
    """Records and checkpoints saved with ``mix_negatives`` (``hard_negatives`` then counted the
    synthesised negatives) still load, and name a configuration by the same checkpoint key."""
    from dataclasses import asdict

    mixed = {**asdict(TrainConfig(hard_negatives=None, synthetic_negatives=1)),
             "hard_negatives": 1, "mix_negatives": True}
    del mixed["synthetic_negatives"]
    cfg = TrainConfig.from_dict(mixed)
    assert cfg.synthetic_negatives == 1 and cfg.hard_negatives is None
    assert cfg.key() == mixed
    plain = {**asdict(TrainConfig()), "mix_negatives": False}
    del plain["synthetic_negatives"]
    assert TrainConfig.from_dict(plain) == TrainConfig()
    del plain["mix_negatives"]  # saved before mix_negatives existed
    assert TrainConfig.from_dict(plain) == TrainConfig() and TrainConfig().key() == plain


def test_config_rejects_more_hard_negatives_than_candidates():
    with pytest.raises(ValueError, match="hard_negatives=8 must be between 1 and num_negatives=4"):
        TrainConfig(num_negatives=4)  # the default hard_negatives=8
    with pytest.raises(ValueError, match="hard_negatives=5 must be between 1 and num_negatives=4"):
        TrainConfig(num_negatives=4, hard_negatives=5)
    with pytest.raises(ValueError, match="hard_negatives=0 must be between 1 and num_negatives=4"):
        TrainConfig(num_negatives=4, hard_negatives=0)
    with pytest.raises(ValueError, match="num_negatives must be at least 1"):
        TrainConfig(num_negatives=0, hard_negatives=None)
    # the boundaries are accepted (no error): all negatives, or every candidate kept
    TrainConfig(num_negatives=4, hard_negatives=None)
    TrainConfig(num_negatives=4, hard_negatives=4)
    TrainConfig(num_negatives=1, hard_negatives=1)


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
    # another seed
    other = train_cached(fresh(1), adj, train, val, cfg, progress=False, cache_dir=tmp_path)
    assert not other.from_cache and len(list(tmp_path.glob("*.pt"))) == 2
    (next(iter(sorted(tmp_path.glob("*.pt"))))).write_bytes(b"damaged")
    for seed in (0, 1):  # a damaged file is trained again, never trusted
        assert train_cached(fresh(seed), adj, train, val, cfg, progress=False,
                            cache_dir=tmp_path).val_metric
