"""Results to JSON and to ArviZ: the one adapter between bayesstruct and ArviZ.

Every ArviZ object bayesstruct makes is built here, by :func:`to_inference_data`, with
``az.from_dict`` and the pointwise log-likelihood the estimators computed themselves --
not with ``az.from_pyro``, which in ArviZ 0.23 drops the ``log_likelihood`` group with
only a warning when it cannot vectorise the model. When ArviZ 1.x (Python >= 3.12)
arrives, this file is the one to change.

ArviZ is imported lazily, inside the functions that need it: it takes seconds to import
and ``import bayesstruct`` must stay fast.

Layout of the :class:`arviz.InferenceData` made from an
:class:`~bayesstruct.evidence.EvidenceResult`:

========================  =====================================================
group                     variables
========================  =====================================================
``posterior``             one per latent site, ``(chain, draw, *site_shape)``
``log_likelihood``        one per observed site, ``(chain, draw, N)``, the
                          observation dim named ``"<site>_dim_0"``
``observed_data``         one per observed site, ``(N,)``, same dim name
========================  =====================================================

For the SMC estimator ``chain`` indexes its independent islands; for Laplace, ELBO and
IWAE there is one chain of independent draws.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np
import torch

from bayesstruct import _json
from bayesstruct.evidence.base import EvidenceResult
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.families.base import structure_label

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pandas as pd

    from bayesstruct.compare import ComparisonRow, ComparisonTable

__all__ = [
    "structure_label",
    "to_inference_data",
    "table_inference_data",
    "loo_compare",
    "save_netcdf",
    "write_json",
    "read_json",
    "write_atomic",
    "json_text",
    "chain_diagnostics",
    "structure_inference_data",
]


@contextmanager
def _quiet_arviz() -> Iterator[Any]:
    """Import ArviZ (lazily) with its FutureWarning about the 1.x migration silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

        yield arviz


