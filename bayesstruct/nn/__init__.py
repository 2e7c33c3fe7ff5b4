"""Building blocks: primitives and structure graphs (to be written)."""
