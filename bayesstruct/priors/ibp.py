r"""Indian buffet process priors over binary incidence matrices of unbounded width.

* :class:`IndianBuffetProcess` -- the two-parameter IBP (Ghahramani, Griffiths & Sollich
  2007) over binary matrices with ``num_rows`` rows and an unbounded number of columns;
  ``beta=1`` is the one-parameter IBP of Griffiths & Ghahramani (2005).
* :class:`CascadingIBP` -- the cascading IBP of Adams, Wallach & Ghahramani (AISTATS 2010),
  a prior over the layer-by-layer structure of a deep sparse belief network.
* :func:`left_ordered_form` -- the canonical representative of a matrix's equivalence
  class (columns sorted by their history).

Both priors are usable from plain Pyro code::

    Z = pyro.sample("Z", IndianBuffetProcess(alpha, beta, num_rows))
    layers = CascadingIBP(alpha, beta, num_visible).pyro_sample("Z")   # sites Z_1, Z_2, ...

References
----------
T. L. Griffiths, Z. Ghahramani. *Infinite latent feature models and the Indian buffet
process.* NIPS 2005 (and Gatsby tech. report 2005-001).
Z. Ghahramani, T. L. Griffiths, P. Sollich. *Bayesian nonparametric latent feature
models.* Bayesian Statistics 8, 2007.
R. P. Adams, H. M. Wallach, Z. Ghahramani. *Learning the structure of deep sparse
graphical models.* AISTATS 2010.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch.distributions import constraints

from bayesstruct._validation import as_tensor, check_positive, check_positive_int
from bayesstruct.exceptions import BayesStructError, InvalidArgumentError

__all__ = ["IndianBuffetProcess", "CascadingIBP", "left_ordered_form"]


def _check_binary(value: Any, name: str, *, min_ndim: int = 2, exact_ndim: int | None = None,
                  validate: bool = True) -> torch.Tensor:
    """Convert to a float64 tensor of 0/1 entries; the error names ``name``.

    With ``validate=False`` (a distribution built with ``validate_args=False``) only what
    is needed to compute anything is checked -- numbers, and the number of dimensions --
    as torch distributions skip their support check then: NaN or non-binary entries
    pass through (the density of such a value is undefined, but no error is raised).
    """
    if validate:
        t = as_tensor(value, name, ndim=exact_ndim)
    else:
        try:
            t = torch.as_tensor(value if torch.is_tensor(value) else np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"`{name}` must be an array of numbers; got {type(value).__name__} ({exc})"
            ) from None
        t = t.to(torch.float64)
        if exact_ndim is not None and t.dim() != exact_ndim:
            raise InvalidArgumentError(f"`{name}` must be {exact_ndim}-dimensional; got shape {tuple(t.shape)}")
    if t.dim() < min_ndim:
        raise InvalidArgumentError(
            f"`{name}` must be a binary matrix with at least {min_ndim} dimensions (..., rows, columns); "
            f"got shape {tuple(t.shape)}"
        )
    if not validate:
        return t
    bad = ~((t == 0) | (t == 1))
    if bool(bad.any()):
        example = t[bad][0].item()
        raise InvalidArgumentError(
            f"`{name}` must be binary (entries 0/1 or False/True); got {int(bad.sum())} other value(s), "
            f"e.g. {example!r}"
        )
    return t


def _check_sample_shape(sample_shape: Any) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` of non-negative ints (torch's convention)."""
    try:
        shape = torch.Size(sample_shape)
    except TypeError:
        shape = None
    if shape is None or any(d < 0 for d in shape):
        raise InvalidArgumentError(
            f"`sample_shape` must be a tuple of non-negative ints (e.g. () or (10,)); got {sample_shape!r}"
        )
    return shape


def _check_validate_args(validate_args: Any) -> bool | None:
    if validate_args is not None and not isinstance(validate_args, bool):
        raise InvalidArgumentError(f"`validate_args` must be True, False or None; got {validate_args!r}")
    return validate_args


