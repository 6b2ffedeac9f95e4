"""The ORIGINAL pipeline, re-implemented as the original notebook wrote it.

This file is the "before" that ``run_benchmarks.py`` measures the helpers against.
It is a benchmark reference, **not** library code: the Python loops over ratings and
edges, the dense ``(users + movies)²`` matrices and the bidirectional sampler are kept
on purpose, because they are what is being measured. Do not copy anything from here
into a notebook or into ``lightgcn_helpers``.

Deviations from the original, all of them in the original's favour or neutral for timing:

* ids are mapped with two plain dicts over the *sorted* unique ids (the original used
  one encoder for both, defect 1), so the edges come out identical to the helpers';
* only the *training* interactions are converted to an adjacency when building the
  graph (the original converted train, validation and test, three times the cost);
* the original indexed its user / item embedding tables with the node ids sampled from
  the bidirectional adjacency; here the sampled node ids gather rows of the full
  ``(N, d)`` node embedding table instead, so that a movie sampled as "user" does not
  raise an ``IndexError`` (same amount of work);
* evaluation is given the *final* embeddings (the original ranked with the layer-0
  ones, defect 4) so that both implementations compute the same metrics.
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import structured_negative_sampling

__all__ = [
    "load_edges",
    "split_indices",
    "convert_r_mat_edge_index_to_adj_mat_edge_index",
    "convert_adj_mat_edge_index_to_r_mat_edge_index",
    "build_graph",
    "sample_mini_batch",
    "OriginalLightGCN",
    "original_bpr_loss",
    "train_step",
    "get_metrics",
]

# The original's constants.
BATCH_SIZE = 1024
LR = 1e-3
LAMBDA = 1e-6


# --- graph construction -------------------------------------------------------------

def load_edges(df: pd.DataFrame, threshold: float = 3.5) -> tuple[Tensor, int, int]:
    """The original ``load_edge_csv``: dict mappings, Python lists of mapped ids, and a loop
    over every rating that tests one element of a boolean tensor at a time."""
    user_mapping = {index: i for i, index in enumerate(sorted(df["userId"].unique()))}
    movie_mapping = {index: i for i, index in enumerate(sorted(df["movieId"].unique()))}
    src = [user_mapping[index] for index in df["userId"]]
    dst = [movie_mapping[index] for index in df["movieId"]]
    edge_attr = torch.from_numpy(df["rating"].values).view(-1, 1) >= threshold
    edge_index = [[], []]
    for i in range(edge_attr.shape[0]):
        if edge_attr[i]:
            edge_index[0].append(src[i])
            edge_index[1].append(dst[i])
    return torch.tensor(edge_index), len(user_mapping), len(movie_mapping)


def split_indices(num_interactions: int, seed: int = 1):
    """80/10/10 with ``train_test_split`` on a Python list of edge indices."""
    all_indices = [i for i in range(num_interactions)]
    train_indices, test_indices = train_test_split(all_indices, test_size=0.2, random_state=seed)
    val_indices, test_indices = train_test_split(test_indices, test_size=0.5, random_state=seed)
    return train_indices, val_indices, test_indices


def convert_r_mat_edge_index_to_adj_mat_edge_index(input_edge_index: Tensor, num_users: int,
                                                   num_movies: int) -> Tensor:
    """Interactions → bidirectional ``edge_index`` through dense R and a dense (N, N) matrix."""
    R = torch.zeros((num_users, num_movies))
    for i in range(len(input_edge_index[0])):
        row_idx = input_edge_index[0][i]
        col_idx = input_edge_index[1][i]
        R[row_idx][col_idx] = 1
    R_transpose = torch.transpose(R, 0, 1)
    adj_mat = torch.zeros((num_users + num_movies, num_users + num_movies))
    adj_mat[:num_users, num_users:] = R.clone()
    adj_mat[num_users:, :num_users] = R_transpose.clone()
    adj_mat_coo = adj_mat.to_sparse_coo()
    adj_mat_coo = adj_mat_coo.indices()
    return adj_mat_coo


def convert_adj_mat_edge_index_to_r_mat_edge_index(input_edge_index: Tensor, num_users: int,
                                                   num_movies: int) -> Tensor:
    """Bidirectional ``edge_index`` → interactions, through a dense (N, N) matrix (the original
    used ``SparseTensor(...).to_dense()``; ``torch.sparse_coo_tensor(...).to_dense()`` is the
    same)."""
    n = num_users + num_movies
    values = torch.ones(input_edge_index.shape[1], device=input_edge_index.device)
    adj_mat = torch.sparse_coo_tensor(input_edge_index, values, (n, n),
                                      check_invariants=False).to_dense()
    interact_mat = adj_mat[:num_users, num_users:]
    return interact_mat.to_sparse_coo().indices()


def build_graph(df: pd.DataFrame, threshold: float = 3.5, seed: int = 1) -> dict:
    """Ratings → edges → split → training adjacency, as the original did it."""
    edge_index, num_users, num_movies = load_edges(df, threshold)
    train_indices, val_indices, test_indices = split_indices(edge_index.shape[1], seed)
    train = edge_index[:, train_indices]
    train_adj = convert_r_mat_edge_index_to_adj_mat_edge_index(train, num_users, num_movies)
    return {"num_users": num_users, "num_movies": num_movies, "edge_index": edge_index,
            "train": train, "val": edge_index[:, val_indices], "test": edge_index[:, test_indices],
            "train_adj": train_adj}


# --- sampling -----------------------------------------------------------------------

def sample_mini_batch(batch_size: int, edge_index: Tensor):
    """The original sampler, on the BIDIRECTIONAL training adjacency: negatives are redrawn
    for every edge on each call, then ``batch_size`` rows are picked with ``random.choices``."""
    edges = structured_negative_sampling(edge_index)
    edges = torch.stack(edges, dim=0)
    indices = random.choices([i for i in range(edges[0].shape[0])], k=batch_size)
    batch = edges[:, indices]
    user_indices, pos_item_indices, neg_item_indices = batch[0], batch[1], batch[2]
    return user_indices, pos_item_indices, neg_item_indices


# --- model, loss, one training step ---------------------------------------------------

class OriginalLightGCN(MessagePassing):
    """The original message-passing LightGCN: ``gcn_norm`` recomputed on every forward,
    gather/scatter over ``edge_index``, layers stacked and averaged."""

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64, K: int = 3,
                 add_self_loops: bool = False):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.embedding_dim, self.K, self.add_self_loops = embedding_dim, K, add_self_loops
        self.users_emb = nn.Embedding(num_embeddings=num_users, embedding_dim=embedding_dim)
        self.items_emb = nn.Embedding(num_embeddings=num_items, embedding_dim=embedding_dim)
        nn.init.normal_(self.users_emb.weight, std=0.1)
        nn.init.normal_(self.items_emb.weight, std=0.1)

    def forward(self, edge_index: Tensor):
        edge_index_norm = gcn_norm(edge_index=edge_index, add_self_loops=self.add_self_loops)
        emb_0 = torch.cat([self.users_emb.weight, self.items_emb.weight])
        embs = [emb_0]
        emb_k = emb_0
        for _ in range(self.K):
            emb_k = self.propagate(edge_index_norm[0], x=emb_k, norm=edge_index_norm[1])
            embs.append(emb_k)
        embs = torch.stack(embs, dim=1)
        emb_final = torch.mean(embs, dim=1)
        return emb_final, emb_0  # (N, d) final and layer-0 node embeddings

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * x_j


def original_bpr_loss(users_emb_final, users_emb_0, pos_items_emb_final, pos_items_emb_0,
                      neg_items_emb_final, neg_items_emb_0, lambda_val):
    """The original's loss: ``-mean(softplus(pos - neg))`` (unbounded below, defect 4) plus
    ``λ`` times the squared norms of the layer-0 embeddings of the batch."""
    reg_loss = lambda_val * (users_emb_0.norm(2).pow(2) + pos_items_emb_0.norm(2).pow(2)
                             + neg_items_emb_0.norm(2).pow(2))
    pos_scores = torch.sum(torch.mul(users_emb_final, pos_items_emb_final), dim=-1)
    neg_scores = torch.sum(torch.mul(users_emb_final, neg_items_emb_final), dim=-1)
    return -torch.mean(F.softplus(pos_scores - neg_scores)) + reg_loss


def train_step(model: OriginalLightGCN, optimizer, train_adj: Tensor, batch_size: int = BATCH_SIZE,
               lambda_val: float = LAMBDA) -> float:
    """One iteration of the original loop: full propagation, original sampler, loss, Adam step."""
    emb_final, emb_0 = model(train_adj)
    u, i, j = sample_mini_batch(batch_size, train_adj)
    u, i, j = u.to(emb_final.device), i.to(emb_final.device), j.to(emb_final.device)
    loss = original_bpr_loss(emb_final[u], emb_0[u], emb_final[i], emb_0[i], emb_final[j], emb_0[j],
                             lambda_val)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# --- evaluation ---------------------------------------------------------------------

def get_user_positive_items(edge_index: Tensor) -> dict:
    user_pos_items = {}
    for i in range(edge_index.shape[1]):
        user = edge_index[0][i].item()
        item = edge_index[1][i].item()
        if user not in user_pos_items:
            user_pos_items[user] = []
        user_pos_items[user].append(item)
    return user_pos_items


def RecallPrecision_ATk(groundTruth, r, k):
    num_correct_pred = torch.sum(r, dim=-1)
    user_num_liked = torch.Tensor([len(groundTruth[i]) for i in range(len(groundTruth))])
    recall = torch.mean(num_correct_pred / user_num_liked)
    precision = torch.mean(num_correct_pred) / k
    return recall.item(), precision.item()


def NDCGatK_r(groundTruth, r, k):
    assert len(r) == len(groundTruth)
    test_matrix = torch.zeros((len(r), k))
    for i, items in enumerate(groundTruth):
        length = min(len(items), k)
        test_matrix[i, :length] = 1
    max_r = test_matrix
    idcg = torch.sum(max_r * 1.0 / torch.log2(torch.arange(2, k + 2)), axis=1)
    dcg = r * (1.0 / torch.log2(torch.arange(2, k + 2)))
    dcg = torch.sum(dcg, axis=1)
    idcg[idcg == 0.0] = 1.0
    ndcg = dcg / idcg
    ndcg[torch.isnan(ndcg)] = 0.0
    return torch.mean(ndcg).item()


def get_metrics(user_embedding: Tensor, item_embedding: Tensor, input_edge_index: Tensor,
                input_exclude_edge_indices: list[Tensor], k: int, num_users: int, num_movies: int):
    """The original ``get_metrics``: dense conversions of the bidirectional edge indices, Python
    lists for masking, a Python loop over users and ``x in list`` over tensor elements."""
    edge_index = convert_adj_mat_edge_index_to_r_mat_edge_index(input_edge_index, num_users,
                                                                num_movies)
    exclude_edge_indices = [convert_adj_mat_edge_index_to_r_mat_edge_index(e, num_users, num_movies)
                            for e in input_exclude_edge_indices]
    rating = torch.matmul(user_embedding, item_embedding.T)
    for exclude_edge_index in exclude_edge_indices:
        user_pos_items = get_user_positive_items(exclude_edge_index)
        exclude_users, exclude_items = [], []
        for user, items in user_pos_items.items():
            exclude_users.extend([user] * len(items))
            exclude_items.extend(items)
        rating[exclude_users, exclude_items] = -(1 << 10)
    _, top_K_items = torch.topk(rating, k=k)
    users = edge_index[0].unique()
    test_user_pos_items = get_user_positive_items(edge_index)
    test_user_pos_items_list = [test_user_pos_items[user.item()] for user in users]
    r = []
    for user in users:
        user_true_relevant_item = test_user_pos_items[user.item()]
        label = list(map(lambda x: x in user_true_relevant_item, top_K_items[user]))
        r.append(label)
    r = torch.Tensor(np.array(r).astype("float"))
    recall, precision = RecallPrecision_ATk(test_user_pos_items_list, r, k)
    ndcg = NDCGatK_r(test_user_pos_items_list, r, k)
    return recall, precision, ndcg
