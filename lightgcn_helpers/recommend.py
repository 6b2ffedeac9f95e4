"""Turn scores into readable recommendations: item ids, and titles/genres when known.

Item metadata is optional. Pass a table with one row per raw item id (its id column
named like the graph's item column, e.g. ``movieId`` with ``title`` and ``genres``), or
let the functions use ``graph.items``; without any, the tables show raw item ids only.

:func:`recommend` and :func:`liked_items` are for users of the training graph;
:func:`recommend_new_user` is for someone who is not in it: their likes (raw ids or titles,
:func:`encode_profile`) are folded in (:mod:`lightgcn_helpers.foldin`) and each recommendation
comes with the liked item it is closest to ("because you liked", :func:`similar.explain`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from .graph import InteractionGraph
from .metrics import topk_items

__all__ = ["recommend", "liked_items", "describe_items", "encode_profile", "recommend_new_user"]


def describe_items(graph: InteractionGraph, item_idx,
                   items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Item indices → a table of their raw ids and, when metadata is given (``items`` or
    ``graph.items``), its columns (``title``, ``genres``, ...); missing entries are NaN."""
    id_col = graph.item_encoder.name
    raw = graph.item_encoder.inverse_transform(item_idx)
    meta = items if items is not None else graph.items
    if meta is None:
        return pd.DataFrame({id_col: raw})
    if id_col not in meta.columns:
        raise ValueError(f"the item metadata needs an id column {id_col!r} (the graph's item "
                         "column); "
                         f"it has {list(meta.columns)}")
    others = [c for c in meta.columns if c != id_col]
    table = meta.drop_duplicates(id_col).set_index(id_col).reindex(raw)[others]
    return table.rename_axis(id_col).reset_index()


def _user_index(graph: InteractionGraph, raw_user_id) -> int:
    try:
        return int(graph.user_encoder.transform([raw_user_id])[0])
    except KeyError:
        raise KeyError(f"unknown {graph.user_encoder.name} {raw_user_id!r}: it has no interaction "
                       "in this graph "
                       f"(new users: see lightgcn_helpers.foldin)") from None


def recommend(score_fn: Callable[[Tensor], Tensor], graph: InteractionGraph,
              items: pd.DataFrame | None,
              raw_user_id, k: int = 10, exclude: Sequence[Tensor] | None = None) -> pd.DataFrame:
    """Top-``k`` items for one user (raw id), excluding what they liked in ``exclude``
    (default: the training split). Columns: ``rank``, the raw item id, the metadata
    columns (e.g. ``title``, ``genres``; ``items=None`` uses ``graph.items``, if any) and
    ``held_out`` (whether the item is one of the user's validation/test likes)."""
    user = _user_index(graph, raw_user_id)
    exclude = [graph.split.train] if exclude is None else exclude
    top = topk_items(score_fn, torch.tensor([user]), k, graph.num_items, exclude)[0].cpu()
    table = describe_items(graph, top.numpy(), items)
    held = torch.cat([graph.split.val, graph.split.test], 1)
    held_items = set(held[1, held[0] == user].tolist())
    table.insert(0, "rank", range(1, k + 1))
    table["held_out"] = [int(i) in held_items for i in top]
    return table


def liked_items(graph: InteractionGraph, items: pd.DataFrame | None, raw_user_id,
                split: str = "train") -> pd.DataFrame:
    """The items a user (raw id) liked in ``split`` ('train', 'val' or 'test')."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    user = _user_index(graph, raw_user_id)
    edges = getattr(graph.split, split)
    return describe_items(graph, edges[1, edges[0] == user].numpy(), items)


def encode_profile(graph: InteractionGraph, items: pd.DataFrame | None, liked) -> Tensor:
    """A new user's likes → sorted, unique item indices ``(n,)``. ``liked``: raw item ids
    (e.g. ``movieId`` ints) and/or titles (str, found with
    :class:`lightgcn_helpers.search.TitleIndex`
    in ``items`` or ``graph.items``). One readable ``ValueError`` each for an empty profile, a
    title that matches no item or several (``TitleNotFoundError`` / ``AmbiguousTitleError``),
    and an id the graph does not know."""
    from .search import TitleIndex

    liked = [liked] if isinstance(liked, (str, int)) else list(liked)
    if not liked:
        raise ValueError("the profile is empty: name at least one liked item (a raw id or a title)")
    titles = [x for x in liked if isinstance(x, str)]
    raw = [x for x in liked if not isinstance(x, str)]
    if titles:
        meta = items if items is not None else graph.items
        if meta is None or "title" not in meta.columns:
            raise ValueError("titles need item metadata with a 'title' column (pass items=...)")
        index = TitleIndex(meta, id_col=graph.item_encoder.name)
        raw += index.resolve_many(titles)
    known = graph.item_encoder.classes_
    known_set = set(known.tolist())
    unknown = sorted({x for x in raw if x not in known_set})
    if unknown:
        raise ValueError(f"{graph.item_encoder.name} {unknown[:5]} not in the graph: the model "
                         "knows only the "
                         f"{len(known):,} items with at least one rating")
    return torch.unique(torch.as_tensor(graph.item_encoder.transform(raw), dtype=torch.long))


def recommend_new_user(fold, graph: InteractionGraph, items: pd.DataFrame | None, liked,
                       k: int = 10,
                       method: str = "optimise", **optimise_kwargs) -> pd.DataFrame:
    """Top-``k`` items for someone who is not in the training graph, from their likes
    (raw ids and/or titles, :func:`encode_profile`), folded into the trained model without
    retraining. ``fold``: a :class:`lightgcn_helpers.foldin.FoldIn` of the model;
    ``method``: ``"optimise"`` (learn the user's layer-0 vector, :meth:`FoldIn.optimise`,
    keyword arguments passed on) or ``"propagate"`` (layer 0 zero, :meth:`FoldIn.propagate`).
    The liked items are never recommended. Columns: ``rank``, the raw item id, the metadata
    columns (``title``, ``genres``, ...), ``score``, ``because you liked`` (the liked item the
    recommendation is most cosine-similar to, in the model's final item embeddings; its title
    when known) and ``similarity`` (that cosine)."""
    from .similar import explain

    profile = encode_profile(graph, items, liked)
    if profile.numel() >= graph.num_items:
        raise ValueError(f"the profile contains all {graph.num_items:,} items: nothing is left to "
                         "recommend")
    profiles = torch.stack([torch.zeros_like(profile), profile]).to(fold.device)
    if method == "optimise":
        emb = fold.optimise(profiles, 1, **optimise_kwargs).embedding
    elif method == "propagate":
        emb = fold.propagate(profiles, num_users=1)
    else:
        raise ValueError(f"method must be 'optimise' or 'propagate', got {method!r}")
    score_fn = fold.scorer(emb)
    k = min(k, graph.num_items - profile.numel())
    top = topk_items(score_fn, torch.zeros(1, dtype=torch.long, device=fold.device), k,
                     graph.num_items,
                     [profiles])[0]
    table = describe_items(graph, top.cpu().numpy(), items)
    table.insert(0, "rank", range(1, k + 1))
    table["score"] = score_fn(torch.zeros(1, dtype=torch.long))[0, top].cpu().numpy()
    because, sim = explain(fold.item_emb, profile.to(fold.device), top)
    liked_table = describe_items(graph, because.cpu().numpy(), items)
    label = "title" if "title" in liked_table.columns else graph.item_encoder.name
    table["because you liked"] = liked_table[label].to_numpy()
    table["similarity"] = sim.cpu().numpy()
    return table
