"""Nearest movies (cosine), "because you liked" explanations and the label-agreement number."""
import math

import pytest
import torch

from lightgcn_helpers.similar import explain, label_agreement, nearest_items


def unit_angles(degrees):
    """2-D embeddings at the given angles, with different lengths (cosine must ignore them)."""
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    lengths = torch.arange(1, len(degrees) + 1, dtype=torch.float64)
    return (torch.stack([rad.cos(), rad.sin()], 1) * lengths.unsqueeze(1)).float()


EMB = unit_angles([0, 10, 30, 90, 100, 180])


def test_nearest_items_by_cosine_without_itself():
    sims, idx = nearest_items(EMB, [0, 3], k=2)
    assert idx.tolist() == [[1, 2], [4, 2]]
    assert torch.allclose(sims[0],
                          torch.tensor([math.cos(math.radians(10)),
                                        math.cos(math.radians(30))]), atol=1e-6)


def test_candidates_restrict_the_neighbours_and_ties_go_to_the_lower_index():
    mask = torch.tensor([True, False, True, True, True, True])
    assert nearest_items(EMB, [0], k=2, candidates=mask)[1].tolist() == [[2, 3]]
    twins = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
    assert nearest_items(twins, [0], k=3)[1].tolist() == [[1, 2, 3]]  # all three tie at cosine 0
    with pytest.raises(ValueError, match="boolean mask of shape"):
        nearest_items(EMB, [0], k=1, candidates=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="only 2 candidate items"):
        nearest_items(EMB, [0], k=2,
                      candidates=torch.tensor([True, True, False, False, False, False]))
    with pytest.raises(ValueError, match=r"in 0\.\.5"):
        nearest_items(EMB, [6], k=1)


def test_chunks_give_the_same_answer():
    emb = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    full = nearest_items(emb, torch.arange(50), k=5)
    chunked = nearest_items(emb, torch.arange(50), k=5, chunk_size=7)
    assert torch.equal(full[1], chunked[1]) and torch.allclose(full[0], chunked[0])


def test_explain_picks_the_closest_liked_movie():
    because, sim = explain(EMB, liked=[0, 3], recommended=[1, 4, 2])
    assert because.tolist() == [0, 3, 0]
    assert torch.allclose(sim, torch.tensor([math.cos(math.radians(a)) for a in (10, 10, 30)]),
                          atol=1e-6)
    with pytest.raises(ValueError, match="at least one liked item"):
        explain(EMB, [], [1])


def test_label_agreement_of_clusters_and_of_shuffled_labels():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    emb = centres.repeat_interleave(10, 0) + 0.1 * torch.randn(30, 3, generator=gen)
    labels = torch.zeros(30, 3, dtype=torch.bool)
    labels[torch.arange(30), torch.arange(30) // 10] = True  # each cluster has its own genre
    assert label_agreement(emb, labels, k=5) == 1.0
    shuffled = labels[torch.randperm(30, generator=gen)]
    assert label_agreement(emb, shuffled, k=5) < 0.6
    only_first = torch.arange(30) < 10
    assert label_agreement(emb, labels, k=3, candidates=only_first) == 1.0
    with pytest.raises(ValueError, match="one row per item"):
        label_agreement(emb, labels[:5])