def left_ordered_form(Z: Any) -> torch.Tensor:
    r"""The left-ordered form lof(Z) of a binary matrix (Griffiths & Ghahramani 2005, §2.3).

    Columns are sorted in decreasing order of their *history* -- the binary number
    :math:`\sum_n z_{nk} 2^{N-n}` read with the first row as the most significant bit --
    so all-zero columns come last. Two matrices are in the same equivalence class
    :math:`[Z]` iff they have the same left-ordered form.

    Parameters
    ----------
    Z : array-like, ``(N, K)``
        A binary matrix (any numeric or bool dtype).

    Returns
    -------
    torch.Tensor, ``(N, K)``
        The same columns reordered, with ``Z``'s dtype when ``Z`` is a tensor
        (float64 otherwise). Ties (equal columns) keep their relative order.

    Examples
    --------
    >>> left_ordered_form(torch.tensor([[0., 1., 1.], [1., 0., 1.]]))
    tensor([[1., 1., 0.],
            [1., 0., 1.]])
    """
    zt = _check_binary(Z, "Z", exact_ndim=2)
    arr = zt.numpy()
    # np.lexsort: the *last* key is the primary one; negate to sort in decreasing order.
    keys = [-arr[n] for n in range(arr.shape[0] - 1, -1, -1)]
    order = np.lexsort(keys) if keys and arr.shape[1] else np.arange(arr.shape[1])
    order_t = torch.as_tensor(order, dtype=torch.long)
    if torch.is_tensor(Z):
        return Z.index_select(-1, order_t.to(Z.device))
    return zt.index_select(-1, order_t)