def _as_path(path: Any, name: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path`; anything but a str or ``os.PathLike`` is refused naming ``name``."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise InvalidArgumentError(f"`{name}` must be a file path (str or pathlib.Path); got {path!r}")
    return Path(path)


def _numpy(value: Any, what: str) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception:  # pragma: no cover - exotic array-likes
        raise InvalidArgumentError(f"{what} must be a tensor or array; got {type(value).__name__}") from None


def to_inference_data(result: EvidenceResult, *, observed: Any = None, coords: Mapping[str, Any] | None = None,
                      dims: Mapping[str, list[str]] | None = None) -> "az.InferenceData":
    """ArviZ ``InferenceData`` of one estimate's posterior draws and pointwise log-likelihood.

    Built with ``az.from_dict`` from ``result.samples`` (``posterior`` group) and
    ``result.pointwise_log_likelihood`` (``log_likelihood`` group), so that
    ``az.loo``/``az.compare`` see exactly ``log p(y_n | θ_s)`` as the estimator computed it.

    Parameters
    ----------
    result : EvidenceResult
        An estimate that kept its draws: ``samples`` maps each latent site to
        ``(num_chains, num_draws, *site_shape)`` and ``pointwise_log_likelihood`` maps each
        observed site to ``(num_chains, num_draws, N)`` (methods ``laplace``, ``elbo``,
        ``iwae``, ``smc``; ``exact`` keeps none).
    observed : Tensor or array ``(N,)``, or dict of str to Tensor, optional
        The observed data, for the ``observed_data`` group: a dict keyed by observed site,
        or one array when the result has a single observed site. Omitted: no
        ``observed_data`` group.
    coords : dict, optional
        Extra coordinates, passed to ``az.from_dict``.
    dims : dict of str to list of str, optional
        Dimension names per variable, passed to ``az.from_dict``; observed sites default to
        ``["<site>_dim_0"]`` in both ``log_likelihood`` and ``observed_data``.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior``, ``log_likelihood`` and (with ``observed``) ``observed_data``;
        ``attrs`` carry ``bayesstruct_method``, ``log_evidence`` and, for Monte Carlo
        methods, ``log_evidence_stderr``.

    Raises
    ------
    InvalidArgumentError
        If ``result`` kept no samples or no pointwise log-likelihood (e.g. ``method="exact"``),
        if the ``(chain, draw)`` shapes of its sites disagree, or if ``observed`` does not
        match the observed sites.

    Examples
    --------
    >>> from bayesstruct import PolynomialFamily
    >>> from bayesstruct.datasets import sinusoid
    >>> x, y = sinusoid(n=20, seed=0)
    >>> res = PolynomialFamily().log_evidence(x, y, {"degree": 3}, method="laplace")
    >>> to_inference_data(res, observed=y).log_likelihood["y"].shape
    (1, 1000, 20)
    """
    if not isinstance(result, EvidenceResult):
        raise InvalidArgumentError(f"`result` must be an EvidenceResult (from log_evidence or a table row's "
                                   f"estimates); got {type(result).__name__}")
    if not result.samples:
        raise InvalidArgumentError(
            f"`result` of method {result.method!r} kept no posterior samples, so it has no ArviZ form. "
            "Use an estimate from a sampling method (laplace, elbo, iwae, smc), e.g. "
            "compare(..., methods='exact,laplace') and pass row.estimates['laplace']."
        )
    if not result.pointwise_log_likelihood:
        raise InvalidArgumentError(
            f"`result` of method {result.method!r} has samples but no pointwise_log_likelihood; refusing to build "
            "an InferenceData without the log_likelihood group (az.loo/az.compare would fail or mislead)."
        )
    posterior = {k: _numpy(v, f"`result.samples[{k!r}]`") for k, v in result.samples.items()}
    loglik = {k: _numpy(v, f"`result.pointwise_log_likelihood[{k!r}]`")
              for k, v in result.pointwise_log_likelihood.items()}

    chain_draw = None
    for group, arrays in (("samples", posterior), ("pointwise_log_likelihood", loglik)):
        for k, a in arrays.items():
            if a.ndim < 2 or (group == "pointwise_log_likelihood" and a.ndim != 3):
                want = "(num_chains, num_draws, N)" if group == "pointwise_log_likelihood" else \
                    "(num_chains, num_draws, *site_shape)"
                raise InvalidArgumentError(f"`result.{group}[{k!r}]` must have shape {want}; got {a.shape}")
            if chain_draw is None:
                chain_draw = a.shape[:2]
            elif a.shape[:2] != chain_draw:
                raise InvalidArgumentError(
                    f"`result.{group}[{k!r}]` has (chain, draw) = {a.shape[:2]} but other sites have {chain_draw}")

    observed_data = None
    if observed is not None:
        if not isinstance(observed, Mapping):
            if len(loglik) != 1:
                raise InvalidArgumentError(
                    f"`observed` must be a dict keyed by observed site when there are several; sites: {sorted(loglik)}")
            observed = {next(iter(loglik)): observed}
        observed_data = {}
        for k, v in observed.items():
            if k not in loglik:
                raise InvalidArgumentError(f"`observed` names site {k!r}, which is not an observed site of the "
                                           f"result; observed sites: {sorted(loglik)}")
            a = _numpy(v, f"`observed[{k!r}]`")
            if a.shape != loglik[k].shape[2:]:
                raise InvalidArgumentError(f"`observed[{k!r}]` must have shape {loglik[k].shape[2:]} (N of the "
                                           f"pointwise log-likelihood); got {a.shape}")
            observed_data[k] = a

    for arg, value in (("dims", dims), ("coords", coords)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidArgumentError(f"`{arg}` must be a dict (as az.from_dict takes it) or None; got {type(value).__name__}")
    all_dims = {k: [f"{k}_dim_0"] for k in loglik}
    all_dims.update(dims or {})
    attrs = {"bayesstruct_method": result.method, "log_evidence": float(result.log_evidence)}
    if result.stderr is not None:
        attrs["log_evidence_stderr"] = float(result.stderr)
    with _quiet_arviz() as az:
        idata = az.from_dict(posterior=posterior, log_likelihood=loglik, observed_data=observed_data,
                             coords=dict(coords or {}), dims=all_dims, attrs=attrs)
    if "log_likelihood" not in idata.groups():  # pragma: no cover - guard against a future ArviZ change
        raise RuntimeError("az.from_dict dropped the log_likelihood group; report this as a bayesstruct bug")
    return idata


def _sampling_method(table: "ComparisonTable", method: str | None) -> str:
    """``method`` validated against ``table``, or the first method whose estimates all kept samples."""
    has_draws = lambda m: all(r.estimates[m].samples and r.estimates[m].pointwise_log_likelihood  # noqa: E731
                              for r in table.rows)
    with_draws = [m for m in table.methods if has_draws(m)]
    if method is None:
        if not with_draws:
            raise InvalidArgumentError(
                f"no method of this table kept posterior samples (methods: {list(table.methods)}); rerun compare "
                "with a sampling method too, e.g. methods='exact,laplace' or 'exact,smc'")
        return with_draws[0]
    if not isinstance(method, str):
        raise InvalidArgumentError(f"`method` must be a method name; got {type(method).__name__}")
    key = method.strip().lower()
    if key not in table.methods:
        raise UnknownNameError(f"`method` {method!r} is not in this table; its methods: {list(table.methods)}")
    if key not in with_draws:
        raise InvalidArgumentError(
            f"`method` {key!r} kept no posterior samples for every structure; methods of this table that did: "
            f"{with_draws or 'none'}")
    return key


def _check_table(table: Any) -> None:
    from bayesstruct.compare import ComparisonTable

    if not isinstance(table, ComparisonTable):
        raise InvalidArgumentError(f"`table` must be a ComparisonTable (from bayesstruct.compare); "
                                   f"got {type(table).__name__}")


def _row_observed(table: "ComparisonTable", row: "ComparisonRow", method: str) -> Any:
    sites = list(row.estimates[method].pointwise_log_likelihood)
    return table.y if len(sites) == 1 else None


def table_inference_data(table: "ComparisonTable", method: str | None = None) -> dict[str, "az.InferenceData"]:
    """One ``InferenceData`` per structure of a comparison table.

    Parameters
    ----------
    table : ComparisonTable
    method : str, optional
        Whose draws to use; default the first of ``table.methods`` that kept samples for
        every structure (``exact`` never does).

    Returns
    -------
    dict of str to arviz.InferenceData
        Keyed by :func:`structure_label` (``"degree=3"``), in the table's row order (best
        first). ``observed_data`` holds ``table.y`` when the family has one observed site;
        ``attrs["structure"]`` holds the label.

    Raises
    ------
    InvalidArgumentError, UnknownNameError
        If ``method`` is not in the table or kept no samples.
    """
    _check_table(table)
    method = _sampling_method(table, method)
    out = {}
    for row in table.rows:
        label = structure_label(row.structure)
        idata = to_inference_data(row.estimates[method], observed=_row_observed(table, row, method))
        idata.attrs["structure"] = label
        out[label] = idata
    return out


def loo_compare(table: "ComparisonTable", method: str | None = None, *, scale: str = "log") -> "pd.DataFrame":
    """PSIS-LOO comparison of the structures with ``az.compare`` (Vehtari, Gelman & Gabry 2017).

    LOO estimates the expected log predictive density of new data,
    ``elpd = Σ_n log p(y_n | y_{-n})``, from the draws of ``method``; it answers a different
    question from the evidence ``log p(D | s)`` in the table, and is offered for users who
    know it.

    ArviZ's warnings (Pareto k̂ above 0.7, too few draws) are caught and never raised; they
    are kept in the result instead: ArviZ's boolean ``warning`` column, a
    ``pareto_k_max`` column (the largest k̂ per structure), and the messages in
    ``df.attrs["arviz_warnings"]``.

    Parameters
    ----------
    table : ComparisonTable
    method : str, optional
        Whose draws to use (see :func:`table_inference_data`).
    scale : {"log", "negative_log", "deviance"}
        Passed to ``az.compare``.

    Returns
    -------
    pandas.DataFrame
        ``az.compare``'s table, indexed by :func:`structure_label`, best first, plus
        ``pareto_k_max``.
    """
    if scale not in ("log", "negative_log", "deviance"):
        raise InvalidArgumentError(f"`scale` must be 'log', 'negative_log' or 'deviance'; got {scale!r}")
    idatas = table_inference_data(table, method)
    if len(idatas) < 2:
        raise InvalidArgumentError(f"`table` has {len(idatas)} structure; LOO comparison needs at least two")
    messages: list[str] = []
    with _quiet_arviz() as az, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        elpds, k_max = {}, {}
        for label, idata in idatas.items():
            var_name = next(iter(idata.log_likelihood.data_vars))
            elpds[label] = az.loo(idata, pointwise=True, scale=scale, var_name=var_name)
            k = np.asarray(elpds[label].pareto_k)
            k_max[label] = float(np.nanmax(k)) if k.size else math.nan
        df = az.compare(elpds, ic="loo", scale=scale)
    for w in caught:
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            msg = str(w.message)
            if msg not in messages:
                messages.append(msg)
    df["pareto_k_max"] = [k_max[label] for label in df.index]
    df.attrs["arviz_warnings"] = messages
    df.attrs["method"] = next(iter(idatas.values())).attrs["bayesstruct_method"]
    return df


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_stem(label: str) -> str:
    """A file-name stem for a structure label; a long one (a network's edge list) is cut and
    given a hash of the whole label, so that it fits a file system's 255-byte names."""
    stem = _UNSAFE.sub("_", label.replace("=", "-").replace(", ", "_")).strip("._") or "structure"
    if len(stem) > 150:
        stem = f"{stem[:120]}-{hashlib.sha1(label.encode('utf-8')).hexdigest()[:10]}"
    return stem


def _atomic_target(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` (same file system, so ``os.replace`` is atomic). Its
    name starts with at most 100 characters of ``path``'s, so any name ``open`` takes works."""
    return tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)


