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

A title as ``movies.csv`` writes it always finds its movie, whatever it contains (``"Atalante, L'
(1934)"``, ``"Death Note: Desu nôto (2006–2007)"``). A few movies share one and the same title
(ml-latest-small has five such pairs, e.g. *Emma (1996)*): that title resolves to the most liked
of them (``popularity``; then the smaller ``movieId``), with a :class:`SameTitleWarning` naming
the others, whose ``movieId`` picks them; :attr:`TitleIndex.same_title` lists every such title.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["TitleIndex", "TitleNotFoundError", "AmbiguousTitleError", "SameTitleWarning",
           "normalize_title"]

_YEAR_AT_END = re.compile(r"\s*\((\d{4})(?:[–-]\d{4})?\)\s*$")
# a year at the end of a query: "1999", "(1999)", "(2006–2007)"
_QUERY_YEAR = re.compile(r"^(.*?)[\s,]*\(?(\d{4})(?:\s*[–-]\s*\d{4})?\)?\s*$")
_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "die", "das", "der", "el", "los",
             "las", "lo")
_ARTICLE_AT_END = re.compile(r"^(.*), (" + "|".join(re.escape(a) for a in _ARTICLES) + r")$", re.I)
_LEADING_ARTICLE = re.compile(r"^(?:" + "|".join(a for a in _ARTICLES if a.isalpha()) + r") ")


class TitleNotFoundError(ValueError):
    """No movie title matches the query (the message lists close matches, if any)."""


class AmbiguousTitleError(ValueError):
    """Several movies match the query equally well (the message lists them)."""


class SameTitleWarning(UserWarning):
    """A title that several movies share was resolved to the most liked of them (the message
    names the others and their ``movieId``)."""


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
    # "City of Lost Children, The (Cité ...)" → the first title
    main = base.split(" (", 1)[0].strip()
    art = _ARTICLE_AT_END.match(main)
    if art:
        # "Godfather: Part II, The" → "The Godfather: Part II"
        main = f"{art.group(2)} {art.group(1)}"
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
    good matches, most popular first, and is shown as a column by :meth:`search`.

    ``same_title``: every title that several movies share → their ``movieId``\\ s, most liked
    first (the one that the title resolves to)."""

    def __init__(self, movies: pd.DataFrame, popularity: Mapping | pd.Series | None = None,
                 id_col: str = "movieId", title_col: str = "title"):
        for col in (id_col, title_col):
            if col not in movies.columns:
                raise ValueError(f"the movie table needs a {col!r} column; "
                                 f"it has {list(movies.columns)}")
        self.movies = movies.drop_duplicates(id_col).reset_index(drop=True)
        self.id_col, self.title_col = id_col, title_col
        parsed = [normalize_title(str(t)) for t in self.movies[title_col]]
        self.keys = pd.Series([k for k, _ in parsed], dtype=object)
        self.bare = self.keys.map(_bare)
        # the whole title without its year, alternative titles included
        self.full = (self.movies[title_col].astype(str).str.replace(_YEAR_AT_END, "", regex=True)
                     .map(_fold))
        self.years = np.array([-1 if y is None else y for _, y in parsed])
        pop = pd.Series(popularity) if popularity is not None else None
        self.popularity = (None if pop is None else pop.reindex(self.movies[id_col].to_numpy())
                           .fillna(0).to_numpy(dtype=float))
        # every title as written → its rows, most liked first (then the smaller id)
        ids = self.movies[id_col].to_numpy()
        pop_or_0 = self.popularity if self.popularity is not None else np.zeros(len(ids))
        order = np.lexsort((ids, -pop_or_0))
        by_title: dict[str, list[int]] = {}
        for row in order:
            by_title.setdefault(str(self.movies[title_col].iat[row]).strip(), []).append(int(row))
        self._by_title = by_title
        self.same_title = {t: ids[rows].tolist() for t, rows in by_title.items() if len(rows) > 1}

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
        exact = (keys == key) | (bare == bare_q)
        start = keys.str.startswith(key) | bare.str.startswith(bare_q)
        # the key has the article in front ("l atalante"), the full title behind ("atalante l")
        anywhere = (full.str.contains(key, regex=False) | full.str.contains(bare_q, regex=False)
                    | keys.str.contains(key, regex=False) | exact | start)
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
        ids = self.movies[self.id_col].to_numpy()[hits]
        order = np.lexsort((ids, self.full.to_numpy()[hits], -pop, rank[hits]))  # last key first
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
            same = (self.bare == c).to_numpy()
            titles.extend(self.movies[self.title_col].to_numpy()[same][:2].tolist())
        return titles[:n]

    def resolve(self, query: str) -> int:
        """The one ``movieId`` that ``query`` names: a title exactly as written in the table,
        else the unique exact title, else the unique match. A title that several movies share
        gives the most liked of them, with a :class:`SameTitleWarning` naming the others.
        Raises :class:`TitleNotFoundError` or :class:`AmbiguousTitleError`."""
        titles = self.movies[self.title_col].to_numpy()
        if isinstance(query, str) and query.strip() in self._by_title:
            return self._first_of(self._by_title[query.strip()])
        hits, rank, _, year = self._matches(query)
        if hits.size == 0:
            close = self.close_matches(query)
            hint = (f" Did you mean: {'; '.join(close)}?" if close
                    else " Try a shorter part of the title.")
            raise TitleNotFoundError(f"no movie title matches {query!r}.{hint}")
        best = hits[rank == rank[0]] if rank[0] == 0 else hits
        if len(set(titles[best])) == 1:  # one movie, or several that share its title
            return self._first_of(self._by_title[str(titles[best[0]]).strip()])
        shown = "; ".join(titles[best[:6]]) + ("; ..." if best.size > 6 else "")
        example = repr(titles[best[0]])
        advice = ("add the year" if year is None else "use the full title") + f", e.g. {example}"
        raise AmbiguousTitleError(f"{query!r} matches {best.size} movies: {shown} — {advice}")

    def _first_of(self, rows: list[int]) -> int:
        """The ``movieId`` of the first (most liked) of ``rows``, which share one title; warns
        with the others when there are several."""
        ids = self.movies[self.id_col].to_numpy()
        if len(rows) > 1:
            title = self.movies[self.title_col].iat[rows[0]]
            others = "; ".join(f"{self.id_col} {ids[r]} ({self._describe(r)})" for r in rows[1:])
            other = "the other" if len(rows) == 2 else "the others"
            warnings.warn(f"{len(rows)} movies are titled {title!r}: took {self.id_col} "
                          f"{ids[rows[0]]} ({self._describe(rows[0])}), the most liked; {other}: "
                          f"{others} — put its {self.id_col} (an int) in place of the title to "
                          "take it instead", SameTitleWarning, stacklevel=3)
        return int(ids[rows[0]])

    def _describe(self, row: int) -> str:
        """Genres and popularity of one row, to tell movies with the same title apart."""
        parts = []
        if "genres" in self.movies.columns:
            parts.append(str(self.movies["genres"].iat[row]))
        if self.popularity is not None:
            n = self.popularity[row]
            parts.append(f"{n:,.0f} like" + ("" if n == 1 else "s"))
        return ", ".join(parts) or "no details"

    def resolve_many(self, queries: Iterable[str]) -> list[int]:
        """:meth:`resolve` for each query, in order."""
        return [self.resolve(q) for q in queries]

