r"""Superpositions of elementary functions: a structure family of expression trees.

The lecture's second example of a structure that is a graph (topic 4, "ranking-function
prediction"; Varfolomeeva's MSc thesis, after Strijov's inductive generation of
superpositions): a model is a tree whose vertices carry elementary functions and whose leaves
are the input variables, e.g. the log-tf·idf ranking function

.. math:: \varphi_\Gamma(x) = \log(1 + x_0)\cdot x_1 = \mathrm{mul}(\mathrm{log1p}(x_0), x_1).

The structure :math:`\Gamma` is written as the lecture does, a set of triples
:math:`(i, j, g)`: vertices numbered, an edge from :math:`i` to :math:`j`, and :math:`g` the
elementary function at the edge's end :math:`j` (vertex 0 is the model's output), so the
example is ``{(0, 1, mul), (1, 2, log1p), (2, 3, x0), (1, 4, x1)}`` (:attr:`Superposition.edges`).

Each superposition :math:`\Gamma` is a Bayesian linear model in its feature:

.. math::

    y_n = w_0 + w_1 \tilde\varphi_\Gamma(x_n) + \varepsilon_n,\qquad
    \tilde\varphi_\Gamma = (\varphi_\Gamma - \bar\varphi_\Gamma)/s_\Gamma,

with the feature standardised on the training inputs (so one prior fits every tree) and
either known noise, :math:`w \sim N(0, \alpha^{-1} I)`, :math:`\varepsilon \sim N(0, \sigma^2)`,
or the conjugate Normal–Gamma prior :math:`\tau \sim \mathrm{Gamma}(a_0, b_0)`,
:math:`w \mid \tau \sim N(0, (\lambda\tau)^{-1} I)`, :math:`\varepsilon \sim N(0, \tau^{-1})`.
Either way the evidence :math:`p(y \mid x, \Gamma)` is in closed form (``method="exact"``).
Every tree has the same two linear parameters, so the evidence compares only how well the
superpositions fit; their complexity is priced by the structure prior
:class:`SuperpositionGrammar`, a probabilistic grammar over trees
(:math:`p(\Gamma) = \prod_v p(\text{kind}_v)/|\text{choices}_v|`). Trees of a few vertices
are enumerated (:class:`SuperpositionFamily`, with :func:`bayesstruct.compare`; at most
:data:`MAX_ENUMERATED_TREES`, counted in closed form by :meth:`SuperpositionGrammar.count_trees`
before any is built); larger spaces are sampled by Metropolis–Hastings with subtree regeneration
(:func:`sample_superpositions`; the move of Bayesian symbolic regression, Jin et al. 2019,
here with the exact evidence).

The elementary functions are total (defined on every real input) so that every tree of the
grammar is a model: ``log1p``, ``sqrt``, ``inv`` and ``div`` act on absolute values
(Koza's "protected" operators, Koza 1992) and ``exp`` clips its argument at 50. On
non-negative features, as ranking features are, ``log1p`` and ``sqrt`` are the usual ones.
Total is not finite: nested ``exp`` and ``square`` overflow float64
(``square(square(square(square(exp(exp(x0))))))`` is ``inf`` once ``x0 > 3.8``), and a
user-registered function may leave its domain (NaN). Such a tree is not a model of those data:
an enumeration leaves it out and says how many it left out (:attr:`SuperpositionFamily.left_out`,
:class:`TreesLeftOutWarning`), the sampler rejects it (:attr:`SuperpositionSamples.not_finite`),
and asking for it by name is an error.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from bayesstruct import _json
from bayesstruct._validation import (as_tensor, check_gamma_pair, check_nonnegative, check_positive, check_positive_int,
                                     check_seed, check_xy)
from bayesstruct.evidence.density import float64
from bayesstruct.families._tempering import check_temperatures, propose_exchange
from bayesstruct.evidence.exact import LinearGaussian, NormalGamma
from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError, UnknownNameError
from bayesstruct.families.base import StructureFamily

__all__ = [
    "ELEMENTARY_FUNCTIONS",
    "ElementaryFunction",
    "Superposition",
    "SuperpositionFamily",
    "SuperpositionGrammar",
    "SuperpositionSamples",
    "TreesLeftOutWarning",
    "MAX_ENUMERATED_TREES",
    "NOT_FINITE",
    "sample_superpositions",
    "superposition_model",
]


@dataclass(frozen=True)
class ElementaryFunction:
    """An elementary function of a superposition: its arity, its formula and whether it commutes."""

    name: str
    arity: int
    fn: Callable[..., torch.Tensor] = field(repr=False, compare=False)
    formula: str
    commutative: bool = False


def _clip_exp(u: torch.Tensor) -> torch.Tensor:
    return torch.exp(u.clamp(max=50.0))


ELEMENTARY_FUNCTIONS: dict[str, ElementaryFunction] = {
    f.name: f
    for f in (
        ElementaryFunction("log1p", 1, lambda u: torch.log1p(u.abs()), "log(1 + |u|)"),
        ElementaryFunction("sqrt", 1, lambda u: u.abs().sqrt(), "sqrt(|u|)"),
        ElementaryFunction("exp", 1, _clip_exp, "exp(min(u, 50))"),
        ElementaryFunction("square", 1, lambda u: u * u, "u^2"),
        ElementaryFunction("inv", 1, lambda u: 1.0 / (1.0 + u.abs()), "1 / (1 + |u|)"),
        ElementaryFunction("sin", 1, torch.sin, "sin(u)"),
        ElementaryFunction("add", 2, lambda u, v: u + v, "u + v", commutative=True),
        ElementaryFunction("sub", 2, lambda u, v: u - v, "u - v"),
        ElementaryFunction("mul", 2, lambda u, v: u * v, "u v", commutative=True),
        ElementaryFunction("div", 2, lambda u, v: u / (1.0 + v.abs()), "u / (1 + |v|)"),
    )
}
"""The registry of elementary functions, by name (extend it with :class:`ElementaryFunction`)."""


NOT_FINITE = "not finite on the data"
"""The reason, in :attr:`SuperpositionFamily.left_out` and the CLI's ``left_out``, for a tree whose
values are ``inf`` or NaN at some input (an overflow, or a user-registered function outside its domain)."""
NOT_FINITE_DETAIL = "overflow, or an input outside a function's domain"

MAX_ENUMERATED_TREES = 500_000
"""The most trees :class:`SuperpositionFamily` enumerates (``max_trees``; counted by
:meth:`SuperpositionGrammar.count_trees` before any is built). The default grammar on two variables
has 234,942 trees of at most 7 vertices and 1,934,892 of at most 8 (:meth:`SuperpositionGrammar.count_trees`).
Measured on ``ranking_data(100)``, on 2 shared cores: ``bayesstruct compare superposition --max-size 7``
takes 78 s and 1.2 GB (it scores the 126,932 distinct models of the 234,942 trees), about 0.35 ms
and 5 kB a tree, so the limit stands for about 3 minutes and 2.5 GB; size 8 would take some
11 minutes and 10 GB. Above the limit, sample with :func:`sample_superpositions`
(``--inference mcmc``: 7 s for 4 chains of 5000 draws at size 7)."""


class TreesLeftOutWarning(UserWarning):
    """Trees of a grammar were left out of an enumeration (the message says how many and why;
    :attr:`SuperpositionFamily.left_out` lists them)."""


def _function(name: str) -> ElementaryFunction:
    try:
        return ELEMENTARY_FUNCTIONS[name]
    except KeyError:
        raise UnknownNameError(f"unknown elementary function {name!r}; known: {', '.join(ELEMENTARY_FUNCTIONS)} "
                               "(add one to bayesstruct.families.superposition.ELEMENTARY_FUNCTIONS)") from None


def _variable_index(name: str) -> int | None:
    """``k`` for the variable ``x<k>`` (ASCII digits, no leading zero); ``None`` for any other name."""
    match = re.fullmatch(r"x([0-9]+)", name)
    if match is None:
        return None
    if len(match[1]) > 1 and match[1][0] == "0":  # one spelling per variable: x01 would be a second x1
        raise InvalidArgumentError(f"variable {name!r} has a leading zero; write it as x{int(match[1])}")
    return int(match[1])


@dataclass(frozen=True)
class Superposition:
    """An expression tree: an elementary function applied to sub-trees, or a variable ``x<k>``.

    Immutable and hashable; ``str`` gives the prefix form that :meth:`parse` reads back.

    Examples
    --------
    >>> t = Superposition.parse("mul(log1p(x0), x1)")
    >>> t.size, t.depth, t.edges
    (4, 3, ((0, 1, 'mul'), (1, 2, 'log1p'), (2, 3, 'x0'), (1, 4, 'x1')))
    """

    op: str
    children: tuple["Superposition", ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.op, str):
            raise InvalidArgumentError(f"`op` must be a function or variable name; got {self.op!r}")
        if _variable_index(self.op) is not None:
            if self.children:
                raise InvalidArgumentError(f"variable {self.op!r} cannot have arguments")
            return
        f = _function(self.op)
        if len(self.children) != f.arity:
            raise InvalidArgumentError(f"{self.op!r} takes {f.arity} argument(s); got {len(self.children)}")
        wrong = [type(c).__name__ for c in self.children if not isinstance(c, Superposition)]
        if wrong:
            raise InvalidArgumentError(f"the arguments of {self.op!r} must be Superposition trees; got {wrong} "
                                       f"(parse a string with Superposition.parse, e.g. \"{self.op}(x0, x1)\")")

    @classmethod
    def variable(cls, index: int) -> "Superposition":
        return cls(f"x{check_positive_int(index, 'index', minimum=0)}")

    @classmethod
    def parse(cls, text: str) -> "Superposition":
        """Read the prefix form, e.g. ``"mul(log1p(x0), x1)"``."""
        if not isinstance(text, str):
            raise InvalidArgumentError(f"`text` must be a string like 'mul(log1p(x0), x1)'; got {type(text).__name__}")
        tokens = text.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split()
        pos = 0

        def expect(tok: str) -> None:
            nonlocal pos
            if pos >= len(tokens) or tokens[pos] != tok:
                got = tokens[pos] if pos < len(tokens) else "the end"
                raise InvalidArgumentError(f"cannot parse superposition {text!r}: expected {tok!r}, got {got!r}")
            pos += 1

        def node() -> Superposition:
            nonlocal pos
            if pos >= len(tokens) or tokens[pos] in "(),":
                raise InvalidArgumentError(f"cannot parse superposition {text!r}: expected a name at token {pos}")
            name = tokens[pos]
            pos += 1
            if _variable_index(name) is not None:
                return cls(name)
            arity = _function(name).arity
            expect("(")
            args = [node()]
            for _ in range(arity - 1):
                expect(",")
                args.append(node())
            expect(")")
            return cls(name, tuple(args))

        tree = node()
        if pos != len(tokens):
            raise InvalidArgumentError(f"cannot parse superposition {text!r}: unexpected {tokens[pos]!r}")
        return tree

    def __str__(self) -> str:
        if not self.children:
            return self.op
        return f"{self.op}({', '.join(map(str, self.children))})"

    def __repr__(self) -> str:
        return f"Superposition({str(self)!r})"

    @property
    def is_variable(self) -> bool:
        return not self.children

    @property
    def size(self) -> int:
        """Number of vertices (functions and variables)."""
        return 1 + sum(c.size for c in self.children)

    @property
    def depth(self) -> int:
        return 1 + max((c.depth for c in self.children), default=0)

    @property
    def num_variables(self) -> int:
        """One more than the largest variable index used (the columns ``x`` must have at least)."""
        i = _variable_index(self.op)
        return i + 1 if i is not None else max(c.num_variables for c in self.children)

    @property
    def edges(self) -> tuple[tuple[int, int, str], ...]:
        """The lecture's encoding: ``(parent, child, function at the child)``, vertices numbered
        depth first from 1, vertex 0 the output."""
        out: list[tuple[int, int, str]] = []
        counter = [0]

        def walk(t: Superposition, parent: int) -> None:
            counter[0] += 1
            me = counter[0]
            out.append((parent, me, t.op))
            for c in t.children:
                walk(c, me)

        walk(self, 0)
        return tuple(out)

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """``φ_Γ(x)`` for ``x`` ``(N, D)`` (or ``(N,)`` when one variable): a tensor ``(N,)``."""
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        i = _variable_index(self.op)
        if i is not None:
            if i >= x.shape[-1]:
                raise InvalidArgumentError(f"superposition {self} uses {self.op} but `x` has {x.shape[-1]} column(s)")
            return x[..., i]
        return ELEMENTARY_FUNCTIONS[self.op].fn(*(c.evaluate(x) for c in self.children))

    def canonical(self) -> "Superposition":
        """The same function with the arguments of commutative functions in sorted order."""
        if not self.children:
            return self
        kids = tuple(c.canonical() for c in self.children)
        if ELEMENTARY_FUNCTIONS[self.op].commutative:
            kids = tuple(sorted(kids, key=str))
        return Superposition(self.op, kids)

    def num_orderings(self) -> int:
        """How many distinct trees :meth:`canonical` maps onto this one's canonical form."""
        n = math.prod(c.num_orderings() for c in self.children)
        if self.children and ELEMENTARY_FUNCTIONS[self.op].commutative:
            a, b = (c.canonical() for c in self.children)
            n *= 1 if a == b else 2
        return n

    def paths(self) -> list[tuple[int, ...]]:
        """Every vertex as the path of child indices from the root (the root is ``()``), depth first."""
        out = [()]
        for k, c in enumerate(self.children):
            out.extend((k,) + p for p in c.paths())
        return out

    def subtree(self, path: Sequence[int]) -> "Superposition":
        t = self
        for k in path:
            t = t.children[k]
        return t

    def replace(self, path: Sequence[int], new: "Superposition") -> "Superposition":
        """This tree with the sub-tree at ``path`` replaced by ``new``."""
        if not path:
            return new
        k = path[0]
        kids = list(self.children)
        kids[k] = kids[k].replace(path[1:], new)
        return Superposition(self.op, tuple(kids))


