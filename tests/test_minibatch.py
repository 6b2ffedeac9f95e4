"""Mini-batch LightGCN on sampled neighbourhoods (lightgcn_helpers.minibatch).

The correctness anchor: with every neighbour sampled, the mini-batch embeddings, loss and
gradients of a batch equal the full graph's. Tests that sample skip without torch-sparse /
pyg-lib (with the helper's own message); the graph conversion runs everywhere."""
import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightgcn_helpers import minibatch as mb
from lightgcn_helpers.env import has_torch_sparse
from lightgcn_helpers.graph import normalized_adjacency
from lightgcn_helpers.loss import bpr_batch_loss
from lightgcn_helpers.model import LightGCN, propagate_matrix_form
from lightgcn_helpers.sampling import BPRSampler, contains, edge_keys
from lightgcn_helpers.train import TrainConfig, evaluate_model, train_bpr

ROOT = Path(__file__).resolve().parent.parent
needs_sampling = pytest.mark.skipif(not mb.sampling_available(), reason=mb.SKIP_MESSAGE)
U, I = 14, 11


def toy_edges(users=U, items=I, seed=0):
    """A random bipartite graph with uneven degrees; every user and item has an edge."""
    g = torch.Generator().manual_seed(seed)
    p = torch.linspace(0.1, 0.6, users).unsqueeze(1) * torch.linspace(0.3, 1.0, items).unsqueeze(0)
    mask = torch.rand(users, items, generator=g) < p
    mask[torch.arange(users), torch.arange(users) % items] = True
    mask[torch.arange(items) % users, torch.arange(items)] = True
    return mask.nonzero().t().contiguous()


def toy_triples(edges, b=6, n=3, seed=1):
    users, pos, neg = BPRSampler(edges, U, I, seed=seed).sample(b, n)
    return users, pos, neg.view(b, n)


def local_globals(batch):
    """Global node index (users first, items offset by U) of every local node of a batch."""
    return torch.cat([batch["user"].n_id, batch["item"].n_id + U])


def test_hetero_data_carries_the_full_graph_normalization():
    edges = toy_edges()
    # repeated pairs count once, as in normalized_adjacency
    dup = torch.cat([edges, edges[:, :5]], 1)
    data = mb.to_hetero_data(dup, U, I)
    dense = normalized_adjacency(edges, U, I, "coo").to_dense()
    assert data["user"].num_nodes == U and data["item"].num_nodes == I
    for etype, (src_off, dst_off) in ((mb.LIKES, (0, U)), (mb.REV_LIKES, (U, 0))):
        ei, w = data[etype].edge_index, data[etype].edge_weight
        assert ei.shape[1] == edges.shape[1]  # each pair once
        assert torch.equal(w, dense[ei[0] + src_off, ei[1] + dst_off])
    keys = edge_keys(data[mb.LIKES].edge_index, I)
    assert torch.equal(keys, edge_keys(edges, I))
    with pytest.raises(ValueError, match="without the num_users offset"):
        mb.to_hetero_data(edges + torch.tensor([[0], [U]]), U, I)