def _final_mode(path: Path) -> int:
    """The mode the file should end with: the existing file's, else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _replace(tmp: str, path: Path) -> None:
    os.chmod(tmp, _final_mode(path))
    os.replace(tmp, path)


def save_netcdf(table: "ComparisonTable", directory: str | os.PathLike, method: str | None = None) -> list[Path]:
    """Write one ArviZ netCDF file per structure of ``table``.

    Each file is ``<directory>/<label>.<method>.nc`` (``degree-3.laplace.nc``; where two labels
    map to one file name, each gets ``-row<i>``, its row in the table), holding the
    :func:`table_inference_data` of that structure; read it back with
    ``az.from_netcdf(path)``. Every file is written to a temporary name and renamed into
    place, so an interrupted run leaves no truncated file and an existing file is replaced
    only by a complete one.

    Parameters
    ----------
    table : ComparisonTable
    directory : str or path
        Created (with parents) if missing.
    method : str, optional
        Whose draws to save (see :func:`table_inference_data`).

    Returns
    -------
    list of pathlib.Path
        The files written, in the table's row order.
    """
    idatas = table_inference_data(table, method)
    directory = _as_path(directory, "directory")
    if directory.exists() and not directory.is_dir():
        raise InvalidArgumentError(f"`directory` {str(directory)!r} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    stems = [_file_stem(label) for label in idatas]
    uses = Counter(stems)
    taken = {stem for stem in stems if uses[stem] == 1}
    names = []
    for i, stem in enumerate(stems):
        if uses[stem] > 1:
            # labels that differ only in characters a file name cannot hold ("x*1", "x+1") get the row
            # number, and a further count where that name is another label's ("x_1-row0")
            base = stem = f"{stem}-row{i}"
            k = 1
            while stem in taken:
                stem, k = f"{base}-{k}", k + 1
            taken.add(stem)
        names.append(stem)
    paths = []
    for stem, idata in zip(names, idatas.values()):
        path = directory / f"{stem}.{idata.attrs['bayesstruct_method']}.nc"
        fd, tmp = _atomic_target(path)
        os.close(fd)
        try:
            with _quiet_arviz():
                idata.to_netcdf(tmp)
            _replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        paths.append(path)
    return paths


class _NotJSONError(InvalidArgumentError, TypeError):
    """``write_json``'s error for a value JSON cannot encode (a ``TypeError`` too, as ``json.dumps`` raises)."""


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """``value`` as standard JSON text (RFC 8259), ending in a newline.

    JSON has no infinity or NaN (Python's ``json`` writes ``-Infinity``, which jq, JavaScript
    and strict parsers refuse), so a non-finite float -- e.g. the ``log_prior`` of a structure
    with prior probability 0 -- is written as ``null``.
    """
    try:
        return _json.dumps(value, indent=indent) + "\n"
    except (TypeError, ValueError) as exc:
        raise _NotJSONError(f"`value` holds something JSON cannot encode ({exc})") from None