class IndianBuffetProcess(dist.TorchDistribution):
    r"""The two-parameter Indian buffet process IBP(α, β) over binary matrices.

    Rows are ``num_rows`` = N customers, columns are dishes (latent features); the number
    of columns is unbounded. In the sequential buffet (Ghahramani, Griffiths & Sollich
    2007, §3.1) customer n takes each dish already taken by :math:`m_k` earlier
    customers with probability :math:`m_k / (β + n - 1)` and then
    :math:`\mathrm{Poisson}(αβ / (β + n - 1))` new dishes. β = 1 is the one-parameter
    IBP of Griffiths & Ghahramani (2005). Each row sum is Poisson(α); the number of
    non-empty columns is :math:`K_+ \sim \mathrm{Poisson}(α \sum_{n=1}^N β/(β+n-1))`.

    The probability of the equivalence class [Z] (matrices with the same left-ordered
    form, see :func:`left_ordered_form`) is

    .. math::

        P([Z]) = \frac{(αβ)^{K_+}}{\prod_{h>0} K_h!}
                 \exp\Big(-α \sum_{n=1}^N \frac{β}{β+n-1}\Big)
                 \prod_{k=1}^{K_+} \frac{Γ(m_k)\,Γ(N-m_k+β)}{Γ(N+β)},

    with :math:`m_k` the column sums of the :math:`K_+` non-empty columns and
    :math:`K_h` the number of columns with history h. For β = 1 this is Griffiths &
    Ghahramani's eq. (14), :math:`α^{K_+}/\prod_h K_h! \, e^{-α H_N}
    \prod_k (N-m_k)!(m_k-1)!/N!`.

    Parameters
    ----------
    alpha : float
        Mass parameter α > 0 (expected row sum; controls the width).
    beta : float
        Concentration β > 0 (larger β: features shared by fewer rows, sparser matrices).
    num_rows : int
        N >= 1, the number of rows (customers).
    validate_args : bool, optional
        As for torch distributions: whether ``log_prob`` checks that its value is in the
        support (binary, finite). ``None`` follows
        :meth:`torch.distributions.Distribution.set_default_validate_args` (which
        ``pyro.enable_validation`` sets). Shape checks needed to compute the density
        (``(..., num_rows, K)``) are always made.

    Notes
    -----
    * ``sample()`` returns a float tensor ``(N, K+)`` with only non-empty columns, in
      buffet order (columns in order of the first customer who took them); apply
      :func:`left_ordered_form` for the canonical representative.
      ``sample(sample_shape)`` returns ``(*sample_shape, N, K_max)``, each draw padded
      with all-zero columns to the widest draw.
    * ``log_prob(Z)`` takes ``(..., N, K)`` and returns ``(...)``: the log of P([Z]).
      All-zero columns are ignored (the matrix has infinitely many of them) and the
      column order does not matter, so ``Z`` need not be in left-ordered form.
    * The distribution has ``batch_shape == event_shape == ()``: matrices of varying
      width cannot be batched by a Pyro plate (``expand`` to a non-empty batch raises).

    Examples
    --------
    >>> import math
    >>> ibp = IndianBuffetProcess(alpha=2.0, beta=1.0, num_rows=5)
    >>> Z = ibp.sample()
    >>> Z.shape[0], bool(((Z == 0) | (Z == 1)).all())
    (5, True)
    >>> math.isclose(float(ibp.log_prob(torch.zeros(5, 0))), -ibp.expected_num_features, rel_tol=1e-6)
    True
    """

    arg_constraints: dict = {}
    support = constraints.boolean
    has_rsample = False
    has_enumerate_support = False

    def __init__(self, alpha: float, beta: float = 1.0, num_rows: int = 1, validate_args: bool | None = None):
        self.alpha = check_positive(alpha, "alpha")
        self.beta = check_positive(beta, "beta")
        self.num_rows = check_positive_int(num_rows, "num_rows")
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size(),
                         validate_args=_check_validate_args(validate_args))

    def __repr__(self) -> str:
        return f"IndianBuffetProcess(alpha={self.alpha:g}, beta={self.beta:g}, num_rows={self.num_rows})"

    @property
    def expected_num_features(self) -> float:
        r""":math:`E[K_+] = α \sum_{n=1}^N β/(β+n-1)` (the Poisson mean of :math:`K_+`)."""
        n = np.arange(1, self.num_rows + 1, dtype=np.float64)
        return float(self.alpha * np.sum(self.beta / (self.beta + n - 1.0)))

    def expand(self, batch_shape, _instance=None):
        if tuple(batch_shape) == ():
            return self
        raise InvalidArgumentError(
            f"IndianBuffetProcess cannot be expanded to batch_shape {tuple(batch_shape)}: its matrices have "
            "varying width. Sample it outside the plate (or once per plate member in a Python loop)."
        )

    # -- sampling ---------------------------------------------------------------------
    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        sample_shape = _check_sample_shape(sample_shape)
        num_draws = int(math.prod(sample_shape))
        dtype = torch.get_default_dtype()
        N, alpha, beta = self.num_rows, self.alpha, self.beta
        with torch.no_grad():
            Z = torch.zeros(num_draws, N, 0, dtype=dtype)
            counts = torch.zeros(num_draws, 0, dtype=dtype)  # m_k over the customers so far
            for n in range(1, N + 1):
                denom = beta + n - 1.0
                if Z.shape[-1]:
                    # Columns with m_k = 0 (padding of other draws) get probability 0.
                    Z[:, n - 1, :] = torch.bernoulli(counts / denom)
                rate = torch.full((num_draws,), alpha * beta / denom, dtype=dtype)
                num_new = torch.poisson(rate).long()
                k_new = int(num_new.max()) if num_draws else 0
                if k_new:
                    new = torch.zeros(num_draws, N, k_new, dtype=dtype)
                    new[:, n - 1, :] = (torch.arange(k_new) < num_new.unsqueeze(-1)).to(dtype)
                    Z = torch.cat([Z, new], dim=-1)
                counts = Z[:, :n, :].sum(-2)
            # Move each draw's non-empty columns to the front (stable: keeps buffet order).
            nonempty = counts > 0
            order = torch.sort((~nonempty).to(torch.int8), dim=-1, stable=True).indices
            Z = torch.gather(Z, -1, order.unsqueeze(-2).expand_as(Z))
            k_max = int(nonempty.sum(-1).max()) if num_draws else 0
            Z = Z[..., :k_max]
        return Z.reshape(*sample_shape, N, k_max)

    # -- density ----------------------------------------------------------------------
    def _log_prob_one(self, Z: torch.Tensor) -> torch.Tensor:
        N, alpha, beta = self.num_rows, self.alpha, self.beta
        m = Z.sum(0)
        Zp = Z[:, m > 0]
        m = m[m > 0]
        k_plus = int(m.numel())
        out = torch.tensor(-self.expected_num_features, dtype=torch.float64)
        if k_plus == 0:
            return out
        _, k_h = torch.unique(Zp, dim=1, return_counts=True)
        out = out + k_plus * math.log(alpha * beta) - torch.lgamma(k_h.to(torch.float64) + 1.0).sum()
        out = out + (torch.lgamma(m) + torch.lgamma(N - m + beta)).sum() - k_plus * math.lgamma(N + beta)
        return out

    def log_prob(self, value: Any) -> torch.Tensor:
        """log P([Z]) of the equivalence class of each matrix ``value`` ``(..., N, K)``; returns ``(...)``.

        ``value`` must be binary unless the distribution was built with ``validate_args=False``
        (or validation is off by default, :meth:`torch.distributions.Distribution.set_default_validate_args`);
        then only its shape is checked and a non-binary value gets an undefined (finite or NaN) result.
        """
        Z = _check_binary(value, "Z", validate=bool(self._validate_args))
        if Z.shape[-2] != self.num_rows:
            raise InvalidArgumentError(
                f"`Z` must have num_rows={self.num_rows} rows (shape (..., {self.num_rows}, K)); "
                f"got shape {tuple(Z.shape)}"
            )
        batch = Z.shape[:-2]
        flat = Z.reshape(int(math.prod(batch)), *Z.shape[-2:])
        lp = torch.stack([self._log_prob_one(z) for z in flat]) if flat.shape[0] else torch.zeros(0)
        dtype = value.dtype if torch.is_tensor(value) and value.is_floating_point() else torch.get_default_dtype()
        return lp.reshape(batch).to(dtype)


