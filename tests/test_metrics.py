"""Ranking metrics on an example small enough to check by hand."""
import math

import pytest
import torch

from lightgcn_helpers.metrics import evaluate_scores, ranking_metrics, topk_items, user_metrics

NUM_ITEMS = 6


def test_metrics_by_hand():
    # user 0: ranked [1, 2, 3], relevant {2, 5}: one hit at rank 2
    # user 1: ranked [4, 0, 1], relevant {4}: one hit at rank 1
    topk = torch.tensor([[1, 2, 3], [4, 0, 1]])
    users = torch.tensor([0, 1])
    relevant = torch.tensor([[0, 0, 1], [2, 5, 4]])
    m = ranking_metrics(topk, users, relevant, NUM_ITEMS, ks=(1, 3))
    assert m["recall@3"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert m["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["hit@3"] == 1.0 and m["hit@1"] == 0.5
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + 1.0) / 2)


def test_user_metrics_by_hand():
    # the example above, per user: user 0 one hit at rank 2 of {2, 5}; user 1 one hit at rank 1 of
    # {4}
    topk, users = torch.tensor([[1, 2, 3], [4, 0, 1]]), torch.tensor([0, 1])
    per_user = user_metrics(topk, users, torch.tensor([[0, 0, 1], [2, 5, 4]]), NUM_ITEMS, ks=(3,))
    assert per_user["recall@3"].tolist() == pytest.approx([0.5, 1.0])
    assert per_user["hit@3"].tolist() == [1.0, 1.0]
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert per_user["ndcg@3"].tolist() == pytest.approx([ndcg0, 1.0])


def test_topk_masks_excluded_items():
    scores = torch.arange(NUM_ITEMS, dtype=torch.float).repeat(2, 1)  # item 5 best
    train = torch.tensor([[0, 0, 1], [5, 4, 3]])
    top = topk_items(lambda u: scores[u], torch.tensor([0, 1]), 2, NUM_ITEMS, [train], chunk_size=1)
    assert top.tolist() == [[3, 2], [5, 4]]


def test_evaluate_scores_perfect_and_masked():
    train = torch.tensor([[0, 1], [0, 1]])
    test = torch.tensor([[0, 1], [3, 2]])
    oracle = torch.zeros(2, NUM_ITEMS)
    oracle[test[0], test[1]] = 1
    oracle[train[0], train[1]] = 5  # would win if not masked
    m = evaluate_scores(lambda u: oracle[u], test, NUM_ITEMS, [train], ks=(1,))
    assert m["recall@1"] == 1.0 and m["ndcg@1"] == 1.0 and m["users"] == 2
    unmasked = evaluate_scores(lambda u: oracle[u], test, NUM_ITEMS, [], ks=(1,))
    assert unmasked["recall@1"] == 0.0


def test_k_too_large():
    with pytest.raises(ValueError, match="exceeds"):
        ranking_metrics(torch.tensor([[0]]), torch.tensor([0]), torch.tensor([[0], [0]]), NUM_ITEMS,
                        ks=(5,))


def test_topk_breaks_ties_by_movie_index():
    # items 1, 2, 4 tie at 3.0 and 0, 3, 5 at 1.0: ties go to the lower movie index
    scores = torch.tensor([[1.0, 3.0, 3.0, 1.0, 3.0, 1.0], [0.0] * NUM_ITEMS])
    top = topk_items(lambda u: scores[u], torch.tensor([0, 1]), 4, NUM_ITEMS)
    assert top.tolist() == [[1, 2, 4, 0], [0, 1, 2, 3]]
    masked = topk_items(lambda u: scores[u], torch.tensor([0]), 2, NUM_ITEMS,
                        [torch.tensor([[0], [1]])])
    assert masked.tolist() == [[2, 4]]


def test_topk_matches_torch_topk_without_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randperm(50 * 40, generator=g).float().view(50, 40)  # all distinct
    top = topk_items(lambda u: scores[u], torch.arange(50), 7, 40, chunk_size=16)
    assert torch.equal(top, torch.topk(scores, 7, dim=1).indices)


