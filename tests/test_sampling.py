import pytest
import torch

from lightgcn_helpers.sampling import BPRSampler, contains, edge_keys

EDGES = torch.tensor([[0, 0, 0, 1, 2, 2], [0, 1, 2, 3, 0, 4]])


def test_contains():
    keys = edge_keys(EDGES, 5)
    assert contains(keys, torch.tensor([0, 0, 1, 2]), torch.tensor([1, 3, 3, 3]),
                    5).tolist() == [True, False, True, False]


def test_samples_are_valid():
    s = BPRSampler(EDGES, 3, 5, seed=0)
    keys = edge_keys(EDGES, 5)
    users, pos, neg = s.sample(2000)
    assert users.max() < 3 and pos.max() < 5 and neg.max() < 5
    assert contains(keys, users, pos, 5).all()
    assert not contains(keys, users, neg, 5).any()


def test_epoch_covers_every_edge_once():
    s = BPRSampler(EDGES, 3, 5, seed=1)
    batches = list(s.epoch(4))
    assert len(batches) == s.batches_per_epoch(4) == 2
    seen = torch.cat([torch.stack([u, p]) for u, p, _ in batches], 1)
    assert sorted(map(tuple, seen.T.tolist())) == sorted(map(tuple, EDGES.T.tolist()))


def test_seeded():
    a = BPRSampler(EDGES, 3, 5, seed=7).sample(50)
    b = BPRSampler(EDGES, 3, 5, seed=7).sample(50)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = BPRSampler(EDGES, 3, 5, seed=8).sample(50)
    assert not all(torch.equal(x, y) for x, y in zip(a, c))  # the seed matters


def test_negatives_are_uniform_over_the_movies_a_user_did_not_like():
    s = BPRSampler(EDGES, 3, 5, seed=4)
    n = 4000
    for user, allowed in ((0, [3, 4]), (1, [0, 1, 2, 4]), (2, [1, 2, 3])):
        neg = s.negatives(torch.full((n,), user))
        share = torch.bincount(neg, minlength=5).float() / n
        expected = torch.zeros(5)
        expected[allowed] = 1 / len(allowed)
        # binomial standard deviation <= sqrt(0.25 / 4000) ≈ 0.008: 0.04 is 5 of them
        assert (share - expected).abs().max() < 0.04, (user, share)


def test_user_who_liked_everything_fails_clearly():
    full = torch.tensor([[0, 0], [0, 1]])
    with pytest.raises(RuntimeError, match="every item"):
        BPRSampler(full, 1, 2, max_rounds=3).sample(4)


def test_rejects_offset_items():
    with pytest.raises(ValueError, match="offset"):
        BPRSampler(torch.tensor([[0], [7]]), 3, 5)


def test_several_negatives_per_positive():
    s = BPRSampler(EDGES, 3, 5, seed=2)
    users, pos, neg = s.sample(300, num_negatives=3)
    assert neg.shape == (300, 3)
    assert not contains(edge_keys(EDGES, 5), users.unsqueeze(1).expand_as(neg), neg, 5).any()


def test_shared_negatives_per_distinct_user():
    s = BPRSampler(EDGES, 3, 5, seed=3)
    keys = edge_keys(EDGES, 5)
    for users, pos, row, neg in s.epoch_shared(4, num_negatives=2):
        assert neg.shape == (int(users.unique().numel()), 2)
        per_pair = neg[row]
        assert not contains(keys, users.unsqueeze(1).expand_as(per_pair), per_pair, 5).any()
        assert contains(keys, users, pos, 5).all()
