r"""MCMC over the structures of deep sparse belief networks under the cascading IBP prior.

The structure of a network (Adams, Wallach & Ghahramani, AISTATS 2010) is the list of
binary layer matrices ``[Z_1, ..., Z_{L+1}]`` exactly as
:meth:`~bayesstruct.priors.CascadingIBP.sample` returns it: ``Z_m`` has shape
``(K_{m-1}, K_m)`` with no all-zero column, ``K_0 = num_visible`` and the last matrix
has shape ``(K_L, 0)``. :class:`CIBPSampler` is a Metropolis--Hastings chain over such
lists whose stationary law is

.. math::

    \pi(Z) \propto P_{\mathrm{lab}}(Z)\, \exp\{\ell(Z)\},

with :math:`\ell` a user-supplied log-likelihood (0 by default, so the chain then
samples the prior) -- the Gaussian belief-net likelihood is to be plugged in later.

The state space: labelled matrices
----------------------------------
:meth:`CascadingIBP.log_prob` is :math:`\sum_m \log P([Z_m])`, a probability of
left-ordered *equivalence classes*. Proposals that act on individual entries are not
naturally defined on classes, so the chain runs on **labelled** matrices: the law of a
cascade whose hidden units in each layer are put in a uniformly random order (each
layer's column permutation also permutes the rows of the next matrix). A class
:math:`[Z_m]` with :math:`K_h` columns of history h contains
:math:`K_m! / \prod_h K_h!` labelled matrices, all equally likely, so

.. math::

    \log P_{\mathrm{lab}}(Z) = \sum_m \Big[\log P([Z_m]) + \sum_h \log K^{(m)}_h! - \log K_m!\Big]
    = \sum_m \Big[K_m \log αβ - \log K_m! - α\sum_{n=1}^{K_{m-1}} \tfrac{β}{β+n-1}
      + \sum_{k=1}^{K_m} \log \tfrac{Γ(m_k)Γ(K_{m-1}-m_k+β)}{Γ(K_{m-1}+β)}\Big]

(:func:`labelled_log_prob`). Every statistic the chain reports (depth, widths, number
of edges) is invariant under relabelling, so its law under :math:`P_{\mathrm{lab}}`
equals its law under :meth:`CascadingIBP.sample`.

Moves
-----
Each iteration makes one move, chosen with fixed (state-independent) probabilities
``move_probs``; a mixture of kernels that each leave :math:`\pi` invariant leaves
:math:`\pi` invariant. See :meth:`CIBPSampler.flip_edge` and
:meth:`CIBPSampler.resample_above` for the acceptance ratios.

* ``"flip"`` -- flip one edge :math:`Z_m[i, k]`; dimension-preserving.
* ``"resample"`` -- redraw matrices ``Z_m, Z_{m+1}, ...`` (all the layers above
  layer m-1, including births and deaths of units and of whole layers) from the prior
  conditional; this is the trans-dimensional move.

Examples
--------
>>> s = CIBPSampler(alpha=1.0, beta=1.0, num_visible=3, seed=1)
>>> out = s.run(200, warmup=50, progress=False)
>>> out.depth.shape, sorted(out.acceptance)
((200,), ['flip', 'resample'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import BayesStructError, InvalidArgumentError
from bayesstruct.priors.ibp import CascadingIBP

__all__ = ["CIBPSampler", "CIBPSamples", "ibp_labelled", "labelled_log_prob", "structure_stats"]

LogLikelihood = Callable[[list[torch.Tensor]], float]


def _layer_log_prob(Z: np.ndarray, alpha: float, beta: float) -> float:
    """Labelled IBP log-probability of one matrix (rows = customers), see the module docs."""
    N, K = Z.shape
    n = np.arange(1, N + 1, dtype=np.float64)
    out = -alpha * float(np.sum(beta / (beta + n - 1.0)))
    if K == 0:
        return out
    m = Z.sum(0).astype(np.float64)
    out += K * math.log(alpha * beta) - math.lgamma(K + 1.0)
    out += sum(math.lgamma(mk) + math.lgamma(N - mk + beta) for mk in m) - K * math.lgamma(N + beta)
    return out


def ibp_labelled(rng: np.random.Generator, alpha: float, beta: float, num_rows: int) -> np.ndarray:
    """One labelled IBP(α, β) draw: the sequential buffet with ``num_rows`` customers, then the
    columns put in uniformly random order; an ``int8`` matrix ``(num_rows, K)`` without empty columns.

    All randomness comes from ``rng``. Each labelled matrix is drawn with its labelled prior
    probability (the exponential of :func:`_layer_log_prob`; see the module docs).
    """
    counts = np.zeros(0)
    Z = np.zeros((num_rows, 0), dtype=np.int8)
    for n in range(num_rows):
        denom = beta + n
        if Z.shape[1]:
            Z[n] = rng.random(Z.shape[1]) < counts / denom
        new = int(rng.poisson(alpha * beta / denom))
        if new:
            block = np.zeros((num_rows, new), dtype=np.int8)
            block[n] = 1
            Z = np.concatenate([Z, block], axis=1)
        counts = Z[: n + 1].sum(0).astype(np.float64)
    return Z[:, rng.permutation(Z.shape[1])]


def labelled_log_prob(layers: Sequence, alpha: float, beta: float) -> float:
    r"""log P_lab(Z) of a labelled cascade ``[Z_1, ..., Z_{L+1}]`` (see the module docs).

    Equals ``CascadingIBP(alpha, beta, K_0).log_prob(layers)`` plus
    :math:`\sum_m [\sum_h \log K^{(m)}_h! - \log K_m!]`. No validation (internal speed);
    use :meth:`CascadingIBP.log_prob` to validate a state.
    """
    return sum(_layer_log_prob(np.asarray(Z), alpha, beta) for Z in layers)


def structure_stats(layers: Sequence) -> tuple[int, tuple[int, ...], int]:
    """(depth, widths (K_1, ..., K_L), number of edges) of a cascade ``[Z_1, ..., Z_{L+1}]``."""
    widths = tuple(int(np.asarray(Z).shape[1]) for Z in layers[:-1])
    edges = int(sum(np.asarray(Z).sum() for Z in layers))
    return len(widths), widths, edges


@dataclass
class CIBPSamples:
    """Per-sample statistics from :meth:`CIBPSampler.run`.

    Attributes
    ----------
    depth : np.ndarray of int, ``(S,)``
        Number of non-empty hidden layers L.
    widths : list of tuple of int
        ``(K_1, ..., K_L)`` per sample.
    num_edges : np.ndarray of int, ``(S,)``
        Total number of edges (ones) over all layer matrices.
    log_target : np.ndarray of float, ``(S,)``
        log P_lab(Z) + log_likelihood(Z) of each sample.
    acceptance : dict
        Move kind -> acceptance rate over warmup and sampling (NaN if never proposed).
    proposed, accepted : dict
        Move kind -> counts.
    """

    depth: np.ndarray
    widths: list
    num_edges: np.ndarray
    log_target: np.ndarray
    acceptance: dict = field(default_factory=dict)
    proposed: dict = field(default_factory=dict)
    accepted: dict = field(default_factory=dict)

    def width(self, layer: int) -> np.ndarray:
        """K_layer per sample (0 where the sample has fewer hidden layers); ``layer >= 1``."""
        return np.array([w[layer - 1] if len(w) >= layer else 0 for w in self.widths], dtype=np.int64)


class CIBPSampler:
    r"""Metropolis--Hastings over cascading-IBP network structures.

    Parameters
    ----------
    alpha, beta : float
        CIBP parameters (as :class:`~bayesstruct.priors.CascadingIBP`).
    num_visible : int
        K_0 >= 1.
    log_likelihood : callable, optional
        ``log_likelihood(layers) -> float`` for ``layers`` a list of float64 tensors in the
        format of :meth:`CascadingIBP.sample`; it must be invariant under relabelling of
        the hidden units (true of any likelihood that integrates out per-unit weights and
        activations). Default: 0 (the chain samples the prior).
    seed : int
        Seed of the chain's ``numpy.random.Generator`` (the only source of randomness).
    move_probs : mapping, optional
        Probabilities of the move kinds ``"flip"`` and ``"resample"`` (normalised);
        default ``{"flip": 0.8, "resample": 0.2}``.
    max_depth : int
        Cap on the number of matrices; a proposal reaching it raises
        :class:`~bayesstruct.exceptions.BayesStructError`.
    init : list, optional
        Initial state (validated by :meth:`CascadingIBP.log_prob`); default a prior draw.

    Attributes
    ----------
    state : list of torch.Tensor
        The current structure ``[Z_1, ..., Z_{L+1}]``.
    """

    MOVES = ("flip", "resample")

    def __init__(
        self,
        alpha: float,
        beta: float,
        num_visible: int,
        log_likelihood: LogLikelihood | None = None,
        seed: int = 0,
        *,
        move_probs: Mapping[str, float] | None = None,
        max_depth: int = 1000,
        init: Sequence | None = None,
        _drop_proposal_correction: bool = False,
    ):
        self.alpha = check_positive(alpha, "alpha")
        self.beta = check_positive(beta, "beta")
        self.num_visible = check_positive_int(num_visible, "num_visible")
        self.max_depth = check_positive_int(max_depth, "max_depth")
        if log_likelihood is not None and not callable(log_likelihood):
            raise InvalidArgumentError(f"`log_likelihood` must be callable or None; got {type(log_likelihood).__name__}")
        self.log_likelihood = log_likelihood
        self.prior = CascadingIBP(self.alpha, self.beta, self.num_visible, max_depth=self.max_depth, validate_args=True)
        if move_probs is not None and not isinstance(move_probs, Mapping):
            raise InvalidArgumentError(f"`move_probs` must be a dict {{move kind: probability}} with kinds {self.MOVES}; "
                                       f"got {type(move_probs).__name__}")
        probs = {"flip": 0.8, "resample": 0.2} if move_probs is None else dict(move_probs)
        unknown = set(probs) - set(self.MOVES)
        if unknown:
            raise InvalidArgumentError(f"`move_probs` has unknown move kind(s) {sorted(unknown)}; known: {self.MOVES}")
        try:
            p = np.array([float(probs.get(k, 0.0)) for k in self.MOVES])
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`move_probs` values must be numbers; got {probs}") from None
        if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise InvalidArgumentError(f"`move_probs` must be non-negative with a positive sum; got {probs}")
        self.move_probs = dict(zip(self.MOVES, p / p.sum()))
        # Test-only: drop the n(Z)/n(Z') proposal correction of the resample move (wrong chain).
        self._drop_proposal_correction = bool(_drop_proposal_correction)
        self.rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
        if init is None:
            self._Z = self._cascade(self.num_visible)
        else:
            if torch.is_tensor(init) or isinstance(init, np.ndarray) or not isinstance(init, Sequence):
                raise InvalidArgumentError(
                    "`init` must be a list of binary layer matrices [Z_1, ..., Z_{L+1}] (as CascadingIBP.sample() "
                    f"returns); got {type(init).__name__}"
                )
            self.prior.log_prob(list(init))  # validates shapes, binarity, empty columns, termination
            self._Z = [np.asarray(torch.as_tensor(z).detach().cpu().numpy() != 0, dtype=np.int8) for z in init]
        self._ll = self._loglik(self._Z)
        self._lp = labelled_log_prob(self._Z, self.alpha, self.beta)
        self.proposed = {k: 0 for k in self.MOVES}
        self.accepted = {k: 0 for k in self.MOVES}

    # -- helpers ----------------------------------------------------------------------
    @property
    def state(self) -> list[torch.Tensor]:
        return [torch.from_numpy(z.astype(np.float64)) for z in self._Z]

    @property
    def log_target(self) -> float:
        return self._lp + self._ll

    def _loglik(self, Z: list[np.ndarray]) -> float:
        if self.log_likelihood is None:
            return 0.0
        out = self.log_likelihood([torch.from_numpy(z.astype(np.float64)) for z in Z])
        try:
            val = float(out)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`log_likelihood` must return a number; it returned {out!r}") from None
        if math.isnan(val) or val == math.inf:
            raise BayesStructError(f"log_likelihood returned {val}; it must be finite or -inf")
        return val

    def _ibp_labelled(self, num_rows: int) -> np.ndarray:
        """One IBP(α, β) draw with ``num_rows`` customers, columns in uniformly random order."""
        return ibp_labelled(self.rng, self.alpha, self.beta, num_rows)

    def _cascade(self, width: int, start: int = 0) -> list[np.ndarray]:
        """Matrices ``Z_{start+1}, ...`` from the labelled prior, the first with ``width`` rows."""
        out: list[np.ndarray] = []
        for _ in range(start, self.max_depth):
            Z = self._ibp_labelled(width)
            out.append(Z)
            width = Z.shape[1]
            if width == 0:
                return out
        raise BayesStructError(
            f"CIBPSampler: cascade did not terminate within max_depth={self.max_depth} matrices "
            f"(alpha={self.alpha:g}, beta={self.beta:g}). Increase `max_depth` or use smaller alpha/beta."
        )

    def _accept(self, log_ratio: float) -> bool:
        return log_ratio >= 0 or self.rng.random() < math.exp(log_ratio)

    # -- moves ------------------------------------------------------------------------
    def flip_edge(self) -> bool:
        r"""Flip one edge; returns whether it was accepted.

        Pick a non-empty matrix :math:`Z_m` (m uniform in 1..L, L = number of hidden
        layers; a no-op when L = 0) and an entry (i, k) uniformly among its
        :math:`K_{m-1} K_m` entries, and propose :math:`Z'` = Z with that entry flipped.
        If the flip empties column k (a unit would lose its last child) the proposal is
        rejected (π(Z') = 0: Z' is not a valid cascade), so the move never changes any
        width and the reverse move picks the same (m, i, k) with the same probability
        :math:`1/(L K_{m-1} K_m)`: the proposal is symmetric and the acceptance
        probability is

        .. math::

            \min\Big\{1, \frac{π(Z')}{π(Z)}\Big\}, \qquad
            \log\frac{P_{\mathrm{lab}}(Z')}{P_{\mathrm{lab}}(Z)} =
            \log\frac{Γ(m'_k)Γ(K_{m-1}-m'_k+β)}{Γ(m_k)Γ(K_{m-1}-m_k+β)},

        :math:`m'_k = m_k \pm 1` the new column sum (only column k's factor changes).
        Unit births and deaths are left to :meth:`resample_above`.
        """
        self.proposed["flip"] += 1
        L = len(self._Z) - 1
        if L == 0:
            return False  # nothing to flip; counts as a rejected proposal
        m = int(self.rng.integers(L))
        Z = self._Z[m]
        N, K = Z.shape
        i, k = int(self.rng.integers(N)), int(self.rng.integers(K))
        mk = int(Z[:, k].sum())
        new_mk = mk - 1 if Z[i, k] else mk + 1
        if new_mk == 0:
            return False
        b = self.beta
        d_lp = math.lgamma(new_mk) + math.lgamma(N - new_mk + b) - math.lgamma(mk) - math.lgamma(N - mk + b)
        Z[i, k] ^= 1
        new_ll = self._loglik(self._Z) if self.log_likelihood is not None else 0.0
        if self._accept(d_lp + new_ll - self._ll):
            self._lp += d_lp
            self._ll = new_ll
            self.accepted["flip"] += 1
            return True
        Z[i, k] ^= 1
        return False

    def resample_above(self) -> bool:
        r"""Redraw the cascade above some layer from the prior; returns whether accepted.

        With n(Z) = L + 1 matrices, pick j uniformly in 1..n(Z) and propose
        :math:`Z' = (Z_1, ..., Z_{j-1}, Z'_j, Z'_{j+1}, ...)` with the new matrices drawn
        from the labelled prior conditional :math:`P_{\mathrm{lab}}(Z_{j:} \mid K_{j-1})`
        (an IBP draw for the :math:`K_{j-1}` units of layer j-1, columns in random order,
        then the cascade above it until a layer draws no parents). This proposes unit
        births/deaths in layer j and above, and births/deaths of whole top layers. Since
        n(Z') >= j, the reverse move picks the same j with probability 1/n(Z') and redraws
        the old tail; the prior factors cancel against the target's, leaving

        .. math::

            \min\Big\{1, \frac{n(Z)}{n(Z')} \exp\{\ell(Z') - \ell(Z)\}\Big\}.

        The factor n(Z)/n(Z') is the proposal correction (the test-only flag
        ``_drop_proposal_correction`` removes it, which biases the chain towards deep
        structures).
        """
        self.proposed["resample"] += 1
        n = len(self._Z)
        j = int(self.rng.integers(n))  # 0-based: matrix Z_{j+1} is redrawn
        width = self.num_visible if j == 0 else self._Z[j - 1].shape[1]
        new = self._Z[:j] + self._cascade(width, start=j)
        new_ll = self._loglik(new) if self.log_likelihood is not None else 0.0
        log_ratio = new_ll - self._ll
        if not self._drop_proposal_correction:
            log_ratio += math.log(n) - math.log(len(new))
        if self._accept(log_ratio):
            self._Z = new
            self._ll = new_ll
            self._lp = labelled_log_prob(new, self.alpha, self.beta)
            self.accepted["resample"] += 1
            return True
        return False

    def step(self) -> str:
        """One iteration: one move, chosen with probabilities ``move_probs``; returns its kind."""
        u = self.rng.random()
        kind = "flip" if u < self.move_probs["flip"] else "resample"
        (self.flip_edge if kind == "flip" else self.resample_above)()
        return kind

    # -- driver -----------------------------------------------------------------------
    def run(self, num_samples: int, warmup: int = 0, progress: bool = True, *, thin: int = 1) -> CIBPSamples:
        """Run ``warmup`` iterations, then record ``num_samples`` states every ``thin`` iterations.

        Returns a :class:`CIBPSamples` of structure statistics (depth, widths, edges).
        """
        from tqdm.auto import tqdm

        num_samples = check_positive_int(num_samples, "num_samples")
        warmup = check_positive_int(warmup, "warmup", minimum=0)
        thin = check_positive_int(thin, "thin")
        depth = np.zeros(num_samples, dtype=np.int64)
        edges = np.zeros(num_samples, dtype=np.int64)
        logt = np.zeros(num_samples)
        widths: list = []
        total = warmup + num_samples * thin
        with tqdm(total=total, desc="CIBP structure MCMC", disable=not progress, unit="it") as bar:
            for _ in range(warmup):
                self.step()
                bar.update()
            for s in range(num_samples):
                for _ in range(thin):
                    self.step()
                bar.update(thin)
                d, w, e = structure_stats(self._Z)
                depth[s], edges[s], logt[s] = d, e, self.log_target
                widths.append(w)
        acc = {k: (self.accepted[k] / self.proposed[k] if self.proposed[k] else float("nan")) for k in self.MOVES}
        return CIBPSamples(depth, widths, edges, logt, acc, dict(self.proposed), dict(self.accepted))
