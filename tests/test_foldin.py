"""Fold-in on toy graphs: exact where the derivation says so, the optimised one lowers its loss,
nothing trained changes, EASE folds in exactly, and bad profiles give one readable error each."""
import pytest
import torch

from lightgcn_helpers.baselines import ease_scores
from lightgcn_helpers.foldin import EaseFoldIn, FoldIn, check_profiles, profile_edges
from lightgcn_helpers.graph import normalized_adjacency
from lightgcn_helpers.model import LightGCN

U, I, D = 5, 8, 6
# every user and every movie has a training edge
TRAIN = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 1],
                      [0, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 0, 7]])


def toy_model(layers=3, seed=0, users=U, items=I):
    torch.manual_seed(seed)
    return LightGCN(users, items, D, layers, init_std=0.5)


def adj_of(edges, users=U, items=I):
    return normalized_adjacency(edges, users, items, "csr")


def own_profiles():
    """Every training user's likes, as profiles with row = user index."""
    return TRAIN.clone()


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_folding_in_a_training_user_reproduces_its_trained_embedding(layers):
    model, adj = toy_model(layers), adj_of(TRAIN)
    fold = FoldIn(model, adj, TRAIN)
    with torch.no_grad():
        users, items = model(adj)
        expected_layers = [x[:U] for x in model.layer_embeddings(adj)]
    e0 = model.embedding.weight[:U].detach()
    got_layers = fold.user_layers(own_profiles(), layer0=e0, in_graph=True)
    # every layer 1..L is exact for a training user
    for got, want in zip(got_layers, expected_layers):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(fold.propagate(own_profiles(), layer0=e0, in_graph=True), users,
                          atol=1e-6)
    # the movies' final embeddings, as the model computes them
    assert torch.equal(fold.item_emb, items)


def test_layer_one_of_a_new_user_is_exact_in_the_enlarged_graph():
    model = toy_model()
    fold = FoldIn(model, adj_of(TRAIN), TRAIN)
    liked, v = [1, 4, 6], torch.randn(1, D)
    # the enlarged graph: user U is new, with edges to `liked` and layer-0 vector v
    big = LightGCN(U + 1, I, D, 3)
    with torch.no_grad():
        w = model.embedding.weight
        big.embedding.weight.copy_(torch.cat([w[:U], v, w[U:]]))
    new_edges = torch.cat([TRAIN, torch.tensor([[U] * 3, liked])], 1)
    with torch.no_grad():
        truth = big.layer_embeddings(adj_of(new_edges, U + 1))
    ours = fold.user_layers([liked], layer0=v)
    assert torch.allclose(ours[1], truth[1][U:U + 1], atol=1e-6)  # d_i + 1: exact
    # higher layers: the approximation (the liked movies' own layers ignore the new edge)
    assert not torch.allclose(ours[3], truth[3][U:U + 1], atol=1e-3)


def test_propagate_is_the_sum_of_layers_one_to_k_with_layer_zero_zero():
    model = toy_model()
    fold = FoldIn(model, adj_of(TRAIN), TRAIN)
    layers = fold.user_layers([[0, 3], [5]])
    assert torch.count_nonzero(layers[0]) == 0
    expected = sum(fold.alpha[k] * layers[k] for k in range(1, 4))
    assert torch.allclose(fold.propagate([[0, 3], [5]]), expected, atol=1e-7)
    # layer 1 by hand: e_i^(0) / sqrt(n (d_i + 1)), d = training likes of each movie
    deg = torch.bincount(TRAIN[1], minlength=I).float()
    e0 = model.embedding.weight[U:].detach()
    by_hand = e0[0] / torch.sqrt(2 * (deg[0] + 1)) + e0[3] / torch.sqrt(2 * (deg[3] + 1))
    assert torch.allclose(layers[1][0], by_hand, atol=1e-6)


def test_matrix_factorization_has_nothing_to_propagate():
    mf = toy_model(layers=0)
    fold = FoldIn(mf, adj_of(TRAIN), TRAIN)
    assert torch.count_nonzero(fold.propagate([[1, 2]])) == 0
    # only the optimised fold-in learns
    assert fold.optimise([[1, 2]], steps=20).embedding.abs().sum() > 0


@pytest.mark.parametrize("hard_negatives", [None, 2])
def test_optimised_fold_in_lowers_its_bpr_loss(hard_negatives):
    model = toy_model()
    fold = FoldIn(model, adj_of(TRAIN), TRAIN)
    profiles = [[0, 1], [5, 6, 7], [2]]
    result = fold.optimise(profiles, steps=60, lr=0.1, num_negatives=4,
                           hard_negatives=hard_negatives)
    zero = torch.zeros(3, D)
    before = fold.objective(profiles, zero)  # exact: every movie a negative
    after = fold.objective(profiles, result.layer0)
    assert bool((after < before).all())  # every user's BPR objective went down
    assert result.loss[-1] < result.loss[0] and len(result.loss) == 61
    expected = result.layer0 * fold.alpha[0] + fold.propagate(profiles)
    assert torch.allclose(result.embedding, expected, atol=1e-6)


