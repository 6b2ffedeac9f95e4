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
