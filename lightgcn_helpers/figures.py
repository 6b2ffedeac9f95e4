"""The series' diagrams and repeated plot recipes, so that a notebook shows the picture and
not the drawing code. Every figure is at most 9 inches (900 px at the series' 100 dpi) wide.

=========================  ==========================================================
:func:`draw_bipartite`     a small bipartite graph, users left, items right (notebook 02, §4)
:func:`plot_dense_cost`    memory and time of building A through a dense matrix (notebook 03, §5)
:func:`draw_model`         LightGCN and its loss in one picture (notebook 04, §1)
:func:`draw_toy_layers`    a toy graph's values layer by layer (notebook 04, §2)
:func:`plot_smoothing`     pair similarity and norm of embeddings layer by layer (notebook 04, §6)
:func:`draw_filter`        LightGCN and GF-CF as graph filters (notebook 04, §7)
:func:`plot_layers`        metrics against the number of layers, ± one SD (notebook 06, §7)
:func:`plot_reproduction`  a training run against the paper, with a zoomed inset (notebook 08, §2)
:func:`plot_ladder`        accuracy against wall time, measured and published (notebook 08, §2)
:func:`plot_step_costs`    where a training step's time goes, and the cost per interaction (08, §3)
:func:`plot_scaling`       epoch time, evaluation time and memory against graph size (08, §4)
=========================  ==========================================================
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["draw_bipartite", "plot_dense_cost", "draw_model", "draw_toy_layers", "plot_smoothing",
           "draw_filter", "plot_layers", "plot_reproduction", "plot_ladder", "plot_step_costs",
           "plot_scaling"]

MAX_WIDTH_IN = 9.0  # 900 px at plot_style()'s 100 dpi


def draw_bipartite(edges, num_users: int, labels: dict, title: str = ""):
    """A small bipartite graph in two columns: users (nodes ``< num_users``) on the left, items
    on the right, each node with its label. ``edges``: ``(user node, item node)`` pairs. Drawn in
    notebook 02, §4."""
    import networkx as nx

    graph = nx.Graph([tuple(e) for e in edges])
    left = sorted(n for n in graph if n < num_users)
    right = sorted(n for n in graph if n >= num_users)
    pos = {n: (x, -y) for x, side in ((0, left), (1, right)) for y, n in enumerate(side)}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.5)
    colors = ["tab:blue" if n < num_users else "tab:orange" for n in graph]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=120, node_color=colors)
    for n, (x, y) in pos.items():
        user = n < num_users
        ax.text(x + (-0.05 if user else 0.05), y, labels[n], ha="right" if user else "left",
                va="center")
    ax.set_xlim(-0.7, 2.1)
    ax.axis("off")
    ax.set_title(title)
    plt.show()


def plot_dense_cost(nodes, loop_s, dense_s, full_nodes: int, dense_fit: tuple[float, float],
                    loop_full: float, dense_full: float):
    """The two costs of building ``A`` through a dense matrix, on log-log axes against the number
    of nodes ``N``: left, the dense matrix's memory ``4N²`` bytes (exact, the full graph a filled
    star); right, the measured seconds of the Python loop and of the dense step on subgraphs
    (filled), the dense step's fit ``b + cN²`` (``dense_fit = (b, c)``) and both extrapolated to
    the full graph (hollow stars: not measured). Drawn in notebook 03, §5."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    nodes = np.asarray(nodes, dtype=float)
    grid = np.linspace(nodes.min(), full_nodes, 100)
    b, c = dense_fit
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 4.4))
    ax1.plot(grid, 4 * grid ** 2 / 1e6, "--", color="gray", label="$4N^2$ bytes")
    ax1.plot(nodes, 4 * nodes ** 2 / 1e6, "o", color="tab:red", label="subgraphs")
    ax1.plot([full_nodes], [4 * full_nodes ** 2 / 1e6], "*", ms=14, color="tab:red",
             label="full graph (exact)")
    ax1.set(ylabel="dense matrix (MB, log)", title="Memory of the dense step")
    ax2.plot(nodes, dense_s, "o", color="tab:red", label="dense step")
    ax2.plot(grid, np.maximum(b + c * grid ** 2, 1e-3), "--", color="tab:red",
             label="dense step: fit $b + cN^2$")
    ax2.plot(nodes, loop_s, "s", color="tab:blue", label="Python loop")
    for value, color, name in ((dense_full, "tab:red", "dense step"),
                               (loop_full, "tab:blue", "Python loop")):
        ax2.plot([full_nodes], [value], "*", ms=15, mfc="none", mec=color, mew=1.5,
                 label=f"{name}: full graph, extrapolated")
    ax2.set(ylabel="seconds (log)", title="Time of the two steps")
    for ax in (ax1, ax2):
        ax.set(xscale="log", yscale="log", xlabel="nodes N (log)")
        ax.minorticks_off()
        ax.set_xticks([2000, 4000, 10000], ["2,000", "4,000", "10,000"])
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False,
                  fontsize=8)
    fig.tight_layout()
    plt.show()


