"""Helpers for the *LightGCN from scratch* tutorial series: each module belongs to a lesson.

The map — module, the notebook (and sections) that derive it, what it teaches:

==============  ===============  ===========================================================
module          notebook         what it teaches
==============  ===============  ===========================================================
``data``        01 §1, 02 §9     download once, verify, cache; read your own interaction file
``graph``       02, 03           ratings → implicit edges, id encoders, the 80/10/10 split,
                                 ``edge_index``; ``R``, ``A`` and ``Ã = D^-1/2 A D^-1/2``
``model``       04               the LightGCN layer (PyG ``MessagePassing``), the layer
                                 combination ``Σ α_l E^(l)``, the matrix form, the score
``loss``        05 §1, §4; 08 §2 BPR and layer-0 L2; negatives shared per user, the hardest
                                 of them; synthesised negatives (MixGCF)
``sampling``    05 §2            BPR triples: users from user nodes, negatives never liked
``train``       05 §3–5; 08 §2   one training loop (validation, early stopping, best weights),
                                 the recipes, ``train_cached``
``metrics``     06 §1–3, §5      Recall / Precision / NDCG / HitRate @K over full rankings
``baselines``   06 §4; 08 §2     popularity, EASE, GF-CF (MF-BPR is ``LightGCN(num_layers=0)``)
``recommend``   06 §8; 07 §1     top-k items (titles when known) for a user or someone new
``search``      07 §1            find movies by (part of) their title
``widgets``     07 §1            a live "pick your movies" recommender
``coldstart``   07 §2, §4        a user-level hold-out: held-out users, revealed likes
``foldin``      07 §3–4          users not in training, without retraining (LightGCN, EASE)
``similar``     07 §5–6          nearest items, "because you liked", label agreement
``datasets``    08 §1            the registry: MovieLens releases, the LightGCN paper's splits
``minibatch``   08 §5            sampled neighbourhoods (PyG's samplers, ``LGConv``), DDP
``env``         every Setup      seeds, device, versions, plot style, sliders, timing
``figures``     02–04, 08        the series' diagrams and plot recipes (the pictures, not
                                 the drawing code)
``_fast``       (after 04–06)    the fast internals, each beside the plain expression it
                                 computes (tested against it): read the lessons first
==============  ===============  ===========================================================

The teaching core — ``graph``, ``model``, ``loss``, ``sampling``, ``train``, ``metrics``,
``baselines`` — is written to be read next to its notebook: every public function names the
section that derives it. Each module is imported on its own (``from lightgcn_helpers.graph
import ...``); ``import lightgcn_helpers`` stays light.
"""
__version__ = "0.1.0"
