r"""The lecture's two structure-selection examples as ready graphs and families.

**One-layer network** (lecture: "Structure selection: one-layer network")

.. math::

    f(x) = \mathrm{softmax}\big(w^\top (\gamma_0\, g_0(W_0 x) + \gamma_1\, g_1(W_1 x))\big),
    \qquad \Gamma = [\gamma^{0,1}, \gamma^{1,2}],

three vertices: ``x`` (vertex 0), the hidden layer :math:`f_1 = \langle \gamma^{0,1}, g^{0,1} \rangle (x)`
(vertex 1), and the class logits (vertex 2, a ``linear`` edge; the softmax is the
Categorical likelihood of :func:`~bayesstruct.families.network.network_model`). The
primitives :math:`g_i` on edge 0 -> 1 are the user's choice; the lecture's are two
generalised-linear layers, e.g. ``("linear", "linear_sigmoid")``.

**Convolutional search space** (lecture: "neural architecture search space")

.. math::

    f(x) = \mathrm{softmax}\big(w^\top \mathrm{vec}(\gamma_0\, \mathrm{conv}(x) + \gamma_1\, \mathrm{pool}(x))\big),

vertex 0 the image ``(C, H, W)``, vertex 1 the feature map after edge 0 -> 1 (convolution
vs pooling), vertex 2 its flattening, vertex 3 the logits (generalised-linear output).
Pooling keeps the channel count, so with it on the edge ``channels`` must equal ``C``.

**Two-layer cell** (a search space for :mod:`bayesstruct.search`, in the spirit of the DARTS
cell): vertex 1 is a hidden layer, vertex 2 a second one fed by vertex 1 and, through a skip
edge, by the input; :math:`4 \times 4 \times 2 = 32` structures.

>>> g = one_layer_graph(64, 10, hidden=16)
>>> g.edges[(0, 1)], g.edges[(1, 2)]
(('linear', 'linear_sigmoid'), ('linear',))
>>> conv_graph((1, 8, 8), 10).edges[(0, 1)]
('conv3x3', 'avgpool3x3')
"""

from __future__ import annotations

from typing import Any, Sequence

from bayesstruct._validation import check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.network import NetworkFamily
from bayesstruct.nn.graph import StructureGraph
from bayesstruct.nn.primitives import as_shape

__all__ = ["one_layer_graph", "conv_graph", "cell_graph", "one_layer_family", "conv_family", "EXAMPLE_GRAPHS"]


def _primitives(primitives: Any) -> list[str]:
    if isinstance(primitives, str):
        primitives = [p.strip() for p in primitives.split(",") if p.strip()]
    try:
        names = list(primitives)
    except TypeError:
        raise InvalidArgumentError(f"`primitives` must be a list of primitive names; got {primitives!r}") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgumentError(f"`primitives` must be a non-empty list of primitive names; got {primitives!r}")
    return names


def one_layer_graph(num_inputs: int, num_classes: int, *, hidden: int = 32,
                    primitives: Sequence[str] | str = ("linear", "linear_sigmoid")) -> StructureGraph:
    """The lecture's one-layer network: edge 0 -> 1 mixes ``primitives``, edge 1 -> 2 is ``linear``.

    Parameters
    ----------
    num_inputs : int
        ``D``, features of ``x`` ``(N, D)``.
    num_classes : int
        ``C``, logits at the output vertex (regression: 1).
    hidden : int
        Width of the hidden vertex 1.
    primitives : list of str or comma-separated str
        The alternatives :math:`g^{0,1}` (registered vector primitives, e.g. ``linear``,
        ``linear_sigmoid``, ``linear_tanh``, ``linear_relu``, ``zero``).
    """
    d = check_positive_int(num_inputs, "num_inputs")
    c = check_positive_int(num_classes, "num_classes")
    h = check_positive_int(hidden, "hidden")
    return StructureGraph(3, {(0, 1): _primitives(primitives), (1, 2): "linear"},
                          input_shape=(d,), vertex_shapes={1: (h,), 2: (c,)})