def _box(ax, x, y, w, h, text, color):
    """A rounded box with centred text."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.06", fc=color,
                                ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", linespacing=1.5)


def _arrow(ax, a, b, text="", right=False, **kw):
    """An arrow a -> b, with text above (or right of) its middle."""
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, color="0.25",
                                 shrinkA=0, shrinkB=0, **kw))
    if text:
        x, y = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        ax.text(x + 0.07 * right, y + 0.08 * (not right), text, ha="left" if right else "center",
                va="center" if right else "bottom")


def draw_model(num_layers: int = 3):
    """LightGCN with ``num_layers`` layers and its BPR loss in one picture: ``E⁰`` (the only
    learned table) → ``Ã·`` per layer → the weighted sum ``Σ α_l E^(l)`` → inner products → BPR,
    with the L2 penalty on the layer-0 rows. Drawn in notebook 04, §1."""
    xs = [0.7 + 1.3 * layer for layer in range(num_layers + 1)]  # the boxes E^(0), ..., E^(L)
    sx, bx = xs[-1] + 2.0, xs[-1] + 4.25  # the score and the BPR boxes
    width = bx + 1.2
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_IN - 0.2, 0.86 * width), 2.9))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    ax.set(xlim=(0, width), ylim=(0.45, 3.75))
    ax.axis("off")
    for layer, x in enumerate(xs):  # the layers and their weights alpha_l
        label, color = (r"$E^{(0)}$ learned", "#fdd9b5") if layer == 0 else (f"$E^{{({layer})}}$",
                                                                            "#dbe9f6")
        _box(ax, x, 2.6, 0.9 if layer else 1.05, 0.6, label, color)
        if layer:
            start = xs[layer - 1] + (0.6 if layer == 1 else 0.5)
            _arrow(ax, (start, 2.6), (x - 0.5, 2.6), r"$\tilde A\,\cdot$")
        _arrow(ax, (x, 2.24), (x, 1.56), rf"$\alpha_{layer}$", right=True)
    mid, span = (xs[0] + xs[-1]) / 2, xs[-1] - xs[0] + 1.0
    _box(ax, mid, 1.2, span, 0.6, r"$E = \sum_l \alpha_l E^{(l)}$, "
         rf"$\alpha_l = 1/{num_layers + 1}$", "#dbe9f6")
    score = r"$\hat y_{ui} = \mathbf{e}_u^\top \mathbf{e}_i$, $\hat y_{uj}$"
    _box(ax, sx, 1.2, 1.55, 0.9, "inner product\n" + score, "#e5f5e0")
    bpr = r"$-\ln\sigma(\hat y_{ui} - \hat y_{uj})$" + "\n" + r"$+\;\lambda\,\|E^{(0)}_{u,i,j}\|^2$"
    _box(ax, bx, 1.2, 2.05, 1.2, "BPR (notebook 05)\n" + bpr, "#fbe0ea")
    _arrow(ax, (mid + span / 2 + 0.08, 1.2), (sx - 0.83, 1.2))
    _arrow(ax, (sx + 0.83, 1.2), (bx - 1.08, 1.2))
    ax.plot([xs[0], xs[0], bx], [2.94, 3.45, 3.45], color="0.25", ls="--", lw=1)  # E^(0) -> L2
    _arrow(ax, (bx, 3.45), (bx, 1.85), ls="--")
    penalty = r"the penalty uses the layer-0 rows $\mathbf{e}^{(0)}_u, \mathbf{e}^{(0)}_i, " \
              r"\mathbf{e}^{(0)}_j$"
    ax.text((xs[0] + bx) / 2, 3.5, penalty, ha="center", va="bottom")
    plt.show()


def _toy_panels(layers, weight, neighbours, names, focus):
    """Per panel: title, the values on the nodes, and what happens to the ``focus`` node."""
    def num(v):  # negative numbers in brackets inside a sum
        return f"{v:.2f}" if v >= 0 else f"({v:.2f})"

    who = names[focus]
    panels = [(r"$e^{(0)}$: learned", layers[0], f"{who} starts at {layers[0][focus]:.2f}")]
    for layer in range(1, len(layers)):
        prev = layers[layer - 1]
        terms = " + ".join(f"{weight[(focus, m)]:.2f}·{num(prev[m])}" for m in neighbours)
        panels.append((rf"$e^{{({layer})}} = \tilde A\, e^{{({layer - 1})}}$", layers[layer],
                       f"{who}: {terms}\n= {layers[layer][focus]:.2f}"))
    final = [sum(col) / len(layers) for col in zip(*layers)]  # alpha_l = 1 / (L + 1)
    how = ("(" + " + ".join(num(x[focus]) for x in layers) + f") / {len(layers)}"
           if len(layers) <= 3 else f"mean of the {len(layers)} values")
    panels.append((rf"$e$: weighted sum, $\alpha_l = 1/{len(layers)}$", final,
                   f"{who}: {how}\n= {final[focus]:.2f}"))
    return panels


def draw_toy_layers(edges, num_users: int, names: Sequence[str],
                    layers: Sequence[Sequence[float]], weight: dict, pos: dict, focus: int = 0):
    """A toy bipartite graph drawn once per layer with one number per node: panel ``l`` shows
    ``e^(l)`` (colour and value on each node), the last panel the weighted sum; under each, how the
    ``focus`` node's value comes about. ``edges``: ``(user, item node)`` pairs, item nodes
    numbered from ``num_users`` on; ``layers``:
    ``[e^(0), ..., e^(L)]``, one list of node values each; ``weight``: edge → ``1/sqrt(d_u d_i)``;
    ``pos``: node → (x, y). Drawn in notebook 04, §2."""
    import networkx as nx

    graph = nx.Graph([tuple(e) for e in edges])
    panels = _toy_panels(layers, weight, list(graph[focus]), names, focus)
    ncols = 2 if len(panels) <= 4 else 3  # panels at least 3 inches wide
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN / 3 * ncols, 3.2 * nrows),
                             squeeze=False)
    for ax, (title, x, note) in zip(axes.flat, panels):
        _toy_panel(ax, graph, pos, weight, x, names, focus, num_users)
        ax.set_title(title)
        ax.text(0.5, 0.0, note, transform=ax.transAxes, ha="center", va="top", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    plt.show()


def _toy_panel(ax, graph, pos, weight, x, names, focus, num_users):
    """One panel of :func:`draw_toy_layers`: edges with their weights, nodes coloured by ``x``."""
    import networkx as nx

    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="0.6")
    nx.draw_networkx_edges(graph, pos, [(focus, m) for m in graph[focus]], ax=ax,
                           edge_color="black", width=2)
    labels = {e: f"{w:.2f}" for e, w in weight.items()}
    nx.draw_networkx_edge_labels(graph, pos, labels, ax=ax, font_size=9, rotate=False,
                                 bbox=dict(fc="white", ec="none", pad=0.5))
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=[x[v] for v in graph], cmap="coolwarm",
                           vmin=-3, vmax=3, node_size=700,
                           edgecolors=["black" if v == focus else "0.5" for v in graph],
                           linewidths=[2.5 if v == focus else 0.8 for v in graph])
    nx.draw_networkx_labels(graph, pos, {v: f"{x[v]:.2f}" for v in graph}, ax=ax, font_size=9)
    for v, xy in pos.items():  # names: users on the left, items on the right
        user = v < num_users
        ax.annotate(names[v], xy, xytext=(-17 if user else 17, 0), textcoords="offset points",
                    ha="right" if user else "left", va="center", fontsize=9)
    ax.set(xlim=(-0.95, 2.2), ylim=(-0.9, 2.9))


def plot_smoothing(table, num_layers: int):
    """Over-smoothing at a glance. ``table``: a DataFrame indexed by depth ``k`` with the columns
    ``"users: layer k"``, ``"movies: layer k"``, ``"users: mean of layers 0..k"``,
    ``"movies: mean of layers 0..k"`` (mean cosine of random pairs) and ``"user norm, layer k"``.
    Left: the pair cosines (solid: single layers, dashed: LightGCN's layer mean), the series' ``L``
    dotted; right: the users' mean norm, log scale. Drawn in notebook 04, §6."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 3.6),
                                   gridspec_kw={"width_ratios": [1.6, 1]})
    for who, color, marker in [("users", "C0", "o"), ("movies", "C1", "s")]:
        ax1.plot(table.index, table[f"{who}: layer k"], marker + "-", color=color, ms=4,
                 label=f"{who}: layer k")
        ax1.plot(table.index, table[f"{who}: mean of layers 0..k"], marker + "--", color=color,
                 ms=4, mfc="white", label=f"{who}: mean of layers 0..k")
    ax1.axvline(num_layers, color="gray", lw=1, ls=":", label=f"L = {num_layers}")
    ax1.set(xlabel="depth k (layers)", ylabel="mean cosine of random pairs", ylim=(-0.05, 1.05),
            title="Over-smoothing (random E⁰)")
    ax1.legend(loc="center right", fontsize=8)
    ax2.semilogy(table.index, table["user norm, layer k"], "o-", ms=4, color="C0")
    ax2.minorticks_off()
    ticks = [0.03, 0.05, 0.1, 0.2, 0.4, 0.8]  # plain numbers on the log axis
    ax2.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax2.set(xlabel="depth k (layers)", ylabel="mean user norm (log scale)",
            title="Layer-k embeddings shrink")
    for ax in (ax1, ax2):
        ax.set_xticks(range(0, int(table.index.max()) + 1, 2))
    fig.tight_layout()
    plt.show()


