"""A Pyro model's log joint density as a batched function of one flat vector.

Every evidence estimator in :mod:`bayesstruct.evidence` works on the same object:
the unnormalised log posterior of a Pyro model in *unconstrained* coordinates,

    log p(z, D) = log p(D | T(z)) + log p(T(z)) + log |det dT/dz|,

where ``T`` maps each latent site from R^d to its support
(:func:`torch.distributions.biject_to`, exactly as Pyro's autoguides and HMC do),
and the latent sites are flattened in the order of the model's trace (the same
order :class:`pyro.infer.autoguide.AutoContinuous` uses). A batch of ``B`` points is
evaluated by *one* run of the model inside an outermost ``pyro.plate`` of size
``B`` -- the vectorisation Pyro's ``vectorize_particles`` uses -- so estimators can
move thousands of particles at the price of a handful of model calls.

The model must therefore be *vectorisable*: written with ``pyro.plate`` for its
conditionally independent dimensions and with batch-broadcasting arithmetic
(``(w * X).sum(-1)`` rather than ``X @ w``), as every model that works with
``Trace_ELBO(vectorize_particles=True)`` already is. A model that is not gets a
:class:`~bayesstruct.exceptions.ModelSpecError`: when a batch fails with a shape error, and
when it runs but mixes the particles (its batched log joint at two points differs from
Pyro's unbatched log joint at each), which would otherwise give a wrong evidence silently.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyro
import pyro.poutine as poutine
import torch
from pyro.infer.autoguide.initialization import InitMessenger, init_to_median
from pyro.poutine.util import site_is_subsample
from torch.distributions import biject_to

from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError

__all__ = ["ModelDensity", "float64", "seeded_rng", "set_rng_seed"]

_PARTICLE_PLATE = "_bayesstruct_particles"


@contextlib.contextmanager
def float64(single_thread: bool = False):
    """Run a block with float64 as torch's default dtype, restoring it afterwards.

    Evidence values are differences of large numbers; float32 loses nats. With
    ``single_thread`` torch's intra-op thread count is 1 inside the block: the
    estimators' batched operations are too small to gain from threads, and on a busy
    machine extra threads slow them down tenfold (parallelism comes from fanning
    structures out over processes instead, see :func:`bayesstruct.compare`).
    """
    old = torch.get_default_dtype()
    old_threads = torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    if single_thread:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
        if single_thread:
            torch.set_num_threads(old_threads)


def set_rng_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators, as ``pyro.set_rng_seed`` does.

    On a machine without an accelerator only the CPU generator is seeded: ``torch.manual_seed``
    also queues a lazy seeding of CUDA/XPU/MTIA, which records a formatted stack trace each
    time (about 0.1-0.7 ms, more than an exact evidence takes; ``compare`` seeds every
    evaluation). With an accelerator this is ``pyro.set_rng_seed`` itself.
    """
    if torch.accelerator.is_available():
        pyro.set_rng_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Run a block under :func:`set_rng_seed`, restoring the caller's random state afterwards.

    Python's, NumPy's and torch's global generators are put back as they were, so a call
    that is seeded for reproducibility does not reseed the user's own stream (a loop of
    simulated data sets around an estimator would otherwise draw the same data each time).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=None if torch.accelerator.is_available() else []):
        set_rng_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _nan_to_neg_inf(t: torch.Tensor) -> torch.Tensor:
    """NaN -> -inf, every other value (±inf included) kept. (``torch.nan_to_num(t, nan=-inf)``
    would also turn -inf into the finite -1.8e308, which hides an impossible point.)"""
    return torch.where(torch.isnan(t), torch.full_like(t, -math.inf), t)


def _support_bounds(constraint) -> list[torch.Tensor]:
    """The lower/upper bounds of an interval-like constraint (through ``independent``), as tensors."""
    while hasattr(constraint, "base_constraint"):
        constraint = constraint.base_constraint
    return [torch.as_tensor(getattr(constraint, a)) for a in ("lower_bound", "upper_bound") if hasattr(constraint, a)]