def as_superposition(value: Any, name: str = "tree") -> Superposition:
    """A :class:`Superposition` from itself or its prefix string."""
    if isinstance(value, Superposition):
        return value
    if isinstance(value, str):
        return Superposition.parse(value)
    raise InvalidArgumentError(f"`{name}` must be a Superposition or a string like 'mul(log1p(x0), x1)'; got {value!r}")


class SuperpositionGrammar:
    r"""A probabilistic grammar over superpositions: the structure prior :math:`p(\Gamma)`.

    Each vertex, independently, is a variable with probability ``p_variable``, a unary function
    with probability ``p_unary`` or a binary one with the rest, and then one of its kind
    uniformly: :math:`p(\Gamma) = \prod_v p(\text{kind}_v) / |\text{choices}_v|`. The mean
    number of arguments per vertex, ``p_unary + 2 p_binary``, must be below 1 so that trees are
    finite (a subcritical branching process). ``max_size`` truncates the prior to trees of at
    most that many vertices (renormalised implicitly: the posterior needs no normaliser).

    Parameters
    ----------
    num_variables : int
        Columns of ``x``: the leaves are ``x0 ... x{num_variables-1}``.
    unary, binary : sequence of str
        Names in :data:`ELEMENTARY_FUNCTIONS`.
    p_variable, p_unary : float
        Probabilities of a leaf and of a unary vertex. A kind with probability 0 (``p_unary=0``,
        or ``p_variable + p_unary = 1`` for the binary kind) keeps none of its functions.
    max_size : int
        Largest number of vertices.
    """

    def __init__(self, num_variables: int, *, unary: Sequence[str] = ("log1p", "sqrt", "exp", "square", "inv"),
                 binary: Sequence[str] = ("add", "sub", "mul", "div"), p_variable: float = 0.5,
                 p_unary: float = 0.25, max_size: int = 4) -> None:
        self.num_variables = check_positive_int(num_variables, "num_variables")
        self.unary = self._names(unary, 1, "unary")
        self.binary = self._names(binary, 2, "binary")
        self.max_size = check_positive_int(max_size, "max_size")
        probs = []
        for v, n in ((p_variable, "p_variable"), (p_unary, "p_unary")):
            try:
                probs.append(float(v))
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"`{n}` must be a probability; got {v!r}") from None
        p_v, p_u = probs
        if not (0.0 < p_v <= 1.0 and 0.0 <= p_u < 1.0 and p_v + p_u <= 1.0 + 1e-12):
            raise InvalidArgumentError(f"`p_variable` in (0, 1] and `p_unary` in [0, 1) must sum to at most 1; "
                                       f"got {p_variable!r} and {p_unary!r}")
        # kinds with no functions listed get no mass; the others are renormalised
        weights = (p_v, p_u if self.unary else 0.0, max(1.0 - p_v - p_u, 0.0) if self.binary else 0.0)
        self.p_variable, self.p_unary, self.p_binary = (w / sum(weights) for w in weights)
        # and a kind with no mass has no functions: the grammar generates none of its trees
        self.unary = self.unary if self.p_unary > 0 else ()
        self.binary = self.binary if self.p_binary > 0 else ()
        if self.p_unary + 2 * self.p_binary >= 1.0:
            raise InvalidArgumentError(
                f"the grammar is not subcritical: p_unary + 2 p_binary = {self.p_unary + 2 * self.p_binary:.3g} >= 1 "
                "(the expected tree size would be infinite); raise `p_variable`")

    @staticmethod
    def _names(names: Sequence[str], arity: int, arg: str) -> tuple[str, ...]:
        if isinstance(names, str):
            names = (names,)
        out = []
        for n in names:
            f = ELEMENTARY_FUNCTIONS.get(n)
            if f is None:
                known = [k for k, g in ELEMENTARY_FUNCTIONS.items() if g.arity == arity]
                raise UnknownNameError(f"`{arg}` names an unknown elementary function {n!r}; known of arity {arity}: "
                                       f"{', '.join(known)} (add one to "
                                       "bayesstruct.families.superposition.ELEMENTARY_FUNCTIONS)")
            if f.arity != arity:
                raise InvalidArgumentError(f"`{arg}` must list functions of arity {arity}; {n!r} has {f.arity}")
            out.append(n)
        return tuple(dict.fromkeys(out))

    def __repr__(self) -> str:
        return (f"SuperpositionGrammar(num_variables={self.num_variables}, unary={self.unary}, binary={self.binary}, "
                f"p_variable={self.p_variable:.3g}, p_unary={self.p_unary:.3g}, max_size={self.max_size})")

    def _check(self, tree: Superposition) -> None:
        for _, _, op in tree.edges:
            i = _variable_index(op)
            if (i is not None and i >= self.num_variables) or (i is None and op not in self.unary + self.binary):
                raise InvalidArgumentError(f"superposition {tree} uses {op!r}, which the grammar does not have "
                                           f"(variables x0..x{self.num_variables - 1}, {self.unary + self.binary})")

    def log_prob(self, tree: Any) -> float:
        """:math:`\\log p(\\Gamma)` of the untruncated grammar (``-inf`` above ``max_size``)."""
        tree = as_superposition(tree)
        self._check(tree)
        if tree.size > self.max_size:
            return -math.inf
        return self._log_prob(tree)

    def _log_prob(self, tree: Superposition) -> float:
        if tree.is_variable:
            own = math.log(self.p_variable / self.num_variables)
        elif len(tree.children) == 1:
            own = math.log(self.p_unary / len(self.unary))
        else:
            own = math.log(self.p_binary / len(self.binary))
        return own + sum(self._log_prob(c) for c in tree.children)

    def sample(self, generator: np.random.Generator, *, max_size: int | None = None) -> Superposition | None:
        """One tree from the grammar; ``None`` if it grows past ``max_size`` (default the grammar's)."""
        limit = self.max_size if max_size is None else max_size
        budget = [limit]

        def grow() -> Superposition | None:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            u = generator.random()
            if u < self.p_variable:
                return Superposition(f"x{generator.integers(self.num_variables)}")
            names = self.unary if u < self.p_variable + self.p_unary else self.binary
            op = names[generator.integers(len(names))]
            kids = []
            for _ in range(ELEMENTARY_FUNCTIONS[op].arity):
                k = grow()
                if k is None:
                    return None
                kids.append(k)
            return Superposition(op, tuple(kids))

        return grow()

    def labels(self, vertex: Superposition) -> tuple[str, ...]:
        """The labels the grammar offers a vertex of ``vertex``'s kind (variable, unary, binary),
        each with the same prior mass."""
        if vertex.is_variable:
            return tuple(f"x{i}" for i in range(self.num_variables))
        return self.unary if len(vertex.children) == 1 else self.binary

    def count_trees(self, *, canonical: bool = True, max_size: int | None = None) -> int:
        r"""How many trees :meth:`trees` lists, without building them (a dynamic programme over sizes).

        With :math:`V` variables, :math:`U` unary and :math:`B` binary functions, :math:`T_1 = V`
        and :math:`T_s = U T_{s-1} + B \sum_{a=1}^{s-2} T_a T_{s-1-a}`; with ``canonical`` a
        commutative function counts each unordered pair of arguments once
        (:math:`C_a C_b` for :math:`a < b`, :math:`C_a (C_a + 1) / 2` for :math:`a = b`).
        The count grows about 8-fold per vertex for the default grammar: use it to decide
        between enumeration and :func:`sample_superpositions`.

        Parameters
        ----------
        canonical : bool
            Count one tree per function up to the order of commutative arguments (as
            :meth:`trees` lists by default), or every ordered tree.
        max_size : int, optional
            Count trees of at most this many vertices (default: the grammar's ``max_size``).
        """
        limit = self.max_size if max_size is None else check_positive_int(max_size, "max_size")
        commutative = sum(ELEMENTARY_FUNCTIONS[op].commutative for op in self.binary) if canonical else 0
        ordered = len(self.binary) - commutative
        c = [0, self.num_variables]
        for s in range(2, limit + 1):
            n = len(self.unary) * c[s - 1]
            for a in range(1, s - 1):
                b = s - 1 - a
                n += ordered * c[a] * c[b]
                if a < b:
                    n += commutative * c[a] * c[b]
                elif a == b:
                    n += commutative * c[a] * (c[a] + 1) // 2
            c.append(n)
        return sum(c)

    def trees(self, *, canonical: bool = True) -> list[Superposition]:
        """Every tree of at most ``max_size`` vertices, smallest first; with ``canonical`` one
        per function up to the order of commutative arguments.

        There are :meth:`count_trees` of them, which grows about 8-fold per vertex: check it
        first (:class:`SuperpositionFamily` refuses more than :data:`MAX_ENUMERATED_TREES`).
        With ``canonical`` only canonical trees are built (a tree is canonical when its
        arguments are and a commutative function's are in order), in the order in which they
        come in the full list."""
        leaves = [Superposition(f"x{i}") for i in range(self.num_variables)]
        by_size: dict[int, list[Superposition]] = {1: leaves}
        labels: dict[int, list[str]] = {1: [t.op for t in leaves]}  # str of each tree, to order arguments
        for s in range(2, self.max_size + 1):
            level = [Superposition(op, (c,)) for op in self.unary for c in by_size[s - 1]]
            text = [f"{op}({c})" for op in self.unary for c in labels[s - 1]]
            for op in self.binary:
                ordered = not (canonical and ELEMENTARY_FUNCTIONS[op].commutative)
                for a in range(1, s - 1):
                    for left, ls in zip(by_size[a], labels[a]):
                        for right, rs in zip(by_size[s - 1 - a], labels[s - 1 - a]):
                            if ordered or ls <= rs:
                                level.append(Superposition(op, (left, right)))
                                text.append(f"{op}({ls}, {rs})")
            by_size[s], labels[s] = level, text
        return [t for s in sorted(by_size) for t in by_size[s]]

    def distinct(self, x: Any, trees: Iterable[Superposition] | None = None, *,
                 decimals: int = 8) -> list[tuple[Superposition, float]]:
        r"""One tree per model on the inputs ``x``, with the prior mass of all the trees it stands for.

        Two trees are the same model on ``x`` when their standardised features agree up to sign
        (:math:`\tilde\varphi_1 = \pm\tilde\varphi_2`: the linear wrapper and its symmetric
        prior cannot tell them apart), e.g. ``x0`` and ``add(x0, x0)``. The first (smallest)
        tree of each class is kept; its log prior mass is the log-sum of the class's.

        Raises :class:`~bayesstruct.exceptions.ModelSpecError` when a tree is not finite on ``x``
        (:class:`SuperpositionFamily` leaves such trees out instead, and says how many).
        """
        x = _check_inputs(x, self.num_variables)
        if trees is None:
            trees = self.trees()
        else:  # each function once (its mass is that of all its argument orders), and only the grammar's trees
            trees = list(dict.fromkeys(as_superposition(t).canonical() for t in trees))
            for t in trees:
                self._check(t)
                if t.size > self.max_size:
                    raise InvalidArgumentError(f"`trees`: {t} has {t.size} vertices, more than the grammar's "
                                               f"max_size={self.max_size} (its prior mass is 0)")
        return self._distinct(((t, _finite_feature(t, x)) for t in trees), decimals)[0]

    def _distinct(self, features: Iterable[tuple[Superposition, torch.Tensor | None]], decimals: int = 8, *,
                  skip_not_finite: bool = False) -> tuple[list[tuple[Superposition, float]], list[Superposition]]:
        """:meth:`distinct` from ``(tree, φ(x) or None when not finite)`` pairs, and the trees not
        finite (left out with ``skip_not_finite``, else an error)."""
        keys: dict[bytes, int] = {}
        out: list[tuple[Superposition, float]] = []
        not_finite: list[Superposition] = []
        for t, phi in features:
            if phi is None:
                if not skip_not_finite:
                    raise _not_finite_error(t)
                not_finite.append(t)
                continue
            loc, scale = _loc_scale(phi)
            feature = (phi - loc) / scale if scale > 0 else torch.zeros_like(phi)
            v = np.round(feature.numpy(), decimals) + 0.0
            nz = np.flatnonzero(np.abs(v) > 10 ** -decimals)
            if nz.size and v[nz[0]] < 0:
                v = -v + 0.0
            key = v.tobytes()
            lp = self._log_prob(t) + math.log(t.num_orderings())
            if key in keys:
                j = keys[key]
                out[j] = (out[j][0], float(np.logaddexp(out[j][1], lp)))
            else:
                keys[key] = len(out)
                out.append((t, lp))
        return out, not_finite


