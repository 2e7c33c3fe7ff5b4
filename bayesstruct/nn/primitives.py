r"""Primitive differentiable functions :math:`g(w, x)` -- the alternatives on an edge.

Each edge :math:`(j, k)` of a structure graph carries a vector of primitives
:math:`g^{j,k} = [g^{j,k}_0, \dots, g^{j,k}_{K-1}]` (the lecture's "deep learning model
structure as a graph"). A primitive here is a small :class:`PrimitiveModule` built by a
factory registered under a name::

    >>> from bayesstruct.nn import get_primitive
    >>> g = get_primitive("conv3x3").make((3, 8, 8), 16)   # in_shape (C, H, W), out_channels
    >>> g.out_shape
    (16, 8, 8)
    >>> g.num_params(), g.flops()
    (448, 55296)

Shapes are *per sample*: ``(D,)`` for vectors, ``(C, H, W)`` for images. A primitive's
``forward`` accepts any leading (batch) dimensions: ``(..., *in_shape) -> (..., *out_shape)``.

FLOPs convention
----------------
FLOPs count one sample's forward pass, as **2 x multiply-adds** of the affine part
(the convention of most NAS papers' "FLOPs" = 2 MACs):

* ``linear*``: :math:`2 D_{in} D_{out}`; bias and activation are not counted;
* ``conv3x3`` / ``conv1x1``: :math:`2 C_{in} k^2 C_{out} H W` (padding keeps ``H x W``);
* ``avgpool3x3`` / ``maxpool3x3``: one operation per window element,
  :math:`9 C H W`;
* ``identity`` / ``flatten`` / ``zero``: 0.

Registered primitives
---------------------
``linear``, ``linear_sigmoid``, ``linear_relu``, ``linear_tanh``, ``linear_softmax``
(generalised-linear: :math:`\sigma(W x + b)`, ``(D_in,) -> (D_out,)``); ``conv3x3``,
``conv1x1`` (stride 1, padding keeps ``H x W``, with bias); ``avgpool3x3``, ``maxpool3x3``
(stride 1, padding 1; keep the shape, ignore ``out``); ``identity`` (keeps the shape,
ignores ``out``); ``flatten`` (``(C, H, W) -> (C H W,)``, or any shape to its
product; ignores ``out``; joins image vertices to generalised-linear ones); ``zero`` (the "no connection" primitive: zeros of shape
``(out, *in_shape[1:])``, or of ``in_shape`` when ``out`` is ``None``; so it matches every
primitive that keeps the rank -- with ``out == C`` it keeps the channel count -- but not
``flatten``, which changes it: an edge cannot offer both ``flatten`` and ``zero``).
Add one with :func:`register_primitive`.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bayesstruct._registry import Registry
from bayesstruct.exceptions import InvalidArgumentError

__all__ = [
    "PrimitiveModule",
    "register_primitive",
    "get_primitive",
    "list_primitives",
    "make_primitive",
]



def as_shape(shape: Any, name: str) -> tuple[int, ...]:
    """Validate a per-sample shape: a non-empty sequence of positive ints."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) == 0
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        raise InvalidArgumentError(
            f"`{name}` must be a per-sample shape: a non-empty tuple of positive ints such as (D,) or (C, H, W); "
            f"got {shape!r}"
        )
    return tuple(int(s) for s in shape)


def _check_out(out: Any, name: str) -> int:
    if isinstance(out, bool) or not isinstance(out, int) or out <= 0:
        raise InvalidArgumentError(f"primitive {name!r} needs `out` (features or channels) as a positive int; got {out!r}")
    return int(out)


