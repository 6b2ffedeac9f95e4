import math

import pytest
import torch

from lightgcn_helpers.loss import (
    bpr_batch_loss,
    bpr_loss,
    bpr_shared_negatives_loss,
    l2_regularization,
)


def test_bpr_values_by_hand():
    pos = torch.tensor([0.0, 1.0, 5.0])
    neg = torch.zeros(3)
    # -ln σ(x) = ln(1 + e^-x)
    expected = (math.log(2) + math.log1p(math.exp(-1)) + math.log1p(math.exp(-5))) / 3
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    # far better ranked positives push the loss towards 0, far worse ones make it linear in the gap
    assert bpr_loss(pos + 100, neg).item() < 1e-6
    assert bpr_loss(torch.tensor([-100.0]), torch.tensor([0.0])).item() == pytest.approx(100.0)
    assert bpr_loss(pos, neg) < bpr_loss(pos - 1, neg)


def test_bpr_equals_minus_log_sigmoid():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(50, generator=g), torch.randn(50, generator=g)
    expected = -torch.log(torch.sigmoid(pos - neg)).mean()
    torch.testing.assert_close(bpr_loss(pos, neg), expected)


def test_bpr_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        bpr_loss(torch.zeros(3), torch.zeros(4))


def test_l2_regularization():
    a, b = torch.ones(4, 2), 2 * torch.ones(4, 2)
    # ½ (8·1 + 8·4) / 4 = 5
    assert l2_regularization(a, b).item() == 5.0


def reference_loss(emb, emb0, users, pos, negs, l2_lambda, hardest=None):
    """The objective written out pair by pair from the formula (no shared gathers, no topk):

        mean over the kept (u, i, j) of softplus(ŷ_uj - ŷ_ui)
        + λ · ½ Σ_b (‖e_u⁰‖² + ‖e_i⁰‖² + mean_j ‖e_j⁰‖²) / B

    ``negs[b]``: the list of negative node ids of positive ``b``; ``hardest=m`` keeps, for each
    positive, the ``m`` negatives with the highest score ŷ_uj. Differentiable (for gradient
    checks)."""
    terms, reg = [], 0.0
    for b in range(len(users)):
        u, i = int(users[b]), int(pos[b])
        s_pos = torch.dot(emb[u], emb[i])
        scored = sorted(((torch.dot(emb[u], emb[j]), j) for j in negs[b]),
                        key=lambda t: -t[0].detach().item())
        kept = scored if hardest is None else scored[:hardest]
        terms += [torch.log1p(torch.exp(s_neg - s_pos)) for s_neg, _ in kept]
        mean_neg_sq = sum(emb0[j].pow(2).sum() for j in negs[b]) / len(negs[b])
        reg = reg + emb0[u].pow(2).sum() + emb0[i].pow(2).sum() + mean_neg_sq
    return torch.stack(terms).mean() + l2_lambda * 0.5 * reg / len(users)


def test_batch_loss_one_and_several_negatives():
    torch.manual_seed(0)
    emb, emb0 = torch.randn(10, 4), torch.randn(10, 4)
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]), torch.tensor([8, 9, 5])
    # one negative: BPR + λ·L2 of the triple, through the two simple functions
    expected = bpr_loss((emb[users] * emb[pos]).sum(-1),
                        (emb[users] * emb[neg]).sum(-1)) + 0.1 * l2_regularization(
        emb0[users], emb0[pos], emb0[neg])
    torch.testing.assert_close(bpr_batch_loss(emb, emb0, users, pos, neg, 0.1), expected)
    torch.testing.assert_close(bpr_batch_loss(emb, emb0, users, pos, neg, 0.1),
                               reference_loss(emb, emb0, users, pos, [[8], [9], [5]], 0.1))
    # n negatives: the mean over all B·n pairs, the mean negative norm in the L2 term
    neg2 = torch.tensor([[8, 9], [9, 5], [5, 8]])
    for lam in (0.0, 0.1):
        torch.testing.assert_close(bpr_batch_loss(emb, emb0, users, pos, neg2, lam),
                                   reference_loss(emb, emb0, users, pos, neg2.tolist(), lam))


