"""Compare the structures of a family by their evidence.

``compare(family, x, y, methods=...)`` evaluates every structure with every requested
estimator and returns a :class:`ComparisonTable`: log evidence ± standard error per
method, MDL bits, the log Bayes factor against the best structure (the most probable one,
``table.best``) and the posterior probability of each structure,

    p(s | D) = p(D | s) p(s) / Σ_s' p(D | s') p(s'),

computed from the most accurate method requested (``exact`` > ``smc`` > ``iwae`` >
``laplace`` > ``elbo``). The (structure, method) evaluations are independent and fan
out through a :class:`concurrent.futures.Executor`: a local process pool by default,
one torch thread per worker, or any executor you pass -- e.g. Dask's
``Client(...).get_executor()`` to run on a cluster. Each evaluation is seeded from
``(seed, structure index, method)``, so the table is the same whichever executor runs it.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from bayesstruct import _json
from bayesstruct._validation import as_tensor, check_positive_int, check_seed
from bayesstruct.evidence.base import EvidenceResult, get_estimator, list_estimators
from bayesstruct.exceptions import BayesStructError, InvalidArgumentError, UnknownNameError
from bayesstruct.families.base import StructureFamily, structure_label

__all__ = ["compare", "ComparisonRow", "ComparisonTable", "PosteriorPredictive"]


@dataclass(frozen=True)
class ComparisonRow:
    """One structure: its estimates per method and its standing against the others.

    Attributes
    ----------
    structure : dict
    estimates : dict of str to EvidenceResult
        One per method.
    hyperparameters : dict
        As reported by ``family.hyperparameters()``.
    log_bayes_factor_vs_best : float
        ``log Z_s − log Z_best`` under the table's ``reference_method``, where ``best`` is the
        table's best structure (``rows[0]``, the highest *posterior* probability): 0 for the best
        row, and positive for a structure with more evidence than the best but less prior mass.
    posterior_probability : float
        ``p(s | D) ∝ Z_s p(s)``.
    log_prior : float
        ``log p(s)``, the normalised structure prior.
    """

    structure: dict[str, Any]
    estimates: dict[str, EvidenceResult]
    hyperparameters: dict[str, Any]
    log_bayes_factor_vs_best: float
    posterior_probability: float
    log_prior: float

    def log_evidence(self, method: str) -> float:
        return self.estimates[method].log_evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "structure": {k: _plain(v) for k, v in self.structure.items()},
            "estimates": {
                m: {"log_evidence": r.log_evidence, "stderr": r.stderr, "seconds": r.seconds, "mdl_bits": r.mdl_bits,
                    "diagnostics": r.to_dict()["diagnostics"]}
                for m, r in self.estimates.items()
            },
            "hyperparameters": {k: _plain(v) for k, v in self.hyperparameters.items()},
            "log_bayes_factor_vs_best": self.log_bayes_factor_vs_best,
            "log_prior": self.log_prior,
            "posterior_probability": self.posterior_probability,
        }


def _plain(v: Any) -> Any:
    """A JSON-ready value: sequences as lists, tensors as numbers, structure objects (a
    superposition tree, a DAG) as the string their ``parse``/constructor reads back."""
    if type(v) in (list, tuple):
        return [_plain(u) for u in v]
    if isinstance(v, dict):
        return {k: _plain(u) for k, u in v.items()}
    if torch.is_tensor(v) or isinstance(v, np.generic):
        return v.tolist()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


@dataclass(frozen=True)
class PosteriorPredictive:
    """Draws of the observed site at ``x``: ``best`` (the top structure) and ``average``
    (Bayesian model average), each ``(num_samples, len(x))``."""

    x: torch.Tensor
    best: torch.Tensor
    average: torch.Tensor

    @staticmethod
    def band(draws: torch.Tensor, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and the central ``level`` interval of ``draws`` per point."""
        try:
            inside = 0.0 < float(level) < 1.0
        except (TypeError, ValueError):
            inside = False
        if not inside:
            raise InvalidArgumentError(f"`level` must be a number in (0, 1); got {level!r}")
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        q = torch.quantile(draws, torch.tensor([lo, hi], dtype=draws.dtype), dim=0)
        return draws.mean(0), q[0], q[1]