def _check_observed(name: str, site: dict) -> None:
    """The data of an observed site: a tensor, finite, and of a shape and dtype its density takes.

    Masked entries are checked too: under ``poutine.mask`` a NaN still poisons the gradient
    (the masked log-density's derivative is NaN), which silently spoils every estimator.
    """
    value = site["value"]
    if site.get("mask") is False:  # masked out entirely: never evaluated
        return
    fn = site["fn"]
    if not torch.is_tensor(value):
        raise InvalidArgumentError(
            f"the data observed at site {name!r} (passed as `obs=`) must be a torch.Tensor; got "
            f"{type(value).__name__} (convert it with torch.as_tensor)"
        )
    if value.is_floating_point() or value.is_complex():
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            raise InvalidArgumentError(
                f"the data observed at site {name!r} (passed as `obs=`) contains {int(bad.sum())} NaN or infinite "
                "value(s); remove or impute them first (masked entries too: fill them with any finite value)"
            )
    try:
        with pyro.validation_enabled(False):
            fn.log_prob(value)
    except Exception as exc:  # a shape that does not broadcast, labels of a dtype the density refuses
        if "within the support" in str(exc):  # a validating distribution's support check: see _check_in_support
            return
        raise InvalidArgumentError(
            f"the data observed at site {name!r} (passed as `obs=`), a {value.dtype} tensor of shape "
            f"{tuple(value.shape)}, does not fit its {type(fn).__name__} distribution of batch shape "
            f"{tuple(fn.batch_shape)} and event shape {tuple(fn.event_shape)}: {str(exc).rstrip('.')}. Check the data's length "
            "against the plate's size, and its dtype (floating point for Bernoulli and continuous "
            "distributions, e.g. y.double(); integer for Categorical)"
        ) from exc


def _check_in_support(name: str, site: dict) -> None:
    """The data of an observed site lie inside its distribution's support (a fixed one: see
    :meth:`ModelDensity.__init__`)."""
    if site.get("mask") is False:
        return
    fn = site["fn"]
    try:
        inside = bool(torch.as_tensor(fn.support.check(site["value"])).all())
    except Exception:  # exotic supports or values: Pyro's own validation applies later
        return
    if not inside:
        raise InvalidArgumentError(
            f"the data observed at site {name!r} (passed as `obs=`) lies outside the support of its "
            f"{type(fn).__name__} distribution ({fn.support}); check the data, e.g. labels or signs"
        )


def _bounds_move(proto_fn, fn) -> bool:
    """Whether the support bounds of a site's distribution differ between the prototype trace
    (``proto_fn``) and a run at other latent values (``fn``): a support that depends on latents."""
    for p, b in zip(_support_bounds(proto_fn.support), _support_bounds(fn.support)):
        try:
            p, b = torch.broadcast_tensors(p.to(torch.float64), b.to(torch.float64))
        except RuntimeError:
            continue
        if not bool(torch.isclose(p, b, rtol=1e-6, atol=0.0, equal_nan=True).all()):
            return True
    return False


_PLATE_MISMATCH = re.compile(
    r"Shape mismatch inside plate\('" + _PARTICLE_PLATE + r"'\) at site (?P<site>.+?) dim (?P<dim>-?\d+), "
    r"(?P<size>\d+) vs (?P<got>\d+)"
)
#: torch's messages for operands whose shapes do not fit (a matmul, an elementwise op, an expand)
_TORCH_SHAPE_ERROR = re.compile(
    r"must match the size of tensor|must match the existing size|shapes cannot be multiplied|"
    r"Expected size for first two dimensions of batch\d tensor|size mismatch|is invalid for input of size|"
    r"inconsistent tensor size|Sizes of tensors must match"
)
_BROADCAST_FIX = (
    "Evidence estimators run the model once on a whole batch of particles, inside an outermost "
    "pyro.plate (as Trace_ELBO(vectorize_particles=True) does), so each latent gets extra leading "
    "batch dimensions: write the model with batch-broadcasting arithmetic -- `(w * X).sum(-1)` rather "
    "than `X @ w`, `w[..., 0]` rather than `w[0]` -- and pyro.plate for the data dimension."
)


def _has_subsampling(trace: Any) -> bool:
    """Whether a plate of ``trace`` draws a subsample smaller than its size."""
    for site in trace.nodes.values():
        if site["type"] == "sample" and site_is_subsample(site):
            size, subsample_size = getattr(site["fn"], "size", None), getattr(site["fn"], "subsample_size", None)
            if size is not None and subsample_size is not None and subsample_size < size:
                return True
    return False