def test_duplicated_relevant_pairs_count_once():
    # user 0: ranked [1, 2, 3], relevant {2, 5} with (0, 2) listed three times: still 1 hit of 2
    topk = torch.tensor([[1, 2, 3], [4, 0, 1]])
    users = torch.tensor([0, 1])
    dup = torch.tensor([[0, 0, 0, 1, 0, 1], [2, 5, 2, 4, 2, 4]])
    m = ranking_metrics(topk, users, dup, NUM_ITEMS, ks=(1, 3))
    assert m["recall@3"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # IDCG of |T_0| = 2, not 4
    assert m["ndcg@3"] == pytest.approx((ndcg0 + 1.0) / 2)
    assert m == ranking_metrics(topk, users, torch.tensor([[0, 0, 1], [2, 5, 4]]), NUM_ITEMS,
                                ks=(1, 3))


def _scan_mask_reference(scores, users, exclude):
    """The masking written the obvious way: one Python pass over every excluded pair."""
    scores = scores.clone()
    row = {u: r for r, u in enumerate(users.tolist())}
    for e in exclude:
        for u, i in e.t().tolist():
            if u in row:
                scores[row[u], i] = float("-inf")
    return scores


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_topk_masking_matches_a_reference_on_random_data(chunk_size):
    g = torch.Generator().manual_seed(3)
    num_users, num_items = 40, 30
    scores = torch.randn(num_users, num_items, generator=g)  # distinct: no ties
    train = torch.stack([torch.randint(0, num_users, (300,), generator=g),
                         torch.randint(0, num_items, (300,), generator=g)])
    # some users never evaluated
    val = torch.stack([torch.randint(0, num_users + 5, (50,), generator=g),
                       torch.randint(0, num_items, (50,), generator=g)])
    users = torch.randperm(num_users, generator=g)[:25]  # unsorted, some users not evaluated
    top = topk_items(lambda u: scores[u], users, 10, num_items, [train, val], chunk_size=chunk_size)
    expected = torch.topk(_scan_mask_reference(scores[users], users, [train, val]), 10,
                          dim=1).indices
    assert torch.equal(top, expected)


def test_topk_rejects_excluded_items_out_of_range():
    with pytest.raises(ValueError, match="items in 0..5"):
        topk_items(lambda u: torch.zeros(u.numel(), NUM_ITEMS), torch.tensor([0]), 2, NUM_ITEMS,
                   [torch.tensor([[0], [NUM_ITEMS]])])


def _pyg_metrics(topk, users, relevant, k):
    """PyG's own link-prediction metrics; its edge_label_index[0] is the row of ``topk``, not the
    user id."""
    from torch_geometric.metrics import (
        LinkPredHitRatio,
        LinkPredNDCG,
        LinkPredPrecision,
        LinkPredRecall,
    )

    row_of = torch.full((int(max(users.max(), relevant[0].max())) + 1,), -1, dtype=torch.long)
    row_of[users] = torch.arange(users.numel())
    label = torch.stack([row_of[relevant[0]], relevant[1]])
    label = label[:, label[0] >= 0]
    out = {}
    for name, cls in (("recall", LinkPredRecall), ("precision", LinkPredPrecision),
                      ("ndcg", LinkPredNDCG),
                      ("hit", LinkPredHitRatio)):
        metric = cls(k)
        metric.update(topk[:, :k], label)
        out[f"{name}@{k}"] = float(metric.compute())
    return out


def _random_eval_data(seed=0, num_users=60, num_items=50):
    """25 evaluated users (ids scattered over 0..59) with 1..35 relevant movies each — many more
    than k = 20 for some — plus training interactions to mask; random scores, no ties."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randperm(num_users, generator=g)[:25]
    n_rel = torch.randint(1, 36, (25,), generator=g)
    n_rel[:3] = torch.tensor([1, 25, 35])
    rel_items = [torch.randperm(num_items, generator=g)[:n] for n in n_rel.tolist()]
    relevant = torch.stack([users.repeat_interleave(n_rel), torch.cat(rel_items)])
    train = torch.stack([torch.randint(0, num_users, (400,), generator=g),
                         torch.randint(0, num_items, (400,), generator=g)])
    train = train[:,
                  ~torch.isin(train[0] * num_items + train[1],
                              relevant[0] * num_items + relevant[1])]
    scores = torch.randn(num_users, num_items, generator=g)
    return users, relevant, train, scores


@pytest.mark.parametrize("k", [1, 5, 20])
def test_metrics_agree_with_pyg_link_prediction_metrics(k):
    num_items = 50
    users, relevant, train, scores = _random_eval_data()
    # more relevant movies than the list length
    assert (torch.bincount(relevant[0])[users] > k).any()
    # ranked lists from plain torch.topk on the masked scores (no ties): independent of topk_items
    masked = scores.clone()
    masked[train[0], train[1]] = float("-inf")
    topk = torch.topk(masked[users], 20, dim=1).indices
    ours = ranking_metrics(topk, users, relevant, num_items, ks=(k,))
    pyg = _pyg_metrics(topk, users, relevant, k)
    for key, value in pyg.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    # the whole pipeline (masking + ranking + metrics) gives the same numbers
    full = evaluate_scores(lambda u: scores[u], relevant, num_items, [train], ks=(k, 20),
                           chunk_size=8)
    for key, value in pyg.items():
        assert full[key] == pytest.approx(value, abs=1e-6), key
    assert full["users"] == users.numel()


def test_pyg_counts_duplicated_relevant_pairs_twice():
    """The one documented difference: PyG's |T_u| is the number of label columns of the user."""
    users, relevant, _, scores = _random_eval_data(seed=1)
    first = users[0]
    mine = relevant[:, relevant[0] == first]
    # the first user has exactly one relevant movie (see _random_eval_data)
    assert mine.shape[1] == 1
    scores[first, mine[1]] = 100.0  # ... ranked first
    topk = torch.topk(scores[users], 20, dim=1).indices
    dup = torch.cat([relevant, mine], 1)  # that pair listed twice
    ours, pyg = ranking_metrics(topk, users, dup, 50, ks=(20,)), _pyg_metrics(topk, users, dup, 20)
    assert ours == ranking_metrics(topk, users, relevant, 50, ks=(20,))
    n = users.numel()
    # PyG: that user's recall is 1/2 instead of 1/1, its IDCG covers two ranks instead of one
    assert pyg["recall@20"] == pytest.approx(ours["recall@20"] - (1 - 1 / 2) / n, abs=1e-6)
    assert pyg["ndcg@20"] == pytest.approx(ours["ndcg@20"] - (1 - 1 / (1 + 1 / math.log2(3))) / n,
                                           abs=1e-6)
    assert pyg["precision@20"] == pytest.approx(ours["precision@20"], abs=1e-6)
    assert pyg["hit@20"] == pytest.approx(ours["hit@20"], abs=1e-6)
