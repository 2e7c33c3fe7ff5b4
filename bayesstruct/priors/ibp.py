"""Indian buffet process priors (to be written)."""

__all__: list[str] = []
