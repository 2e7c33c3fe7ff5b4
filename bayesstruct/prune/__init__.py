"""Pruning and compression: saliencies (OBD, OBS, magnitude) and coders (Huffman).

* :mod:`bayesstruct.prune.saliency` -- which parameters to remove, and masks that keep them removed.
* :mod:`bayesstruct.prune.huffman` -- an optimal prefix code that really encodes to bits.
* :mod:`bayesstruct.prune.compression` -- Deep Compression: weight sharing, centroid fine-tuning, a compressed file.
* :mod:`bayesstruct.prune.graves` -- Graves's variational MDL (bits) and pruning by relative density q(0)/q(mu).
* :mod:`bayesstruct.prune.training` -- training and evaluating a (pruned) classifier, L1/L2 penalties.
* :mod:`bayesstruct.prune.iterative` -- Han et al.'s prune -> retrain rounds and weight histograms.
* :mod:`bayesstruct.prune.bayesian` -- pruning Bayesian PyroModules from their guide; the ``mask_weights`` handler.
* :mod:`bayesstruct.prune.accounting` -- one table of bits, bytes, error and MDL length for every method.
"""

from bayesstruct.prune.accounting import *  # noqa: F401,F403
from bayesstruct.prune.accounting import __all__ as _accounting_all
from bayesstruct.prune.bayesian import *  # noqa: F401,F403
from bayesstruct.prune.bayesian import __all__ as _bayesian_all
from bayesstruct.prune.compression import *  # noqa: F401,F403
from bayesstruct.prune.compression import __all__ as _compression_all
from bayesstruct.prune.graves import *  # noqa: F401,F403
from bayesstruct.prune.graves import __all__ as _graves_all
from bayesstruct.prune.huffman import *  # noqa: F401,F403
from bayesstruct.prune.huffman import __all__ as _huffman_all
from bayesstruct.prune.iterative import *  # noqa: F401,F403
from bayesstruct.prune.iterative import __all__ as _iterative_all
from bayesstruct.prune.saliency import *  # noqa: F401,F403
from bayesstruct.prune.saliency import __all__ as _saliency_all
from bayesstruct.prune.training import *  # noqa: F401,F403
from bayesstruct.prune.training import __all__ as _train_all

__all__ = [*_saliency_all, *_huffman_all, *_compression_all, *_graves_all, *_train_all, *_iterative_all, *_accounting_all, *_bayesian_all]
