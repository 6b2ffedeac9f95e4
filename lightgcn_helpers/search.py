"""Find movies by (part of) their title: case-insensitive, accent-insensitive, year-aware.

MovieLens titles look like ``"Matrix, The (1999)"`` or ``"City of Lost Children, The (Cité des
enfants perdus, La) (1995)"``: the year in parentheses at the end, a leading article moved behind
a comma, sometimes an alternative title in parentheses. :class:`TitleIndex` turns every title into
a search key — article moved back to the front, accents and punctuation dropped, lower case — so
that ``"the matrix"``, ``"Matrix"`` and ``"MATRIX, THE"`` all find the same movie; a four-digit year
at the end of the query (``"Hamlet 1990"``, ``"Hamlet (1990)"``) filters by year.

* :meth:`TitleIndex.search` — every match, best first (exact title, then title start, then a
  whole-word match, then anywhere in the title; ties: the more popular movie first when
  ``popularity`` is given);
* :meth:`TitleIndex.resolve` — one ``movieId`` per query, or one readable error:
  :class:`TitleNotFoundError` (with close matches, e.g. for a typo) or
  :class:`AmbiguousTitleError` (with the candidates, e.g. the five *Hamlet*\\ s: add the year).

``search_titles`` / ``resolve_titles`` are one-call shortcuts.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["TitleIndex", "TitleNotFoundError", "AmbiguousTitleError", "search_titles", "resolve_titles",
           "normalize_title"]

_YEAR_AT_END = re.compile(r"\s*\((\d{4})(?:[–-]\d{4})?\)\s*$")
_QUERY_YEAR = re.compile(r"^(.*?)[\s,]*\(?(\d{4})\)?\s*$")
_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "die", "das", "der", "el", "los", "las", "lo")
_ARTICLE_AT_END = re.compile(r"^(.*), (" + "|".join(re.escape(a) for a in _ARTICLES) + r")$", re.I)
_LEADING_ARTICLE = re.compile(r"^(?:" + "|".join(a for a in _ARTICLES if a.isalpha()) + r") ")


class TitleNotFoundError(ValueError):
    """No movie title matches the query (the message lists close matches, if any)."""


class AmbiguousTitleError(ValueError):
    """Several movies match the query equally well (the message lists them)."""


def _fold(text: str) -> str:
    """Lower case, accents dropped, every run of other characters than letters and digits
    (punctuation, "·", "&", ...) → one space."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def normalize_title(title: str) -> tuple[str, int | None]:
    """A MovieLens title → ``(search key, year or None)``, e.g. ``"Matrix, The (1999)"`` →
    ``("the matrix", 1999)``; an alternative title in parentheses is dropped from the key."""
    match = _YEAR_AT_END.search(title)
    year = int(match.group(1)) if match else None
    base = title[:match.start()] if match else title
    main = base.split(" (", 1)[0].strip()  # "City of Lost Children, The (Cité ...)" → the first title
    art = _ARTICLE_AT_END.match(main)
    if art:
        main = f"{art.group(2)} {art.group(1)}"  # "Godfather: Part II, The" → "The Godfather: Part II"
    return _fold(main), year


def _query_key(query: str) -> str:
    """A query's search key; an article behind a comma moves to the front, as in the titles."""
    query = query.strip()
    art = _ARTICLE_AT_END.match(query)
    return _fold(f"{art.group(2)} {art.group(1)}" if art else query)


def _bare(key: str) -> str:
    """The key without a leading article: ``"the matrix"`` → ``"matrix"``."""
    return _LEADING_ARTICLE.sub("", key)