def test_shards_partition_the_global_batch():
    for n in (1, 7, 64, 65):
        for world in (1, 2, 3):
            spans = [mb.shard(n, r, world) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            expected = [t.numel() for t in torch.arange(n).tensor_split(world)]
            assert [b - a for a, b in spans] == expected


def test_config_and_missing_sampler_errors(monkeypatch):
    with pytest.raises(ValueError, match="between 1 and num_negatives"):
        mb.MiniBatchConfig(num_negatives=2, hard_negatives=3)
    with pytest.raises(ValueError, match="one fan-out per layer"):
        mb._fanouts((10, 10), 3)
    with pytest.raises(ValueError, match="-1"):
        mb._fanouts((10, 0, 5), 3)
    assert mb._fanouts(-1, 2) == [-1, -1]
    import torch_geometric.typing

    monkeypatch.setattr(mb, "has_torch_sparse", lambda: False)
    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", False)
    assert not mb.sampling_available()
    with pytest.raises(mb.SamplingUnavailable, match="torch-sparse or pyg-lib"):
        mb.SubgraphSampler(toy_edges(), U, I, [-1, -1])
    with pytest.raises(ImportError, match=r"\./workshop\.sh sparse"):
        mb.train_minibatch(LightGCN(U, I, 4, 2), toy_edges(), config=mb.MiniBatchConfig(epochs=1))


@needs_sampling
def test_batch_pairs_negatives_and_carried_weights():
    """Negatives are items (their own node type) the user never liked in training; the pairs
    come in the order (u, i) | (u, j); every sampled edge keeps its full-graph weight."""
    edges = toy_edges()
    users, pos, neg = toy_triples(edges, b=6, n=3)
    sampler = mb.SubgraphSampler(edges, U, I, [2, 2], num_layers=2)
    batch = sampler.batch(users, pos, neg)
    lu = batch["user"].num_nodes
    u_loc, p_loc, n_loc = mb.triples_of_batch(batch, 3)
    glob = local_globals(batch)
    assert torch.equal(glob[u_loc], users) and torch.equal(glob[p_loc],
                                                           pos + U) and torch.equal(glob[n_loc],
                                                                                    neg + U)
    assert bool((n_loc >= lu).all())  # local item nodes: a negative can never be a user
    assert not contains(edge_keys(edges, I), users.unsqueeze(1).expand_as(neg), neg, I).any()
    eli = batch[mb.LIKES].edge_label_index
    # each negative pair is its user's
    assert torch.equal(eli[0, 6:].view(6, 3), u_loc.unsqueeze(1).expand(6, 3))
    assert torch.equal(batch[mb.LIKES].edge_label, torch.cat([torch.ones(6), torch.zeros(18)]))
    dense = normalized_adjacency(edges, U, I, "coo").to_dense()
    for etype, shift in ((mb.LIKES, (0, lu)), (mb.REV_LIKES, (lu, 0))):
        ei = batch[etype].edge_index
        src, dst = glob[ei[0] + shift[0]], glob[ei[1] + shift[1]]
        assert ei.shape[1] > 0
        # full-graph weight, not the subgraph's
        assert torch.equal(batch[etype].edge_weight, dense[src, dst])


@needs_sampling
@pytest.mark.parametrize("layers", [1, 3])
def test_sample_everything_equals_full_graph(layers, dense_norm):
    """num_neighbors = [-1] * K: the seeds' mini-batch embeddings are the full graph's."""
    edges = toy_edges()
    torch.manual_seed(0)
    model = LightGCN(U, I, embedding_dim=8, num_layers=layers)
    users, pos, neg = toy_triples(edges, b=5, n=2)
    sampler = mb.SubgraphSampler(edges, U, I, [-1] * layers, num_layers=layers)
    batch = sampler.batch(users, pos, neg)
    full = model.propagate_embeddings(normalized_adjacency(edges, U, I))
    glob = local_globals(batch)
    seeds = torch.cat([t.reshape(-1) for t in mb.triples_of_batch(batch, 2)]).unique()
    # LGConv: edge_index, SparseTensor
    for sparse in (False, True) if has_torch_sparse() else (False,):
        emb, emb0 = mb.MiniBatchLightGCN(model, sparse=sparse)(batch)
        assert torch.equal(emb0, model.embedding.weight[glob])
        torch.testing.assert_close(emb[seeds], full[glob[seeds]], rtol=0, atol=1e-6)
    # in float64 against the textbook dense reference: equal to round-off
    model64 = LightGCN(U, I, embedding_dim=8, num_layers=layers).double()
    batch64 = mb.SubgraphSampler(edges, U, I, [-1] * layers, layers,
                                 dtype=torch.float64).batch(users, pos, neg)
    emb64, _ = mb.MiniBatchLightGCN(model64)(batch64)
    ref = propagate_matrix_form(model64.embedding.weight, dense_norm(edges, U, I), layers,
                                model64.alpha.double())
    glob64 = local_globals(batch64)
    seeds64 = torch.cat([t.reshape(-1) for t in mb.triples_of_batch(batch64, 2)]).unique()
    torch.testing.assert_close(emb64[seeds64], ref[glob64[seeds64]], rtol=0, atol=1e-12)


@needs_sampling
def test_rescaled_sums_are_exact_on_a_regular_graph():
    """Complete bipartite graph: all of a node's neighbours have the same weight, so with
    equal E⁰ rows the rescaled sampled sum (deg / sampled x the sampled edges) equals the
    full sum whatever is drawn; the unscaled sum is short by the fan-out / degree."""
    users, items = 5, 4
    edges = torch.cartesian_prod(torch.arange(users), torch.arange(items)).t().contiguous()
    model = LightGCN(users, items, embedding_dim=3, num_layers=2)
    with torch.no_grad():
        model.embedding.weight.fill_(1.0)
    full = model.propagate_embeddings(normalized_adjacency(edges, users, items))
    sampler = mb.SubgraphSampler(edges, users, items, [2, 2], 2)
    seeds = (torch.tensor([0, 3]), torch.tensor([1, 2]), torch.tensor([[3], [0]]))
    batch = sampler.batch(*seeds)
    glob = torch.cat([batch["user"].n_id, batch["item"].n_id + users])
    local = torch.cat([t.reshape(-1) for t in mb.triples_of_batch(batch, 1)]).unique()
    emb, _ = mb.MiniBatchLightGCN(model)(batch)
    torch.testing.assert_close(emb[local], full[glob[local]], rtol=1e-6, atol=0)
    short, _ = mb.MiniBatchLightGCN(model, rescale=False)(batch)
    assert bool((short[local] < full[glob[local]] - 0.05).all())


@needs_sampling
def test_sampled_embeddings_are_unbiased():
    """Fan-out 2 per layer (degrees up to 7): averaged over many samples, the rescaled
    mini-batch embeddings of the seeds converge to the full graph's; without rescaling (or
    with torch-sparse's non-uniform sampling without replacement) they stay off."""
    edges = toy_edges()
    torch.manual_seed(0)
    model = LightGCN(U, I, embedding_dim=8, num_layers=2)
    users, pos, neg = toy_triples(edges, b=4, n=1)
    full = model.propagate_embeddings(normalized_adjacency(edges, U, I)).detach()
    seeds = torch.cat([users, pos + U, neg.reshape(-1) + U]).unique()
    # the propagated part
    target = full[seeds] - model.alpha[0] * model.embedding.weight[seeds].detach()
    sampler = mb.SubgraphSampler(edges, U, I, [2, 2], 2)
    nets = {True: mb.MiniBatchLightGCN(model), False: mb.MiniBatchLightGCN(model, rescale=False)}
    sums = {key: torch.zeros_like(target) for key in nets}
    n = 200
    torch.manual_seed(1)
    loader, spans = sampler.loader([(users, pos, neg)] * n)  # one loader, n independent samples
    with torch.no_grad():
        for first, last in spans:
            batch = loader(torch.arange(first, last))
            glob = local_globals(batch)
            # local row of each seed
            where = (glob.unsqueeze(0) == seeds.unsqueeze(1)).int().argmax(1)
            for key, net in nets.items():
                sums[key] += net(batch)[0][where] - model.alpha[0] * model.embedding.weight[seeds]
    rel = {key: ((sums[key] / n - target).norm() / target.norm()).item() for key in nets}
    assert rel[True] < 0.15 and rel[False] > 3 * rel[True], rel  # measured: 0.08 and 0.42


@needs_sampling
def test_sample_everything_loss_and_gradient_equal_full_graph():
    edges = toy_edges()
    torch.manual_seed(1)
    model = LightGCN(U, I, embedding_dim=8, num_layers=2)
    users, pos, neg = toy_triples(edges, b=8, n=3)
    batch = mb.SubgraphSampler(edges, U, I, [-1, -1], 2).batch(users, pos, neg)
    emb, emb0 = mb.MiniBatchLightGCN(model)(batch)
    loss = mb.minibatch_loss(emb, emb0, batch, 3, l2_lambda=0.3)
    (grad,) = torch.autograd.grad(loss, model.embedding.weight)
    full = model.propagate_embeddings(normalized_adjacency(edges, U, I))
    ref = bpr_batch_loss(full, model.embedding.weight, users, pos + U, neg + U, 0.3)
    (ref_grad,) = torch.autograd.grad(ref, model.embedding.weight)
    assert loss.item() > 0
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-7)


