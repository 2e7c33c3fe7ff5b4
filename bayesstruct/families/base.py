"""Structure families: a Pyro model parameterised by structure arguments, and its space."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError

__all__ = ["StructureFamily", "BoundModel", "structure_family", "structure_label"]


_NONE = object()


def _first_repeat(values: list) -> Any:
    """The first value equal to an earlier one (``_NONE`` if all differ); unhashable values by ``==``."""
    try:
        seen: set = set()
        for v in values:
            if v in seen:
                return v
            seen.add(v)
        return _NONE
    except TypeError:  # unhashable values: pairwise, where == gives a plain truth value
        for i, v in enumerate(values):
            for w in values[:i]:
                try:
                    if bool(w == v):
                        return v
                except Exception:  # e.g. tensors of several elements
                    continue
        return _NONE


def _same_kind(a: Any, b: Any) -> bool:
    """False for a bool against a number: ``True == 1`` in Python, but ``degree=True`` is no degree 1."""
    return isinstance(a, (bool, np.bool_)) == isinstance(b, (bool, np.bool_))


def _equal(a: Any, b: Any) -> bool:
    """``a == b`` as a plain truth value (False where ``==`` gives none, e.g. tensors of several elements)."""
    if not _same_kind(a, b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


def _shorten(values: list, limit: int = 12) -> str:
    """``values`` as a list, the middle elided when it is long: ``[0, 1, 2, 3, 4, ..., 97, 98, 99] (100 values)``."""
    if not isinstance(values, (list, tuple, range)):
        return repr(values)
    if len(values) <= limit:
        return repr(list(values))
    head, tail = values[: limit - 4], values[-3:]
    return "[" + ", ".join(map(repr, head)) + ", ..., " + ", ".join(map(repr, tail)) + f"] ({len(values)} values)"


def structure_label(structure: Mapping[str, Any]) -> str:
    """Readable label of a structure: ``"degree=3"`` or ``"depth=2, width=8"``."""
    return ", ".join(f"{k}={v}" for k, v in dict(structure).items())


class BoundModel:
    """A Pyro model with some keyword arguments fixed (a structure and hyperparameters).

    Unlike :func:`functools.partial` it keeps the model's ``conjugate_form`` hook, so the
    ``exact`` estimator still applies, and it pickles whenever the model does.
    """

    def __init__(self, model: Callable, kwargs: Mapping[str, Any], conjugate_form: Callable | None = None) -> None:
        self.model = model
        self.kwargs = dict(kwargs)
        self._conjugate_form = conjugate_form or getattr(model, "conjugate_form", None)
        self.__name__ = getattr(model, "__name__", type(model).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **{**self.kwargs, **kwargs})

    def conjugate_form(self, *args: Any, **kwargs: Any) -> Any:
        if self._conjugate_form is None:
            return None
        return self._conjugate_form(*args, **{**self.kwargs, **kwargs})

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.__name__}({kw})"


class StructureFamily:
    """A family of models ``model(x, y=None, *, **structure)`` indexed by a structure space.

    Parameters
    ----------
    model : callable
        A Pyro model taking the data positionally and the structure as keyword arguments.
    space : mapping of str to iterable
        Values of each structure argument; the family's structures are their Cartesian
        product, e.g. ``{"degree": range(10)}``.
    name : str, optional
        Used in reports (default: the model's ``__name__``).
    model_kwargs : mapping, optional
        Further keyword arguments passed to every structure (fixed hyperparameters).
    conjugate_form : callable, optional
        ``conjugate_form(x, y, **kwargs)`` returning a
        :class:`~bayesstruct.evidence.LinearGaussian` or
        :class:`~bayesstruct.evidence.NormalGamma`, enabling ``method="exact"``.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model(x, y=None, *, order):
    ...     w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([order]).to_event(1))
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("y", dist.Normal((w * x.unsqueeze(-1) ** torch.arange(order)).sum(-1), 0.1), obs=y)
    >>> fam = StructureFamily(model, {"order": [1, 2]})
    >>> fam.structures()
    [{'order': 1}, {'order': 2}]
    """

    #: Whether ``space`` lists every value a structure may take, so that :meth:`validate_structure`
    #: refuses any other. A family whose structures are not all listed sets it False (the
    #: superposition family takes any tree of its grammar, listed or not, as a string or parsed).
    closed_space: bool = True
    #: The estimators :func:`bayesstruct.compare` runs when it is given no ``methods``.
    default_methods: tuple[str, ...] = ("exact", "laplace", "smc")

    def __init__(self, model: Callable, space: Mapping[str, Iterable], *, name: str | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, conjugate_form: Callable | None = None) -> None:
        if not callable(model):
            raise ModelSpecError(f"`model` must be a callable Pyro model; got {type(model).__name__}")
        if not isinstance(space, Mapping) or not space:
            raise InvalidArgumentError(f"`space` must be a non-empty mapping of argument name to values; got {space!r}")
        self.model = model
        self.space = {}
        for key, values in space.items():
            values = list(values)
            if not values:
                raise InvalidArgumentError(f"`space[{key!r}]` is empty; give at least one value")
            repeated = _first_repeat(values)
            if repeated is not _NONE:
                raise InvalidArgumentError(
                    f"`space[{key!r}]` lists {repeated!r} more than once; each structure would be counted twice "
                    "in a comparison (give each value once)"
                )
            self.space[key] = values
        self.name = name or getattr(model, "__name__", type(model).__name__)
        self.model_kwargs = dict(model_kwargs or {})
        self._conjugate_form = conjugate_form

    def structures(self) -> list[dict[str, Any]]:
        """Every structure of the space, as keyword dicts, in a fixed order."""
        keys = list(self.space)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.space[k] for k in keys))]

    def validate_structure(self, structure: Mapping[str, Any]) -> dict[str, Any]:
        """``structure`` as a plain dict, checked: exactly the keys of ``space``, and each value one
        that ``space`` lists for its key (returned as the listed value, e.g. ``numpy.int64(2)`` as ``2``).

        The value check applies when :attr:`closed_space` holds (the default); a family with
        ``closed_space = False`` checks the keys here and its values itself.
        """
        if not isinstance(structure, Mapping):
            raise InvalidArgumentError(f"`structure` must be a dict like {self.structures()[0]}; got {structure!r}")
        missing = set(self.space) - set(structure)
        extra = set(structure) - set(self.space)
        if missing or extra:
            raise InvalidArgumentError(
                f"`structure` must have exactly the keys {sorted(self.space)}; missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        if not self.closed_space:
            return dict(structure)
        return {key: self._listed_value(key, value) for key, value in structure.items()}

    def _listed_value(self, key: str, value: Any) -> Any:
        """The value of ``space[key]`` equal to ``value``; an error listing the allowed values if none is."""
        values = self.space[key]
        if not isinstance(values, (list, tuple)):  # a subclass's own container (e.g. a range): its `in`
            try:
                inside = value in values and not (isinstance(values, range) and isinstance(value, (bool, np.bool_)))
            except TypeError:
                inside = False
            if inside:
                return value
        else:
            for v in values:  # by ==, not hashing: values may be unhashable, or hash by identity (tensors)
                if _equal(v, value):
                    return v
        raise InvalidArgumentError(
            f"`structure[{key!r}]` must be one of the values this family's space lists for {key!r}, "
            f"{_shorten(values)}; got {value!r}. Pick one of them (family.structures() lists every "
            f"structure), or build the family with a space that includes {value!r}"
        )

    def check_data(self, x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate ``(x, y)`` for this family, once, before any structure is evaluated.

        The base family takes 1-D or 2-D finite ``x`` and 1-D ``y`` of the same length
        (:func:`bayesstruct._validation.check_xy`); families with other data override it
        (e.g. a Bayesian network takes ``x`` ``(N, d)`` and no ``y``).
        """
        from bayesstruct._validation import check_xy

        return check_xy(x, y)

    def resolve(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments, beyond the structure, that the model gets for this data set.

        The base family passes its ``model_kwargs``; subclasses fit hyperparameters here
        (type-II maximum likelihood) or derive data-dependent settings.
        """
        return dict(self.model_kwargs)

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters worth reporting among the keyword arguments from :meth:`resolve`."""
        return dict(resolved)

    def bind(self, structure: Mapping[str, Any], **kwargs: Any) -> BoundModel:
        """The Pyro model of one structure, with ``kwargs`` (hyperparameters) fixed."""
        structure = self.validate_structure(structure)
        return BoundModel(self.model, {**self.model_kwargs, **kwargs, **structure}, self._conjugate_form)

    def log_evidence(self, x: Any, y: Any, structure: Mapping[str, Any], method: Any = "laplace"):
        """``log p(y | x, structure)`` by ``method`` (see :func:`bayesstruct.evidence.log_evidence`)."""
        from bayesstruct.evidence import log_evidence

        x, y = self.check_data(x, y)
        bound = self.bind(structure, **self.resolve(x, y, structure))
        return log_evidence(bound, x, y, method=method)

    def __repr__(self) -> str:
        space = ", ".join(f"{k}={v}" for k, v in self.space.items())
        return f"{type(self).__name__}({self.name}: {space})"


def structure_family(space: Mapping[str, Iterable], *, name: str | None = None, **model_kwargs: Any) -> Callable[[Callable], StructureFamily]:
    """Decorator turning a Pyro model into a :class:`StructureFamily`.

    >>> @structure_family({"degree": range(4)})       # doctest: +SKIP
    ... def poly(x, y=None, *, degree):
    ...     ...
    """

    def decorator(model: Callable) -> StructureFamily:
        family = StructureFamily(model, space, name=name, model_kwargs=model_kwargs)
        # the family replaces the function under its name; point pickle at `family.model`
        if hasattr(model, "__qualname__"):
            model.__qualname__ = f"{model.__qualname__}.model"
        return family

    return decorator