def _first_line(exc: BaseException) -> str:
    """The exception's own message, without the trace-shape table Pyro appends to it."""
    original = exc.__cause__ if exc.__cause__ is not None and type(exc.__cause__) is type(exc) else exc
    return str(original).split("\n", 1)[0]


def _particle_broadcast_error(model: Callable, exc: BaseException, B: int, partial_trace: Any) -> ModelSpecError | None:
    """A :class:`ModelSpecError` explaining ``exc`` if it is the failure of a model that does not
    broadcast over the particle plate; ``None`` for any other error (which is then re-raised as is).

    Called only for a run on the model's own arguments, which already ran unbatched: a Pyro plate
    mismatch at the particle dimension, or a torch shape error, can then only come from the batch.
    """
    name = getattr(model, "__name__", type(model).__name__)
    message = _first_line(exc)
    match = _PLATE_MISMATCH.search(message)
    if isinstance(exc, ValueError) and match:
        return ModelSpecError(
            f"the model {name!r} must broadcast over a leading batch of particles, and does not: site "
            f"{match['site']!r} has size {match['got']} at dim {match['dim']}, where the particle plate (size "
            f"{match['size']}) is "
            f"(`X @ w`, for one, puts the data dimension there). {_BROADCAST_FIX}"
        )
    if isinstance(exc, RuntimeError) and _TORCH_SHAPE_ERROR.search(message):
        sites = [n for n, s in partial_trace.nodes.items() if s.get("type") == "sample" and not site_is_subsample(s)]
        where = f"after site {sites[-1]!r}" if sites else "before its first sample site"
        return ModelSpecError(
            f"the model {name!r} must broadcast over a leading batch of particles, and does not: it runs "
            f"unbatched, but on a batch of {B} particle(s) it failed {where} with: {message.rstrip('.')}. "
            f"{_BROADCAST_FIX}"
        )
    return None


@dataclass(frozen=True)
class _Site:
    name: str
    shape: torch.Size  # constrained value shape (batch + event) in the prototype trace
    batch_dim: int  # len(fn.batch_shape)
    unconstrained_shape: torch.Size
    transform: Any  # biject_to(fn.support): unconstrained -> constrained
    offset: int
    size: int


