"""Structure priors: distributions over a model's structure Γ.

* :mod:`bayesstruct.priors.relaxed` -- per-edge structure vectors γ on the simplex or
  the cube, with a temperature (Dirichlet, Gumbel-softmax, Bernoulli, relaxed Bernoulli).
* :mod:`bayesstruct.priors.ibp` -- the (cascading) Indian buffet process over binary
  incidence matrices of unbounded width.
"""

from bayesstruct.priors.ibp import *  # noqa: F401,F403
from bayesstruct.priors.ibp import __all__ as _ibp_all
from bayesstruct.priors.relaxed import *  # noqa: F401,F403
from bayesstruct.priors.relaxed import __all__ as _relaxed_all

__all__ = [*_relaxed_all, *_ibp_all]