def draw_filter(sigma: np.ndarray, layer_counts: Sequence[int] = (1, 2, 3, 4), k: int | None = None,
                alpha: float = 0.3):
    """LightGCN and GF-CF as graph filters, against the spectrum of a graph.

    Left: LightGCN's frequency response ``h(μ) = Σ_l α_l μ^l`` (``α_l = 1/(L+1)``) over the
    eigenvalues ``μ ∈ [-1, 1]`` of ``Ã`` for each ``L`` of ``layer_counts``, above a histogram of
    ``Ã``'s eigenvalues ``±σ`` (``sigma``: the singular values of ``R̃``). Right: GF-CF's response
    over the item-item graph ``R̃ᵀR̃`` (eigenvalues ``σ²``): the linear filter ``σ²``, the ideal
    low-pass ``1[σ ≥ σ_k]`` (the ``k`` largest) and their sum ``σ² + alpha · 1[σ ≥ σ_k]``. Drawn in
    notebook 04, §7."""
    sigma = np.sort(np.asarray(sigma, dtype=float))[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 3.4))
    mu = np.linspace(-1, 1, 401)
    for layers in layer_counts:
        h = sum(mu ** p for p in range(layers + 1)) / (layers + 1)
        ax1.plot(mu, h, label=f"L = {layers}")
    _spectrum(ax1, np.concatenate([-sigma, sigma]), bins=np.linspace(-1, 1, 41))
    ax1.set(xlabel=r"eigenvalue $\mu$ of $\tilde A$ (1: smoothest)", ylabel=r"response $h(\mu)$",
            title="LightGCN: what each layer count keeps", ylim=(-0.05, 1.05))
    ax1.legend(loc="upper left")
    s = np.linspace(0, 1, 401)
    ax2.plot(s, s ** 2, label=r"linear: $\sigma^2$")
    if k:
        cut = sigma[k - 1]
        ideal = (s >= cut).astype(float)
        ax2.plot(s, ideal, "--", label=rf"ideal low-pass: top {k}")
        ax2.plot(s, s ** 2 + alpha * ideal, color="k", lw=1.5,
                 label=rf"GF-CF: $\sigma^2 + {alpha:g}\cdot$ideal")
    _spectrum(ax2, sigma, bins=np.linspace(0, 1, 41))
    ax2.set(xlabel=r"singular value $\sigma$ of $\tilde R$ (1: smoothest)",
            ylabel="response", title="GF-CF: the same idea in closed form", ylim=(-0.05, 1.4))
    ax2.legend(loc="upper left")
    fig.tight_layout()
    plt.show()


