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


def _shared_batch():
    torch.manual_seed(2)
    emb, emb0 = torch.randn(12, 4, requires_grad=True), torch.randn(12, 4)
    users = torch.tensor([0, 1, 0, 2, 1])
    pos = torch.tensor([6, 7, 8, 9, 6])
    row = torch.unique(users, return_inverse=True)[1]
    neg = torch.tensor([[10, 11, 7], [8, 9, 10], [11, 6, 7]])
    return emb, emb0, users, pos, row, neg


def test_hardest_negatives_keep_the_highest_scored():
    from lightgcn_helpers.loss import bpr_shared_negatives_loss

    emb, emb0, users, pos, row, neg = _shared_batch()
    # m = n is the plain loss; m = 1 is BPR against each positive's highest-scored candidate
    torch.testing.assert_close(bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.2, hardest=3),
                               bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.2))
    neg_scores = (emb[users].unsqueeze(1) * emb[neg[row]]).sum(-1)  # (B, n)
    pos_scores = (emb[users] * emb[pos]).sum(-1)
    expected = bpr_loss(pos_scores, neg_scores.max(1).values)
    torch.testing.assert_close(bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=1), expected)
    # the two hardest of three: the mean over the pairs without each positive's easiest negative
    top2 = neg_scores.topk(2, dim=1).values
    expected2 = torch.nn.functional.softplus(top2 - pos_scores.unsqueeze(1)).mean()
    loss2 = bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=2)
    torch.testing.assert_close(loss2, expected2)
    assert loss2 >= 0


def test_hardest_negatives_ignore_easy_ones_in_the_gradient():
    from lightgcn_helpers.loss import bpr_shared_negatives_loss

    emb, emb0, users, pos, row, neg = _shared_batch()
    with torch.no_grad():
        emb[11] = -100 * emb[0]  # movie 11 is a hopeless negative for user 0 ...
        emb[11] -= 100 * emb[2]  # ... and for user 2: never among their hardest
    bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=1).backward()
    assert emb.grad[11].abs().sum() == 0
    assert emb.grad[10].abs().sum() > 0 or emb.grad[7].abs().sum() > 0


def test_hardest_out_of_range():
    import pytest

    from lightgcn_helpers.loss import bpr_shared_negatives_loss

    emb, emb0, users, pos, row, neg = _shared_batch()
    with pytest.raises(ValueError, match="hardest"):
        bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=4)