def _shared_batch():
    torch.manual_seed(2)
    emb, emb0 = torch.randn(12, 4, requires_grad=True), torch.randn(12, 4)
    users = torch.tensor([0, 1, 0, 2, 1])
    pos = torch.tensor([6, 7, 8, 9, 6])
    row = torch.unique(users, return_inverse=True)[1]
    neg = torch.tensor([[10, 11, 7], [8, 9, 10], [11, 6, 7]])  # one row per distinct user
    return emb, emb0, users, pos, row, neg


def test_shared_negatives_loss_equals_the_formula():
    emb, emb0, users, pos, row, neg = _shared_batch()
    per_pair = neg[row].tolist()  # each positive gets its user's row of negatives
    for lam in (0.0, 0.3):
        torch.testing.assert_close(bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, lam),
                                   reference_loss(emb, emb0, users, pos, per_pair, lam))


@pytest.mark.parametrize("hardest", [1, 2, 3])
def test_hardest_negatives_keep_the_highest_scored(hardest):
    emb, emb0, users, pos, row, neg = _shared_batch()
    loss = bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.2, hardest=hardest)
    expected = reference_loss(emb, emb0, users, pos, neg[row].tolist(), 0.2, hardest=hardest)
    torch.testing.assert_close(loss, expected)
    # and the gradient (only the kept pairs and all candidates' L2 contribute)
    (grad,) = torch.autograd.grad(loss, emb)
    (expected_grad,) = torch.autograd.grad(expected, emb)
    torch.testing.assert_close(grad, expected_grad)


def test_hardest_one_is_bpr_against_the_highest_scored_candidate():
    emb, emb0, users, pos, row, neg = _shared_batch()
    with torch.no_grad():
        neg_scores = (emb[users].unsqueeze(1) * emb[neg[row]]).sum(-1)  # (B, n)
        pos_scores = (emb[users] * emb[pos]).sum(-1)
        expected = bpr_loss(pos_scores, neg_scores.max(1).values)
        assert not torch.allclose(expected,
                                  bpr_loss(pos_scores.repeat_interleave(3), neg_scores.flatten()))
    torch.testing.assert_close(bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0,
                                                         hardest=1), expected)


def test_hardest_negatives_ignore_easy_ones_in_the_gradient():
    emb, emb0, users, pos, row, neg = _shared_batch()
    with torch.no_grad():
        emb[11] = -100 * emb[0]  # movie 11 is a hopeless negative for user 0 ...
        emb[11] -= 100 * emb[2]  # ... and for user 2: never among their hardest
    bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=1).backward()
    assert emb.grad[11].abs().sum() == 0
    assert emb.grad[10].abs().sum() > 0 or emb.grad[7].abs().sum() > 0


def test_hardest_out_of_range():
    emb, emb0, users, pos, row, neg = _shared_batch()
    with pytest.raises(ValueError, match="hardest"):
        bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=4)
    with pytest.raises(ValueError, match="hardest"):
        bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=0)


def reference_mixed_loss(layers, alpha, users, pos, negs, mixes, l2_lambda, emb0, synthetic=1):
    """MixGCF written out pair by pair: in layer l the candidate j with the s-th highest
    e_u · e_j^l (e = Σ_l α_l e^l), mixed with the liked item as a e_i^l + (1 - a) e_j^l with the
    pair's a = ``mixes[l][b]``; the synthetic negative Σ_l α_l (mixed row) scored against e_u."""
    emb = sum(a * x for a, x in zip(alpha, layers))
    terms, reg = [], 0.0
    for b in range(len(users)):
        u, i = int(users[b]), int(pos[b])
        s_pos = torch.dot(emb[u], emb[i])
        for s in range(synthetic):
            synth = 0.0
            for a_l, x, mix in zip(alpha, layers, mixes):
                ranked = sorted(negs[b], key=lambda j: -torch.dot(emb[u], x[j]).item())
                synth = synth + a_l * (mix[b] * x[i] + (1 - mix[b]) * x[ranked[s]])
            terms.append(torch.log1p(torch.exp(torch.dot(emb[u], synth) - s_pos)))
        mean_neg_sq = sum(emb0[j].pow(2).sum() for j in negs[b]) / len(negs[b])
        reg = reg + emb0[u].pow(2).sum() + emb0[i].pow(2).sum() + mean_neg_sq
    return torch.stack(terms).mean() + l2_lambda * 0.5 * reg / len(users)