def _check_inputs(x: Any, num_variables: int | None = None, name: str = "x") -> torch.Tensor:
    x = as_tensor(x, name)
    if x.dim() == 1:
        x = x.unsqueeze(-1)
    if x.dim() != 2 or x.shape[0] == 0:
        raise InvalidArgumentError(f"`{name}` must be (N,) or (N, D) with N >= 1; got shape {tuple(x.shape)}")
    if num_variables is not None and x.shape[1] != num_variables:
        raise InvalidArgumentError(f"`{name}` must have {num_variables} column(s), one per variable; got {x.shape[1]}")
    return x


def _finite_feature(tree: Superposition, x: torch.Tensor) -> torch.Tensor | None:
    """``φ_Γ(x)`` in float64, or ``None`` when it is not finite at some row of ``x``."""
    phi = tree.evaluate(x.to(torch.float64))
    return phi if bool(torch.isfinite(phi).all()) else None


def _shared_features(trees: Iterable[Superposition], x: torch.Tensor, *, max_cached: int = 2 ** 25
                     ) -> Iterable[tuple[Superposition, torch.Tensor | None]]:
    """``(tree, φ(x) or None)`` for each tree, like :func:`_finite_feature`, but evaluating each
    shared sub-tree object once: the trees of :meth:`SuperpositionGrammar.trees` are built from
    the smaller ones, so each costs one elementary function (3x faster at 7 vertices). The values
    of arguments are kept, non-finite ones included (``inv`` of an overflow is finite), for at
    most ``max_cached`` numbers in all; beyond that sub-trees are evaluated anew."""
    x = x.to(torch.float64)
    cache: dict[int, torch.Tensor] = {}
    room = [max_cached // max(1, x.shape[0])]

    def value(t: Superposition, store: bool) -> torch.Tensor:
        v = cache.get(id(t))
        if v is None:
            if t.is_variable:
                v = t.evaluate(x)
            else:
                v = ELEMENTARY_FUNCTIONS[t.op].fn(*(value(c, True) for c in t.children))
            if store and room[0] > 0:  # only arguments are kept: most trees are no one's argument
                cache[id(t)] = v
                keep.append(t)
                room[0] -= 1
        return v

    keep: list[Superposition] = []  # the cached trees stay alive, so that their ids are not reused
    for t in trees:
        phi = value(t, False)
        yield t, (phi if bool(torch.isfinite(phi).all()) else None)


def _not_finite_error(tree: Superposition) -> ModelSpecError:
    return ModelSpecError(f"superposition {tree} is not finite on the data ({NOT_FINITE_DETAIL}); it is not a model "
                          "of these data: use smaller inputs or another tree")


def _loc_scale(phi: torch.Tensor) -> tuple[float, float]:
    """Mean and sd of a finite feature, computed on ``phi / max|phi|`` so that a large but finite
    feature (``square(square(square(exp(exp(x0)))))`` reaches 1e174) does not overflow its
    variance to ``inf`` (which would make it a constant); the scale is 0 for a constant feature."""
    m = float(phi.abs().max()) if phi.numel() else 0.0
    if m == 0.0:
        return 0.0, 0.0
    u = phi / m
    loc = float(u.mean()) * m
    scale = (float(u.std(unbiased=False)) if phi.numel() > 1 else 0.0) * m
    return loc, (scale if scale > 1e-12 * max(1.0, abs(loc)) else 0.0)


def _standardised(tree: Superposition, x: torch.Tensor, loc_scale: tuple[float, float] | None):
    """``(φ̃(x), (loc, scale))``: standardised on ``x`` unless ``loc_scale`` is given; a constant feature is 0.

    Raises :class:`~bayesstruct.exceptions.ModelSpecError` when ``φ_Γ(x)`` is not finite."""
    phi = _finite_feature(tree, x)
    if phi is None:
        raise _not_finite_error(tree)
    if loc_scale is None:
        loc_scale = _loc_scale(phi)
    loc, scale = loc_scale
    return ((phi - loc) / scale if scale > 0 else torch.zeros_like(phi)), loc_scale


def _design(tree: Any, x: torch.Tensor, feature_loc: float | None, feature_scale: float | None) -> torch.Tensor:
    tree = as_superposition(tree)
    x = _check_inputs(x)
    loc_scale = None if feature_loc is None else (feature_loc, feature_scale)
    feature = _standardised(tree, x, loc_scale)[0]
    return torch.stack([torch.ones_like(feature), feature], dim=-1)


def superposition_model(x: torch.Tensor, y: torch.Tensor | None = None, *, tree: Any, noise_scale: float | None = None,
                        alpha: float = 0.01, lam: float = 0.01, tau_prior: tuple[float, float] = (1.0, 1.0),
                        feature_loc: float | None = None, feature_scale: float | None = None) -> torch.Tensor:
    r"""Pyro model of the superposition ``tree`` as a Bayesian linear model, vectorisable over particles.

    Sample sites (public): ``"w"`` ``(2,)`` (intercept and slope of the standardised feature),
    ``"tau"`` (noise precision, Normal–Gamma case only) and the observed ``"y"`` ``(N,)``.

    Parameters
    ----------
    x : Tensor ``(N, D)`` or ``(N,)``; y : Tensor ``(N,)`` or None
    tree : Superposition or str
        The structure :math:`\Gamma`.
    noise_scale : float, optional
        Known noise σ (then :math:`w \sim N(0, \alpha^{-1} I)`); ``None``: Normal–Gamma with
        :math:`\tau \sim \mathrm{Gamma}(*\text{tau\_prior})` (shape, rate) and
        :math:`w \mid \tau \sim N(0, (\lambda \tau)^{-1} I)`.
    feature_loc, feature_scale : float, optional
        Standardisation of :math:`\varphi_\Gamma`; the family sets them from the training inputs
        (default: this ``x``).
    """
    Phi = _design(tree, x, feature_loc, feature_scale)
    if noise_scale is None:
        tau = pyro.sample("tau", dist.Gamma(*(Phi.new_tensor(float(v)) for v in tau_prior)))
        w_scale = (lam * tau.unsqueeze(-1)).rsqrt()
        sigma = tau.rsqrt()
    else:
        w_scale = Phi.new_tensor(alpha).rsqrt()
        sigma = Phi.new_tensor(noise_scale)
    w = pyro.sample("w", dist.Normal(Phi.new_zeros(2), w_scale).to_event(1))
    with pyro.plate("data", Phi.shape[0]):
        return pyro.sample("y", dist.Normal((w * Phi).sum(-1), sigma), obs=y)


def _superposition_conjugate_form(x: torch.Tensor, y: torch.Tensor | None, *, tree: Any, noise_scale: float | None = None,
                                  alpha: float = 0.01, lam: float = 0.01, tau_prior: tuple[float, float] = (1.0, 1.0),
                                  feature_loc: float | None = None, feature_scale: float | None = None,
                                  **_: Any) -> LinearGaussian | NormalGamma | None:
    if y is None:
        return None
    Phi = _design(tree, x, feature_loc, feature_scale)
    if noise_scale is None:
        return NormalGamma(Phi, y, lam, *tau_prior)
    return LinearGaussian(Phi, y, alpha, noise_scale ** -2)


superposition_model.conjugate_form = _superposition_conjugate_form


def _too_many_trees(grammar: SuperpositionGrammar, count: int, limit: int, size_name: str, limit_name: str,
                    sampler: str) -> str:
    """The refusal of an enumeration of ``count`` > ``limit`` trees: it names the size argument
    (``max_size`` / ``--max-size``), the count, the largest size that fits, and the sampler."""
    fits = 0
    while fits < grammar.max_size and grammar.count_trees(max_size=fits + 1) <= limit:
        fits += 1
    smaller = (f"a {size_name} of at most {fits} ({grammar.count_trees(max_size=fits):,} trees)" if fits
               else "a grammar with fewer variables")
    return (f"{size_name} {grammar.max_size}: the grammar has {count:,} trees of at most {grammar.max_size} vertices, "
            f"more than the {limit:,} that enumeration takes ({limit_name}; each is built, evaluated on the data and "
            f"scored, about 0.35 ms and 5 kB each); use {smaller}, or sample trees by Metropolis-Hastings ({sampler})")


class SuperpositionFamily(StructureFamily):
    r"""Every superposition of a grammar as one evidence table (structure key ``"tree"``).

    Parameters
    ----------
    grammar : SuperpositionGrammar or int
        The structure space and prior; an int is ``num_variables`` of the default grammar.
    distinct_on : array ``(N, D)``, optional
        Keep one tree per model on these inputs (:meth:`SuperpositionGrammar.distinct`), e.g. the
        training ``x``; without it, one tree per function up to commutative argument order.
        Trees not finite on these inputs are left out (see ``finite_on``).
    finite_on : array ``(N, D)``, optional
        Without ``distinct_on``: leave out the trees whose values are not finite on these inputs
        (the training ``x``). Give one of the two, not both.
    noise_scale, alpha, lam, tau_prior
        The likelihood and weight prior (:func:`superposition_model`).
    max_trees : int or None
        Refuse (:class:`~bayesstruct.exceptions.InvalidArgumentError`, naming ``max_size``) a
        grammar with more trees than this, counted before any is built
        (:meth:`SuperpositionGrammar.count_trees`; default :data:`MAX_ENUMERATED_TREES`);
        ``None``: no limit.
    progress : bool
        Show a tqdm progress bar while the trees are evaluated on ``distinct_on`` / ``finite_on``.

    Attributes
    ----------
    left_out : dict of str to tuple of Superposition
        The trees of the grammar that are not listed, by reason: ``{NOT_FINITE: (...)}`` for
        the trees whose values are ``inf`` or NaN on ``distinct_on`` / ``finite_on`` (they are
        not models of those data; e.g. ``square(square(square(square(exp(exp(x0))))))``
        overflows); empty when none is. Leaving trees out warns
        (:class:`TreesLeftOutWarning`, with their number and the reason); their prior mass is
        dropped (``compare`` normalises over the listed trees); :meth:`validate_structure`
        refuses them, naming the reason. When every tree is left out the family raises
        :class:`~bayesstruct.exceptions.ModelSpecError`. Without ``distinct_on`` and
        ``finite_on`` nothing is left out, and ``compare`` stops at the first tree not finite
        on its data (the error names it).

    Use :meth:`structure_prior` as ``compare``'s ``structure_prior`` for the grammar's prior
    (the default there is uniform over the listed trees).

    Examples
    --------
    >>> import torch, bayesstruct
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(100, 2, generator=g, dtype=torch.float64) * 4
    >>> y = torch.log1p(x[:, 0]) * x[:, 1] + 0.1 * torch.randn(100, generator=g, dtype=torch.float64)
    >>> fam = SuperpositionFamily(SuperpositionGrammar(2, max_size=4), distinct_on=x)
    >>> table = bayesstruct.compare(fam, x, y, methods="exact", structure_prior=fam.structure_prior,
    ...                             workers=1, progress=False)
    >>> str(table.best["tree"])
    'mul(log1p(x0), x1)'
    """

    closed_space = False  # any tree of the grammar is a structure, listed or not

    def __init__(self, grammar: SuperpositionGrammar | int, *, distinct_on: Any = None, finite_on: Any = None,
                 noise_scale: float | None = None, alpha: float = 0.01, lam: float = 0.01,
                 tau_prior: tuple[float, float] = (1.0, 1.0), max_trees: int | None = MAX_ENUMERATED_TREES,
                 progress: bool = False) -> None:
        from tqdm.auto import tqdm

        if not isinstance(grammar, SuperpositionGrammar):
            grammar = SuperpositionGrammar(grammar)
        self.grammar = grammar
        kwargs: dict[str, Any] = {"alpha": check_positive(alpha, "alpha"), "lam": check_positive(lam, "lam"),
                                  "tau_prior": check_gamma_pair(tau_prior, "tau_prior"),
                                  "noise_scale": None if noise_scale is None else check_positive(noise_scale, "noise_scale")}
        if distinct_on is not None and finite_on is not None:
            raise InvalidArgumentError("give `distinct_on` or `finite_on`, not both (`distinct_on` also leaves out the "
                                       "trees not finite on its inputs)")
        data_name = "distinct_on" if distinct_on is not None else "finite_on"
        data = distinct_on if distinct_on is not None else finite_on
        data = None if data is None else _check_inputs(data, grammar.num_variables, data_name)
        if max_trees is not None:
            max_trees = check_positive_int(max_trees, "max_trees")
        count = grammar.count_trees()
        if max_trees is not None and count > max_trees:
            raise InvalidArgumentError(_too_many_trees(grammar, count, max_trees, "max_size", "`max_trees`",
                                                       "sample_superpositions"))
        trees: Iterable[Superposition] = grammar.trees()
        if data is not None:
            trees = tqdm(trees, total=count, desc="superposition trees on the data", disable=not progress, unit="tree",
                         mininterval=0.5)
        not_finite: list[Superposition] = []
        if distinct_on is not None:
            listed, not_finite = grammar._distinct(_shared_features(trees, data), skip_not_finite=True)
            self._log_prior = dict(listed)
        else:
            self._log_prior = {}
            pairs = ((t, t) for t in trees) if data is None else _shared_features(trees, data)
            for t, phi in pairs:
                if phi is None:
                    not_finite.append(t)
                else:
                    self._log_prior[t] = grammar._log_prob(t) + math.log(t.num_orderings())
        if data is not None:
            trees.close()
        self.left_out: dict[str, tuple[Superposition, ...]] = {NOT_FINITE: tuple(not_finite)} if not_finite else {}
        self._left_out_trees = frozenset(not_finite)
        if not self._log_prior:
            raise ModelSpecError(f"every one of the {count} trees of at most {grammar.max_size} vertices is {NOT_FINITE} "
                                 f"({NOT_FINITE_DETAIL}), e.g. {not_finite[0]}: nothing to compare; use smaller inputs")
        if not_finite:
            examples = ", ".join(map(str, not_finite[:3])) + (", ..." if len(not_finite) > 3 else "")
            warnings.warn(f"{len(not_finite)} of the {count} trees of at most {grammar.max_size} vertices are left out: "
                          f"{NOT_FINITE} ({NOT_FINITE_DETAIL}; e.g. {examples}); the family's `left_out` lists them",
                          TreesLeftOutWarning, stacklevel=2)
        super().__init__(superposition_model, {"tree": list(self._log_prior)}, name="superposition", model_kwargs=kwargs)

    def validate_structure(self, structure: Mapping[str, Any]) -> dict[str, Any]:
        """``{"tree": Superposition}`` from a tree or its string; refuses a tree of another
        grammar, and one the family left out (:attr:`left_out`), naming the reason."""
        s = super().validate_structure(structure)
        tree = as_superposition(s["tree"], "structure['tree']")
        self.grammar._check(tree)
        if tree.canonical() in self._left_out_trees:
            raise _not_finite_error(tree)
        return {"tree": tree}

    def check_data(self, x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` ``(N, num_variables)`` (or ``(N,)`` for one variable) and ``y`` ``(N,)``, finite."""
        x, y = check_xy(x, y)
        return _check_inputs(x, self.grammar.num_variables), y

    def resolve(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any]) -> dict[str, Any]:
        x = _check_inputs(x, self.grammar.num_variables)
        loc, scale = _standardised(as_superposition(structure["tree"]), x, None)[1]
        return dict(self.model_kwargs, feature_loc=loc, feature_scale=scale)

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("noise_scale", "alpha") if resolved.get("noise_scale") is not None else ("lam", "tau_prior")
        return {k: resolved[k] for k in keys}

    def structure_prior(self, structure: Mapping[str, Any]) -> float:
        """The grammar's prior mass of a tree, with every ordering of its commutative arguments (and, for
        a listed tree, the trees it stands for); for ``compare``. The spelling does not matter:
        ``mul(x1, x0)`` has the mass of ``mul(x0, x1)``."""
        tree = as_superposition(structure["tree"]).canonical()
        lp = self._log_prior.get(tree)  # (not .get's default: it would compute the grammar's prior every time)
        return math.exp(self.grammar.log_prob(tree) + math.log(tree.num_orderings()) if lp is None else lp)


@dataclass(frozen=True)
class SuperpositionSamples:
    """Draws of :func:`sample_superpositions`: the chain of trees and what it visited.

    Attributes
    ----------
    trees : list of str
        The chain after burn-in, one canonical tree per draw.
    log_evidence : dict of str to float
        The exact log evidence of every tree the chain proposed.
    acceptance_rate : float
        Of the chain at temperature 1, after warm-up.
    seed : int
    swap_rate : float or None
        Accepted exchanges between neighbouring temperatures per step, after warm-up (None
        without tempering).
    not_finite : tuple of str
        The canonical trees the chain proposed whose values are not finite on the data
        (:data:`NOT_FINITE`): they are not models, so every such proposal was rejected, and they
        are not in ``log_evidence``.
    """

    trees: list[str]
    log_evidence: dict[str, float]
    acceptance_rate: float
    seed: int
    swap_rate: float | None = None
    not_finite: tuple[str, ...] = ()

    @property
    def left_out(self) -> dict[str, int]:
        """How many proposed trees were left out (rejected), by reason: ``{NOT_FINITE: n}``, or ``{}``."""
        return {NOT_FINITE: len(self.not_finite)} if self.not_finite else {}

    def posterior(self) -> dict[str, float]:
        """Visit frequency of each tree, largest first: the Monte Carlo estimate of p(Γ | D)."""
        counts: dict[str, int] = {}
        for t in self.trees:
            counts[t] = counts.get(t, 0) + 1
        n = len(self.trees)
        return dict(sorted(((t, c / n) for t, c in counts.items()), key=lambda kv: -kv[1]))

    @classmethod
    def concat(cls, chains: Sequence["SuperpositionSamples"]) -> "SuperpositionSamples":
        """Several chains (run with different seeds) pooled into one set of draws, chain after
        chain; the acceptance rate is the chains' mean and ``seed`` the first chain's."""
        chains = list(chains)
        if not chains or not all(isinstance(c, cls) for c in chains):
            raise InvalidArgumentError("`chains` must be a non-empty list of SuperpositionSamples")
        evidence: dict[str, float] = {}
        for c in chains:
            evidence.update(c.log_evidence)
        rates = [c.swap_rate for c in chains]
        not_finite = tuple(dict.fromkeys(t for c in chains for t in c.not_finite))
        return cls([t for c in chains for t in c.trees], evidence, float(np.mean([c.acceptance_rate for c in chains])),
                   chains[0].seed, None if None in rates else float(np.mean(rates)), not_finite)

    def stats(self) -> dict[str, np.ndarray]:
        """Scalar statistics per draw, for trace plots and convergence diagnostics: the exact
        ``log_evidence`` of the tree, its ``size`` (vertices) and ``depth``
        (see :func:`bayesstruct.io.structure_inference_data`)."""
        shape = {t: Superposition.parse(t) for t in set(self.trees)}
        return {"log_evidence": np.array([self.log_evidence[t] for t in self.trees], dtype=np.float64),
                "size": np.array([shape[t].size for t in self.trees], dtype=np.int64),
                "depth": np.array([shape[t].depth for t in self.trees], dtype=np.int64)}

    @property
    def map_tree(self) -> Superposition:
        """The most visited tree."""
        return Superposition.parse(next(iter(self.posterior())))

    def to_dict(self) -> dict[str, Any]:
        return {"posterior": self.posterior(), "acceptance_rate": self.acceptance_rate, "num_samples": len(self.trees),
                "seed": self.seed, "swap_rate": self.swap_rate, "log_evidence": self.log_evidence,
                "left_out": self.left_out}

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        top = ", ".join(f"{t}: {p:.3f}" for t, p in list(self.posterior().items())[:3])
        return f"SuperpositionSamples({len(self.trees)} draws, acceptance {self.acceptance_rate:.2f}; {top})"


#: the moves of :func:`sample_superpositions`, and their default weights
MH_MOVES: tuple[str, ...] = ("regenerate", "relabel", "resize")
DEFAULT_MOVES: dict[str, float] = {"regenerate": 0.5, "relabel": 0.25, "resize": 0.25}


def _check_moves(moves: Any) -> np.ndarray:
    """Normalised weights of :data:`MH_MOVES` from a dict (missing moves get weight 0)."""
    if moves is None:
        moves = DEFAULT_MOVES
    if not isinstance(moves, Mapping) or not moves:
        raise InvalidArgumentError(f"`moves` must be a dict of move name to weight, names in {list(MH_MOVES)}; got {moves!r}")
    unknown = sorted(set(map(str, moves)) - set(MH_MOVES))
    if unknown:
        raise InvalidArgumentError(f"`moves` names unknown move(s) {unknown}; the moves are {list(MH_MOVES)}")
    w = np.array([check_nonnegative(moves.get(m, 0.0), f"moves[{m!r}]") for m in MH_MOVES], dtype=float)
    if not w[0] > 0:
        raise InvalidArgumentError("`moves` must give 'regenerate' a positive weight: relabelling and resizing never "
                                   "change the number of binary vertices, so without it the chain cannot reach every tree")
    return w / w.sum()


def _propose(tree: Superposition, grammar: SuperpositionGrammar, cumulative: np.ndarray,
             rng: np.random.Generator) -> tuple[Superposition | None, float]:
    """One proposal of :func:`sample_superpositions` and its log Hastings ratio (prior and
    proposal terms), or ``(None, 0)`` when the move drawn has nothing to do."""
    paths = tree.paths()
    path = paths[rng.integers(len(paths))]
    move = MH_MOVES[min(int(np.searchsorted(cumulative, rng.random(), side="right")), 2)]
    if move == "regenerate":
        room = grammar.max_size - tree.size + tree.subtree(path).size
        new = grammar.sample(rng, max_size=room)
        if new is None:
            return None, 0.0
        proposal = tree.replace(path, new)
        return proposal, math.log(tree.size) - math.log(proposal.size)
    if move == "relabel":
        old = tree.subtree(path)
        labels = grammar.labels(old)
        if len(labels) < 2:
            return None, 0.0
        label = labels[rng.integers(len(labels) - 1)]
        if label == old.op:  # uniform over the other labels: the last one stands in for this one
            label = labels[-1]
        return tree.replace(path, Superposition(label, old.children)), 0.0
    if grammar.p_unary <= 0.0:
        return None, 0.0
    if rng.random() < 0.5:  # delete a unary vertex
        unary = [q for q in paths if len(tree.subtree(q).children) == 1]
        if not unary:
            return None, 0.0
        q = unary[rng.integers(len(unary))]
        proposal = tree.replace(q, tree.subtree(q).children[0])
        return proposal, math.log(len(unary)) - math.log(grammar.p_unary) - math.log(proposal.size)
    if tree.size >= grammar.max_size:
        return None, 0.0
    label = grammar.unary[rng.integers(len(grammar.unary))]  # insert one above the vertex at `path`
    proposal = tree.replace(path, Superposition(label, (tree.subtree(path),)))
    num_unary = sum(len(proposal.subtree(q).children) == 1 for q in proposal.paths())
    return proposal, math.log(grammar.p_unary) + math.log(tree.size) - math.log(num_unary)


def sample_superpositions(x: Any, y: Any, grammar: SuperpositionGrammar, *, num_samples: int = 2000,
                          warmup_steps: int = 200, noise_scale: float | None = None, alpha: float = 0.01,
                          lam: float = 0.01, tau_prior: tuple[float, float] = (1.0, 1.0), init: Any = None,
                          moves: Mapping[str, float] | None = None, temperatures: Any = None, seed: int = 0, progress: bool = True) -> SuperpositionSamples:
    r"""Metropolis–Hastings over superpositions: regenerate, relabel and resize moves.

    Each step picks one of three moves (probabilities ``moves``); each leaves the posterior
    :math:`p(\Gamma \mid D) \propto p(y \mid x, \Gamma)\, p(\Gamma)` invariant, so their mixture
    does too. :math:`|\Gamma|` is the number of vertices, :math:`p_u` the grammar's probability of a
    unary vertex, :math:`U` its unary functions and :math:`n_u(\Gamma)` the unary vertices of
    :math:`\Gamma`; a tree above ``max_size`` is rejected, which targets the truncated prior.

    * ``"regenerate"``: pick a vertex uniformly and replace its sub-tree by a fresh draw from the
      grammar. The prior and proposal terms of the regrown sub-trees cancel; accept with
      probability :math:`\min\bigl(1, \frac{p(y|x,\Gamma')\,|\Gamma|}{p(y|x,\Gamma)\,|\Gamma'|}\bigr)`.
    * ``"relabel"``: pick a vertex uniformly and give it another label of its kind, uniformly --
      another unary or binary function, or another variable at a leaf -- keeping its
      arguments (the "reassign operator / feature" moves of Jin et al. 2019, *Bayesian symbolic
      regression*, arXiv:1910.08892). Every label of a kind has the same prior mass and the
      proposal is symmetric: accept with :math:`\min(1, p(y|x,\Gamma')/p(y|x,\Gamma))`.
    * ``"resize"``: with probability 1/2 delete a unary vertex chosen uniformly (its argument
      takes its place), else insert a unary function, chosen uniformly, above a vertex chosen
      uniformly (the "delete / insert" pair of the same paper). Every insertion that gives
      :math:`\Gamma'` is the reverse of one deletion, so the Hastings ratio is
      :math:`\frac{n_u(\Gamma)}{p_u |\Gamma'|}` for a deletion and
      :math:`\frac{p_u |\Gamma|}{n_u(\Gamma')}` for an insertion, times the evidence ratio.

    A move that has nothing to do (a leaf with one variable to choose from, no unary vertex to
    delete, no room to insert) leaves the tree as it is and counts as rejected.

    **Parallel tempering** (``temperatures``; replica exchange, Swendsen & Wang 1986, Geyer
    1991): chain k targets :math:`p(y \mid x, \Gamma)^{\beta_k} p(\Gamma)`, so its evidence
    ratio is raised to :math:`\beta_k` (the prior and proposal terms are the same); after
    each round of moves a random pair of neighbours k, k+1 exchange their trees with
    probability :math:`\min\bigl(1, \exp((\beta_k - \beta_{k+1})(\log Z_{k+1} - \log Z_k))\bigr)`.
    The hot chains roam the prior and hand good trees down; only chain 0 (β = 1) is recorded.
    With sharp posteriors (many data), a tree can sit tens of nats below the best one and still
    have no better neighbour -- ``sqrt(mul(x0, x1))`` at 4 vertices on ``ranking_data(100)``,
    80 nats down, whose only way out is regrowing the whole tree -- and a single chain stays
    there for thousands of steps; run several chains and check their R-hat
    (:func:`bayesstruct.io.structure_inference_data`), or temper.

    Regeneration alone can trap the chain where the grammar is deep: from ``add(sqrt(x0), x1)``
    at the largest size, the better ``mul(sqrt(x0), x1)`` is reached only by regrowing the whole
    tree (a draw of probability ~1e-4) but by one relabelling of the root; from
    ``sqrt(mul(log1p(x0), x1))`` only a deletion reaches ``mul(log1p(x0), x1)`` in one step
    (``benchmarks/superposition.py`` measures this). The evidence is exact, cached per canonical
    tree. Use the sampler where the grammar is too large to enumerate; on small grammars it
    agrees with :class:`SuperpositionFamily` + ``compare`` (tested).

    A proposed tree whose values are not finite on ``x`` (:data:`NOT_FINITE`: an overflow such
    as ``square(square(square(square(exp(exp(x0))))))``) is not a model: its evidence counts as 0,
    so the proposal is rejected, and the result lists it (:attr:`SuperpositionSamples.not_finite`).
    A starting tree drawn from the grammar is redrawn until it is finite; an ``init`` that is not
    finite is an error.

    Parameters
    ----------
    x : array ``(N, D)``; y : array ``(N,)``
    grammar : SuperpositionGrammar
    num_samples, warmup_steps : int
        Draws kept, and moves discarded before them.
    noise_scale, alpha, lam, tau_prior
        As in :func:`superposition_model`.
    init : Superposition or str, optional
        Starting tree (default: a draw from the grammar).
    moves : dict of str to float, optional
        Weights of ``"regenerate"``, ``"relabel"`` and ``"resize"`` (normalised; default
        0.5 / 0.25 / 0.25). ``"regenerate"`` must have a positive weight: the other two never
        change the number of binary vertices, so without it the chain is not irreducible.
    temperatures : int or sequence of float, optional
        Parallel tempering: inverse temperatures :math:`1 = \beta_0 > \beta_1 > \dots > 0`, or
        their number ``n`` for the ladder :math:`2^{-k}`, k < n. Default: one chain, no tempering.
    seed : int
    progress : bool
        Show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    if not isinstance(grammar, SuperpositionGrammar):
        raise InvalidArgumentError(f"`grammar` must be a SuperpositionGrammar; got {type(grammar).__name__}")
    x, y = check_xy(x, y)
    if y is None:
        raise InvalidArgumentError("`y` is required")
    x = _check_inputs(x, grammar.num_variables)
    num_samples = check_positive_int(num_samples, "num_samples")
    warmup_steps = check_positive_int(warmup_steps, "warmup_steps", minimum=0)
    kwargs = dict(noise_scale=None if noise_scale is None else check_positive(noise_scale, "noise_scale"),
                  alpha=check_positive(alpha, "alpha"), lam=check_positive(lam, "lam"),
                  tau_prior=check_gamma_pair(tau_prior, "tau_prior"))
    cumulative = np.cumsum(_check_moves(moves))
    betas = check_temperatures(temperatures)
    rng = np.random.default_rng(check_seed(seed))
    cache: dict[str, float] = {}
    not_finite: dict[str, None] = {}  # canonical trees proposed that are not finite on x, in order

    def log_z(tree: Superposition) -> float:
        key = str(tree.canonical())
        if key not in cache:
            if key in not_finite:
                return -math.inf
            if _finite_feature(tree, x) is None:
                not_finite[key] = None
                return -math.inf
            cache[key] = float(_superposition_conjugate_form(x, y, tree=tree, **kwargs).log_evidence())
        return cache[key]

    if init is None:
        tree = None
        for _ in range(10_000):
            tree = grammar.sample(rng)
            if tree is not None and _finite_feature(tree, x) is not None:
                break
        else:
            raise ModelSpecError(f"no tree of 10000 drawn from the grammar is finite on the data ({NOT_FINITE_DETAIL}); "
                                 "use smaller inputs or pass `init`")
    else:
        tree = as_superposition(init, "init")
        grammar._check(tree)
        if tree.size > grammar.max_size:
            raise InvalidArgumentError(f"`init` has {tree.size} vertices, above the grammar's max_size {grammar.max_size}")
        if _finite_feature(tree, x) is None:
            raise InvalidArgumentError(f"`init` {tree} is not finite on the data ({NOT_FINITE_DETAIL}); start from "
                                       "another tree")
    chain: list[str] = []
    accepted = swaps = 0
    trees = [tree] * len(betas)
    with float64(single_thread=True):  # 2x2 solves: extra threads only slow them down (13x on 2 busy cores)
        currents = [log_z(tree)] * len(betas)
        for step in tqdm(range(warmup_steps + num_samples), desc="superposition MH", disable=not progress, unit="step"):
            for k, beta in enumerate(betas):
                proposal, log_ratio = _propose(trees[k], grammar, cumulative, rng)
                if proposal is not None:
                    lz = log_z(proposal)
                    if rng.random() < math.exp(min(0.0, beta * (lz - currents[k]) + log_ratio)):  # log(0) never
                        trees[k], currents[k] = proposal, lz
                        accepted += k == 0 and step >= warmup_steps
            k = propose_exchange(betas, currents, rng)
            if k is not None:
                trees[k], trees[k + 1] = trees[k + 1], trees[k]
                currents[k], currents[k + 1] = currents[k + 1], currents[k]
                swaps += step >= warmup_steps
            if step >= warmup_steps:
                chain.append(str(trees[0].canonical()))
    return SuperpositionSamples(chain, dict(cache), accepted / num_samples, seed,
                                swaps / num_samples if len(betas) > 1 else None, tuple(not_finite))