@dataclass(frozen=True)
class ComparisonTable:
    """Result of :func:`compare`, rows sorted by decreasing posterior probability ``p(s | D)`` (ties, e.g. structures of zero prior, by evidence)
    (evidence under ``reference_method`` times the structure prior; under a uniform prior, by
    decreasing evidence). Each row's log Bayes factor is against the first row, :attr:`best`."""

    family: StructureFamily = field(repr=False)
    rows: tuple[ComparisonRow, ...]
    methods: tuple[str, ...]
    reference_method: str
    x: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)

    @property
    def best(self) -> dict[str, Any]:
        """The structure with the highest posterior probability (``rows[0]``): the highest evidence
        under ``reference_method`` times the structure prior. With a non-uniform prior another
        structure may have more evidence; its ``log_bayes_factor_vs_best`` is then positive."""
        return dict(self.rows[0].structure)

    def row(self, structure: Mapping[str, Any]) -> ComparisonRow:
        """The row of ``structure``, given as the family takes it (e.g. a superposition as its string)."""
        structure = self.family.validate_structure(structure)
        for r in self.rows:
            if r.structure == structure:
                return r
        raise UnknownNameError(f"structure {dict(structure)} is not in this table")

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema of ``bayesstruct compare --json``."""
        return {
            "family": self.family.name,
            "methods": list(self.methods),
            "reference_method": self.reference_method,
            "structures": [r.to_dict() for r in self.rows],
            "best": {k: _plain(v) for k, v in self.best.items()},
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def to_dataframe(self) -> "pandas.DataFrame":
        """The table as a pandas DataFrame, one row per structure in the table's order (as
        ``arviz.compare`` returns one): index the structure label; columns each method's
        ``log_evidence[m]`` and ``stderr[m]``, then ``mdl_bits`` (reference method),
        ``log_bayes_factor_vs_best``, ``log_prior`` and ``posterior_probability``."""
        import pandas as pd

        records = []
        for r in self.rows:
            rec: dict[str, Any] = {}
            for m in self.methods:
                rec[f"log_evidence[{m}]"] = r.estimates[m].log_evidence
                rec[f"stderr[{m}]"] = r.estimates[m].stderr
            rec.update(mdl_bits=r.estimates[self.reference_method].mdl_bits,
                       log_bayes_factor_vs_best=r.log_bayes_factor_vs_best, log_prior=r.log_prior,
                       posterior_probability=r.posterior_probability)
            records.append(rec)
        return pd.DataFrame.from_records(records, index=pd.Index([structure_label(r.structure) for r in self.rows],
                                                                 name="structure"))

    def __repr__(self) -> str:
        top = self.rows[0]
        return (f"ComparisonTable({self.family.name}: {len(self.rows)} structures, methods={list(self.methods)}, "
                f"best={top.structure} with p = {top.posterior_probability:.3g})")

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        return self.to_string()

    def to_string(self, max_rows: int | None = None) -> str:
        """The table as text, one row per structure; ``max_rows`` keeps only the most probable ones
        (with a line that says how many are left out and their total posterior probability)."""
        if max_rows is not None:
            max_rows = check_positive_int(max_rows, "max_rows")
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        head = ["structure"] + [f"{m} (nats)" for m in self.methods] + ["MDL bits", "log BF vs best", "p(s|D)"]
        lines = []
        for r in shown:
            cells = [structure_label(r.structure)]
            for m in self.methods:
                e = r.estimates[m]
                cells.append(f"{e.log_evidence:.3f}" + ("" if e.stderr is None else f" ± {e.stderr:.3f}"))
            cells += [f"{r.estimates[self.reference_method].mdl_bits:.1f}", f"{r.log_bayes_factor_vs_best:.2f}",
                      f"{r.posterior_probability:.3f}"]
            lines.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(head)]
        fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
        title = f"{self.family.name}: evidence by structure (reference: {self.reference_method}; best: {self.best})"
        text = "\n".join([title, fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in lines])
        rest = self.rows[len(shown):]
        if rest:
            text += (f"\n... {len(rest)} more structures (total p(s|D) = "
                     f"{sum(r.posterior_probability for r in rest):.3g})")
        return text

    def posterior_predictive(self, x_new: Any, *, num_samples: int = 1000, seed: int = 0) -> PosteriorPredictive:
        """Posterior predictive draws of the best structure and of the model average.

        The average is the mixture ``Σ_s p(s | D) p(y* | x*, D, s)``: the ``num_samples``
        draws are split over structures in proportion to their posterior probabilities.
        Each structure's posterior draws come from the first of its estimates that kept
        samples (Laplace is run when none did, e.g. for ``exact`` alone).
        """
        from bayesstruct.evidence.density import ModelDensity, float64

        if self.y is None:
            raise InvalidArgumentError(
                f"posterior_predictive predicts y at new inputs, and {self.family.name!r} has no y (a joint model of "
                "x, like a Bayesian network's columns): draw from a structure's fitted model with pyro.infer.Predictive "
                "instead")
        x_new = self._check_x_new(x_new)
        num_samples = check_positive_int(num_samples, "num_samples")
        seed = check_seed(seed)
        probs = torch.tensor([r.posterior_probability for r in self.rows])
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(num_samples, generator=gen)
        counts = torch.bincount(torch.searchsorted(torch.cumsum(probs, 0).clamp(max=1.0), u).clamp(max=len(probs) - 1),
                                minlength=len(probs))
        draws = {}
        with float64():
            for i, r in enumerate(self.rows):
                if i > 0 and counts[i] == 0:
                    continue
                samples = self._samples(r)
                flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
                S = next(iter(flat.values())).shape[0]
                need = max(int(counts[i]), num_samples if i == 0 else 0)
                idx = torch.randint(S, (need,), generator=gen)
                density = ModelDensity(self._bind(r), self.x, self.y)
                z = density.unconstrain({k: v[idx] for k, v in flat.items()})
                torch.manual_seed(seed + i)
                out = density.predict(z, x_new)
                draws[i] = out[density.observed_names[0]].reshape(need, -1)
        best = draws[0]
        parts = [draws[i][: int(counts[i])] for i in sorted(draws) if counts[i] > 0]
        return PosteriorPredictive(x_new, best, torch.cat(parts))

    def _check_x_new(self, x_new: Any) -> torch.Tensor:
        """``x_new`` as a float64 tensor shaped as the training ``x`` but for its length, finite, non-empty."""
        xt = as_tensor(x_new, "x_new")
        fits = lambda t: t.dim() == self.x.dim() and t.shape[1:] == self.x.shape[1:]  # noqa: E731
        if not fits(xt) and xt.dim() >= 1:
            try:  # the family's own reading of inputs, e.g. (M,) as (M, 1) for a one-variable superposition
                normalised, _ = self.family.check_data(xt, None)
            except BayesStructError:
                normalised = None
            if torch.is_tensor(normalised) and fits(normalised):
                xt = normalised
        if not fits(xt):
            want = "(M,)" if self.x.dim() == 1 else "(M, " + ", ".join(map(str, self.x.shape[1:])) + ")"
            if self.x.dim() == 1:
                fix = "pass the M new inputs as a 1-D array" + (
                    ", e.g. x_new.reshape(-1)" if xt.dim() == 2 and xt.shape[-1] == 1 else
                    ", e.g. [x_new] for one point" if xt.dim() == 0 else "")
            elif xt.dim() == self.x.dim() - 1 and xt.shape == self.x.shape[1:]:
                fix = ("for one new point use x_new.reshape(1, -1)" if self.x.dim() == 2
                       else "for one new point add the leading axis, x_new[None]")
            else:
                fix = f"pass the M new inputs as rows of {self.x.shape[1:].numel()} value(s), like the training `x`"
            raise InvalidArgumentError(
                f"`x_new` must have the shape of the training `x` {tuple(self.x.shape)} except its length, {want}; "
                f"got shape {tuple(xt.shape)}: {fix}"
            )
        if xt.shape[0] == 0:
            raise InvalidArgumentError("`x_new` is empty; give at least one input to predict at")
        return xt

    def _samples(self, r: ComparisonRow) -> dict[str, torch.Tensor]:
        for m in [self.reference_method, *self.methods]:
            s = r.estimates[m].samples
            if s:
                return s
        from bayesstruct.evidence import log_evidence

        return log_evidence(self._bind(r), self.x, self.y, method="laplace").samples

    def _bind(self, r: ComparisonRow):
        """The Pyro model of a row, with the hyperparameters it was evaluated with."""
        from bayesstruct.evidence.density import float64

        with float64(single_thread=True):
            return self.family.bind(r.structure, **self.family.resolve(self.x, self.y, r.structure))


def _task_seed(seed: int, index: int, method: str) -> int:
    return int(np.random.SeedSequence([seed, index, sum(map(ord, method))]).generate_state(1)[0] & 0x7FFFFFFF)


def _evaluate(family: StructureFamily, structure: dict, x: torch.Tensor, y: torch.Tensor, method: str,
              options: dict, seed: int) -> tuple[dict, EvidenceResult]:
    """One (structure, method) evaluation; runs in a worker process."""
    from bayesstruct.evidence.density import float64

    with float64(single_thread=True):
        hyper = family.resolve(x, y, structure)
    estimator = get_estimator(method, seed=seed, **options)
    try:
        result = estimator(family.bind(structure, **hyper), x, y)
    except BayesStructError as exc:  # say which of the many structures failed
        try:
            named = type(exc)(f"structure {structure_label(structure)}, method {method!r}: {exc}")
        except TypeError:  # an exception class with another signature: keep it as it is
            raise exc from None
        raise named from exc
    return family.hyperparameters(hyper), result


def _evaluate_chunk(family: StructureFamily, chunk: list[tuple[dict, str, dict, int]], x: torch.Tensor,
                    y: torch.Tensor) -> list[tuple[dict, EvidenceResult]]:
    """Several evaluations in one worker task: the family and the data are sent once per chunk."""
    return [_evaluate(family, structure, x, y, m, opts, seed) for structure, m, opts, seed in chunk]


def _chunks(tasks: list, num_workers: int) -> list[list]:
    """``tasks`` cut into runs of consecutive tasks, about 8 per worker and one task each when
    there are few: a process pool sends each submission's arguments (the family, the data)
    anew, which costs more than a closed-form evidence (29281 DAGs on 5 variables)."""
    size = max(1, len(tasks) // (8 * num_workers))
    return [tasks[k:k + size] for k in range(0, len(tasks), size)]


def _init_worker() -> None:
    torch.set_num_threads(1)


def _structure_log_prior(structure_prior: Any, structures: list[dict]) -> list[float]:
    if structure_prior is None:
        return [-math.log(len(structures))] * len(structures)
    if isinstance(structure_prior, (np.ndarray, torch.Tensor)):
        if structure_prior.ndim != 1:
            raise InvalidArgumentError(
                f"`structure_prior` as an array must be 1-D, one weight per structure; got shape {tuple(structure_prior.shape)}")
        structure_prior = structure_prior.tolist()
    if callable(structure_prior):
        weights = []
        for s in structures:
            w = structure_prior(s)
            try:
                weights.append(float(w))
            except (TypeError, ValueError, OverflowError):
                raise InvalidArgumentError(f"`structure_prior` must return a number (a prior weight); for structure "
                                           f"{structure_label(s)} it returned {w!r}") from None
    elif isinstance(structure_prior, Sequence) and not isinstance(structure_prior, str):
        try:
            weights = [float(w) for w in structure_prior]
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgumentError(f"`structure_prior` weights must be numbers; got {list(structure_prior)!r}") from None
        if len(weights) != len(structures):
            raise InvalidArgumentError(f"`structure_prior` has {len(weights)} weights for {len(structures)} structures")
    else:
        raise InvalidArgumentError("`structure_prior` must be None, a sequence of weights, or a callable structure -> weight")
    if any(not math.isfinite(w) or w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise InvalidArgumentError(f"`structure_prior` weights must be finite, >= 0, not all 0; got {weights}")
    # normalised in log space: finite weights whose sum overflows (1e308 each) are still a prior
    log_w = np.array([math.log(w) if w > 0 else -math.inf for w in weights])
    return (log_w - np.logaddexp.reduce(log_w)).tolist()


def compare(
    family: StructureFamily,
    x: Any,
    y: Any,
    *,
    methods: Iterable[str] | str | None = None,
    structures: Iterable[Mapping[str, Any]] | None = None,
    structure_prior: Any = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    executor: cf.Executor | None = None,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ComparisonTable:
    """Evaluate the evidence of every structure of ``family`` on ``(x, y)``.

    Parameters
    ----------
    family : StructureFamily
    x, y : array-like ``(N,)``
        The data; NaN/inf and length mismatches are rejected.
    methods : str or iterable of str, optional
        Registered estimator names (comma-separated string accepted). Default: the family's
        ``default_methods`` -- ``("exact", "laplace", "smc")`` for most families, ``("laplace", "smc")``
        for a :class:`~bayesstruct.families.NetworkFamily`, whose nonlinear networks ``exact`` refuses.
    structures : iterable of dict, optional
        A subset of ``family.structures()`` (default: all).
    structure_prior : sequence or callable, optional
        Prior weights over structures (default uniform).
    options : dict, optional
        Per-method estimator options, e.g. ``{"smc": {"num_particles": 8192}}``.
    executor : concurrent.futures.Executor, optional
        Runs the evaluations (not shut down here). Default: a process pool of
        ``workers`` processes (spawned, one torch thread each); ``workers=1`` runs inline.
    workers : int, optional
        Size of the default pool (default: ``os.cpu_count()``, at most the number of tasks;
        inline when ``methods`` is only ``"exact"``: a closed-form evidence costs less than
        sending it to a process -- the 29281 DAGs on 5 variables take 2.9 s inline and 5.9 s
        on 2 workers).
    seed : int
        Base seed; each evaluation gets its own seed derived from it.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    ComparisonTable
    """
    if not isinstance(family, StructureFamily):
        raise InvalidArgumentError(f"`family` must be a StructureFamily (e.g. PolynomialFamily()); got {type(family).__name__}")
    x, y = family.check_data(x, y)  # the family's own data checks, before any work is fanned out
    seed = check_seed(seed)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InvalidArgumentError(f"`executor` must be a concurrent.futures.Executor (with a submit() method) or None; "
                                   f"got {type(executor).__name__}")
    if methods is None:
        methods = family.default_methods
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    try:
        methods = list(methods)
    except TypeError:
        raise InvalidArgumentError(f"`methods` must be method names (a list or a comma-separated str); got {methods!r}") from None
    bad = [m for m in methods if not isinstance(m, str)]
    if bad:
        raise InvalidArgumentError(f"`methods` must be method names (str); got {bad[0]!r}")
    methods = tuple(dict.fromkeys(m.strip().lower() for m in methods))
    if not methods:
        raise InvalidArgumentError("`methods` is empty; give at least one of " + ", ".join(list_estimators()))
    for m in methods:
        get_estimator(m)  # raises UnknownNameError listing the registry
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f"`options` must be a dict {{method: {{option: value}}}}; got {type(options).__name__}")
    given = {}
    for m, opts in options.items():
        key = m.strip().lower() if isinstance(m, str) else m
        if key not in list_estimators():  # options of registered but unrequested methods are ignored
            raise UnknownNameError(f"`options` names method {m!r}; registered methods: {', '.join(list_estimators())}")
        if not isinstance(opts, Mapping):
            raise InvalidArgumentError(f"`options[{m!r}]` must be a dict of estimator options; got {type(opts).__name__}")
        if "seed" in opts:
            raise InvalidArgumentError(f"`options[{m!r}]` sets 'seed'; pass `seed` to compare() instead (each "
                                       "evaluation derives its own seed from it)")
        given[key] = dict(opts)
    options = {m: given.get(m, {}) for m in methods}
    # build every estimator once here, so that a bad option fails now, naming it, not in a worker
    estimator_classes = {m: type(get_estimator(m, **options[m])) for m in methods}
    if structures is not None:
        if isinstance(structures, Mapping):
            raise InvalidArgumentError(f"`structures` must be a list of structure dicts; got one dict {dict(structures)} "
                                       "(wrap it in a list)")
        try:
            structures = list(structures)
        except TypeError:
            raise InvalidArgumentError(f"`structures` must be a list of structure dicts; got {structures!r}") from None
    structures = family.structures() if structures is None else [family.validate_structure(s) for s in structures]
    if not structures:
        raise InvalidArgumentError("`structures` is empty")
    first: dict[str, int] = {}
    for i, s in enumerate(structures):
        label = structure_label(s)
        if first.setdefault(label, i) != i and structures[first[label]] == s:
            raise InvalidArgumentError(f"`structures` lists {label} more than once; each structure must appear once "
                                       "(a repeat would take a share of its posterior probability)")
    log_priors = _structure_log_prior(structure_prior, structures)
    tasks = [(i, m) for i in range(len(structures)) for m in methods]

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgumentError(f"`workers` must be a positive integer; got {workers!r}")
    if workers is None and methods == ("exact",):
        workers = 1
    num_workers = min(workers or os.cpu_count() or 1, len(tasks))
    own_pool = executor is None and num_workers > 1
    if own_pool:
        executor = cf.ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_init_worker)
    results: dict[tuple[int, str], tuple[dict, EvidenceResult]] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=f"compare {family.name}", disable=not progress, unit="fit")
    try:
        if executor is None:
            for i, m in tasks:
                results[(i, m)] = _evaluate(family, structures[i], x, y, m, options[m], _task_seed(seed, i, m))
                bar.update()
        else:
            futures = {
                executor.submit(_evaluate_chunk, family,
                                [(structures[i], m, options[m], _task_seed(seed, i, m)) for i, m in chunk], x, y): chunk
                for chunk in _chunks(tasks, num_workers)
            }
            for fut in cf.as_completed(futures):
                results.update(zip(futures[fut], fut.result()))
                bar.update(len(futures[fut]))
    finally:
        bar.close()
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)

    reference = max(methods, key=lambda m: (estimator_classes[m].accuracy_rank, -methods.index(m)))
    ref_log_z = np.array([results[(i, reference)][1].log_evidence for i in range(len(structures))])
    log_post = ref_log_z + np.array(log_priors)
    bad = [i for i in range(len(structures)) if np.isnan(ref_log_z[i]) or ref_log_z[i] == math.inf]
    if bad or not np.isfinite(np.logaddexp.reduce(log_post)):
        shown = ", ".join(f"{structure_label(structures[i])}: {ref_log_z[i]}" for i in (bad or range(len(structures)))[:8])
        raise BayesStructError(
            f"the {reference} evidence is not finite where the posterior over structures needs it ({shown}): no "
            "structure can be ranked. An overflow of data on a huge scale does this: rescale y (and x), e.g. to "
            "unit standard deviation"
        )
    log_post = log_post - np.logaddexp.reduce(log_post)
    order = sorted(range(len(structures)), key=lambda i: (-log_post[i], -ref_log_z[i]))  # ties (a zero prior): by evidence
    best_log_z = ref_log_z[order[0]]  # the Bayes factors are against `table.best`, the most probable structure
    rows = tuple(
        ComparisonRow(
            structure=dict(structures[i]),
            estimates={m: results[(i, m)][1] for m in methods},
            hyperparameters=results[(i, reference)][0],
            log_bayes_factor_vs_best=float(ref_log_z[i] - best_log_z),
            posterior_probability=float(np.exp(log_post[i])),
            log_prior=float(log_priors[i]),
        )
        for i in order
    )
    return ComparisonTable(family, rows, methods, reference, x, y)