def _layers(seed=5):
    torch.manual_seed(seed)
    x0 = torch.randn(12, 4, requires_grad=True)
    # three "layers" that depend on x0 differently, so the chosen candidate differs by layer
    mats = [torch.randn(4, 4) for _ in range(2)]
    return x0, [x0, x0 @ mats[0], torch.tanh(x0 @ mats[1])]


@pytest.mark.parametrize("synthetic", [1, 2])
def test_mixed_negatives_loss_equals_the_formula(synthetic):
    from lightgcn_helpers.loss import mixed_negatives_loss

    _, _, users, pos, row, neg = _shared_batch()
    x0, layers = _layers()
    alpha = torch.tensor([0.5, 0.3, 0.2])
    loss = mixed_negatives_loss(layers, alpha, users, pos, row, neg, 0.3, synthetic=synthetic,
                                generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)  # the same draws: one (B, 1) per layer, in layer order
    mixes = [torch.rand(len(users), 1, generator=g).squeeze(1) for _ in layers]
    expected = reference_mixed_loss(layers, alpha, users, pos, neg[row].tolist(), mixes, 0.3, x0,
                                    synthetic)
    torch.testing.assert_close(loss, expected)
    # the layers are shared by both graphs
    (grad,) = torch.autograd.grad(loss, x0, retain_graph=True)
    (expected_grad,) = torch.autograd.grad(expected, x0)
    torch.testing.assert_close(grad, expected_grad)
    assert loss.item() > 0  # softplus terms and an L2 term: bounded below by 0


def test_mixed_negatives_lie_between_the_liked_item_and_the_candidate():
    """With one layer, a synthetic negative's score is a·ŷ_ui + (1 − a)·ŷ_uj, a in (0, 1): its
    BPR term is softplus((1 − a)(ŷ_uj − ŷ_ui)) for the hardest j, so it sits between ln 2 (a = 1)
    and the hardest-negative BPR term (a = 0), and it is not DNS's loss with one hard negative."""
    from lightgcn_helpers.loss import mixed_negatives_loss

    emb, emb0, users, pos, row, neg = _shared_batch()
    with torch.no_grad():
        mixed = mixed_negatives_loss([emb], torch.ones(1), users, pos, row, neg, 0.0,
                                     generator=torch.Generator().manual_seed(0))
        hard = bpr_shared_negatives_loss(emb, emb0, users, pos, row, neg, 0.0, hardest=1)
        hardest = (emb[users].unsqueeze(1) * emb[neg[row]]).sum(-1).max(1).values
        margins = hardest - (emb[users] * emb[pos]).sum(-1)
        lo = torch.nn.functional.softplus(torch.minimum(margins, torch.zeros(()))).mean()
        hi = torch.nn.functional.softplus(torch.maximum(margins, torch.zeros(()))).mean()
    assert lo <= mixed <= hi
    assert not torch.isclose(mixed, hard)


def test_mixed_negatives_loss_checks_its_arguments():
    from lightgcn_helpers.loss import mixed_negatives_loss

    _, _, users, pos, row, neg = _shared_batch()
    _, layers = _layers()
    with pytest.raises(ValueError,
                       match="synthetic must be between 1 and the number of candidates"):
        mixed_negatives_loss(layers, torch.ones(3) / 3, users, pos, row, neg, 0.0, synthetic=4)
    with pytest.raises(ValueError, match="3 layer embeddings but 2 layer weights"):
        mixed_negatives_loss(layers, torch.ones(2) / 2, users, pos, row, neg, 0.0)
