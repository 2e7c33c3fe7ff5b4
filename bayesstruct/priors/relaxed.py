"""Relaxed structure priors (to be written)."""

__all__: list[str] = []
