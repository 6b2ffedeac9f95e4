"""Ranking metrics on an example small enough to check by hand."""
import math

import pytest
import torch

from lightgcn_helpers.metrics import evaluate_scores, ranking_metrics, topk_items

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
        ranking_metrics(torch.tensor([[0]]), torch.tensor([0]), torch.tensor([[0], [0]]), NUM_ITEMS, ks=(5,))


def test_topk_breaks_ties_by_movie_index():
    # items 1, 2, 4 tie at 3.0 and 0, 3, 5 at 1.0: ties go to the lower movie index
    scores = torch.tensor([[1.0, 3.0, 3.0, 1.0, 3.0, 1.0], [0.0] * NUM_ITEMS])
    top = topk_items(lambda u: scores[u], torch.tensor([0, 1]), 4, NUM_ITEMS)
    assert top.tolist() == [[1, 2, 4, 0], [0, 1, 2, 3]]
    masked = topk_items(lambda u: scores[u], torch.tensor([0]), 2, NUM_ITEMS, [torch.tensor([[0], [1]])])
    assert masked.tolist() == [[2, 4]]


def test_topk_matches_torch_topk_without_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randperm(50 * 40, generator=g).float().view(50, 40)  # all distinct
    top = topk_items(lambda u: scores[u], torch.arange(50), 7, 40, chunk_size=16)
    assert torch.equal(top, torch.topk(scores, 7, dim=1).indices)