def _spectrum(ax, values, bins):
    """A grey histogram of ``values`` on a twin axis (share of eigenvalues per bin)."""
    twin = ax.twinx()
    twin.hist(values, bins=bins, color="0.85", weights=np.full(len(values), 1 / len(values)))
    twin.set_ylabel("share of the spectrum", color="0.45")
    twin.tick_params(axis="y", colors="0.45")
    twin.grid(False)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)


def plot_layers(table, metrics=("val recall", "test recall", "test ndcg")):
    """Metrics against the number of layers ``L`` (0 = MF-BPR), each the mean over seeds with
    error bars of ± one standard deviation: ``table`` is indexed by ``L`` with a column per metric
    and ``metric + " sd"`` beside it. Drawn in notebook 06, §7."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for metric, marker in zip(metrics, ("o", "s", "^")):
        ax.errorbar(table.index, table[metric], yerr=table[f"{metric} sd"], fmt=marker + "-",
                    ms=5, capsize=3, label=metric)
    ax.set(xlabel="number of layers L (0 = MF-BPR)", xticks=list(table.index),
           ylabel="metric @20 (mean ± SD over seeds)", title="LightGCN by number of layers")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()


def plot_reproduction(epochs, mean: dict, low: dict, high: dict, paper: dict, live=None,
                      floor: dict | None = None, zoom_from: int = 50,
                      metrics=(("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20"))):
    """Test metrics of a reproduction against the epoch, one panel per metric: the mean over seeds
    (``mean[metric]``, a list per ``epochs``) with its min–max band (``low``/``high``), a live
    run's points (``live``: DataFrame indexed by epoch, hollow squares), the paper's figure
    (dashed) and ``floor`` (e.g. popularity, dotted). An inset zooms on the epochs from
    ``zoom_from``, where the run and the paper differ by thousandths. Drawn in notebook 08, §2."""
    epochs = np.asarray(epochs)
    fig, axes = plt.subplots(1, len(metrics), figsize=(MAX_WIDTH_IN, 3.7))
    for ax, (key, label) in zip(np.atleast_1d(axes), metrics):
        ins = ax.inset_axes([0.42, 0.1, 0.54, 0.5])
        for target in (ax, ins):
            target.fill_between(epochs, low[key], high[key], color="tab:blue", alpha=0.25, lw=0)
            target.plot(epochs, mean[key], "o-", ms=3, color="tab:blue",
                        label="reproduction (mean, min–max over seeds)")
            target.axhline(paper[key], color="black", ls="--", lw=1,
                           label=f"paper ({paper[key]:.4f})")
        if live is not None:
            ax.plot(live.index, live[key], "s", ms=7, mfc="none", mew=1.5, color="tab:orange",
                    label="this notebook's run")
        if floor:
            ax.axhline(floor[key], color="tab:gray", ls=":", lw=1.5, label="popularity")
        zoom = epochs >= zoom_from
        values = np.concatenate([np.asarray(low[key])[zoom], np.asarray(high[key])[zoom],
                                 [paper[key]]])
        ins.set(xlim=(zoom_from - 3, epochs.max() + 3),
                ylim=(values.min() - 0.001, values.max() + 0.001))
        ins.tick_params(labelsize=7)
        ins.set_title(f"epochs {zoom_from}–{epochs.max()}", fontsize=8)
        ax.set(xlabel="epoch", ylabel=f"test {label}", title=label, ylim=(0, None))
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    plt.show()


def plot_ladder(runs: dict, points: dict, published: dict, metrics=(("recall@20", "Recall@20"),
                ("ndcg@20", "NDCG@20")), floors: dict | None = None):
    """Test metrics against wall time (minutes, log axis), one panel per metric.

    ``runs``: name → ``{"minutes": [...], metric: [...], metric + "_lo"/"_hi": [...] (optional
    band)}``, a training run's evaluations (filled markers: measured here); ``points``: name →
    ``{"minutes": m, metric: v}``, a training-free model (filled: measured here); ``published``:
    name → ``{metric: v}``, numbers from papers, drawn as dotted lines and named at the right
    (not measured here). ``floors``: metric → the lower end of its y-axis, zoomed so that the top
    of the ladder is readable; a point below it is named at the bottom. Drawn in notebook 08, §2."""
    floors = floors or {}
    fig, axes = plt.subplots(1, len(metrics), figsize=(MAX_WIDTH_IN, 3.9))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, label) in zip(np.atleast_1d(axes), metrics):
        for c, (name, r) in enumerate(runs.items()):
            ax.plot(r["minutes"], r[key], "o-", ms=3, color=colors[c], label=name)
            if f"{key}_lo" in r:
                ax.fill_between(r["minutes"], r[f"{key}_lo"], r[f"{key}_hi"], color=colors[c],
                                alpha=0.25, lw=0)
        below = []
        for c, (name, p) in enumerate(points.items(), start=len(runs)):
            if p[key] < floors.get(key, -np.inf):
                below.append(f"{name} {p[key]:.4f}")
            else:
                ax.plot([p["minutes"]], [p[key]], "D", ms=7, color=colors[c % len(colors)],
                        label=name)
        for p in published.values():
            ax.axhline(p[key], color="0.4", ls=":", lw=1)
        if key in floors:
            ax.set_ylim(floors[key], max([p[key] for p in published.values()] + [ax.get_ylim()[1]])
                        + 0.002)
        _name_lines(ax, {f"{name} {p[key]:.4f}": p[key] for name, p in published.items()})
        ax.set(xscale="log", xlabel="wall time on this CPU (minutes, log scale)",
               ylabel=f"test {label}", title=label)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        if below:
            ax.text(0.98, 0.03, "below the axis: " + ", ".join(below), transform=ax.transAxes,
                    ha="right", fontsize=8, color="0.3")
    np.atleast_1d(axes)[0].legend(loc="lower right", fontsize=8, bbox_to_anchor=(1.0, 0.08))
    fig.tight_layout()
    plt.show()


def _name_lines(ax, labels: dict[str, float], gap: float = 0.055):
    """Names of horizontal lines at the right of ``ax``, pushed apart so that none overlap."""
    lo, hi = ax.get_ylim()
    ys = sorted(((v - lo) / (hi - lo), text) for text, v in labels.items())
    placed = []
    for y, text in ys:
        y = max(y, placed[-1][0] + gap) if placed else y
        placed.append((y, text))
    for y, text in placed:
        ax.text(1.01, y, text, transform=ax.transAxes, fontsize=8, color="0.3", va="center")


def plot_step_costs(per_step_ms, per_interaction_us):
    """Left: the milliseconds of each part of one training step (a ``Series``, in step order);
    right: microseconds per training interaction of two loops (a ``Series``, log scale). Drawn in
    notebook 08, §3."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 3.2),
                                   gridspec_kw={"width_ratios": [3, 2]})
    per_step_ms[::-1].plot.barh(ax=ax1, color="tab:blue")
    total = per_step_ms.sum()
    for y, v in enumerate(per_step_ms[::-1]):
        ax1.text(v, y, f" {v:,.0f} ms ({v / total:.0%})", va="center", fontsize=8)
    ax1.set(xlabel="ms per step", title=f"One training step: {total:,.0f} ms",
            xlim=(0, per_step_ms.max() * 1.5))
    ax2.bar(per_interaction_us.index, per_interaction_us, color=["tab:blue", "tab:gray"], log=True)
    for x, v in enumerate(per_interaction_us):
        ax2.text(x, v, f"{v:,.0f} µs", ha="center", va="bottom", fontsize=8)
    ax2.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.yaxis.set_minor_formatter(plt.NullFormatter())
    ratio = per_interaction_us.iloc[1] / per_interaction_us.iloc[0]
    ax2.set(ylabel="µs (log scale)", title=f"Per training interaction: {ratio:.0f}x",
            ylim=(None, per_interaction_us.max() * 3))
    fig.tight_layout()
    plt.show()


