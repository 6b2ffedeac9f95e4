"""Helpers for the *LightGCN from scratch* tutorial series (one module per concept)."""
__version__ = "0.1.0"