class CascadingIBP:
    r"""The cascading Indian buffet process CIBP(α, β) (Adams, Wallach & Ghahramani 2010).

    A prior over the structure of a deep sparse belief network with an unbounded number
    of layers of unbounded width. Layer 0 has ``num_visible`` = :math:`K_0` units. The
    :math:`K_m` units of layer m are the customers of an IBP(α, β) whose dishes are the
    units of layer m+1, so the edges from layer m to layer m+1 form a binary matrix
    :math:`Z_{m+1}` of shape :math:`(K_m, K_{m+1})` with no empty column. Since
    :math:`E[K_{m+1} \mid K_m] = α \sum_{n=1}^{K_m} β/(β+n-1) = O(αβ \log K_m)`, some
    layer draws no dishes (:math:`K_{L+1} = 0`) with probability one and the cascade ends
    there (Adams et al. 2010, §3).

    Parameters
    ----------
    alpha, beta : float
        The IBP parameters α > 0, β > 0 shared by all layers.
    num_visible : int
        :math:`K_0 \ge 1`, the number of visible units.
    max_depth : int
        Safety cap on the number of IBP draws (matrices) per sample; reaching it raises
        :class:`~bayesstruct.exceptions.BayesStructError` rather than truncating silently.
    validate_args : bool, optional
        As for torch distributions (and passed on to each layer's
        :class:`IndianBuffetProcess`): whether ``log_prob`` checks that ``layers`` is in
        the support -- binary matrices, no all-zero column, ending at the first empty
        matrix. ``None`` follows
        :meth:`torch.distributions.Distribution.set_default_validate_args`. The shapes
        (each matrix with as many rows as the previous one has columns) are always checked.

    Notes
    -----
    ``sample()`` returns the list ``[Z_1, ..., Z_{L+1}]`` of float matrices,
    ``Z_m`` of shape :math:`(K_{m-1}, K_m)`, in which every matrix but the last has
    only non-empty columns and the last one has shape :math:`(K_L, 0)`: the top hidden
    layer L draws no parents. With :math:`K_1 = 0` the list is ``[Z_1]`` with shape
    ``(num_visible, 0)``. ``len(layers) - 1`` is the number of hidden layers.

    ``sample(sample_shape)`` draws ``prod(sample_shape)`` independent cascades. They are
    ragged (their depths and widths vary), so they cannot be stacked into one tensor:
    the result is a nested Python list with the shape ``sample_shape`` whose items are
    cascades as above -- ``sample((3,))`` is a list of 3 cascades, ``sample((2, 3))``
    a list of 2 lists of 3, ``sample((0,))`` is ``[]``. ``sample(())`` (the default) is
    one cascade, not wrapped in a list.

    ``log_prob(layers)`` is :math:`\sum_m \log P([Z_m])` with each term the IBP
    equivalence-class probability for :math:`K_{m-1}` customers -- the probability of
    the sequence of per-layer equivalence classes when each layer's rows follow the
    previous layer's (e.g. left-ordered) column order.

    Examples
    --------
    >>> cibp = CascadingIBP(alpha=1.0, beta=1.0, num_visible=4)
    >>> layers = cibp.sample()
    >>> layers[0].shape[0], layers[-1].shape[1]
    (4, 0)
    >>> bool(torch.isfinite(cibp.log_prob(layers)))
    True
    >>> [len(c) >= 1 for c in cibp.sample((3,))]
    [True, True, True]
    """

    def __init__(self, alpha: float, beta: float = 1.0, num_visible: int = 1, max_depth: int = 1000,
                 validate_args: bool | None = None):
        self.alpha = check_positive(alpha, "alpha")
        self.beta = check_positive(beta, "beta")
        self.num_visible = check_positive_int(num_visible, "num_visible")
        self.max_depth = check_positive_int(max_depth, "max_depth")
        self._validate_args_arg = _check_validate_args(validate_args)

    @property
    def _validate_args(self) -> bool:
        # as a torch Distribution: the instance's flag, else the class-wide default read now
        if self._validate_args_arg is not None:
            return self._validate_args_arg
        return bool(torch.distributions.Distribution._validate_args)

    def __repr__(self) -> str:
        return (
            f"CascadingIBP(alpha={self.alpha:g}, beta={self.beta:g}, num_visible={self.num_visible}, "
            f"max_depth={self.max_depth})"
        )

    def layer(self, num_units: int) -> IndianBuffetProcess:
        """The IBP whose customers are the ``num_units`` units of one layer."""
        return IndianBuffetProcess(self.alpha, self.beta, num_units, validate_args=self._validate_args_arg)

    def _cascade(self, draw) -> list[torch.Tensor]:
        layers: list[torch.Tensor] = []
        width = self.num_visible
        for depth in range(1, self.max_depth + 1):
            Z = draw(depth, self.layer(width))
            layers.append(Z)
            width = int(Z.shape[-1])
            if width == 0:
                return layers
        raise BayesStructError(
            f"CascadingIBP did not terminate within max_depth={self.max_depth} layers "
            f"(alpha={self.alpha:g}, beta={self.beta:g}; last width {width}). "
            "Increase `max_depth` or use smaller `alpha`/`beta`."
        )

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> list:
        """Draw ``[Z_1, ..., Z_{L+1}]``; see the class notes for the shapes.

        With a non-empty ``sample_shape``, a nested list of that shape of independent
        cascades (they are ragged, so no tensor can hold them).
        """
        sample_shape = _check_sample_shape(sample_shape)

        def draw(shape: tuple) -> list:
            if not shape:
                return self._cascade(lambda depth, ibp: ibp.sample())
            return [draw(shape[1:]) for _ in range(shape[0])]

        return draw(tuple(sample_shape))

    def pyro_sample(self, name: str = "Z") -> list[torch.Tensor]:
        """Draw the cascade inside a Pyro model, one sample site per matrix.

        The sites are named ``f"{name}_{m}"`` for m = 1, 2, ..., each an
        :class:`IndianBuffetProcess` with ``K_{m-1}`` rows; under ``poutine.condition``
        or replay the given matrices are used and the cascade follows their widths.
        """
        return self._cascade(lambda depth, ibp: pyro.sample(f"{name}_{depth}", ibp))

    def log_prob(self, layers: Sequence[Any]) -> torch.Tensor:
        r""":math:`\sum_m \log P([Z_m])` for ``layers = [Z_1, ..., Z_{L+1}]`` as returned by :meth:`sample`.

        With ``validate_args=False`` only the shapes are checked (see the class parameters).
        """
        if isinstance(layers, torch.Tensor) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise InvalidArgumentError(
                "`layers` must be a non-empty list of binary matrices [Z_1, ..., Z_{L+1}]; "
                f"got {type(layers).__name__}"
            )
        validate = self._validate_args
        total = torch.zeros((), dtype=torch.float64)
        width = self.num_visible
        for m, value in enumerate(layers, start=1):
            Z = _check_binary(value, f"layers[{m - 1}]", exact_ndim=2, validate=validate)
            if Z.shape[0] != width:
                raise InvalidArgumentError(
                    f"`layers[{m - 1}]` must have {width} rows (the width of layer {m - 1}); got shape {tuple(Z.shape)}"
                )
            is_last = m == len(layers)
            # an empty matrix before the end would give the next layer 0 customers: nothing to
            # compute, so this is checked even without validation; the rest is the support
            # (skipped with validate_args=False, as torch distributions do)
            if (Z.shape[1] == 0 and not is_last) or (validate and is_last and Z.shape[1] != 0):
                raise InvalidArgumentError(
                    "`layers` must end with its first empty matrix (shape (K_L, 0)), where the cascade stops; "
                    f"`layers[{m - 1}]` has shape {tuple(Z.shape)}"
                )
            if validate and Z.shape[1] and bool((Z.sum(0) == 0).any()):
                raise InvalidArgumentError(
                    f"`layers[{m - 1}]` has all-zero columns; in a cascade every unit of layer {m} has a child"
                )
            total = total + self.layer(width).log_prob(Z).to(torch.float64)
            width = int(Z.shape[1])
        # summed in float64; returned in the matrices' floating dtype, as IndianBuffetProcess.log_prob
        first = layers[0]
        floating = torch.is_tensor(first) and first.is_floating_point()
        return total.to(first.dtype if floating else torch.get_default_dtype())