def plot_scaling(sizes, fits: dict, costs: dict):
    """One log-log panel per cost (``costs``: column → title) against the training interactions,
    one marker per source of ``sizes`` (a DataFrame with ``source``, ``interactions``, the cost
    columns and ``epoch extrapolated``): measured points filled, extrapolated epochs hollow, the
    least-squares fit of each source (``fits[(source, column)] = (slope, intercept)``, log10
    axes) as a line. Drawn in notebook 08, §4."""
    human = plt.FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k")
    fig, axes = plt.subplots(1, len(costs), figsize=(MAX_WIDTH_IN, 3.6))
    styles = (("s", "tab:orange"), ("o", "tab:blue"))
    for ax, (key, label) in zip(axes, costs.items()):
        for (src, g), (marker, color) in zip(sizes.groupby("source"), styles):
            name = {"gowalla": "Gowalla subsample"}.get(src, src)
            est = g["epoch extrapolated"] & (key == "epoch_seconds")
            ax.loglog(g["interactions"][~est], g[key][~est], marker, color=color, ls="none",
                      label=name)
            if est.any():
                ax.loglog(g["interactions"][est], g[key][est], marker, color=color, mfc="none",
                          ls="none", label=f"{name}, extrapolated")
            if (src, key) in fits:
                x = np.array([g["interactions"].min(), g["interactions"].max()])
                ax.loglog(x, 10 ** np.polyval(fits[src, key], np.log10(x)), "-", color=color,
                          lw=1, label=f"fit: slope {fits[src, key][0]:.2f}")
        ax.xaxis.set_major_formatter(human)
        if key == "peak_mb":  # less than two decades: ticks at 1, 2, 5 x 10^n
            ax.yaxis.set_major_locator(plt.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.set(xlabel="training interactions", title=label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    plt.show()
