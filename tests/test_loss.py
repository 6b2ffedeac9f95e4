import torch

from lightgcn_helpers.loss import bpr_loss, l2_regularization


def test_bpr_is_lower_bounded_and_decreasing():
    pos = torch.tensor([0.0, 1.0, 5.0])
    neg = torch.zeros(3)
    assert bpr_loss(pos, neg) > 0
    # far better ranked positives push the loss towards 0, never below
    assert 0 <= bpr_loss(pos + 100, neg) < 1e-6
    assert bpr_loss(pos, neg) < bpr_loss(pos - 1, neg)


def test_bpr_equals_minus_log_sigmoid():
    pos, neg = torch.randn(50), torch.randn(50)
    expected = -torch.log(torch.sigmoid(pos - neg)).mean()
    torch.testing.assert_close(bpr_loss(pos, neg), expected)


def test_bpr_shape_mismatch():
    import pytest

    with pytest.raises(ValueError, match="same shape"):
        bpr_loss(torch.zeros(3), torch.zeros(4))


def test_l2_regularization():
    a, b = torch.ones(4, 2), 2 * torch.ones(4, 2)
    # ½ (8·1 + 8·4) / 4 = 5
    assert l2_regularization(a, b).item() == 5.0


def test_batch_loss_matches_the_two_terms():
    from lightgcn_helpers.loss import bpr_batch_loss

    torch.manual_seed(0)
    emb, emb0 = torch.randn(10, 4), torch.randn(10, 4)
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]), torch.tensor([8, 9, 5])
    expected = bpr_loss((emb[users] * emb[pos]).sum(-1), (emb[users] * emb[neg]).sum(-1)) + 0.1 * l2_regularization(
        emb0[users], emb0[pos], emb0[neg])
    torch.testing.assert_close(bpr_batch_loss(emb, emb0, users, pos, neg, 0.1), expected)
    # n negatives: the mean over all pairs
    neg2 = torch.tensor([[8, 9], [9, 5], [5, 8]])
    pairs = [bpr_batch_loss(emb, emb0, users, pos, neg2[:, k], 0.0) for k in range(2)]
    torch.testing.assert_close(bpr_batch_loss(emb, emb0, users, pos, neg2, 0.0), sum(pairs) / 2)


def test_shared_negatives_loss_equals_per_pair_loss():
    from lightgcn_helpers.loss import bpr_batch_loss, bpr_shared_negatives_loss

    torch.manual_seed(1)
    emb, emb0 = torch.randn(12, 4), torch.randn(12, 4)
    users = torch.tensor([0, 1, 0, 2, 1])
    pos = torch.tensor([6, 7, 8, 9, 6])
    distinct, row = torch.unique(users, return_inverse=True)
    neg = torch.tensor([[10, 11, 7], [8, 9, 10], [11, 6, 7]])  # one row per distinct user
    shared = bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.3)
    torch.testing.assert_close(shared, bpr_batch_loss(emb, emb0, users, pos, neg[row], 0.3))
