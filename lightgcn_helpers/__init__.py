"""Helpers for the *LightGCN from scratch* tutorial series, one module per concept.

==============  ==============================================================
``data``        download, verify and cache files; read your own interaction files
``datasets``    a registry of known datasets (MovieLens releases, the LightGCN paper's splits)
``graph``       any interaction table → ``InteractionGraph``: encoders, edges, split, adjacency
``model``       ``LightGCNConv`` (PyG ``MessagePassing``) and ``LightGCN``
``loss``        the BPR loss and layer-0 L2 regularisation; hard and synthesised (MixGCF) negatives
``sampling``    vectorized BPR triple sampler
``train``       mini-batch training loop with early stopping; ``train_cached``
``minibatch``   training on sampled neighbourhoods (PyG's samplers, ``LGConv``), DDP
``metrics``     Recall / Precision / NDCG / HitRate @K over full rankings
``baselines``   popularity and EASE (MF-BPR is ``LightGCN(num_layers=0)``)
``recommend``   top-k items (with titles when known) for a user, or for someone new
``search``      find movies by (part of) their title
``foldin``      users not in training, without retraining: LightGCN fold-in, EASE ``x·B``
``similar``     nearest items by cosine, "because you liked", label agreement
``coldstart``   user-level hold-out: held-out users, revealed likes
``env``         seeds, device, versions, plot style
==============  ==============================================================

Each module is imported on its own (``from lightgcn_helpers.graph import ...``);
``import lightgcn_helpers`` stays light.
"""
__version__ = "0.1.0"
