"""Building blocks of structure families: primitives, structure graphs, operational criteria.

* :mod:`bayesstruct.nn.primitives` -- the registry of primitive functions g(w, x) on edges.
* :mod:`bayesstruct.nn.graph` -- :class:`StructureGraph` (validated acyclic graph) and the
  :class:`StructureNetwork` f(x; w, gamma) it defines, with ``discretize``.
* :mod:`bayesstruct.nn.criteria` -- :func:`operational_criteria` (parameters, vertices,
  edges, FLOPs, latency).
* :mod:`bayesstruct.nn.zoo` -- reference networks of the pruning literature (:func:`lenet300`, :func:`lenet5`).
"""

from bayesstruct.nn.criteria import *  # noqa: F401,F403
from bayesstruct.nn.criteria import __all__ as _criteria_all
from bayesstruct.nn.graph import *  # noqa: F401,F403
from bayesstruct.nn.graph import __all__ as _graph_all
from bayesstruct.nn.primitives import *  # noqa: F401,F403
from bayesstruct.nn.primitives import __all__ as _primitives_all
from bayesstruct.nn.zoo import *  # noqa: F401,F403
from bayesstruct.nn.zoo import __all__ as _zoo_all

__all__ = [*_primitives_all, *_graph_all, *_criteria_all, *_zoo_all]