def write_json(table: Any, path: str | os.PathLike, *, indent: int | None = 2) -> Path:
    """Write ``table.to_dict()`` as JSON to ``path``, atomically.

    The text is rendered in full first, written to a temporary file in the same directory,
    flushed to disk and renamed over ``path`` (``os.replace``): a crash never leaves a
    truncated file, and an existing file keeps its permissions.

    Parameters
    ----------
    table : ComparisonTable or EvidenceResult
        Anything with a ``to_dict()`` method; for a table the schema is that of
        ``bayesstruct compare --json`` (keys ``family``, ``methods``, ``reference_method``,
        ``structures``, ``best``).
    path : str or path
        Target file; its directory must exist.
    indent : int or None
        Passed to :func:`json.dumps`.

    Returns
    -------
    pathlib.Path
    """
    if not callable(getattr(table, "to_dict", None)):
        raise InvalidArgumentError(f"`table` must have a to_dict() method (a ComparisonTable or EvidenceResult); "
                                   f"got {type(table).__name__}")
    path = _as_path(path)
    try:  # rendered in full before anything is written: a failure leaves an existing file as it was
        text = json_text(table.to_dict(), indent=indent)
    except (TypeError, ValueError) as exc:
        raise _NotJSONError(f"`table`.to_dict() holds a value JSON cannot encode ({exc}); {str(path)!r} "
                            "was not written") from None
    write_atomic(path, text.encode("utf-8"))
    return path


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """The dict a :func:`write_json` (or ``bayesstruct ... --json``) file holds.

    The inverse of :func:`write_json` for the data: ``read_json(write_json(table, p)) ==
    table.to_dict()`` (floats round-trip exactly; a non-finite one comes back as ``None``,
    see :func:`json_text`). A table itself is not rebuilt -- it holds
    the family and the data, which JSON does not; keep ``save_netcdf`` files for the draws.
    """
    path = _as_path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"`path` {str(path)!r} is a directory; give a JSON file")
    if not path.is_file():
        raise InvalidArgumentError(f"`path`: no such file {str(path)!r}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"`path` {str(path)!r} is not a JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"`path` {str(path)!r} holds a JSON {type(value).__name__}, not the object "
                                   "write_json writes")
    return value


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed over it.

    A crash leaves either the old file or the new one, never a truncated file; an
    existing file keeps its permissions. ``path``'s directory must exist. A symbolic link is
    followed: the file it points to is replaced, and the link kept.
    """
    path = _as_path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"`data` must be bytes (encode text first, e.g. text.encode('utf-8')); "
                                   f"got {type(data).__name__}")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"`path`: directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise InvalidArgumentError(f"`path` {str(path)!r} is a directory; give a file name")
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- structure chains
def _not_an_iterator(value: Any, name: str, fix: str) -> None:
    """Refuse a generator/iterator where an array is expected, as NumPy does (``np.asarray`` of a
    generator is a 0-d object array, ``np.stack`` raises)."""
    if isinstance(value, Iterator):
        raise InvalidArgumentError(f"`{name}` must be an array-like (array, tensor or list of lists); got a "
                                   f"{type(value).__name__}, which NumPy and ArviZ do not read as an array. {fix}")


def chain_diagnostics(values: Any) -> dict[str, Any]:
    """Convergence diagnostics of one scalar statistic of one or several chains.

    ArviZ's rank-normalised split R-hat and bulk/tail effective sample sizes (Vehtari,
    Gelman, Simpson, Carpenter & Bürkner 2021, who ask for R-hat < 1.01), computed with
    ``az.rhat`` and ``az.ess`` on exactly these values, plus the mean and standard deviation
    of all draws pooled.

    Parameters
    ----------
    values : array-like or Tensor ``(chain, draw)`` or ``(draw,)``
        The trace of one scalar statistic, one row per chain, e.g.
        ``idata.posterior["num_edges"].values`` of :func:`structure_inference_data`. A 1-D
        array is one chain of draws, as ArviZ reads it (``np.atleast_2d``: ``(draw,)`` ->
        ``(1, draw)``). A list of equal-length lists is read with ``np.asarray``; a
        generator or other iterator is refused, as ``np.stack`` and ``az.rhat`` refuse it:
        materialise it first, ``np.stack(list(gen))``.

    Returns
    -------
    dict
        ``mean``, ``sd`` (``ddof=1``; 0.0 for a single draw): floats over all draws;
        ``num_chains``: int; ``r_hat``, ``ess_bulk``, ``ess_tail``: float, or ``None`` where
        undefined. All three need four draws a chain. R-hat also needs two chains: with one
        chain ArviZ 0.23 returns NaN (and logs a shape warning), reported here as ``None``
        (split R-hat of the chain's two halves is not computed); a constant trace has
        R-hat ``None`` too, while ArviZ's ESS of a constant trace is the number of draws.

    Raises
    ------
    InvalidArgumentError
        If ``values`` is a generator/iterator, not numeric, ragged, not 1-D or 2-D, or has
        no draws.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d = chain_diagnostics(rng.normal(size=(4, 200)))  # 4 chains of 200 draws
    >>> d["num_chains"], d["r_hat"] < 1.01
    (4, True)
    >>> one = chain_diagnostics(rng.normal(size=200))  # one chain: R-hat undefined
    >>> one["num_chains"], one["r_hat"], one["ess_bulk"] > 100
    (1, None, True)
    """
    _not_an_iterator(values, "values", "Materialise it first, e.g. np.stack(list(values)) for a generator of "
                     "(draw,) arrays, one per chain.")
    try:
        values = values.detach().cpu().numpy() if torch.is_tensor(values) else np.asarray(values)
    except ValueError:  # ragged nested lists (NumPy >= 1.24 refuses them)
        raise InvalidArgumentError("`values` must be (chain, draw) with the same number of draws in every chain; got "
                                   "rows of different lengths. Run the chains with the same num_samples, or cut "
                                   "them to the shortest") from None
    if values.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"`values` must hold numbers (bool, int or float), shape (chain, draw) or (draw,); "
                                   f"got dtype {values.dtype} from {type(values).__name__}")
    given = values.shape
    if values.ndim == 1:  # one chain, as ArviZ reads a 1-D array
        values = values[None, :]
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise InvalidArgumentError(
            f"`values` must be (chain, draw) or (draw,) with at least one draw; got shape {given}. "
            "Pass one scalar statistic at a time (e.g. values[..., k] for component k of a vector)")
    flat = values.reshape(-1).astype(np.float64)
    out: dict[str, Any] = {"mean": float(flat.mean()), "sd": float(flat.std(ddof=1)) if flat.size > 1 else 0.0,
                           "num_chains": int(values.shape[0]), "r_hat": None, "ess_bulk": None, "ess_tail": None}

    def finite(x: Any) -> float | None:
        x = float(x)
        return x if np.isfinite(x) else None

    if values.shape[1] >= 4:
        with _quiet_arviz() as az, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = values.astype(np.float64)
            if values.shape[0] >= 2:
                out["r_hat"] = finite(az.rhat(x))
            out["ess_bulk"] = finite(az.ess(x, method="bulk"))
            out["ess_tail"] = finite(az.ess(x, method="tail"))
    return out


def _chain_stats(chain: Any, where: str, num_layers: int | None) -> dict[str, np.ndarray]:
    """One chain's ``{statistic: (draw,) array}``, validated; ``where`` names it in errors."""
    from bayesstruct.families.belief_net import BeliefNetSamples

    if isinstance(chain, BeliefNetSamples):
        stats = chain.stats(num_layers=num_layers)
    elif callable(getattr(chain, "stats", None)):
        stats = chain.stats()
    else:
        stats = chain
    if not isinstance(stats, Mapping) or not stats:
        raise InvalidArgumentError(
            f"`{where}` must have a stats() method (DAGSamples, SuperpositionSamples, BeliefNetSamples) or be a "
            f"non-empty dict of per-draw arrays (draw,); got {type(chain).__name__}")
    out = {}
    for k, v in stats.items():
        a = _numpy(v, f"`{where}` statistic {k!r}")
        if a.dtype.kind not in "biuf":
            raise InvalidArgumentError(f"`{where}` statistic {k!r} must hold numbers, one per draw; got dtype {a.dtype}")
        if a.ndim != 1:
            raise InvalidArgumentError(
                f"every statistic of every chain must be one value per draw, shape (draw,); `{where}` statistic {k!r} "
                f"has shape {a.shape}. Give one dict per chain (for a dict of (chain, draw) arrays: "
                f"[{{k: v[c] for k, v in d.items()}} for c in range(num_chains)])")
        out[str(k)] = a
    return out


def structure_inference_data(chains: Any, *, family: str | None = None) -> "az.InferenceData":
    """One or several structure chains as an :class:`arviz.InferenceData`.

    The ``posterior`` group holds every scalar statistic the chains record per draw, with
    dims ``(chain, draw)``, so ``az.summary``, ``az.ess``, ``az.rhat`` and
    ``az.plot_trace`` apply (and :func:`chain_diagnostics` on ``idata.posterior[k].values``).

    Parameters
    ----------
    chains : samples, dict, or a list, tuple or iterator of them
        One chain, or one per independent chain (run them with different seeds), all with
        the same number of draws S and the same statistics. A chain is an object whose
        ``stats()`` gives a dict of ``(S,)`` arrays --
        :class:`~bayesstruct.families.superposition.SuperpositionSamples` (``log_evidence``,
        ``size``, ``depth``), :class:`~bayesstruct.families.bayes_net.DAGSamples`
        (``log_score``, ``num_edges``),
        :class:`~bayesstruct.families.belief_net.BeliefNetSamples` (``depth``,
        ``num_edges``, ``num_hidden_units``, ``width_1`` ... ``width_M``, ``alpha``,
        ``beta``, ``log_joint``; M is the largest depth over all the chains, so they stack)
        -- or such a dict of ``(S,)`` arrays itself. A generator of chains is read into a
        list (the chains are Python objects, not one array).
    family : str, optional
        Kept as ``attrs["bayesstruct_family"]``.

    Returns
    -------
    arviz.InferenceData
        Group ``posterior``: one variable ``(chain, draw)`` per statistic.

    Raises
    ------
    InvalidArgumentError
        If there is no chain, a chain has neither ``stats()`` nor is a dict of ``(S,)``
        arrays, or the chains record different statistics or numbers of draws.

    Examples
    --------
    >>> from bayesstruct.families import BeliefNetSampler
    >>> chains = [BeliefNetSampler(None, num_visible=3, seed=s).run(20, progress=False) for s in (0, 1)]
    >>> idata = structure_inference_data(chains, family="belief_net")
    >>> idata.posterior["num_edges"].shape
    (2, 20)
    >>> chain_diagnostics(idata.posterior["num_edges"].values)["num_chains"]
    2
    """
    from bayesstruct.families.belief_net import BeliefNetSamples

    if isinstance(chains, Iterator) and not callable(getattr(chains, "stats", None)):
        chains = list(chains)  # a generator of chains
    single = not isinstance(chains, (list, tuple))
    chains = [chains] if single else list(chains)
    if not chains:
        raise InvalidArgumentError("`chains` is empty; give at least one chain (a samples object or a dict of "
                                   "per-draw arrays), or a list of them")
    if family is not None and not isinstance(family, str):
        raise InvalidArgumentError(f"`family` must be a str (kept as attrs['bayesstruct_family']) or None; "
                                   f"got {type(family).__name__}")
    belief = [c for c in chains if isinstance(c, BeliefNetSamples)]
    num_layers = max([1] + [len(w) for c in belief for w in c.widths]) if belief else None
    cols = [_chain_stats(c, "chains" if single else f"chains[{i}]", num_layers) for i, c in enumerate(chains)]
    keys = [tuple(sorted(c)) for c in cols]
    if len(set(keys)) != 1:
        raise InvalidArgumentError(f"the chains record different statistics: {sorted(set(keys))}; give chains of one "
                                   "sampler (same family and settings)")
    lengths = [next(iter(c.values())).shape[0] for c in cols]
    for i, c in enumerate(cols):
        for k, v in c.items():
            if v.shape[0] != lengths[0]:
                raise InvalidArgumentError(
                    f"every statistic of every chain must be one value per draw, the same number of draws in all "
                    f"chains; `chains[{i}]` statistic {k!r} has {v.shape[0]} draws, `chains[0]` has {lengths[0]}. "
                    "Run the chains with the same num_samples")
    if lengths[0] == 0:
        raise InvalidArgumentError("the chains have no draws; run them with num_samples >= 1")
    posterior = {k: np.stack([c[k] for c in cols]) for k in cols[0]}
    with _quiet_arviz() as az:
        return az.from_dict(posterior=posterior, attrs={"bayesstruct_family": family} if family else None)
