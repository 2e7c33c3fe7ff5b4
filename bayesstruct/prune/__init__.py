"""Pruning and compression: saliencies (OBD, OBS, magnitude) and coders (Huffman).

* :mod:`bayesstruct.prune.saliency` -- which parameters to remove, and masks that keep them removed.
* :mod:`bayesstruct.prune.huffman` -- an optimal prefix code that really encodes to bits.
* :mod:`bayesstruct.prune.compression` -- Deep Compression: weight sharing, centroid fine-tuning, a compressed file.
* :mod:`bayesstruct.prune.graves` -- Graves's variational MDL (bits) and pruning by relative density q(0)/q(mu).
"""

from bayesstruct.prune.compression import *  # noqa: F401,F403
from bayesstruct.prune.compression import __all__ as _compression_all
from bayesstruct.prune.graves import *  # noqa: F401,F403
from bayesstruct.prune.graves import __all__ as _graves_all
from bayesstruct.prune.huffman import *  # noqa: F401,F403
from bayesstruct.prune.huffman import __all__ as _huffman_all
from bayesstruct.prune.saliency import *  # noqa: F401,F403
from bayesstruct.prune.saliency import __all__ as _saliency_all

__all__ = [*_saliency_all, *_huffman_all, *_compression_all, *_graves_all]