class TitleIndex:
    """Search keys of a movie table (columns ``movieId``, ``title``, optionally ``genres``),
    built once. ``popularity``: optional ``movieId → number`` (e.g. likes) that orders equally
    good matches, most popular first, and is shown as a column by :meth:`search`."""

    def __init__(self, movies: pd.DataFrame, popularity: Mapping | pd.Series | None = None,
                 id_col: str = "movieId", title_col: str = "title"):
        for col in (id_col, title_col):
            if col not in movies.columns:
                raise ValueError(f"the movie table needs a {col!r} column; it has {list(movies.columns)}")
        self.movies = movies.drop_duplicates(id_col).reset_index(drop=True)
        self.id_col, self.title_col = id_col, title_col
        parsed = [normalize_title(str(t)) for t in self.movies[title_col]]
        self.keys = pd.Series([k for k, _ in parsed], dtype=object)
        self.bare = self.keys.map(_bare)
        # the whole title without its year, alternative titles included
        self.full = self.movies[title_col].astype(str).str.replace(_YEAR_AT_END, "", regex=True).map(_fold)
        self.years = np.array([-1 if y is None else y for _, y in parsed])
        pop = pd.Series(popularity) if popularity is not None else None
        self.popularity = (None if pop is None else
                           pop.reindex(self.movies[id_col].to_numpy()).fillna(0).to_numpy(dtype=float))

    def _parse_query(self, query: str) -> tuple[str, int | None]:
        if not isinstance(query, str) or not _fold(query):
            raise TitleNotFoundError(f"empty title query {query!r}: type (part of) a movie title")
        match = _QUERY_YEAR.match(query.strip())
        if match and _fold(match.group(1)):
            return _query_key(match.group(1)), int(match.group(2))
        return _query_key(query), None

    def _rank(self, key: str, year: int | None) -> np.ndarray:
        """Match quality per movie: 0 exact, 1 start, 2 whole word(s), 3 anywhere, 9 no match."""
        bare_q = _bare(key)
        keys, bare, full = self.keys, self.bare, self.full
        anywhere = full.str.contains(key, regex=False) | full.str.contains(bare_q, regex=False)
        exact = (keys == key) | (bare == bare_q)
        start = keys.str.startswith(key) | bare.str.startswith(bare_q)
        word = (" " + full + " ").str.contains(" " + key + " ", regex=False)
        rank = np.select([~anywhere, exact, start, word], [9, 0, 1, 2], 3)
        if year is not None:
            rank[self.years != year] = 9
        return rank

    def _matches(self, query: str) -> tuple[np.ndarray, np.ndarray, str, int | None]:
        key, year = self._parse_query(query)
        rank = self._rank(key, year)
        if year is not None and not (rank < 9).any():
            # a trailing number that is part of the title, e.g. "Blade Runner 2049"
            key, year = _query_key(query), None
            rank = self._rank(key, None)
        hits = np.flatnonzero(rank < 9)
        pop = self.popularity[hits] if self.popularity is not None else np.zeros(hits.size)
        order = np.lexsort((self.full.to_numpy()[hits], -pop, rank[hits]))  # last key sorts first
        return hits[order], rank[hits[order]], key, year

    def search(self, query: str, limit: int | None = 10) -> pd.DataFrame:
        """Movies matching ``query``, best first: the movie table's rows (plus ``popularity``
        when known), at most ``limit`` of them (``None``: all). Empty when nothing matches."""
        hits, _, _, _ = self._matches(query)
        hits = hits if limit is None else hits[:limit]
        out = self.movies.iloc[hits].reset_index(drop=True)
        if self.popularity is not None:
            out = out.assign(popularity=self.popularity[hits])
        return out

    def close_matches(self, query: str, n: int = 5) -> list[str]:
        """Titles that look like ``query`` (``difflib``), for "did you mean ...?"."""
        key, _ = self._parse_query(query)
        keys = list(dict.fromkeys(self.bare))
        close = difflib.get_close_matches(_bare(key), keys, n=n, cutoff=0.6)
        titles = []
        for c in close:
            titles.extend(self.movies[self.title_col].to_numpy()[(self.bare == c).to_numpy()][:2].tolist())
        return titles[:n]

    def resolve(self, query: str) -> int:
        """The one ``movieId`` that ``query`` names: the unique exact title, else the unique
        match. Raises :class:`TitleNotFoundError` or :class:`AmbiguousTitleError`."""
        hits, rank, _, year = self._matches(query)
        titles = self.movies[self.title_col].to_numpy()
        if hits.size == 0:
            close = self.close_matches(query)
            hint = f" Did you mean: {'; '.join(close)}?" if close else " Try a shorter part of the title."
            raise TitleNotFoundError(f"no movie title matches {query!r}.{hint}")
        best = hits[rank == rank[0]] if rank[0] == 0 else hits
        if best.size == 1:
            return int(self.movies[self.id_col].iloc[best[0]])
        shown = "; ".join(titles[best[:6]]) + ("; ..." if best.size > 6 else "")
        advice = "add the year, e.g. " + repr(titles[best[0]]) if year is None else "use the full title"
        raise AmbiguousTitleError(f"{query!r} matches {best.size} movies: {shown} — {advice}")

    def resolve_many(self, queries: Iterable[str]) -> list[int]:
        """:meth:`resolve` for each query, in order."""
        return [self.resolve(q) for q in queries]


def search_titles(movies: pd.DataFrame, query: str, limit: int | None = 10,
                  popularity: Mapping | pd.Series | None = None) -> pd.DataFrame:
    """``TitleIndex(movies, popularity).search(query, limit)`` in one call."""
    return TitleIndex(movies, popularity).search(query, limit)


def resolve_titles(movies: pd.DataFrame, queries: Iterable[str],
                   popularity: Mapping | pd.Series | None = None) -> list[int]:
    """``TitleIndex(movies, popularity).resolve_many(queries)`` in one call."""
    return TitleIndex(movies, popularity).resolve_many(queries)
