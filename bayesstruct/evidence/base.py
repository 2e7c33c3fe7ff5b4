"""The estimator interface, its registry, and the result every estimator returns."""

from __future__ import annotations

import inspect
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from bayesstruct import _json
from bayesstruct._registry import Registry
from bayesstruct.evidence.density import ModelDensity, float64, seeded_rng
from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError

__all__ = [
    "EvidenceResult",
    "EvidenceEstimator",
    "register_estimator",
    "get_estimator",
    "list_estimators",
    "log_evidence",
]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class EvidenceResult:
    """One estimate of the log evidence ``log p(D | structure, h)``.

    Attributes
    ----------
    method : str
        Registry name of the estimator (``"exact"``, ``"laplace"``, ``"elbo"``, ...).
    log_evidence : float
        The estimate, in nats.
    stderr : float or None
        Monte Carlo standard error of ``log_evidence``; ``None`` for deterministic methods.
    seconds : float
        Wall time of the estimate.
    diagnostics : dict
        Method-specific numbers (ESS, Pareto k-hat, iterations, convergence flags).
    samples : dict of str to Tensor, optional
        Posterior draws per latent site, shape ``(num_chains, num_draws, *site_shape)``.
    pointwise_log_likelihood : dict of str to Tensor, optional
        ``log p(y_n | draw)`` per observed site, shape ``(num_chains, num_draws, N)``.
    """

    method: str
    log_evidence: float
    stderr: float | None = None
    seconds: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)
    pointwise_log_likelihood: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @property
    def mdl_bits(self) -> float:
        """Code length of the data in bits, ``-log p(D) / ln 2`` (Rissanen; Graves 2011).

        For continuous data ``p(D)`` is a density, so this is a *differential* code length: it
        changes by ``N log2 c`` when ``y`` is rescaled by ``c`` and can be negative. Differences
        between structures on the same data are what it measures; an absolute length needs
        ``y`` quantised to a precision ``δ`` (adding ``log2(1/δ)`` bits per observed scalar).
        """
        return -self.log_evidence / LN2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no samples)."""
        return {
            "method": self.method,
            "log_evidence": float(self.log_evidence),
            "stderr": None if self.stderr is None else float(self.stderr),
            "seconds": float(self.seconds),
            "mdl_bits": float(self.mdl_bits),
            "diagnostics": _jsonable(self.diagnostics),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as standard JSON: a non-finite number (a NaN Pareto k) is ``null``."""
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        se = "" if self.stderr is None else f" ± {self.stderr:.3g}"
        return f"{self.method}: log evidence {self.log_evidence:.4f}{se} nats ({self.mdl_bits:.1f} bits, {self.seconds:.2f} s)"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


