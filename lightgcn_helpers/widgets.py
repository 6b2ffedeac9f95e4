"""A live "pick the movies you like → recommendations" widget (notebook 07).

:func:`pick_and_recommend` shows a search box and the matching titles, each with a tick box; the
ticked movies are your likes, and the recommendations below update at every tick — through
whatever ``recommend`` does with them (notebook 07: fold-in, no retraining). Outside a
live notebook (CI, ``LIGHTGCN_QUIET=1``, GitHub's stored outputs) it returns what ``recommend``
gives for the starting likes, so the cell shows the same table there, like
:func:`lightgcn_helpers.env.interact`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from .env import interactive
from .search import TitleIndex

__all__ = ["pick_and_recommend", "resolve_likes"]

EMPTY_MESSAGE = "Tick at least one movie you like (search for it above)."


def resolve_likes(titles: TitleIndex, liked: Sequence[int | str]) -> list[int]:
    """Likes given as ids and/or titles → ids (titles through :meth:`TitleIndex.resolve`), in
    order, each once."""
    ids = [x if not isinstance(x, str) else titles.resolve(x) for x in liked]
    return list(dict.fromkeys(int(x) for x in ids))


def pick_and_recommend(titles: TitleIndex, recommend: Callable[[list[int]], pd.DataFrame],
                       liked: Sequence[int | str] = (), limit: int = 30, rows: int = 10):
    """A search box, the matching titles with a tick box each (ticked: you like it), and
    ``recommend(ids)`` (ids: the ticked movies' ``titles.id_col`` values, in the order ticked)
    shown below, updated on every tick. ``liked``: the movies ticked at the start (ids and/or
    titles); ``limit``: matches listed per search, below your likes; ``rows``: the list's
    height in lines (it scrolls).

    In a live notebook it displays the widget and returns ``None``; everywhere else it returns
    ``recommend`` of the starting likes, which the cell then shows."""
    start = resolve_likes(titles, liked)
    if not interactive():
        if not start:
            raise ValueError("no starting likes: pass liked=[...] (titles or ids)")
        return recommend(start)
    from IPython.display import display

    picker = _Picker(titles, recommend, start, limit=limit, rows=rows, display=display)
    display(picker.root)
    return None


def _labeller(titles: TitleIndex) -> Callable[[int], str]:
    """movie id → its line in the list: the title, the genres where another movie has the same
    title (to tell them apart), and its number of likes where ``titles`` knows them."""
    meta = titles.movies.set_index(titles.id_col)
    likes = (pd.Series(titles.popularity, index=meta.index) if titles.popularity is not None
             else None)
    shared = {i for ids in titles.same_title.values() for i in ids}

    def label(movie_id: int) -> str:
        text = str(meta.at[movie_id, titles.title_col])
        if movie_id in shared and "genres" in meta.columns:
            text += f" · {meta.at[movie_id, 'genres']}"
        if likes is not None:
            n = likes.at[movie_id]
            text += f" · {n:,.0f} like" + ("" if n == 1 else "s")
        return text

    return label


def _search_ids(titles: TitleIndex, text: str, limit: int) -> list[int]:
    """The ids of the movies matching ``text``, best first, at most ``limit``; none for a text
    under 2 characters or with nothing searchable in it (e.g. "--")."""
    text = text.strip()
    if len(text) < 2:
        return []
    try:
        return titles.search(text, limit=limit)[titles.id_col].tolist()
    except ValueError:
        return []


class _Picker:
    """The widget of :func:`pick_and_recommend`: its parts (``root`` holds them all) and its
    state — ``chosen``: the ticked ids in the order ticked; ``shown``: the ids listed, one per
    checkbox of ``boxes``, a pool reused from search to search."""

    def __init__(self, titles: TitleIndex, recommend: Callable[[list[int]], pd.DataFrame],
                 start: list[int], *, limit: int, rows: int, display: Callable) -> None:
        import ipywidgets as widgets

        self.titles, self.recommend, self.limit, self.display = titles, recommend, limit, display
        self.label = _labeller(titles)
        self.chosen, self.shown, self.busy = list(start), [], False
        self.boxes: list = []
        self.query = widgets.Text(placeholder="part of a title, e.g. star wars",
                                  description="Search:", layout=widgets.Layout(width="70%"))
        self.listing = widgets.VBox(layout=widgets.Layout(
            max_height=f"{1.9 * rows:.1f}em", width="70%", overflow="auto"))
        self.clear = widgets.Button(description="clear selection",
                                    layout=widgets.Layout(width="auto"))
        self.status = widgets.Label()
        self.out = widgets.Output()
        self.query.observe(self.on_query, names="value")
        self.clear.on_click(self.on_clear)
        self.show_list([])
        self.show_recommendations()
        self.root = widgets.VBox([self.query, self.listing,
                                  widgets.HBox([self.clear, self.status]), self.out])

    def show_list(self, found: Sequence[int]) -> None:
        """List your likes (ticked, on top), then the ``found`` movies not among them."""
        import ipywidgets as widgets

        chosen = self.chosen
        shown = chosen + [i for i in found if i not in set(chosen)]
        while len(self.boxes) < len(shown):
            self.boxes.append(widgets.Checkbox(indent=False, layout=widgets.Layout(width="auto")))
            self.boxes[-1].observe(self.on_tick, names="value")
        self.busy = True  # ticks set here are not a reader's change
        try:
            for box, movie_id in zip(self.boxes, shown):
                box.description, box.value = self.label(movie_id), movie_id in chosen
        finally:
            self.busy = False
        self.shown = shown
        self.listing.children = self.boxes[:len(shown)]

    def show_recommendations(self) -> None:
        """``recommend`` of your likes below the list (its ValueError, e.g. a movie the model
        does not know, is printed there, not raised)."""
        chosen = self.chosen
        self.status.value = f"{len(chosen)} selected" if chosen else ""
        self.out.clear_output(wait=True)
        with self.out:
            if not chosen:
                print(EMPTY_MESSAGE)
                return
            try:
                self.display(self.recommend(list(chosen)))
            except ValueError as err:
                print(f"{type(err).__name__}: {err}")

    def on_tick(self, change) -> None:
        if self.busy:
            return
        movie_id = self.shown[self.boxes.index(change["owner"])]
        chosen = [i for i in self.chosen if i != movie_id]
        self.chosen = chosen + [movie_id] if change["new"] else chosen
        self.show_recommendations()

    def on_query(self, change) -> None:
        self.show_list(_search_ids(self.titles, change["new"], self.limit))

    def on_clear(self, _) -> None:
        self.chosen = []
        self.show_list(self.shown)
        self.show_recommendations()