@needs_sampling
def test_scaled_shard_losses_average_to_the_global_step():
    """What DDP does, in one process: the gradients of the shards' scaled losses, averaged,
    are the gradient of the global batch's loss (the 2-process test runs it for real)."""
    edges = toy_edges()
    torch.manual_seed(2)
    model = LightGCN(U, I, embedding_dim=8, num_layers=2)
    net = mb.MiniBatchLightGCN(model)
    users, pos, neg = toy_triples(edges, b=9, n=2)
    sampler = mb.SubgraphSampler(edges, U, I, [-1, -1], 2)

    def loss_grad(a, b, world):
        batch = sampler.batch(users[a:b], pos[a:b], neg[a:b])
        emb, emb0 = net(batch)
        loss = mb.minibatch_loss(emb, emb0, batch, 2, 0.1,
                                 hard_negatives=1) * ((b - a) * world / users.numel())
        return loss.detach(), torch.autograd.grad(loss, model.embedding.weight)[0]

    whole_loss, whole_grad = loss_grad(0, 9, 1)
    parts = [loss_grad(*mb.shard(9, r, 2), 2) for r in range(2)]
    torch.testing.assert_close(sum(p[0] for p in parts) / 2, whole_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(sum(p[1] for p in parts) / 2, whole_grad, rtol=0, atol=1e-7)


def planted(users=40, items=20, seed=0):
    """Users 0..19 like items 0..9, users 20..39 like items 10..19 (6 each); 40 held out."""
    g = torch.Generator().manual_seed(seed)
    block = torch.arange(users) >= users // 2
    scores = torch.rand(users, items // 2, generator=g)
    cols = scores.topk(6, dim=1).indices + block.unsqueeze(1) * (items // 2)
    edges = torch.stack([torch.arange(users).repeat_interleave(6), cols.reshape(-1)])
    perm = torch.randperm(edges.shape[1], generator=g)
    return edges[:, perm[:-40]], edges[:, perm[-40:]]


@needs_sampling
def test_training_learns_and_keeps_the_best_weights():
    train, val = planted()
    torch.manual_seed(0)
    model = LightGCN(40, 20, embedding_dim=8, num_layers=2)
    adj = normalized_adjacency(train, 40, 20)
    before = evaluate_model(model, adj, val, [train], k=5)["recall@5"]
    cfg = mb.MiniBatchConfig(epochs=12, batch_size=50, lr=0.05, num_negatives=2,
                             num_neighbors=(5, 5),
                             eval_every=3, k=5, seed=0)
    res = mb.train_minibatch(model, train, val, cfg, progress=False)
    after = evaluate_model(model, adj, val, [train], k=5)["recall@5"]
    assert res.epochs == list(range(1, 13)) and res.steps == 12 * math.ceil(train.shape[1] / 50)
    assert len(res.step_loss) == res.steps
    # initial scores ~0: softplus(0) = ln 2 (+ small L2)
    assert abs(res.loss[0] - math.log(2)) < 0.05
    assert res.loss[-1] < 0.6 * res.loss[0]
    assert after > max(before, 0.5) and after == max(res.val_metric)
    assert 0 < res.sampled_nodes <= 60 and res.sampled_edges > 0


@needs_sampling
def test_sample_everything_trains_like_the_full_graph_trainer():
    """With every neighbour sampled, mini-batch training is full-graph training: the same
    triples (BPRSampler, same seed), the same loss, the same Adam steps as train_bpr with
    one row of negatives per pair — epoch losses and final weights agree to float round-off."""
    train, _ = planted()
    torch.manual_seed(0)
    mini = LightGCN(40, 20, embedding_dim=8, num_layers=2)
    full = copy.deepcopy(mini)
    res = mb.train_minibatch(mini, train, config=mb.MiniBatchConfig(
        epochs=4, batch_size=50, lr=0.05, l2_lambda=1e-3, num_negatives=3, hard_negatives=2,
        num_neighbors=-1, seed=5), progress=False)
    ref = train_bpr(full, normalized_adjacency(train, 40, 20), train, None, TrainConfig(
        epochs=4, batch_size=50, lr=0.05, l2_lambda=1e-3, num_negatives=3, hard_negatives=2,
        lr_decay=1.0, shared_negatives=False, seed=5), progress=False)
    torch.testing.assert_close(torch.tensor(res.loss), torch.tensor(ref.loss), rtol=1e-5, atol=0)
    torch.testing.assert_close(mini.embedding.weight, full.embedding.weight, rtol=0, atol=1e-5)


@needs_sampling
def test_time_budget_stops_after_one_step():
    train, _ = planted()
    model = LightGCN(40, 20, embedding_dim=8, num_layers=2)
    res = mb.train_minibatch(model, train,
                             config=mb.MiniBatchConfig(epochs=5, batch_size=50, time_budget=0.0),
                             progress=False)
    assert res.stopped_by_budget and res.steps == 1 and res.epochs == [1]


def test_comparison_benchmark_runs_at_tiny_size(tmp_path):
    """benchmarks/minibatch_vs_fullgraph.py --tiny: the table and the JSON appear (or, without
    torch-sparse, the one skip line). No timing is asserted."""
    env = {**os.environ, "CI": "true"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "minibatch_vs_fullgraph.py"),
                           "--tiny",
                           "--budget", "1", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    if not mb.sampling_available():
        assert mb.SKIP_MESSAGE in proc.stdout and "skipped" in res
        return
    assert "| Method |" in proc.stdout and (tmp_path / "table.md").stat().st_size > 0
    assert res["tiny"] is True and set(res["runs"]) == {"full_graph", "minibatch"}
    for run in res["runs"].values():
        assert 0 <= run["test"]["recall@20"] <= 1 and 0 <= run["test"]["ndcg@20"] <= 1
        assert run["seconds"] > 0 and run["epochs"] >= 1
    assert res["runs"]["minibatch"]["steps"] >= 1