def test_sampled_objective_estimates_the_exact_one():
    fold = FoldIn(toy_model(), adj_of(TRAIN), TRAIN)
    e0 = torch.randn(2, D, generator=torch.Generator().manual_seed(2))
    result = fold.optimise([[0, 1], [4]], steps=0, num_negatives=20000, init=e0)
    exact = fold.objective([[0, 1], [4]], e0).mean().item()
    assert result.loss == pytest.approx([exact], rel=0.02) and torch.equal(result.layer0, e0)
    with pytest.raises(ValueError, match="hard_negatives <= num_negatives"):
        fold.optimise([[0]], num_negatives=4, hard_negatives=5)


def test_each_users_fold_in_is_independent_of_the_batch():
    fold = FoldIn(toy_model(), adj_of(TRAIN), TRAIN)
    together = fold.optimise([[0, 1], [5, 6, 7]], steps=30, num_negatives=3).embedding
    alone = fold.optimise([[5, 6, 7]], steps=30, num_negatives=3).embedding
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_objective_by_hand_for_all_negatives():
    fold = FoldIn(toy_model(), adj_of(TRAIN), TRAIN)
    e0 = torch.randn(1, D)
    user = e0 * fold.alpha[0] + fold.propagate([[2, 5]])
    s = (user @ fold.item_emb.T)[0]
    neg = [j for j in range(I) if j not in (2, 5)]
    bpr = torch.stack([torch.nn.functional.softplus(s[j] - s[i]) for i in (2,
                                                                           5) for j in neg]).mean()
    want = bpr + 0.5 * 0.01 * e0.pow(2).sum()
    got = fold.objective([[2, 5]], e0, l2_lambda=0.01, hard_fraction=None)
    assert torch.allclose(got[0], want, atol=1e-6)
    # hardest half: the 3 highest-scored of the 6 negatives
    hard = torch.topk(s[neg], 3).values
    bpr_h = torch.stack([torch.nn.functional.softplus(h - s[i]) for i in (2,
                                                                          5) for h in hard]).mean()
    got_h = fold.objective([[2, 5]], e0, l2_lambda=0.01, hard_fraction=0.5)
    assert torch.allclose(got_h[0], bpr_h + 0.5 * 0.01 * e0.pow(2).sum(), atol=1e-6)


def test_nothing_trained_changes():
    model, adj = toy_model(), adj_of(TRAIN)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fold = FoldIn(model, adj, TRAIN)
    fold.propagate([[1, 2]])
    fold.optimise([[1, 2], [3]], steps=10)
    fold.item_emb.add_(1.0)  # even changing the fold-in's copies leaves the model alone
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.embedding.weight.grad is None and model.training


def test_profiles_are_deduplicated_and_bad_profiles_raise_one_readable_error():
    p, b = check_profiles(profile_edges([[3, 1, 3], [2]]), I)
    assert p.tolist() == [[0, 0, 1], [1, 3, 2]] and b == 2
    assert profile_edges([4, 5]).tolist() == [[0, 0], [4, 5]]  # a flat list is one user
    fold = FoldIn(toy_model(), adj_of(TRAIN), TRAIN)
    with pytest.raises(ValueError, match="the profile is empty"):
        fold.propagate([])
    with pytest.raises(ValueError, match=r"row\(s\) \[1\] have an empty profile"):
        fold.propagate([[1], []])
    with pytest.raises(ValueError, match=r"item index\(es\) \[8\] outside 0..7.*not raw ids"):
        fold.propagate([[1, 8]])
    with pytest.raises(ValueError, match="like all 8 items: nothing is left"):
        fold.optimise([list(range(I))])
    with pytest.raises(ValueError, match="layer0 must have shape"):
        fold.propagate([[1]], layer0=torch.zeros(2, D))


def test_a_movie_without_training_edge_is_fine_for_a_new_user_only():
    edges = TRAIN[:, TRAIN[1] != 7]  # movie 7 now has no training edge
    fold = FoldIn(toy_model(), adj_of(edges), edges)
    assert torch.isfinite(fold.propagate([[7, 1]])).all()  # d_7 + 1 = 1
    with pytest.raises(ValueError,
                       match="in_graph=True, but the profile holds items without a training edge"):
        fold.propagate([[7, 1]], in_graph=True)


# Woodbury (users <= items) and items x items
@pytest.mark.parametrize("users,items", [(5, 8), (9, 4)])
def test_ease_fold_in_of_training_users_equals_ease_scores(users, items):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(users, items, generator=gen) < 0.4
    x[torch.arange(users), torch.arange(users) % items] = True  # everyone likes something ...
    x[torch.arange(users), (torch.arange(users) + 1) % items] = False  # ... but not everything
    edges = torch.nonzero(x).T
    ease = EaseFoldIn(edges, users, items, lam=2.0)
    assert torch.allclose(ease.scores(edges, users), ease_scores(edges, users, items, lam=2.0),
                          atol=1e-5)
    new = ease.scores([[0, 1]])
    assert new.shape == (1, items) and torch.isfinite(new).all()
    score_fn = ease.scorer([[0], [1, 2]])
    assert score_fn(torch.tensor([1])).shape == (1, items)
    with pytest.raises(ValueError, match="the profile is empty"):
        ease.scores([])


def test_ease_fold_in_checks_memory_before_allocating():
    from lightgcn_helpers.baselines import EaseMemoryError

    edges = torch.tensor([[0, 1], [0, 1]])
    with pytest.raises(EaseMemoryError, match="raise max_bytes"):
        EaseFoldIn(edges, 200_000, 300_000, max_bytes=10**9)  # ~1.4 TB: refused, nothing allocated