class ModelDensity:
    """Batched log joint of a Pyro model in flat unconstrained coordinates.

    Parameters
    ----------
    model : callable
        A Pyro model with at least one observed site and only continuous latent sites.
    *args, **kwargs
        Arguments the model is called with (the data and the structure).

    Attributes
    ----------
    dim : int
        ``D``, the number of unconstrained coordinates.
    latent_names, observed_names : list of str
        Site names, in trace order.
    max_plate_nesting : int
        Plate depth found in the prototype trace.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> def model(y=None):
    ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    ...     with pyro.plate("data", 3):
    ...         pyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> d = ModelDensity(model, y=torch.zeros(3))
    >>> d(torch.zeros(4, d.dim)).shape
    torch.Size([4])
    """

    def __init__(self, model: Callable, *args: Any, **kwargs: Any) -> None:
        if not callable(model):
            raise ModelSpecError(f"`model` must be a callable Pyro model; got {type(model).__name__}")
        self.model = model
        self.args = args
        self.kwargs = kwargs
        with poutine.block():
            try:
                trace = poutine.trace(model).get_trace(*args, **kwargs)
            except ModelSpecError:
                raise
            except Exception as exc:  # the user's model failed: say so, with the cause chained
                raise ModelSpecError(f"running the model {getattr(model, '__name__', model)!r} failed: {exc}") from exc
        nesting = 0
        sites: list[_Site] = []
        observed: list[str] = []
        offset = 0
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site) or site["infer"].get("_deterministic"):
                continue  # pyro.deterministic records a value (a masked Delta): neither latent nor data
            for frame in site["cond_indep_stack"]:
                if frame.vectorized and frame.dim is not None:
                    nesting = max(nesting, -frame.dim)
            if site["is_observed"]:
                _check_observed(name, site)
                observed.append(name)
                continue
            fn = site["fn"]
            if fn.support.is_discrete:
                raise ModelSpecError(
                    f"latent sample site {name!r} is discrete ({type(fn).__name__}); evidence estimators "
                    "integrate over continuous latents only. Make the discrete choice a structure argument "
                    "and compare structures with bayesstruct.compare(), or marginalise it in the model."
                )
            transform = biject_to(fn.support)
            shape = site["value"].shape
            ushape = transform.inv.forward_shape(shape)
            size = int(math.prod(ushape))
            sites.append(_Site(name, shape, len(fn.batch_shape), ushape, transform, offset, size))
            offset += size
        if not observed:
            raise ModelSpecError(
                f"the model {getattr(model, '__name__', model)!r} has no observed sample site; pass the data "
                "as `obs=` to pyro.sample so that there is a likelihood to integrate"
            )
        if _has_subsampling(trace):
            raise ModelSpecError(
                f"the model {getattr(model, '__name__', model)!r} subsamples a plate (pyro.plate(..., subsample_size=...)): "
                "its log joint is then a random minibatch estimate, different at every evaluation, and no estimator "
                "returns the evidence of it. The evidence needs the full-data likelihood: drop `subsample_size` "
                "(minibatches are for SVI training, not for the evidence)"
            )
        self.max_plate_nesting = nesting
        self._sites = sites
        self._prototype = trace
        self.dim = offset
        self.latent_names = [s.name for s in sites]
        self.observed_names = observed
        self._initial: torch.Tensor | None = None
        batch = self._check_particle_batch()
        for name in observed:  # against the support only where it does not move with the latents
            # (y ~ Uniform(0, theta): the prototype's one random theta says nothing about the data)
            if batch is None or not _bounds_move(trace.nodes[name]["fn"], batch.nodes[name]["fn"]):
                _check_in_support(name, trace.nodes[name])

    def _check_particle_batch(self):
        """Refuse a model whose batched log joint is not the per-particle one.

        A model that runs on a batch of particles without a shape error can still mix them:
        ``s.mean()`` over a latent averages the particles, ``w[..., 0:1]`` keeps a singleton
        where the particle plate should be, so Pyro broadcasts one particle's likelihood to all.
        Every estimator would then return a wrong number silently. Two points are evaluated in
        one batch and compared with plain unbatched traces of the model (Pyro's own log joint,
        no particle plate), at a tolerance of ``sqrt(eps)`` of their magnitude. Skipped when a
        point is outside the support. (Models with a subsampled plate are refused before.)

        Returns the model's trace at the two particles (``None`` without latents).
        """
        if self.dim == 0:
            return None
        z0 = self.initial_point()
        z = torch.stack([z0, z0 + 0.25 * torch.cos(torch.arange(self.dim, dtype=z0.dtype) + 1.0)])
        with torch.no_grad():
            values, log_det = self.constrain(z)
            pair = self._trace(values, 2)
            self._check_fixed_supports(pair)
            batched = self(z) - log_det
            reference = []
            for i in range(2):
                point = {s.name: values[s.name][i].reshape(s.shape) for s in self._sites}
                with poutine.block(), pyro.validation_enabled(False):
                    trace = poutine.trace(poutine.condition(self.model, data=point)).get_trace(*self.args, **self.kwargs)
                    reference.append(trace.log_prob_sum())
            reference = torch.stack(reference).to(batched.dtype)
        if not bool(torch.isfinite(reference).all()):
            return pair
        eps = torch.finfo(batched.dtype).eps
        if bool((batched - reference).abs().le(eps ** 0.5 * (1.0 + reference.abs())).all()):
            return pair
        name = getattr(self.model, "__name__", type(self.model).__name__)
        raise ModelSpecError(
            f"the model {name!r} mixes the particles of a batch: run on two particles at once, its log joint is "
            f"{[round(float(v), 4) for v in batched]}, where run on each alone it is "
            f"{[round(float(v), 4) for v in reference]}. A reduction over a latent's leading dimensions "
            f"(`s.mean()`, `w.sum()`) or a slice that keeps a singleton there (`w[..., 0:1]`) does this. "
            f"{_BROADCAST_FIX}"
        )

    def _check_fixed_supports(self, trace) -> None:
        """Refuse a latent whose support moves with another latent (``b ~ Uniform(0, a)``).

        Each site is mapped to its support once, from the prototype trace (``biject_to``, as
        Pyro's autoguides and HMC do); a support whose bounds depend on other latents would stay
        at the prototype's random draw for every particle, a wrong evidence that changes with
        the seed. ``trace`` is the model run at two particles; its bounds must be the prototype's.
        """
        for s in self._sites:
            fn = trace.nodes[s.name]["fn"]
            if _bounds_move(self._prototype.nodes[s.name]["fn"], fn):
                raise ModelSpecError(
                    f"the support of latent site {s.name!r} (a {type(fn).__name__}) depends on another latent variable; "
                    "the estimators map each site to a fixed support (as Pyro's autoguides and HMC do), which "
                    "would give a wrong evidence. Sample a site with a fixed support and transform it, e.g. "
                    "u ~ Uniform(0, 1) and b = a * u (pyro.deterministic) instead of b ~ Uniform(0, a)"
                )

    # ------------------------------------------------------------------ layout
    def constrain(self, z: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Constrained site values ``(B, *shape)`` and ``log|det dT/dz|`` of shape ``(B,)``."""
        values: dict[str, torch.Tensor] = {}
        log_det = z.new_zeros(z.shape[0])
        for s in self._sites:
            u = z[:, s.offset : s.offset + s.size].reshape((z.shape[0],) + s.unconstrained_shape)
            x = s.transform(u)
            ladj = s.transform.log_abs_det_jacobian(u, x)
            log_det = log_det + ladj.reshape(z.shape[0], -1).sum(-1)
            values[s.name] = x
        return values, log_det

    def unconstrain(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Inverse of :meth:`constrain`: site values ``(B, *shape)`` to ``z`` of shape ``(B, D)``."""
        parts = []
        for s in self._sites:
            v = values[s.name]
            B = v.shape[0]
            parts.append(s.transform.inv(v.reshape((B,) + s.shape)).reshape(B, s.size))
        # at least in the default dtype (float64 inside the estimators) even where the model's own
        # constants are float32 and so are its prior draws: z, and every fit built on it, keeps it
        z = torch.cat(parts, dim=-1)
        return z.to(torch.promote_types(z.dtype, torch.get_default_dtype()))

    def _to_plate_shape(self, s: _Site, v: torch.Tensor) -> torch.Tensor:
        B = v.shape[0]
        pad = (1,) * (self.max_plate_nesting - s.batch_dim)
        return v.reshape((B,) + pad + s.shape)

    def _from_plate_shape(self, s: _Site, v: torch.Tensor, B: int) -> torch.Tensor:
        return v.expand((B,) + v.shape[1:]).reshape((B,) + s.shape)

    def _trace(self, values: dict[str, torch.Tensor] | None, B: int, args: tuple | None = None,
               kwargs: dict | None = None):
        fn = self.model
        own_args = args is None and kwargs is None
        if values is not None:
            data = {s.name: self._to_plate_shape(s, values[s.name]) for s in self._sites}
            fn = poutine.condition(fn, data=data)
        args = self.args if args is None else args
        kwargs = self.kwargs if kwargs is None else kwargs
        # Validation ran on the prototype trace; here a particle outside a parameter's
        # support must give log p = -inf (a rejected move), not an exception for the batch.
        traced = poutine.trace(fn)
        try:
            with poutine.block(), pyro.validation_enabled(False), \
                    pyro.plate(_PARTICLE_PLATE, B, dim=-(self.max_plate_nesting + 1)):
                return traced.get_trace(*args, **kwargs)
        except (ValueError, RuntimeError) as exc:
            # On its own arguments the model already ran once, unbatched (the prototype
            # trace): a shape failure now comes from the particle batch. On new arguments
            # (predict) it may come from the arguments, so it is left as it is.
            if own_args:
                error = _particle_broadcast_error(self.model, exc, B, traced.msngr.trace)
                if error is not None:
                    raise error from exc
            raise

    def _per_particle(self, log_prob: torch.Tensor, B: int) -> torch.Tensor:
        """Sum a site's log-probability over everything but the particle dimension."""
        k = log_prob.dim() - (self.max_plate_nesting + 1)
        if k < 0 or log_prob.shape[k] == 1:
            return log_prob.sum().expand(B)
        return log_prob.movedim(k, 0).reshape(B, -1).sum(-1)

    # ---------------------------------------------------------------- density
    def log_prob_parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log prior in z-space incl. Jacobian, log likelihood)``, each of shape ``(B,)``."""
        if not torch.is_tensor(z) or z.dim() != 2 or z.shape[-1] != self.dim:
            got = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise InvalidArgumentError(f"`z` must have shape (B, {self.dim}); got {got}")
        B = z.shape[0]
        values, log_det = self.constrain(z)
        trace = self._trace(values, B)
        with pyro.validation_enabled(False):  # out-of-support particles give -inf/NaN, handled below
            trace.compute_log_prob()
        prior = log_det
        lik = z.new_zeros(B)
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            lp = self._per_particle(site["log_prob"], B)
            if name in self.observed_names:
                lik = lik + lp
            else:
                prior = prior + lp
        return _nan_to_neg_inf(prior), _nan_to_neg_inf(lik)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z, D)`` of shape ``(B,)`` for ``z`` of shape ``(B, D)``."""
        prior, lik = self.log_prob_parts(z)
        return _nan_to_neg_inf(prior + lik)

    def pointwise_log_likelihood(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-observation log-likelihood ``(B, *obs_shape)`` of each observed site."""
        B = z.shape[0]
        values, _ = self.constrain(z)
        trace = self._trace(values, B)
        out = {}
        for name in self.observed_names:
            site = trace.nodes[name]
            lp = site["fn"].log_prob(site["value"])
            if torch.is_tensor(site.get("mask")):
                lp = lp.masked_fill(~site["mask"], 0.0)
            obs_shape = self._prototype.nodes[name]["fn"].batch_shape
            out[name] = lp.expand(site["fn"].batch_shape).reshape((B,) + obs_shape)
        return out

    def sample_prior(self, num_samples: int, generator_seed: int | None = None) -> torch.Tensor:
        """``num_samples`` draws of ``z`` from the prior (observed sites stay observed)."""
        with contextlib.nullcontext() if generator_seed is None else seeded_rng(generator_seed):
            trace = self._trace(None, num_samples)
        values = {s.name: self._from_plate_shape(s, trace.nodes[s.name]["value"], num_samples) for s in self._sites}
        return self.unconstrain(values).detach()

    def initial_point(self) -> torch.Tensor:
        """A starting point ``(D,)``: each latent site at its prior median (Pyro's ``init_to_median``).

        The sites are set in trace order, each at the median of its prior given the medians
        before it (the model run under Pyro's ``InitMessenger``, as autoguides initialise), so a
        site whose prior depends on another latent starts at a point that depends on nothing
        random. Pyro estimates each median from 15 prior draws; they are drawn under a fixed
        private seed (the global random state is left as it was), so the point -- and with it
        Laplace's deterministic estimate -- does not depend on the estimator's seed.
        """
        if self._initial is None:
            with torch.random.fork_rng(devices=[]), poutine.block():
                torch.manual_seed(0)
                trace = poutine.trace(InitMessenger(init_to_median)(self.model)).get_trace(*self.args, **self.kwargs)
            values = {s.name: trace.nodes[s.name]["value"].detach().reshape((1,) + s.shape) for s in self._sites}
            self._initial = self.unconstrain(values)[0]
        return self._initial.clone()

    def predict(self, z: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Posterior predictive: run the model on new arguments with its latents at ``z`` ``(B, D)``.

        Returns the draws ``(B, *shape)`` of every site the model samples that is not a
        latent of this density -- e.g. the observed site when called with ``y=None``.
        Only global latents (whose shapes do not depend on the data) are supported.
        """
        B = z.shape[0]
        values, _ = self.constrain(z.detach())
        trace = self._trace(values, B, args, kwargs)
        out = {}
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and not site_is_subsample(site) and name not in values:
                fn = site["fn"]
                k = len(fn.batch_shape) - (self.max_plate_nesting + 1)
                v = site["value"].expand(fn.batch_shape + fn.event_shape)
                out[name] = v.reshape((B,) + v.shape[k + 1 :])
        return out

    def samples_dict(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Constrained posterior draws ``{site: (B, *shape)}`` for ``z`` of shape ``(B, D)``."""
        values, _ = self.constrain(z.detach())
        return {k: v.detach() for k, v in values.items()}
