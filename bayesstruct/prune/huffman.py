"""Huffman coding (to be written)."""

__all__: list[str] = []
