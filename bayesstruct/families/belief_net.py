r"""The nonlinear Gaussian belief network (NLGBN) with a cascading-IBP structure prior, by MCMC.

Adams, Wallach & Ghahramani (AISTATS 2010), *Learning the structure of deep sparse
graphical models*: a belief network whose layer-to-layer connectivity
:math:`Z = [Z_1, ..., Z_{L+1}]` has the cascading Indian buffet process prior
CIBP(α, β) (:class:`~bayesstruct.priors.CascadingIBP`) and whose units are noisy
sigmoids of their weighted parents. :class:`BeliefNetSampler` samples the joint posterior
over the structure, the parameters, the hidden activations and α, β.

The model (as implemented)
--------------------------
Layers are numbered bottom-up: layer 0 holds the :math:`K_0 = D` visible units,
layers 1..L the hidden ones; ``Z[c]`` (the paper's :math:`Z_{c+1}`) is the
:math:`K_c \times K_{c+1}` binary matrix with ``Z[c][j, k] = 1`` when unit k of layer c+1
is a parent of unit j of layer c; every hidden unit has at least one child and the top
layer L has no parents (``Z[L]`` has shape ``(K_L, 0)``). For data point n:

.. math::

    y^{(n)}_{cj} &\sim \mathcal N\Big(\sum_{k} Z_{c,jk}\, w_{c,jk}\, u^{(n)}_{c+1,k} + b_{cj},\;
        ν_c^{-1}\Big), \qquad u^{(n)}_{cj} = σ(y^{(n)}_{cj}) = 1/(1+e^{-y^{(n)}_{cj}}),\\
    w_{c,jk} &\sim \mathcal N(0, γ_w^{-1}) \text{ (one per edge)}, \qquad
    b_{cj} \sim \mathcal N(0, γ_b^{-1}), \qquad ν_c \sim \mathrm{Gamma}(a_ν, b_ν),\\
    Z &\sim \mathrm{CIBP}(α, β), \qquad α \sim \mathrm{Gamma}(a_α, b_α), \quad
    β \sim \mathrm{Gamma}(a_β, b_β)

(Gamma in shape/rate form). The unit value is a noisy sigmoid of the weighted parents,
as in the paper: the Gaussian *pre-activation* y passes through the logistic sigmoid.

**The data.** The visible units' pre-activations are observed: a data value
:math:`x \in [0, 1]` is taken to be the unit's output σ(y), so
:math:`y_{\mathrm{obs}} = \mathrm{logit}(\mathrm{clip}(x, ε, 1-ε))` with ``clip_eps`` = ε
(default 1/64, a quarter of the 1/16 spacing of the 8x8 digits' 17 grey levels, so a
clipped 0 or 1 stays nearer its own level than the next one; logit range ±4.1).
The Jacobian of x -> y is a constant, so the posterior is the same whichever of the two
is called the data; ``log_joint`` is the density of :math:`y_{\mathrm{obs}}`.

The structure lives on **labelled** matrices (hidden units of each layer in random order)
with the labelled CIBP law :math:`P_{\mathrm{lab}}` of
:func:`bayesstruct.families.dbn.labelled_log_prob`; depth, widths and edge counts have
the same law under it as under :meth:`CascadingIBP.sample`. The support is truncated to at
most ``max_depth`` hidden layers of at most ``max_width`` units (proposals outside are
rejected, so the chain targets the truncated posterior; the defaults leave negligible prior
mass outside for moderate α, β).

The sweep
---------
One :meth:`BeliefNetSampler.sweep` applies, in a fixed order, kernels that each leave the
posterior invariant (so their composition does):

1. :meth:`~BeliefNetSampler.update_weights` -- Gibbs for all weights and biases;
2. :meth:`~BeliefNetSampler.update_precisions` -- Gibbs for the layer precisions ν_c;
3. :meth:`~BeliefNetSampler.update_activations` -- MH for the hidden pre-activations;
4. :meth:`~BeliefNetSampler.update_edges` -- Gibbs for every edge indicator with its weight
   integrated out;
5. :meth:`~BeliefNetSampler.birth_death` (``birth_death_per_sweep`` times) -- reversible
   jump birth/death of units, including birth/death of the top layer;
6. :meth:`~BeliefNetSampler.resample_above` (``resample_per_sweep`` times) -- redraw the
   whole cascade above a random layer from the prior (layer births and deaths);
7. :meth:`~BeliefNetSampler.resample_above_hyper` (``hyper_resample_per_sweep`` times, when
   ``learn_alpha_beta``) -- propose new α, β together with a cascade above a random layer
   redrawn from the prior under them;
8. :meth:`~BeliefNetSampler.update_alpha_beta` -- MH on log α and log β
   (when ``learn_alpha_beta``).

Each method's docstring states its acceptance ratio. All randomness comes from one
``numpy.random.Generator`` (``sampler.rng``); :meth:`~BeliefNetSampler.state_dict`
stores its state so that a restored sampler continues bit for bit (the cached sigmoid
values and residuals are recomputed from the state at the end of every sweep, so a state
taken between sweeps determines the continuation).

Checks (``tests/families/test_belief_net.py``): with no data the chain's depth, width and
edge-count law equals direct :meth:`CascadingIBP.sample` draws; with data, every
birth/death and cascade-redraw (plain and joint with α, β) acceptance ratio equals the
full-joint ratio times the proposal ratio (recomputed independently); a successive-conditional (Geweke 2004) simulator recovers the
prior (slow test); the Gibbs conditionals match dense closed forms.

Behaviour to know (mixing). The data pin down the lowest layers; the layers above are only
weakly identified and, given α, β, are close to prior draws. Under the default Gamma(1, 1)
hyperpriors the *prior* itself puts much mass on deep cascades (with K_0 = 64 visible units,
P(depth >= 10) ≈ 0.19 and ≈ 0.10 beyond the ``max_depth=32`` cap, by direct simulation), so
deep states are not a bug of the chain but part of the target; what the chain must do is
move between them. Three things make that slow, and the defaults address each:

* **The initial state.** A deep prior draw with a narrow first layer fits the data poorly
  and takes long to dissolve, so with data the chain starts from the prior draw truncated
  to its first hidden layer (``init="shallow"``, the default with data).
* **α, β and the upper layers are strongly coupled**, so updating each given the other
  (:meth:`~BeliefNetSampler.update_alpha_beta`, :meth:`~BeliefNetSampler.resample_above`)
  moves the depth slowly; :meth:`~BeliefNetSampler.resample_above_hyper` changes them
  jointly.
* **The first layer's width grows slowly**: a born unit has one child and prior
  activations, its likelihood gain is at most a few nats (a single-child parentless unit is
  only a non-Gaussian noise term until it gains children), so births are accepted at a
  few to 15 % and a unit becomes useful only after its activations adapt; the default
  makes 40 birth/death proposals per sweep.

Do not compare ``log_joint`` across states of different size to judge which is "better":
every hidden unit adds N Gaussian pre-activations whose density contributes about
:math:`\tfrac N2 \log(ν/2πe)` (negative for ν < 17), so deeper states have a lower joint
density without being less probable. The visible layer's term
:math:`\log p(y_{\mathrm{obs}} \mid u_1, W_0, b_0, ν_0)` is comparable. Fix α, β
(``learn_alpha_beta=False``) or use tighter ``alpha_prior``/``beta_prior`` and a
``max_depth`` cap when a compact network is wanted; run long chains and check R-hat/ESS.

Examples
--------
>>> s = BeliefNetSampler(None, num_visible=3, seed=0)
>>> s.sweep()
>>> sorted(s.stats())
['alpha', 'beta', 'depth', 'log_joint', 'num_edges', 'widths']
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bayesstruct._validation import check_positive, check_positive_int, check_seed
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.dbn import _layer_log_prob, ibp_labelled, labelled_log_prob

__all__ = ["BeliefNetSampler", "BeliefNetSamples"]

_LOG2PI = math.log(2.0 * math.pi)
_STATE_VERSION = 1
MOVES = ("edge", "birth", "death", "resample", "resample_hyper", "activation_prior", "activation_rw", "alpha", "beta")
#: settings added after version 1 of the state dict, with the values that reproduce the older chains
_NEW_SETTINGS = {"hyper_resample_per_sweep": 0}
INITS = ("auto", "prior", "shallow")


def expit(y: np.ndarray) -> np.ndarray:
    """The logistic sigmoid 1/(1+e^{-y}), computed stably as (1 + tanh(y/2))/2."""
    return 0.5 * (1.0 + np.tanh(0.5 * y))


def _gamma_logpdf(x: float, shape: float, rate: float) -> float:
    """log Gamma(x; shape, rate)."""
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1.0) * math.log(x) - rate * x


def _check_pair(value: Any, name: str) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"`{name}` must be a pair (shape, rate) of positive numbers; got {value!r}"
        ) from None
    return check_positive(a, f"{name}[0] (shape)"), check_positive(b, f"{name}[1] (rate)")


def bayesian_linear_regressions(
    X: np.ndarray,
    T: np.ndarray,
    mask: np.ndarray,
    prior_prec: np.ndarray,
    noise_prec: float,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    r"""C independent Bayesian linear regressions sharing one design, batched.

    Column i of ``T`` is :math:`t_i = X_{:, S_i} w_i + ε`, :math:`ε \sim \mathcal N(0, ν^{-1} I)`,
    :math:`w_i \sim \mathcal N(0, Λ_{S_i}^{-1})`, with :math:`S_i` the set where ``mask[i]``
    is true. The posterior is :math:`\mathcal N(A_i^{-1} r_i, A_i^{-1})` with
    :math:`A_i = Λ_{S_i} + ν X_{S_i}^T X_{S_i}`, :math:`r_i = ν X_{S_i}^T t_i`, and the
    log marginal likelihood is

    .. math::

        \log p(t_i) = \tfrac N2 \log\tfrac{ν}{2π} - \tfrac ν2 t_i^T t_i
          + \tfrac12 \log\det Λ_{S_i} - \tfrac12 \log\det A_i + \tfrac12 r_i^T A_i^{-1} r_i .

    Parameters
    ----------
    X : ``(N, P)``; T : ``(N, C)``; mask : ``(C, P)`` bool; prior_prec : ``(P,)`` Λ's diagonal;
    noise_prec : ν; rng : when given, also draw one posterior sample per regression.

    Returns
    -------
    mean : ``(C, P)`` posterior means (0 off the mask); draw : ``(C, P)`` or None;
    log_ml : ``(C,)``.
    """
    N, P = X.shape
    C = T.shape[1]
    log_ml = 0.5 * N * (math.log(noise_prec) - _LOG2PI) - 0.5 * noise_prec * np.einsum("nc,nc->c", T, T)
    if P == 0 or C == 0:
        zeros = np.zeros((C, P))
        return zeros, (zeros.copy() if rng is not None else None), log_ml
    M = mask.astype(np.float64)
    if N == 0:  # no data: the posterior is the prior
        zeros = np.zeros((C, P))
        draw = rng.standard_normal((C, P)) / np.sqrt(prior_prec) * M if rng is not None else None
        return zeros, draw, log_ml
    G = X.T @ X
    A = noise_prec * G[None, :, :] * M[:, :, None] * M[:, None, :]
    idx = np.arange(P)
    A[:, idx, idx] += prior_prec
    rhs = noise_prec * (T.T @ X) * M  # (C, P)
    L = np.linalg.cholesky(A)
    mean = np.linalg.solve(A, rhs[..., None])[..., 0] * M
    log_det = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1)
    log_ml = log_ml + 0.5 * np.log(prior_prec).sum() - 0.5 * log_det + 0.5 * np.einsum("cp,cp->c", rhs, mean)
    draw = None
    if rng is not None:
        eps = rng.standard_normal((C, P))
        draw = (mean + np.linalg.solve(np.swapaxes(L, 1, 2), eps[..., None])[..., 0]) * M
    return mean, draw, log_ml


@dataclass
class BeliefNetSamples:
    """Per-sample statistics from :meth:`BeliefNetSampler.run`.

    Attributes
    ----------
    depth, num_edges : np.ndarray of int ``(S,)``
        Number of hidden layers L; number of edges over all layer matrices (visible ones included).
    alpha, beta, log_joint : np.ndarray of float ``(S,)``
        The CIBP parameters and the log joint density of each recorded state.
    widths : list of list of int
        ``[K_1, ..., K_L]`` per sample (hidden layers, bottom-up).
    acceptance : dict
        Move -> acceptance rate over all sweeps so far (for the Gibbs move ``"edge"``: the
        fraction of edge updates that changed the edge); NaN if never proposed.
    """

    depth: np.ndarray
    num_edges: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    log_joint: np.ndarray
    widths: list
    acceptance: dict = field(default_factory=dict)

    def width(self, layer: int) -> np.ndarray:
        """K_layer per sample (0 where the sample has fewer hidden layers); ``layer >= 1``."""
        layer = check_positive_int(layer, "layer")
        return np.array([w[layer - 1] if len(w) >= layer else 0 for w in self.widths], dtype=np.int64)

    def to_dict(self) -> dict:
        """Plain-Python content (lists and floats), e.g. for JSON."""
        return {
            "depth": self.depth.tolist(),
            "num_edges": self.num_edges.tolist(),
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "log_joint": self.log_joint.tolist(),
            "widths": [list(map(int, w)) for w in self.widths],
            "acceptance": {k: float(v) for k, v in self.acceptance.items()},
        }

    @property
    def num_hidden_units(self) -> np.ndarray:
        """Total number of hidden units per sample ``(S,)``."""
        return np.array([sum(w) for w in self.widths], dtype=np.int64)

    def stats(self, num_layers: int | None = None) -> dict[str, np.ndarray]:
        r"""Scalar statistics per draw, for trace plots and convergence diagnostics
        (see :func:`bayesstruct.io.structure_inference_data`).

        One chain, so every value is an array ``(S,)`` (one entry per recorded draw), as
        :meth:`DAGSamples.stats <bayesstruct.families.bayes_net.DAGSamples.stats>` and
        :meth:`SuperpositionSamples.stats <bayesstruct.families.superposition.SuperpositionSamples.stats>`
        give them; ``structure_inference_data`` stacks chains to ``(chain, draw)``. The keys
        are the variables of :func:`bayesstruct.families.belief_net_report.to_inference_data`
        (:func:`~bayesstruct.families.belief_net_report.per_draw_stats`):

        * ``depth``, ``num_edges``, ``num_hidden_units``: int64 -- L, the number of edges
          over all layer matrices (visible ones included), :math:`\sum_m K_m`;
        * ``width_1``, ..., ``width_<num_layers>``: int64 -- :math:`K_m`, 0 where the draw
          has fewer than m hidden layers;
        * ``alpha``, ``beta``, ``log_joint``: float64 -- the CIBP parameters and the log
          joint density of the draw (left out when the samples hold ``None`` for them).

        Parameters
        ----------
        num_layers : int, optional
            How many ``width_<m>`` statistics; default the largest depth of any draw (at
            least 1). Chains to be stacked need the same number:
            ``structure_inference_data`` passes the largest over its chains.

        Returns
        -------
        dict of str to np.ndarray ``(S,)``

        Examples
        --------
        >>> s = BeliefNetSampler(None, num_visible=3, seed=0).run(5, progress=False)
        >>> st = s.stats(num_layers=2)
        >>> sorted(st)  # doctest: +NORMALIZE_WHITESPACE
        ['alpha', 'beta', 'depth', 'log_joint', 'num_edges', 'num_hidden_units', 'width_1', 'width_2']
        >>> st["width_1"].shape
        (5,)
        """
        from bayesstruct.families.belief_net_report import chain_columns, per_draw_stats

        return per_draw_stats(chain_columns(self, "BeliefNetSamples"), num_layers)


class BeliefNetSampler:
    r"""MCMC over the structure, parameters and activations of a CIBP belief network.

    See the module docstring for the model and the sweep.

    Parameters
    ----------
    data : torch.Tensor or np.ndarray ``(N, D)`` with values in [0, 1], or None
        The visible data; None (or N = 0 rows) samples the prior.
    alpha, beta : float
        Initial (or, with ``learn_alpha_beta=False``, fixed) CIBP parameters, > 0.
    learn_alpha_beta : bool
        MH-update α and β under the Gamma hyperpriors ``alpha_prior``, ``beta_prior``.
    num_visible : int, optional
        D; required iff ``data`` is None (must equal D otherwise).
    seed : int
        Seed of the sampler's ``numpy.random.Generator``, its only source of randomness.
    max_depth, max_width : int
        Support truncation: at most ``max_depth`` hidden layers of at most ``max_width`` units.
    weight_precision, bias_precision : float
        γ_w, γ_b of the Gaussian weight and bias priors.
    precision_prior, alpha_prior, beta_prior : (shape, rate)
        Gamma priors of the layer precisions ν_c, of α and of β.
    clip_eps : float
        ε in :math:`y_{\mathrm{obs}} = \mathrm{logit}(\mathrm{clip}(x, ε, 1-ε))`, in (0, 0.5).
    birth_death_per_sweep, resample_per_sweep : int
        How many unit birth/death and cascade-redraw proposals one sweep makes. A birth or
        death costs O(N), far less than the O(N K) activation updates, so the default makes
        40 (10 before; see the note on mixing in the module docstring).
    log_step : float
        Standard deviation of the log-scale random walk for α and β.
    hyper_resample_per_sweep : int
        How many joint (α, β, cascade-above-a-layer) proposals one sweep makes
        (:meth:`resample_above_hyper`; only when ``learn_alpha_beta``). 0 turns the move off.
    init : {"auto", "prior", "shallow"}
        Initial state. ``"prior"``: a draw of everything from the prior (given the initial
        α, β), retried until it fits ``max_depth``/``max_width``. ``"shallow"``: the same
        draw truncated to its first hidden layer (the matrix above it emptied), so every
        chain starts with at most one hidden layer -- the data pin that layer down, and a
        deep prior draw on top of it otherwise takes thousands of sweeps to dissolve.
        ``"auto"`` (default): ``"shallow"`` with data, ``"prior"`` without (an exact
        draw from the prior-only chain's target when α and β are fixed; with
        ``learn_alpha_beta=True`` it is drawn under the initial α, β, not under their
        Gamma priors). Any initial state leaves the chain correct; only the burn-in changes.

    Attributes
    ----------
    rng : numpy.random.Generator
    proposed, accepted : dict
        Move -> counts (see :data:`MOVES`).
    """

    def __init__(
        self,
        data: Any = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        learn_alpha_beta: bool = True,
        num_visible: int | None = None,
        seed: int = 0,
        max_depth: int = 32,
        max_width: int = 256,
        *,
        weight_precision: float = 1.0,
        bias_precision: float = 1.0,
        precision_prior: tuple[float, float] = (1.0, 1.0),
        alpha_prior: tuple[float, float] = (1.0, 1.0),
        beta_prior: tuple[float, float] = (1.0, 1.0),
        clip_eps: float = 1.0 / 64.0,
        birth_death_per_sweep: int = 40,
        resample_per_sweep: int = 1,
        log_step: float = 0.5,
        hyper_resample_per_sweep: int = 1,
        init: str = "auto",
    ):
        self.alpha = check_positive(alpha, "alpha")
        self.beta = check_positive(beta, "beta")
        self.learn_alpha_beta = bool(learn_alpha_beta)
        self.max_depth = check_positive_int(max_depth, "max_depth")
        self.max_width = check_positive_int(max_width, "max_width")
        self.weight_precision = check_positive(weight_precision, "weight_precision")
        self.bias_precision = check_positive(bias_precision, "bias_precision")
        self.precision_prior = _check_pair(precision_prior, "precision_prior")
        self.alpha_prior = _check_pair(alpha_prior, "alpha_prior")
        self.beta_prior = _check_pair(beta_prior, "beta_prior")
        self.clip_eps = check_positive(clip_eps, "clip_eps")
        if self.clip_eps >= 0.5:
            raise InvalidArgumentError(f"`clip_eps` must be in (0, 0.5); got {clip_eps!r}")
        self.birth_death_per_sweep = check_positive_int(birth_death_per_sweep, "birth_death_per_sweep", minimum=0)
        self.resample_per_sweep = check_positive_int(resample_per_sweep, "resample_per_sweep", minimum=0)
        self.log_step = check_positive(log_step, "log_step")
        self.hyper_resample_per_sweep = check_positive_int(
            hyper_resample_per_sweep, "hyper_resample_per_sweep", minimum=0
        )
        if init not in INITS:
            raise InvalidArgumentError(f"`init` must be one of {list(INITS)}; got {init!r}")
        self._set_data(data, num_visible)
        self.rng = np.random.default_rng(check_seed(seed))
        self.proposed = {k: 0 for k in MOVES}
        self.accepted = {k: 0 for k in MOVES}
        self.num_sweeps = 0
        if init == "auto":
            init = "shallow" if self.num_data > 0 else "prior"
        self._init_from_prior(init)
        self._refresh()

    def __repr__(self) -> str:
        return (
            f"BeliefNetSampler(num_data={self.num_data}, num_visible={self.num_visible}, depth={self.depth}, "
            f"widths={self.widths}, alpha={self.alpha:.3g}, beta={self.beta:.3g}, sweeps={self.num_sweeps})"
        )

    # ------------------------------------------------------------------ data and state
    def _set_data(self, data: Any, num_visible: Any) -> None:
        if data is None:
            if num_visible is None:
                raise InvalidArgumentError("`num_visible` is required when `data` is None (the prior-only chain)")
            D = check_positive_int(num_visible, "num_visible")
            x = np.zeros((0, D))
        else:
            if torch.is_tensor(data):
                x = data.detach().cpu().to(torch.float64).numpy()
            else:
                try:
                    x = np.asarray(data, dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise InvalidArgumentError(
                        f"`data` must be an (N, D) array of numbers in [0, 1]; got {type(data).__name__} ({exc})"
                    ) from None
            if x.ndim != 2 or x.shape[1] == 0:
                raise InvalidArgumentError(
                    f"`data` must be a 2-D array (N, D) with D >= 1 (flatten images first); got shape {x.shape}"
                )
            if not np.all(np.isfinite(x)):
                raise InvalidArgumentError(f"`data` contains {int((~np.isfinite(x)).sum())} NaN or infinite value(s)")
            if x.size and (x.min() < 0.0 or x.max() > 1.0):
                raise InvalidArgumentError(
                    f"`data` must have values in [0, 1] (scale it, e.g. pixels / 255); got range "
                    f"[{x.min():g}, {x.max():g}]"
                )
            if num_visible is not None and check_positive_int(num_visible, "num_visible") != x.shape[1]:
                raise InvalidArgumentError(
                    f"`num_visible`={num_visible} does not match the data's {x.shape[1]} columns; omit it"
                )
        self.num_data, self.num_visible = int(x.shape[0]), int(x.shape[1])
        eps = self.clip_eps
        xc = np.clip(x, eps, 1.0 - eps)
        self._y_obs = np.ascontiguousarray(np.log(xc) - np.log1p(-xc))
        self._data_digest = hashlib.sha256(self._y_obs.tobytes()).hexdigest()

    def _draw_cascade(
        self, width: int, depth_below: int, alpha: float | None = None, beta: float | None = None
    ) -> list[np.ndarray] | None:
        """Labelled-prior matrices above a layer with ``width`` units that has ``depth_below``
        hidden layers at or below it, under CIBP(alpha, beta) (default: the current α, β);
        None when the draw leaves the truncated support."""
        alpha = self.alpha if alpha is None else alpha
        beta = self.beta if beta is None else beta
        out: list[np.ndarray] = []
        depth = depth_below
        while True:
            Z = ibp_labelled(self.rng, alpha, beta, width)
            out.append(Z)
            width = Z.shape[1]
            if width == 0:
                return out
            depth += 1
            if width > self.max_width or depth > self.max_depth:
                return None

    def _draw_layer_params(self, Zs: list[np.ndarray], start: int) -> tuple[list, list, list, list]:
        """Prior draws for hidden layers ``start, start+1, ...`` above the matrices ``Zs``
        (``Zs[0]`` = ``Z[start-1]``): weights of ``Zs[1:]``, biases, precisions, and the
        pre-activations by ancestral sampling from the top down. Returns (W, b, nu, Y)
        lists for layers ``start..`` (W for matrices ``Z[start..]``)."""
        N = self.num_data
        gw, gb = self.weight_precision, self.bias_precision
        a_nu, b_nu = self.precision_prior
        W = [self.rng.standard_normal(Z.shape) / math.sqrt(gw) * Z for Z in Zs[1:]]
        widths = [Z.shape[1] for Z in Zs[:-1]]
        b = [self.rng.standard_normal(K) / math.sqrt(gb) for K in widths]
        nu = [float(self.rng.gamma(a_nu, 1.0 / b_nu)) for _ in widths]
        Y: list = [None] * len(widths)
        U_above = np.zeros((N, 0))
        for i in range(len(widths) - 1, -1, -1):
            mean = U_above @ W[i].T + b[i]
            Y[i] = mean + self.rng.standard_normal((N, widths[i])) / math.sqrt(nu[i])
            U_above = expit(Y[i])
        return W, b, nu, Y

    def _check_first_layer_fits(self, tries: int) -> None:
        r"""Refuse α, β whose first hidden layer cannot fit ``max_width`` in ``tries`` prior draws.

        Its width :math:`K_1` is Poisson with mean :math:`\alpha\sum_{n=1}^{D}\beta/(\beta+n-1)
        = \alpha\beta\,(\psi(\beta+D)-\psi(\beta))` (the IBP's expected number of dishes, D
        visible units). When even ``tries`` draws would all exceed ``max_width`` but with
        probability below 1e-12, the draw is not tried: a huge α would otherwise run for hours
        or out of memory. Uses no random numbers, so seeded draws are unchanged."""
        D, m = self.num_visible, self.max_width
        digamma = lambda v: float(torch.special.digamma(torch.tensor(float(v), dtype=torch.float64)))  # noqa: E731
        mean = self.alpha * self.beta * (digamma(self.beta + D) - digamma(self.beta))
        # P(K_1 <= m) for K_1 ~ Poisson(mean) is the regularised upper incomplete gamma Q(m + 1, mean)
        p_fits = float(torch.special.gammaincc(torch.tensor(m + 1.0, dtype=torch.float64),
                                               torch.tensor(mean, dtype=torch.float64)))
        if mean <= m or tries * p_fits >= 1e-12:
            return
        per_unit = mean / self.alpha  # expected width per unit of alpha
        raise InvalidArgumentError(
            f"`alpha`={self.alpha:g} is far too large for `max_width`={m} (with `beta`={self.beta:g}, {D} visible "
            f"units): the first hidden layer's expected width under the IBP prior is alpha * sum_n beta/(beta+n-1) "
            f"= {mean:.4g} units, so no initial structure fits; lower `alpha` well below {m / per_unit:.3g} (where that "
            f"width equals `max_width`), or raise `max_width`")

    def _init_from_prior(self, init: str) -> None:
        """Initial state: a prior draw; with ``init="shallow"`` truncated to its first hidden layer."""
        tries = 1000
        self._check_first_layer_fits(tries)
        for _ in range(tries):
            Zs = self._draw_cascade(self.num_visible, 0)
            if Zs is not None:
                break
        else:
            raise InvalidArgumentError(
                f"could not draw an initial structure within max_depth={self.max_depth}, "
                f"max_width={self.max_width} (alpha={self.alpha:g}, beta={self.beta:g}); raise the caps"
            )
        if init == "shallow" and len(Zs) > 2:
            Zs = [Zs[0], np.zeros((Zs[0].shape[1], 0), dtype=np.int8)]
        self._Z = [Z.astype(np.int8) for Z in Zs]
        W, b, nu, Y = self._draw_layer_params(self._Z, 1)
        a_nu, b_nu = self.precision_prior
        gw, gb = self.weight_precision, self.bias_precision
        self._W = [self.rng.standard_normal(self._Z[0].shape) / math.sqrt(gw) * self._Z[0]] + W
        self._b = [self.rng.standard_normal(self.num_visible) / math.sqrt(gb)] + b
        self._nu = [float(self.rng.gamma(a_nu, 1.0 / b_nu))] + nu
        self._Y = [self._y_obs] + Y

    def _refresh(self) -> None:
        """Recompute activations U and residuals R from (Y, W, b) -- the state's derived parts."""
        L = self.depth
        self._U = [expit(y) for y in self._Y]
        self._R = []
        for c in range(L + 1):
            mean = self._U[c + 1] @ self._W[c].T if c < L else 0.0
            self._R.append(self._Y[c] - mean - self._b[c])

    # ------------------------------------------------------------------ public views
    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self._Z) - 1

    @property
    def widths(self) -> list[int]:
        """``[K_1, ..., K_L]``."""
        return [int(Z.shape[1]) for Z in self._Z[:-1]]

    @property
    def structure(self) -> list[torch.Tensor]:
        """The layer matrices ``[Z_1, ..., Z_{L+1}]`` in :meth:`CascadingIBP.sample` format."""
        dtype = torch.get_default_dtype()
        return [torch.from_numpy(Z.astype(np.float64)).to(dtype) for Z in self._Z]

    @property
    def weights(self) -> list[torch.Tensor]:
        """Weight matrices (same shapes as :attr:`structure`, 0 where there is no edge)."""
        return [torch.from_numpy(W.copy()) for W in self._W]

    @property
    def biases(self) -> list[torch.Tensor]:
        """Biases of layers 0..L."""
        return [torch.from_numpy(b.copy()) for b in self._b]

    @property
    def precisions(self) -> np.ndarray:
        """ν_0, ..., ν_L."""
        return np.array(self._nu)

    def log_joint(self) -> float:
        r"""log p(y_obs, Y_hidden, W, b, ν, Z, [α, β]) of the current state.

        Gaussian pre-activations of all layers, Gaussian weights (one per edge) and biases,
        Gamma precisions, :math:`\log P_{\mathrm{lab}}(Z \mid α, β)` and, when they are
        learned, the Gamma hyperpriors of α and β.
        """
        N = self.num_data
        gw, gb = self.weight_precision, self.bias_precision
        a_nu, b_nu = self.precision_prior
        out = 0.0
        for c in range(self.depth + 1):
            K = self._Y[c].shape[1]
            nu = self._nu[c]
            out += 0.5 * N * K * (math.log(nu) - _LOG2PI) - 0.5 * nu * float(np.sum(self._R[c] ** 2))
            out += _gamma_logpdf(nu, a_nu, b_nu)
            out += 0.5 * K * (math.log(gb) - _LOG2PI) - 0.5 * gb * float(self._b[c] @ self._b[c])
            E = int(self._Z[c].sum())
            out += 0.5 * E * (math.log(gw) - _LOG2PI) - 0.5 * gw * float(np.sum(self._W[c] ** 2))
        out += labelled_log_prob(self._Z, self.alpha, self.beta)
        if self.learn_alpha_beta:
            out += _gamma_logpdf(self.alpha, *self.alpha_prior) + _gamma_logpdf(self.beta, *self.beta_prior)
        return float(out)

    def stats(self) -> dict:
        """``{"depth", "widths", "num_edges", "alpha", "beta", "log_joint"}`` of the current state
        (Python scalars, and ``widths`` a list of int). For per-draw arrays of a chain, as
        :func:`bayesstruct.io.structure_inference_data` takes them, use
        :meth:`BeliefNetSamples.stats` on the result of :meth:`run`."""
        return {
            "depth": self.depth,
            "widths": self.widths,
            "num_edges": int(sum(int(Z.sum()) for Z in self._Z)),
            "alpha": float(self.alpha),
            "beta": float(self.beta),
            "log_joint": self.log_joint(),
        }

    @property
    def acceptance(self) -> dict:
        """Move -> acceptance rate so far (NaN if never proposed)."""
        return {k: (self.accepted[k] / self.proposed[k] if self.proposed[k] else float("nan")) for k in MOVES}

    # ------------------------------------------------------------------ moves
    def _accept(self, log_ratio: float) -> bool:
        return log_ratio >= 0.0 or self.rng.random() < math.exp(log_ratio)

    def update_weights(self) -> None:
        r"""Gibbs: draw every unit's incoming weights and bias jointly from their conditional.

        Given the activations, child j of layer c is a linear-Gaussian regression of its
        pre-activations on its parents' values: :math:`y_{cj} = X w + ε`, with
        :math:`X = [U_{c+1, S_j}, 1]` (:math:`S_j` its parents), prior
        :math:`\mathrm{diag}(γ_w, ..., γ_w, γ_b)` and noise precision ν_c, so
        :math:`(w, b_{cj}) \sim \mathcal N(A^{-1} ν X^T y_{cj}, A^{-1})`,
        :math:`A = \mathrm{diag}(γ) + ν_c X^T X`. All children of a layer are drawn in one
        batched Cholesky (:func:`bayesian_linear_regressions`). Acceptance 1 (Gibbs).
        """
        L = self.depth
        for c in range(L + 1):
            K = self._Z[c].shape[1]
            U = self._U[c + 1] if c < L else np.zeros((self.num_data, 0))
            X = np.concatenate([U, np.ones((self.num_data, 1))], axis=1)
            mask = np.concatenate([self._Z[c].astype(bool), np.ones((self._Z[c].shape[0], 1), bool)], axis=1)
            prec = np.concatenate([np.full(K, self.weight_precision), [self.bias_precision]])
            _, draw, _ = bayesian_linear_regressions(X, self._Y[c], mask, prec, self._nu[c], self.rng)
            self._W[c] = np.ascontiguousarray(draw[:, :K])
            self._b[c] = np.ascontiguousarray(draw[:, K])
            self._R[c] = self._Y[c] - X @ draw.T

    def update_precisions(self) -> None:
        r"""Gibbs: :math:`ν_c \sim \mathrm{Gamma}(a_ν + N K_c/2,\; b_ν + \tfrac12\sum_{n,j} r_{ncj}^2)`,
        r the residuals of layer c's pre-activations. Acceptance 1 (Gibbs)."""
        a_nu, b_nu = self.precision_prior
        for c in range(self.depth + 1):
            shape = a_nu + 0.5 * self._R[c].size
            rate = b_nu + 0.5 * float(np.sum(self._R[c] ** 2))
            self._nu[c] = float(self.rng.gamma(shape, 1.0 / rate))

    def _mh_activation(self, c: int, k: int, y_new: np.ndarray, log_q_ratio_prior: bool) -> np.ndarray:
        """Accept/reject per data point a proposal ``y_new`` for unit k of layer c."""
        y = self._Y[c][:, k]
        r_own = self._R[c][:, k]
        mu = y - r_own
        children = np.flatnonzero(self._Z[c - 1][:, k])
        wcol = self._W[c - 1][children, k]
        nu_ch = self._nu[c - 1]
        R_ch = self._R[c - 1][:, children]
        a = R_ch @ wcol
        ww = float(wcol @ wcol)
        d = expit(y_new) - self._U[c][:, k]
        log_r = -0.5 * nu_ch * (d * d * ww - 2.0 * d * a)
        if not log_q_ratio_prior:
            log_r = log_r - 0.5 * self._nu[c] * ((y_new - mu) ** 2 - r_own**2)
        acc = self.rng.random(y.shape[0]) < np.exp(np.minimum(log_r, 0.0))
        if acc.any():
            d = np.where(acc, d, 0.0)
            self._Y[c][:, k] = np.where(acc, y_new, y)
            self._U[c][:, k] += d
            self._R[c][:, k] = self._Y[c][:, k] - mu
            self._R[c - 1][:, children] = R_ch - np.outer(d, wcol)
        return acc

    def update_activations(self) -> None:
        r"""MH for the hidden pre-activations, unit by unit, vectorised over the N data points.

        Given everything else, :math:`y^{(n)}_{ck}` for different n are independent with
        density :math:`\mathcal N(y; μ_{nk}, ν_c^{-1}) \prod_{j \in \mathrm{ch}(k)}
        \mathcal N(y^{(n)}_{c-1,j}; \ldots + w_{jk} σ(y), ν_{c-1}^{-1})`, μ the parents'
        prediction. Two proposals per unit, each accepted independently for every n:

        * ``activation_prior``: :math:`y' \sim \mathcal N(μ_{nk}, ν_c^{-1})` (independence
          proposal from the parent conditional), acceptance
          :math:`\min\{1, \exp(ℓ_{\mathrm{ch}}(y') - ℓ_{\mathrm{ch}}(y))\}` with
          :math:`ℓ_{\mathrm{ch}}(y) = -\tfrac{ν_{c-1}}2 \sum_j (r_j - w_{jk}(σ(y) - σ(y_{\mathrm{cur}})))^2`
          the children's log-likelihood;
        * ``activation_rw``: :math:`y' = y + s ε`, :math:`s = (ν_c + ν_{c-1}\sum_j w_{jk}^2/16)^{-1/2}`
          (σ' <= 1/4; s does not depend on y, so the proposal is symmetric), acceptance
          :math:`\min\{1, \exp(ℓ_{\mathrm{ch}}(y') - ℓ_{\mathrm{ch}}(y)
          - \tfrac{ν_c}2[(y'-μ)^2 - (y-μ)^2])\}`.
        """
        N = self.num_data
        if N == 0:
            return
        for c in range(1, self.depth + 1):
            nu_c = self._nu[c]
            for k in range(self._Z[c - 1].shape[1]):
                mu = self._Y[c][:, k] - self._R[c][:, k]
                y_new = mu + self.rng.standard_normal(N) / math.sqrt(nu_c)
                acc = self._mh_activation(c, k, y_new, True)
                self.proposed["activation_prior"] += N
                self.accepted["activation_prior"] += int(acc.sum())
                wcol = self._W[c - 1][:, k]
                s = 1.0 / math.sqrt(nu_c + self._nu[c - 1] * float(wcol @ wcol) / 16.0)
                y_new = self._Y[c][:, k] + s * self.rng.standard_normal(N)
                acc = self._mh_activation(c, k, y_new, False)
                self.proposed["activation_rw"] += N
                self.accepted["activation_rw"] += int(acc.sum())

    def update_edges(self) -> None:
        r"""Gibbs for every edge indicator :math:`Z_{c,jk}` with its weight integrated out.

        Column by column (parent k of layer c+1), row by row (child j of layer c). With
        :math:`e` the child's residual without the edge, :math:`u = σ(y_{c+1,k})`,
        :math:`s = u^T u`, :math:`t = u^T e`, integrating :math:`w \sim \mathcal N(0, γ_w^{-1})`
        gives the likelihood ratio

        .. math::

            \log\frac{p(y_{cj} \mid z=1)}{p(y_{cj} \mid z=0)} =
              -\tfrac12\log\Big(1 + \frac{ν_c s}{γ_w}\Big) + \frac{(ν_c t)^2}{2(γ_w + ν_c s)},

        and the labelled CIBP prior gives, with :math:`m` the column's other edges and
        :math:`R = K_c`, :math:`P(z=1)/P(z=0) = Γ(m+1)Γ(R-m-1+β) / (Γ(m)Γ(R-m+β))` (z = 1
        forced when m = 0: a hidden unit keeps at least one child). z is drawn from its exact
        conditional (Gibbs, acceptance 1) and then, if z = 1, the weight from
        :math:`\mathcal N(ν_c t/(γ_w+ν_c s), 1/(γ_w+ν_c s))` -- together an exact block
        update of (z, w). ``acceptance["edge"]`` is the fraction of updates that changed z.
        """
        gw, beta = self.weight_precision, self.beta
        for c in range(self.depth):
            Z, W, U, R = self._Z[c], self._W[c], self._U[c + 1], self._R[c]
            nu = self._nu[c]
            rows, K = Z.shape
            # f[m] = log Γ(m) + log Γ(R - m + β): the labelled prior's column factor (m >= 1)
            f = [-math.inf] + [math.lgamma(m) + math.lgamma(rows - m + beta) for m in range(1, rows + 1)]
            s_all = np.einsum("nk,nk->k", U, U)
            for k in range(K):
                u = U[:, k]
                s = float(s_all[k])
                prec = gw + nu * s
                t = u @ R + s * W[:, k]
                dl = (-0.5 * math.log(prec / gw) + 0.5 * (nu * t) ** 2 / prec).tolist()
                unif = self.rng.random(rows).tolist()
                eps = self.rng.standard_normal(rows)
                zcol = Z[:, k].tolist()
                m = sum(zcol)
                changed = 0
                for j in range(rows):
                    old = zcol[j]
                    rest = m - old
                    if rest == 0:
                        new = 1
                    else:
                        x = f[rest + 1] + dl[j] - f[rest]
                        p1 = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
                        new = 1 if unif[j] < p1 else 0
                    zcol[j] = new
                    m = rest + new
                    changed += new != old
                z_arr = np.array(zcol, dtype=np.int8)
                new_w = np.where(z_arr == 1, nu * t / prec + eps / math.sqrt(prec), 0.0)
                R -= np.outer(u, new_w - W[:, k])
                W[:, k] = new_w
                Z[:, k] = z_arr
                self.proposed["edge"] += rows
                self.accepted["edge"] += changed

    # -- birth / death --------------------------------------------------------------------
    def _singletons(self, m: int) -> np.ndarray:
        """Units of hidden layer m with exactly one child and no parents (death candidates)."""
        one_child = self._Z[m - 1].sum(0) == 1
        no_parents = self._Z[m].sum(1) == 0
        return np.flatnonzero(one_child & no_parents)

    def _prior_diff(self, old: list[np.ndarray], new: list[np.ndarray]) -> float:
        """log P_lab difference when the matrices ``old`` are replaced by ``new`` (the rest unchanged)."""
        a, b = self.alpha, self.beta
        return sum(_layer_log_prob(Z, a, b) for Z in new) - sum(_layer_log_prob(Z, a, b) for Z in old)

    def _rank_one_gain(self, e: np.ndarray, u: np.ndarray, nu: float) -> tuple[float, float, float]:
        """Log marginal-likelihood gain of adding parent u (weight integrated) to residual e;
        also the weight's conditional mean and precision."""
        gw = self.weight_precision
        s, t = float(u @ u), float(u @ e)
        prec = gw + nu * s
        return -0.5 * math.log(prec / gw) + 0.5 * (nu * t) ** 2 / prec, nu * t / prec, prec

    def birth_death(self) -> bool:
        r"""Reversible-jump birth or death of one parentless unit with one child; returns acceptance.

        With probability 1/2 a **birth**: pick layer m uniformly in 1..L+1 (m = L+1 starts a
        new top layer), a child j uniformly among the :math:`K_{m-1}` units of layer m-1 and
        a position uniformly among the :math:`K_m + 1` slots of layer m; the new unit gets
        the single edge to j, no parents, bias :math:`b \sim \mathcal N(0, γ_b^{-1})`,
        pre-activations :math:`y \sim \mathcal N(b, ν_m^{-1})` (ν_m from its Gamma prior
        when the layer is new) and the edge weight from its conditional given y (see
        :meth:`update_edges`). Otherwise a **death**: pick m uniformly in 1..L and one of
        the :math:`S_m` units of layer m that have one child and no parents, uniformly, and
        remove it (and the layer when it was the only unit of the top layer). The bias,
        activation (and precision) proposals equal their priors and cancel, so a birth is
        accepted with

        .. math::

            \min\Big\{1,\; \frac{P_{\mathrm{lab}}(Z')}{P_{\mathrm{lab}}(Z)}\,
              \frac{p(y_{m-1,j} \mid u_{\mathrm{new}})}{p(y_{m-1,j})}\,
              \frac{(L'^{-1})\, S'^{-1}_m}{(L+1)^{-1}\, K_{m-1}^{-1}\, (K_m+1)^{-1}}\Big\}

        (the middle factor the weight-integrated likelihood ratio of the child, L' and
        :math:`S'_m` the depth and death candidates after the birth); a death with the
        reciprocal of the same expression evaluated from the smaller state. Proposals beyond
        ``max_width``/``max_depth`` are rejected.
        """
        L = self.depth
        if self.rng.random() < 0.5:
            self.proposed["birth"] += 1
            ok = self._birth(L)
            self.accepted["birth"] += ok
        else:
            self.proposed["death"] += 1
            ok = self._death(L)
            self.accepted["death"] += ok
        return ok

    def _birth(self, L: int) -> bool:
        rng, N = self.rng, self.num_data
        m = int(rng.integers(L + 1)) + 1
        rows = self._Z[m - 1].shape[0]
        K_m = self._Z[m - 1].shape[1]
        j = int(rng.integers(rows))
        pos = int(rng.integers(K_m + 1))
        new_layer = m == L + 1
        if K_m + 1 > self.max_width or (new_layer and m > self.max_depth):
            return False
        a_nu, b_nu = self.precision_prior
        nu_m = float(rng.gamma(a_nu, 1.0 / b_nu)) if new_layer else self._nu[m]
        b_new = float(rng.standard_normal()) / math.sqrt(self.bias_precision)
        y_new = b_new + rng.standard_normal(N) / math.sqrt(nu_m)
        u_new = expit(y_new)
        gain, w_mean, w_prec = self._rank_one_gain(self._R[m - 1][:, j], u_new, self._nu[m - 1])
        w = w_mean + float(rng.standard_normal()) / math.sqrt(w_prec)
        col = np.zeros((rows, 1), dtype=np.int8)
        col[j] = 1
        Z_below = np.concatenate([self._Z[m - 1][:, :pos], col, self._Z[m - 1][:, pos:]], axis=1)
        if new_layer:
            Z_above = np.zeros((1, 0), dtype=np.int8)
        else:
            Z_above = np.insert(self._Z[m], pos, 0, axis=0)
        new_Z = self._Z[: m - 1] + [Z_below, Z_above] + self._Z[m + 1 :]
        d_prior = self._prior_diff(self._Z[m - 1 : m + 1], [Z_below, Z_above])
        L_new = L + 1 if new_layer else L
        one_child = Z_below.sum(0) == 1
        no_parents = Z_above.sum(1) == 0
        S_new = int(np.sum(one_child & no_parents))
        log_r = d_prior + gain - math.log(L_new * S_new) + math.log((L + 1) * rows * (K_m + 1))
        if not self._accept(log_r):
            return False
        wcol = np.zeros(rows)
        wcol[j] = w
        self._Z = new_Z
        self._W[m - 1] = np.concatenate([self._W[m - 1][:, :pos], wcol[:, None], self._W[m - 1][:, pos:]], axis=1)
        self._R[m - 1][:, j] -= w * u_new
        if new_layer:
            self._W.append(np.zeros((1, 0)))
            self._b.append(np.array([b_new]))
            self._nu.append(nu_m)
            self._Y.append(y_new[:, None].copy())
            self._U.append(u_new[:, None].copy())
            self._R.append((y_new - b_new)[:, None].copy())
        else:
            self._W[m] = np.insert(self._W[m], pos, 0.0, axis=0)
            self._b[m] = np.insert(self._b[m], pos, b_new)
            self._Y[m] = np.insert(self._Y[m], pos, y_new, axis=1)
            self._U[m] = np.insert(self._U[m], pos, u_new, axis=1)
            self._R[m] = np.insert(self._R[m], pos, y_new - b_new, axis=1)
        return True

    def _death(self, L: int) -> bool:
        rng = self.rng
        if L == 0:
            return False
        m = int(rng.integers(L)) + 1
        cand = self._singletons(m)
        S = cand.size
        if S == 0:
            return False
        k = int(cand[int(rng.integers(S))])
        rows, K_m = self._Z[m - 1].shape
        j = int(np.flatnonzero(self._Z[m - 1][:, k])[0])
        w = float(self._W[m - 1][j, k])
        u = self._U[m][:, k]
        e = self._R[m - 1][:, j] + w * u
        gain, _, _ = self._rank_one_gain(e, u, self._nu[m - 1])
        remove_layer = m == L and K_m == 1
        Z_below = np.delete(self._Z[m - 1], k, axis=1)
        if remove_layer:
            new_Z = self._Z[: m - 1] + [Z_below]
            d_prior = self._prior_diff(self._Z[m - 1 : m + 1], [Z_below])
        else:
            Z_above = np.delete(self._Z[m], k, axis=0)
            new_Z = self._Z[: m - 1] + [Z_below, Z_above] + self._Z[m + 1 :]
            d_prior = self._prior_diff(self._Z[m - 1 : m + 1], [Z_below, Z_above])
        L_new = L - 1 if remove_layer else L
        # reverse birth: layer m among L_new + 1, child among rows, slot among (K_m - 1) + 1
        log_r = d_prior - gain - math.log(L_new + 1) - math.log(rows) - math.log(K_m) + math.log(L) + math.log(S)
        if not self._accept(log_r):
            return False
        self._Z = new_Z
        self._W[m - 1] = np.delete(self._W[m - 1], k, axis=1)
        self._R[m - 1][:, j] = e
        if remove_layer:
            for lst in (self._W, self._b, self._nu, self._Y, self._U, self._R):
                del lst[m]
        else:
            self._W[m] = np.delete(self._W[m], k, axis=0)
            self._b[m] = np.delete(self._b[m], k)
            self._Y[m] = np.delete(self._Y[m], k, axis=1)
            self._U[m] = np.delete(self._U[m], k, axis=1)
            self._R[m] = np.delete(self._R[m], k, axis=1)
        return True

    def _layer_marginal(self, c: int, U_above: np.ndarray, Z: np.ndarray, draw: bool):
        """Weight-integrated likelihood of layer c's pre-activations given parents U_above."""
        T = self._Y[c] - self._b[c]
        prec = np.full(Z.shape[1], self.weight_precision)
        _, w, log_ml = bayesian_linear_regressions(
            U_above, T, Z.astype(bool), prec, self._nu[c], self.rng if draw else None
        )
        return w, float(log_ml.sum())

    def resample_above(self) -> bool:
        r"""Redraw everything above a random layer from the prior; returns acceptance.

        With n = L + 1 matrices, pick c uniformly in 0..L and propose new matrices
        ``Z[c], Z[c+1], ...`` from the labelled CIBP conditional on :math:`K_c`, with the
        weights, biases, precisions and pre-activations of the new hidden layers c+1, ...
        drawn from their priors (ancestrally, from the top down); the weights ``W[c]`` into
        layer c are drawn from their Gaussian conditional given the new parents. Prior
        factors cancel against the proposal, so with M the likelihood of layer c's
        pre-activations with ``W[c]`` integrated out (:func:`bayesian_linear_regressions`),

        .. math::

            \min\Big\{1,\; \frac{n}{n'}\,\frac{M(Z'_c, U'_{c+1})}{M(Z_c, U_{c+1})}\Big\},

        n' = L' + 1 the new number of matrices (the reverse move picks c with probability
        1/n'). This is the move that births and kills whole layers; with no data M = 1 and it
        is :meth:`~bayesstruct.families.dbn.CIBPSampler.resample_above`.
        """
        self.proposed["resample"] += 1
        n = self.depth + 1
        c = int(self.rng.integers(n))
        ok = self._redraw_above(c, self.alpha, self.beta, math.log(n))
        self.accepted["resample"] += ok
        return ok

    def _redraw_above(self, c: int, alpha: float, beta: float, log_r_extra: float) -> bool:
        """Propose ``Z[c:]`` and the hidden layers above c from the prior under CIBP(alpha, beta)
        (W[c] from its conditional); accept with log ratio ``log_r_extra - log n' + M' - M``;
        on acceptance also set α, β to ``alpha``, ``beta``."""
        L = self.depth
        K_c = self._Z[c].shape[0]
        tail = self._draw_cascade(K_c, c, alpha, beta)
        if tail is None:
            return False
        tail = [Z.astype(np.int8) for Z in tail]
        W_up, b_up, nu_up, Y_up = self._draw_layer_params(tail, c + 1)
        U_new = expit(Y_up[0]) if Y_up else np.zeros((self.num_data, 0))
        U_old = self._U[c + 1] if c < L else np.zeros((self.num_data, 0))
        w_new, ml_new = self._layer_marginal(c, U_new, tail[0], draw=True)
        _, ml_old = self._layer_marginal(c, U_old, self._Z[c], draw=False)
        n_new = c + len(tail)
        if not self._accept(log_r_extra - math.log(n_new) + ml_new - ml_old):
            return False
        self._Z = self._Z[:c] + tail
        self._W = self._W[:c] + [w_new] + W_up
        self._b = self._b[: c + 1] + b_up
        self._nu = self._nu[: c + 1] + nu_up
        self._Y = self._Y[: c + 1] + Y_up
        self.alpha, self.beta = alpha, beta
        self._refresh()
        return True

    def resample_above_hyper(self) -> bool:
        r"""Propose new α, β **and** a new cascade above a random layer, jointly; returns acceptance.

        The layers above the data-pinned ones are nearly prior draws given α, β, and α, β are
        nearly determined by them, so updating either given the other (:meth:`update_alpha_beta`,
        :meth:`resample_above`) moves the depth only slowly: a chain can sit for thousands of
        sweeps in a deep, near-critical cascade (large α, small β) or in a shallow one. This
        move changes them together. Pick c uniformly in 0..L (n = L + 1 choices); propose
        :math:`\log α' = \log α + s ε_1`, :math:`\log β' = \log β + s ε_2` (s = ``log_step``);
        draw ``Z[c], Z[c+1], ...`` from the labelled CIBP(α', β') given :math:`K_c` and the
        new hidden layers' weights, biases, precisions and pre-activations from their priors,
        and ``W[c]`` from its Gaussian conditional, exactly as :meth:`resample_above`. The
        tail's prior under (α', β') cancels against its proposal (and the old tail's prior
        under (α, β) against the reverse proposal), leaving the prior of the **kept**
        matrices ``Z[:c]`` under the two parameter values:

        .. math::

            \min\Big\{1,\; \frac{n}{n'}\,
              \frac{M(Z'_c, U'_{c+1})}{M(Z_c, U_{c+1})}\,
              \frac{P_{\mathrm{lab}}(Z_{<c} \mid α', β')}{P_{\mathrm{lab}}(Z_{<c} \mid α, β)}\,
              \frac{\mathrm{Gamma}(α')\,\mathrm{Gamma}(β')\,α'β'}{\mathrm{Gamma}(α)\,\mathrm{Gamma}(β)\,αβ}\Big\}

        (M as in :meth:`resample_above`; α'β'/αβ the Jacobian of the log-scale random walk;
        with c = 0 nothing is kept and the whole structure is redrawn under the proposed α', β'). A no-op
        when α, β are fixed. Counted as ``"resample_hyper"`` in :attr:`acceptance`.
        """
        if not self.learn_alpha_beta:
            return False
        self.proposed["resample_hyper"] += 1
        n = self.depth + 1
        c = int(self.rng.integers(n))
        a, b = self.alpha, self.beta
        a_new = a * math.exp(self.log_step * float(self.rng.standard_normal()))
        b_new = b * math.exp(self.log_step * float(self.rng.standard_normal()))
        kept = self._Z[:c]
        log_r = (
            math.log(n)
            + labelled_log_prob(kept, a_new, b_new) - labelled_log_prob(kept, a, b)
            + _gamma_logpdf(a_new, *self.alpha_prior) - _gamma_logpdf(a, *self.alpha_prior)
            + _gamma_logpdf(b_new, *self.beta_prior) - _gamma_logpdf(b, *self.beta_prior)
            + math.log(a_new * b_new) - math.log(a * b)
        )
        ok = self._redraw_above(c, a_new, b_new, log_r)
        self.accepted["resample_hyper"] += ok
        return ok

    def update_alpha_beta(self) -> None:
        r"""MH on log α, then on log β, under their Gamma hyperpriors.

        Proposal :math:`\log α' = \log α + s ε` (s = ``log_step``); the target in α is
        :math:`\mathrm{Gamma}(α; a_α, b_α)\, P_{\mathrm{lab}}(Z \mid α, β)`, and the
        log-scale proposal contributes the Jacobian α'/α, so the acceptance is

        .. math::

            \min\Big\{1, \frac{\mathrm{Gamma}(α')P_{\mathrm{lab}}(Z\mid α',β)\,α'}
                              {\mathrm{Gamma}(α)P_{\mathrm{lab}}(Z\mid α,β)\,α}\Big\},

        and the same for β. (In α alone the conditional is conjugate,
        :math:`\mathrm{Gamma}(a_α + \sum_m K_m,\, b_α + \sum_m \sum_{n=1}^{K_{m-1}} β/(β+n-1))`;
        the tests check the chain against it.)
        """
        if not self.learn_alpha_beta:
            return
        for name, prior in (("alpha", self.alpha_prior), ("beta", self.beta_prior)):
            cur = getattr(self, name)
            new = cur * math.exp(self.log_step * float(self.rng.standard_normal()))
            ab_cur = (self.alpha, self.beta)
            ab_new = (new, self.beta) if name == "alpha" else (self.alpha, new)
            log_r = (
                labelled_log_prob(self._Z, *ab_new) + _gamma_logpdf(new, *prior) + math.log(new)
                - labelled_log_prob(self._Z, *ab_cur) - _gamma_logpdf(cur, *prior) - math.log(cur)
            )
            self.proposed[name] += 1
            if self._accept(log_r):
                setattr(self, name, new)
                self.accepted[name] += 1

    # ------------------------------------------------------------------ driver
    def sweep(self) -> None:
        """One sweep of all moves, in the order of the module docstring."""
        self.update_weights()
        self.update_precisions()
        self.update_activations()
        self.update_edges()
        for _ in range(self.birth_death_per_sweep):
            self.birth_death()
        for _ in range(self.resample_per_sweep):
            self.resample_above()
        if self.learn_alpha_beta:
            for _ in range(self.hyper_resample_per_sweep):
                self.resample_above_hyper()
        self.update_alpha_beta()
        self._refresh()
        self.num_sweeps += 1

    def run(self, num_samples: int, warmup: int = 0, thin: int = 1, progress: bool = True) -> BeliefNetSamples:
        """``warmup`` sweeps, then ``num_samples`` recorded states every ``thin`` sweeps (tqdm bar)."""
        from tqdm.auto import tqdm

        num_samples = check_positive_int(num_samples, "num_samples")
        warmup = check_positive_int(warmup, "warmup", minimum=0)
        thin = check_positive_int(thin, "thin")
        S = num_samples
        depth, edges = np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.int64)
        alpha, beta, log_joint = np.zeros(S), np.zeros(S), np.zeros(S)
        widths: list = []
        with tqdm(total=warmup + S * thin, desc="belief-net MCMC", disable=not progress, unit="sweep") as bar:
            for _ in range(warmup):
                self.sweep()
                bar.update()
            for s in range(S):
                for _ in range(thin):
                    self.sweep()
                bar.update(thin)
                st = self.stats()
                depth[s], edges[s] = st["depth"], st["num_edges"]
                alpha[s], beta[s], log_joint[s] = st["alpha"], st["beta"], st["log_joint"]
                widths.append(st["widths"])
        return BeliefNetSamples(depth, edges, alpha, beta, log_joint, widths, self.acceptance)

    def fantasies(self, num: int, seed: int | None = None) -> torch.Tensor:
        """``num`` ancestral samples σ(y_0) of the visible layer from the current state ``(num, D)``.

        With ``seed`` a fresh generator is used and the chain is untouched; with ``seed=None``
        the draws come from the chain's own generator (advancing it).
        """
        num = check_positive_int(num, "num")
        rng = self.rng if seed is None else np.random.default_rng(check_seed(seed))
        U_above = np.zeros((num, 0))
        for c in range(self.depth, -1, -1):
            mean = U_above @ self._W[c].T + self._b[c]
            U_above = expit(mean + rng.standard_normal((num, mean.shape[1])) / math.sqrt(self._nu[c]))
        return torch.from_numpy(U_above)

    # ------------------------------------------------------------------ checkpoints
    _SETTINGS = (
        "learn_alpha_beta", "max_depth", "max_width", "weight_precision", "bias_precision", "precision_prior",
        "alpha_prior", "beta_prior", "clip_eps", "birth_death_per_sweep", "resample_per_sweep", "log_step",
        "hyper_resample_per_sweep",
    )

    def state_dict(self) -> dict:
        """The full chain state as plain Python/numpy content (picklable), RNG state included.

        :meth:`from_state_dict` with the same data continues exactly as this sampler would.
        """
        return {
            "version": _STATE_VERSION,
            "num_visible": self.num_visible,
            "num_data": self.num_data,
            "data_sha256": self._data_digest,
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                         ((k, getattr(self, k)) for k in self._SETTINGS)},
            "alpha": float(self.alpha),
            "beta": float(self.beta),
            "Z": [Z.copy() for Z in self._Z],
            "W": [W.copy() for W in self._W],
            "b": [b.copy() for b in self._b],
            "nu": [float(v) for v in self._nu],
            "Y_hidden": [Y.copy() for Y in self._Y[1:]],
            "rng": self.rng.bit_generator.state,
            "proposed": dict(self.proposed),
            "accepted": dict(self.accepted),
            "num_sweeps": int(self.num_sweeps),
        }

    @classmethod
    def from_state_dict(cls, data: Any, state: dict) -> "BeliefNetSampler":
        """Rebuild a sampler from :meth:`state_dict` output and the same ``data`` (None for prior-only).

        Raises :class:`~bayesstruct.exceptions.InvalidArgumentError` naming what is wrong when
        ``state`` is corrupt or does not match ``data``.
        """
        def bad(msg: str) -> InvalidArgumentError:
            return InvalidArgumentError(f"corrupt belief-net state: {msg}")

        if not isinstance(state, dict):
            raise bad(f"expected a dict from BeliefNetSampler.state_dict(); got {type(state).__name__}")
        required = ("version", "num_visible", "num_data", "data_sha256", "settings", "alpha", "beta", "Z", "W",
                    "b", "nu", "Y_hidden", "rng", "proposed", "accepted", "num_sweeps")
        missing = [k for k in required if k not in state]
        if missing:
            raise bad(f"missing key(s) {missing}")
        if state["version"] != _STATE_VERSION:
            raise bad(f"unsupported version {state['version']!r} (expected {_STATE_VERSION})")
        settings = state["settings"]
        if isinstance(settings, dict):  # states saved before a setting existed continue as they ran
            settings = {**{k: v for k, v in _NEW_SETTINGS.items() if k not in settings}, **settings}
        if not isinstance(settings, dict) or set(settings) != set(cls._SETTINGS):
            raise bad(f"`settings` must have the keys {list(cls._SETTINGS)}")
        self = cls.__new__(cls)
        try:
            self.alpha = check_positive(state["alpha"], "alpha")
            self.beta = check_positive(state["beta"], "beta")
            self.learn_alpha_beta = bool(settings["learn_alpha_beta"])
            self.max_depth = check_positive_int(settings["max_depth"], "max_depth")
            self.max_width = check_positive_int(settings["max_width"], "max_width")
            self.weight_precision = check_positive(settings["weight_precision"], "weight_precision")
            self.bias_precision = check_positive(settings["bias_precision"], "bias_precision")
            self.precision_prior = _check_pair(settings["precision_prior"], "precision_prior")
            self.alpha_prior = _check_pair(settings["alpha_prior"], "alpha_prior")
            self.beta_prior = _check_pair(settings["beta_prior"], "beta_prior")
            self.clip_eps = check_positive(settings["clip_eps"], "clip_eps")
            self.birth_death_per_sweep = check_positive_int(settings["birth_death_per_sweep"], "birth_death_per_sweep",
                                                            minimum=0)
            self.resample_per_sweep = check_positive_int(settings["resample_per_sweep"], "resample_per_sweep",
                                                         minimum=0)
            self.log_step = check_positive(settings["log_step"], "log_step")
            self.hyper_resample_per_sweep = check_positive_int(
                settings["hyper_resample_per_sweep"], "hyper_resample_per_sweep", minimum=0
            )
        except InvalidArgumentError as exc:
            raise bad(str(exc)) from None
        self._set_data(data, state["num_visible"] if data is None else None)
        if self.num_visible != state["num_visible"] or self.num_data != state["num_data"]:
            raise InvalidArgumentError(
                f"`data` of shape ({self.num_data}, {self.num_visible}) does not match the state's "
                f"({state['num_data']}, {state['num_visible']})"
            )
        if self._data_digest != state["data_sha256"]:
            raise InvalidArgumentError("`data` differs from the data the state was sampled with (checksum mismatch)")
        self._load_arrays(state, bad)
        self.rng = np.random.default_rng()
        try:
            self.rng.bit_generator.state = state["rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise bad(f"`rng` is not a numpy bit-generator state ({exc})") from None
        counts = {}
        for key in ("proposed", "accepted"):
            d = state[key]
            if isinstance(d, dict):  # moves added after the state was saved start at 0
                d = {**{k: 0 for k in MOVES if k not in d}, **d}
            if not isinstance(d, dict) or set(d) != set(MOVES):
                raise bad(f"`{key}` must map the moves {list(MOVES)} to counts")
            counts[key] = {k: int(v) for k, v in d.items()}
        self.proposed, self.accepted = counts["proposed"], counts["accepted"]
        self.num_sweeps = int(state["num_sweeps"])
        self._refresh()
        return self

    def _load_arrays(self, state: dict, bad) -> None:
        Zs, Ws, bs, nus, Ys = state["Z"], state["W"], state["b"], state["nu"], state["Y_hidden"]
        if not all(isinstance(v, (list, tuple)) for v in (Zs, Ws, bs, nus, Ys)) or not Zs:
            raise bad("`Z`, `W`, `b`, `nu`, `Y_hidden` must be lists (Z non-empty)")
        L = len(Zs) - 1
        if not (len(Ws) == L + 1 and len(bs) == L + 1 and len(nus) == L + 1 and len(Ys) == L):
            raise bad(f"{L + 1} layer matrices need {L + 1} W, b, nu and {L} Y_hidden entries")
        if L > self.max_depth:
            raise bad(f"depth {L} exceeds max_depth={self.max_depth}")
        self._Z, self._W, self._b, self._nu, self._Y = [], [], [], [], [self._y_obs]
        width = self.num_visible
        for c in range(L + 1):
            Z = np.asarray(Zs[c])
            if Z.ndim != 2 or Z.shape[0] != width or not np.all((Z == 0) | (Z == 1)):
                raise bad(f"`Z[{c}]` must be a binary ({width}, K) matrix; got shape {Z.shape}")
            K = Z.shape[1]
            if (c == L) != (K == 0) or (K and np.any(Z.sum(0) == 0)) or K > self.max_width:
                raise bad(f"`Z[{c}]` (shape {Z.shape}) breaks the cascade: no empty columns, only the last is (K_L, 0)")
            W = np.asarray(Ws[c], dtype=np.float64)
            if W.shape != Z.shape or not np.all(np.isfinite(W)) or np.any(W[Z == 0] != 0):
                raise bad(f"`W[{c}]` must be finite with shape {Z.shape} and 0 where Z[{c}] is 0")
            b = np.asarray(bs[c], dtype=np.float64)
            if b.shape != (width,) or not np.all(np.isfinite(b)):
                raise bad(f"`b[{c}]` must be a finite vector of length {width}")
            nu = float(nus[c])
            if not (math.isfinite(nu) and nu > 0):
                raise bad(f"`nu[{c}]` must be finite and > 0; got {nu!r}")
            if c >= 1:
                Y = np.asarray(Ys[c - 1], dtype=np.float64)
                if Y.shape != (self.num_data, width) or not np.all(np.isfinite(Y)):
                    raise bad(f"`Y_hidden[{c - 1}]` must be finite with shape ({self.num_data}, {width})")
                self._Y.append(Y.copy())
            self._Z.append(Z.astype(np.int8))
            self._W.append(W.copy())
            self._b.append(b.copy())
            self._nu.append(nu)
            width = K