class PrimitiveModule(nn.Module):
    """Base class of a primitive :math:`g(w, x)`: ``(..., *in_shape) -> (..., *out_shape)``.

    Subclasses set ``in_rank`` (1 for vectors ``(D,)``, 3 for images ``(C, H, W)``),
    implement :meth:`infer_shape`, :meth:`flops` and ``forward``, and are registered with
    :func:`register_primitive`. Build one with ``cls.make(in_shape, out)``.

    Parameters
    ----------
    in_shape : tuple of int
        Per-sample input shape.
    out : int, optional
        Output features (vector primitives) or channels (image primitives); ignored by
        primitives that keep the shape.
    """

    name: ClassVar[str] = ""
    #: number of per-sample input dimensions (1: ``(D,)``, 3: ``(C, H, W)``)
    in_rank: ClassVar[int] = 1

    def __init__(self, in_shape: Sequence[int], out: int | None = None) -> None:
        super().__init__()
        self.in_shape = type(self).check_in_shape(in_shape)
        self.out = out
        self.out_shape = type(self).infer_shape(self.in_shape, out)

    # -- factory and shape rules ------------------------------------------------------
    @classmethod
    def make(cls, in_shape: Sequence[int], out: int | None = None) -> "PrimitiveModule":
        """Build the primitive for inputs of per-sample shape ``in_shape``."""
        return cls(in_shape, out)

    @classmethod
    def check_in_shape(cls, in_shape: Sequence[int]) -> tuple[int, ...]:
        shape = as_shape(in_shape, "in_shape")
        if len(shape) != cls.in_rank:
            kind = "(D,)" if cls.in_rank == 1 else "(C, H, W)"
            raise InvalidArgumentError(
                f"primitive {cls.name!r} takes inputs of per-sample shape {kind}; got in_shape {shape}"
            )
        return shape

    @classmethod
    def infer_shape(cls, in_shape: Sequence[int], out: int | None = None) -> tuple[int, ...]:  # pragma: no cover
        """Per-sample output shape for input shape ``in_shape`` (validated) and ``out``."""
        raise NotImplementedError

    def output_shape(self, in_shape: Sequence[int] | None = None) -> tuple[int, ...]:
        """Per-sample output shape of this primitive for ``in_shape`` (default: its own)."""
        return type(self).infer_shape(self.in_shape if in_shape is None else in_shape, self.out)

    # -- operational counts -----------------------------------------------------------
    def num_params(self) -> int:
        """Number of scalar parameters, ``sum(p.numel() for p in self.parameters())``."""
        return int(sum(p.numel() for p in self.parameters()))

    def flops(self, in_shape: Sequence[int] | None = None) -> int:  # pragma: no cover
        """FLOPs of one sample (2 x multiply-adds, see the module docstring)."""
        raise NotImplementedError

    def _lead(self, x: torch.Tensor) -> tuple[torch.Size, torch.Size]:
        """``x.shape`` split into the leading (batch) dims and the per-sample shape, which must be ``in_shape``."""
        r = len(self.in_shape)
        if x.dim() < r or tuple(x.shape[x.dim() - r:]) != self.in_shape:
            raise InvalidArgumentError(
                f"primitive {self.name!r} expects inputs (..., {', '.join(map(str, self.in_shape))}); "
                f"got shape {tuple(x.shape)}"
            )
        return x.shape[: x.dim() - r], x.shape[x.dim() - r:]

    def _check_dtype(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        if x.dtype != weight.dtype:
            raise InvalidArgumentError(
                f"primitive {self.name!r} has {weight.dtype} weights; got an input of dtype {x.dtype} "
                f"(cast one of them, e.g. x.to({weight.dtype}))"
            )

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"


_REGISTRY = Registry(PrimitiveModule, "primitive", "bayesstruct.nn.register_primitive")


def register_primitive(name: str) -> Callable[[type[PrimitiveModule]], type[PrimitiveModule]]:
    """Class decorator adding a :class:`PrimitiveModule` subclass to the registry as ``name``.

    >>> @register_primitive("my-op")                  # doctest: +SKIP
    ... class MyOp(PrimitiveModule):
    ...     in_rank = 1
    ...     @classmethod
    ...     def infer_shape(cls, in_shape, out=None): return cls.check_in_shape(in_shape)
    ...     def flops(self, in_shape=None): return 0
    ...     def forward(self, x): return 2 * x
    """
    return _REGISTRY.register(name)


def list_primitives() -> list[str]:
    """Names of the registered primitives."""
    return _REGISTRY.names()


def get_primitive(name: str) -> type[PrimitiveModule]:
    """The primitive class registered as ``name``; build it with ``.make(in_shape, out)``.

    Unknown names raise :class:`~bayesstruct.exceptions.UnknownNameError` listing the
    registered ones.
    """
    return _REGISTRY.lookup(name)


def make_primitive(name: str, in_shape: Sequence[int], out: int | None = None) -> PrimitiveModule:
    """Shorthand for ``get_primitive(name).make(in_shape, out)``."""
    return get_primitive(name).make(in_shape, out)


# --------------------------------------------------------------------------------------
# vector primitives
# --------------------------------------------------------------------------------------


class _Linear(PrimitiveModule):
    """Generalised-linear primitive :math:`\\sigma(W x + b)`, ``(D_in,) -> (D_out,)``."""

    in_rank = 1
    activation: ClassVar[Callable[[torch.Tensor], torch.Tensor] | None] = None

    def __init__(self, in_shape: Sequence[int], out: int | None = None) -> None:
        super().__init__(in_shape, out)
        self.linear = nn.Linear(self.in_shape[0], self.out_shape[0])

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        cls.check_in_shape(in_shape)
        return (_check_out(out, cls.name),)

    def flops(self, in_shape=None):
        d_in = type(self).check_in_shape(self.in_shape if in_shape is None else in_shape)[0]
        return 2 * d_in * self.out_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._lead(x)
        self._check_dtype(x, self.linear.weight)
        y = self.linear(x)
        act = type(self).activation
        return y if act is None else act(y)


@register_primitive("linear")
class Linear(_Linear):
    """Affine map :math:`W x + b`."""


@register_primitive("linear_sigmoid")
class LinearSigmoid(_Linear):
    """Generalised-linear :math:`\\sigma(W x + b)` with the logistic sigmoid."""

    activation = staticmethod(torch.sigmoid)


@register_primitive("linear_relu")
class LinearReLU(_Linear):
    """:math:`\\max(0, W x + b)`."""

    activation = staticmethod(torch.relu)


@register_primitive("linear_tanh")
class LinearTanh(_Linear):
    """:math:`\\tanh(W x + b)`."""

    activation = staticmethod(torch.tanh)


@register_primitive("linear_softmax")
class LinearSoftmax(_Linear):
    """:math:`\\mathrm{softmax}(W x + b)`, the lecture's output layer."""

    activation = staticmethod(lambda y: torch.softmax(y, dim=-1))


# --------------------------------------------------------------------------------------
# shape-keeping primitives (any rank)
# --------------------------------------------------------------------------------------


class _AnyRank(PrimitiveModule):
    @classmethod
    def check_in_shape(cls, in_shape):
        return as_shape(in_shape, "in_shape")


@register_primitive("identity")
class Identity(_AnyRank):
    """:math:`g(x) = x`; keeps the shape, ignores ``out``."""

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        return cls.check_in_shape(in_shape)

    def flops(self, in_shape=None):
        return 0

    def forward(self, x):
        self._lead(x)  # the per-sample shape is in_shape
        return x


@register_primitive("flatten")
class Flatten(_AnyRank):
    """:math:`g(x) = \\mathrm{vec}(x)`: ``(C, H, W) -> (C H W,)`` (any shape to its product); ignores ``out``."""

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        shape = cls.check_in_shape(in_shape)
        n = 1
        for s in shape:
            n *= s
        return (n,)

    def flops(self, in_shape=None):
        return 0

    def forward(self, x):
        lead, _ = self._lead(x)
        return x.reshape(tuple(lead) + self.out_shape)


@register_primitive("zero")
class Zero(_AnyRank):
    """:math:`g(x) = 0` ("no connection"); shape ``(out, *in_shape[1:])``, or ``in_shape`` if ``out`` is None."""

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        shape = cls.check_in_shape(in_shape)
        if out is None:
            return shape
        return (_check_out(out, cls.name),) + shape[1:]

    def flops(self, in_shape=None):
        return 0

    def forward(self, x):
        lead, _ = self._lead(x)
        return x.new_zeros(tuple(lead) + self.out_shape)


# --------------------------------------------------------------------------------------
# image primitives (C, H, W)
# --------------------------------------------------------------------------------------


class _Image(PrimitiveModule):
    in_rank = 3

    def _apply2d(self, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        lead, tail = self._lead(x)
        y = fn(x.reshape((-1,) + tuple(tail)))
        return y.reshape(tuple(lead) + tuple(y.shape[1:]))


class _Conv(_Image):
    kernel_size: ClassVar[int] = 3

    def __init__(self, in_shape, out=None):
        super().__init__(in_shape, out)
        k = type(self).kernel_size
        self.conv = nn.Conv2d(self.in_shape[0], self.out_shape[0], k, stride=1, padding=k // 2)

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        c, h, w = cls.check_in_shape(in_shape)
        return (_check_out(out, cls.name), h, w)

    def flops(self, in_shape=None):
        c, h, w = type(self).check_in_shape(self.in_shape if in_shape is None else in_shape)
        return 2 * c * type(self).kernel_size ** 2 * self.out_shape[0] * h * w

    def forward(self, x):
        self._lead(x)
        self._check_dtype(x, self.conv.weight)
        return self._apply2d(x, self.conv)


@register_primitive("conv3x3")
class Conv3x3(_Conv):
    """3x3 convolution, stride 1, padding 1, with bias: ``(C, H, W) -> (out, H, W)``."""

    kernel_size = 3


@register_primitive("conv1x1")
class Conv1x1(_Conv):
    """1x1 convolution with bias: ``(C, H, W) -> (out, H, W)``."""

    kernel_size = 1


class _Pool(_Image):
    window: ClassVar[int] = 3

    @classmethod
    def infer_shape(cls, in_shape, out=None):
        return cls.check_in_shape(in_shape)

    def flops(self, in_shape=None):
        c, h, w = type(self).check_in_shape(self.in_shape if in_shape is None else in_shape)
        return type(self).window ** 2 * c * h * w


@register_primitive("avgpool3x3")
class AvgPool3x3(_Pool):
    """3x3 average pooling, stride 1, padding 1 (zeros not counted); keeps the shape."""

    def forward(self, x):
        return self._apply2d(x, lambda t: F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False))


@register_primitive("maxpool3x3")
class MaxPool3x3(_Pool):
    """3x3 max pooling, stride 1, padding 1; keeps the shape."""

    def forward(self, x):
        return self._apply2d(x, lambda t: F.max_pool2d(t, 3, stride=1, padding=1))
