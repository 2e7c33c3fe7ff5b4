"""Saliencies and masks (to be written)."""

__all__: list[str] = []