def conv_graph(image_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *, channels: int | None = None,
               primitives: Sequence[str] | str = ("conv3x3", "avgpool3x3")) -> StructureGraph:
    """The lecture's convolutional space: convolution vs pooling on 0 -> 1, then a generalised-linear output.

    Parameters
    ----------
    image_shape : (C, H, W)
        Per-sample image shape (digits: ``(1, 8, 8)``, MNIST: ``(1, 28, 28)``).
    num_classes : int
        Logits at the output vertex 3.
    channels : int, optional
        Channels of vertex 1 (default ``C``; pooling keeps ``C``, so a pooling primitive on
        the edge needs ``channels == C``).
    primitives : list of str or comma-separated str
        The alternatives on edge 0 -> 1 (image primitives: ``conv3x3``, ``conv1x1``,
        ``avgpool3x3``, ``maxpool3x3``, ``identity``, ``zero``).
    """
    shape = as_shape(image_shape, "image_shape")
    if len(shape) != 3:
        raise InvalidArgumentError(f"`image_shape` must be (C, H, W); got {shape}")
    c_in, h, w = shape
    ch = c_in if channels is None else check_positive_int(channels, "channels")
    c = check_positive_int(num_classes, "num_classes")
    try:
        return StructureGraph(4, {(0, 1): _primitives(primitives), (1, 2): "flatten", (2, 3): "linear"},
                              input_shape=shape, vertex_shapes={1: (ch, h, w), 2: (ch * h * w,), 3: (c,)})
    except InvalidArgumentError as exc:
        if ch != c_in and str(exc).startswith("edge (0, 1)"):
            raise InvalidArgumentError(
                f"`channels`={ch} differs from the image's C={c_in}, but a shape-keeping primitive (pooling, identity) "
                f"on edge 0 -> 1 keeps C channels; use channels={c_in} or only convolutions ({exc})"
            ) from None
        raise


def cell_graph(num_inputs: int, num_classes: int, *, hidden: int = 32) -> StructureGraph:
    """A two-layer cell with a skip edge: 32 structures to search.

    ========  ===============================================================
    edge      primitives
    ========  ===============================================================
    0 -> 1    ``linear_relu``, ``linear_tanh``, ``linear_sigmoid``, ``zero``
    1 -> 2    ``linear_relu``, ``linear_tanh``, ``identity``, ``zero``
    0 -> 2    ``linear_relu``, ``zero`` (the skip edge)
    2 -> 3    ``linear`` (the logits)
    ========  ===============================================================

    Vertices 1 and 2 have ``hidden`` units and sum their incoming edges. ``zero`` on
    0 -> 1 and on 0 -> 2 cuts the input off: the output is a constant.
    """
    d = check_positive_int(num_inputs, "num_inputs")
    c = check_positive_int(num_classes, "num_classes")
    h = check_positive_int(hidden, "hidden")
    return StructureGraph(4, {(0, 1): ["linear_relu", "linear_tanh", "linear_sigmoid", "zero"],
                              (1, 2): ["linear_relu", "linear_tanh", "identity", "zero"],
                              (0, 2): ["linear_relu", "zero"], (2, 3): "linear"},
                          input_shape=(d,), vertex_shapes={1: (h,), 2: (h,), 3: (c,)})


def one_layer_family(num_inputs: int, num_classes: int, *, hidden: int = 32,
                     primitives: Sequence[str] | str = ("linear", "linear_sigmoid"), **family_kwargs: Any) -> NetworkFamily:
    """:class:`NetworkFamily` of :func:`one_layer_graph` (``family_kwargs``: ``weight_precision``, ``task``, ...)."""
    return NetworkFamily(one_layer_graph(num_inputs, num_classes, hidden=hidden, primitives=primitives), **family_kwargs)


def conv_family(image_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *, channels: int | None = None,
                primitives: Sequence[str] | str = ("conv3x3", "avgpool3x3"), **family_kwargs: Any) -> NetworkFamily:
    """:class:`NetworkFamily` of :func:`conv_graph`. ``compare`` and ``log_evidence`` of the family take
    ``x`` flat, ``(N, C*H*W)`` (``x.reshape(len(x), -1)``); a bound structure, ``fit_structure_posterior``
    and ``refit_discrete`` take ``(N, C, H, W)`` too."""
    return NetworkFamily(conv_graph(image_shape, num_classes, channels=channels, primitives=primitives), **family_kwargs)


#: the example graphs by CLI name (``bayesstruct fit network --family ...``)
EXAMPLE_GRAPHS = {"one-layer": one_layer_graph, "conv": conv_graph}