class EvidenceEstimator:
    """Base class: an estimator of ``log p(D)`` for a Pyro model.

    Subclasses set ``name`` (via :func:`register_estimator`) and implement
    :meth:`estimate`, returning the fields of an :class:`EvidenceResult` other than
    ``method`` and ``seconds``. Calling the estimator runs it in float64 under the
    seed given at construction, so the same seed gives the same number, and on one
    torch thread. The dtype, the thread count and the global random state (Python's, NumPy's,
    torch's) are restored afterwards.

    Parameters
    ----------
    seed : int
        Seed for every random draw the estimator makes (as ``pyro.set_rng_seed``).
    """

    name: ClassVar[str] = ""
    #: whether the estimate is exact, a bound, or consistent -- used to pick the reference method
    accuracy_rank: ClassVar[int] = 0

    def __init__(self, *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidArgumentError(f"`seed` must be an int; got {seed!r}")
        if not 0 <= seed < 2**32:  # what pyro.set_rng_seed (NumPy's legacy seeding) accepts
            raise InvalidArgumentError(f"`seed` must be an int in 0..2**32 - 1; got {seed}")
        self.seed = seed

    def __call__(self, model: Callable, *args: Any, **kwargs: Any) -> EvidenceResult:
        # the estimators run in float64: floating-point data (float32 from torch.randn, load_digits)
        # is cast to it, so the model's sites, drawn in float64, meet data of the same dtype
        args = tuple(_float64(a) for a in args)
        kwargs = {k: _float64(v) for k, v in kwargs.items()}
        with float64(single_thread=True), seeded_rng(self.seed):
            start = time.perf_counter()
            try:
                fields = self.estimate(model, args, kwargs)
            except (TypeError, ModelSpecError) as exc:
                misplaced = _misplaced_option(self, exc, kwargs)
                if misplaced is not None:
                    raise misplaced from exc
                raise
            seconds = time.perf_counter() - start
        return EvidenceResult(method=self.name, seconds=seconds, **fields)

    def estimate(self, model: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The constructor arguments, for reports."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    def _likelihood_only(self, density: ModelDensity) -> dict[str, Any]:
        """The fields of the exact result for a model with no latent variables: ``p(D) = p(D | ∅)``.

        Every estimator returns this for such a model (a network whose only edge is ``zero``,
        a model with all its parameters fixed), so such a structure can be compared with the
        others; it is exact, so ``stderr`` is ``None``.
        """
        z = torch.zeros(1, 0)
        with torch.no_grad():
            log_lik = float(density(z)[0])
        return {"log_evidence": log_lik, "stderr": None, "diagnostics": {"no_latent_variables": True},
                **self._posterior_outputs(density, z, 1)}

    @staticmethod
    def _posterior_outputs(density: ModelDensity, z: torch.Tensor, num_chains: int) -> dict[str, Any]:
        """Samples and pointwise log-likelihood of draws ``z`` ``(C * S, D)`` as ``(C, S, ...)``."""
        with torch.no_grad():
            samples = density.samples_dict(z)
            loglik = density.pointwise_log_likelihood(z)
        reshape = lambda t: t.reshape((num_chains, -1) + t.shape[1:]).detach()  # noqa: E731
        return {
            "samples": {k: reshape(v) for k, v in samples.items()},
            "pointwise_log_likelihood": {k: reshape(v) for k, v in loglik.items()},
        }


_UNEXPECTED_KEYWORD = re.compile(r"got an unexpected keyword argument '(\w+)'")


def _constructor_options(cls: type) -> list[str]:
    """The keyword options an estimator class's constructor takes."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]


def _float64(value: Any) -> Any:
    """A floating-point tensor as float64; anything else (labels, NumPy arrays a model converts
    itself, options) as it is."""
    if torch.is_tensor(value) and value.is_floating_point() and value.dtype != torch.float64:
        return value.to(torch.float64)
    return value


def _misplaced_option(estimator: "EvidenceEstimator", exc: BaseException, kwargs: dict) -> InvalidArgumentError | None:
    """The error for an estimator option given among the model's keyword arguments.

    ``log_evidence(model, *args, method=..., **kwargs)`` passes ``kwargs`` to the model (its data
    and structure arguments), so ``log_evidence(model, x, y, method="smc", seed=1)`` calls
    ``model(x, y, seed=1)``. When the model then rejects a keyword that names an option of an
    estimator, say where the option goes; ``None`` for any other error (re-raised as it is).
    """
    for e in (exc, exc.__cause__):
        match = _UNEXPECTED_KEYWORD.search(str(e)) if isinstance(e, TypeError) else None
        if match and match[1] in kwargs:
            break
    else:
        return None
    option, value = match[1], kwargs[match[1]]
    own = type(estimator)
    if option in _constructor_options(own):
        owner, which = own, "the estimator"
    else:
        owners = [c for c in map(_REGISTRY.lookup, _REGISTRY.names()) if option in _constructor_options(c)]
        if not owners:
            return None
        owner = owners[0]
        which = " and ".join(f"{c.__name__} ({c.name!r})" for c in owners)
        which = f"the {which} estimator{'s' if len(owners) > 1 else ''} (not of {own.__name__})"
    call = f"{owner.__name__}({option}={value!r})"
    callee = match.string.split(" got an unexpected", 1)[0].strip() or "the model"
    return InvalidArgumentError(
        f"`{option}` is an option of {which}, not of the model: use `log_evidence(model, ..., method={call})` "
        f"(or call the estimator, `{call}(model, ...)`). The keyword arguments of log_evidence() other than "
        f"`method` are passed to the model, and {callee} takes no `{option}`."
    )


_REGISTRY = Registry(EvidenceEstimator, "evidence method", "bayesstruct.evidence.register_estimator")


def register_estimator(name: str) -> Callable[[type[EvidenceEstimator]], type[EvidenceEstimator]]:
    """Class decorator adding an estimator to the registry under ``name`` (case-insensitive).

    >>> @register_estimator("my-method")          # doctest: +SKIP
    ... class MyMethod(EvidenceEstimator):
    ...     def estimate(self, model, args, kwargs):
    ...         return {"log_evidence": 0.0}
    """
    return _REGISTRY.register(name)


def list_estimators() -> list[str]:
    """Names of the registered estimators."""
    return _REGISTRY.names()


def get_estimator(method: str | EvidenceEstimator, **options: Any) -> EvidenceEstimator:
    """Resolve ``method`` (a registered name or an estimator instance) to an estimator.

    Unknown names raise :class:`~bayesstruct.exceptions.UnknownNameError` listing the
    registered ones.
    """
    return _REGISTRY.create(method, **options)


def log_evidence(model: Callable, *args: Any, method: str | EvidenceEstimator = "laplace", **kwargs: Any) -> EvidenceResult:
    """Estimate ``log p(D)`` of a Pyro model called as ``model(*args, **kwargs)``.

    Parameters
    ----------
    model : callable
        A Pyro model with at least one observed site.
    *args, **kwargs
        Passed to the model (data and structure arguments).
    method : str or EvidenceEstimator
        A registered name (``"exact"``, ``"laplace"``, ``"elbo"``, ``"iwae"``, ``"smc"``)
        with default options, or an estimator instance carrying its own options.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> def model(y=None):
    ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    ...     with pyro.plate("data", 2):
    ...         pyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> round(log_evidence(model, y=torch.tensor([0.5, -0.5]), method="laplace").log_evidence, 4)
    -2.6372
    """
    return get_estimator(method)(model, *args, **kwargs)
