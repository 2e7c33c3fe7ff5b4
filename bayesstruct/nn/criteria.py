r"""Operational criteria of a structure (the lecture's "operational quality criteria").

The lecture lists, besides the evidence, four costs of a structure: the number of
parameters in its elements, the number of vertices, the number of edges, and the cost of
computing its subfunctions -- FLOPs, and the latency measured on the target hardware
(FBNet, Wu et al., 2019). :func:`operational_criteria` measures all of them::

    >>> import torch
    >>> from bayesstruct.nn import StructureGraph, StructureNetwork, operational_criteria
    >>> graph = StructureGraph(3, {(0, 1): ["linear_relu", "zero"], (1, 2): "linear"},
    ...                        input_shape=(4,), vertex_shapes={1: (8,), 2: (2,)})
    >>> c = operational_criteria(StructureNetwork(graph), (4,), repeats=3, warmup=1)
    >>> c.num_params, c.num_vertices, c.num_edges, c.flops
    (58, 3, 2, 96)
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from bayesstruct import _json
from bayesstruct._modes import eval_mode
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn.graph import DiscreteStructureNetwork, StructureNetwork, _edge_key
from bayesstruct.nn.primitives import PrimitiveModule, as_shape

__all__ = ["Criteria", "operational_criteria", "count_flops"]


@dataclass(frozen=True)
class Criteria:
    """Operational criteria of one network.

    Attributes
    ----------
    num_params : int
        Scalar parameters, ``sum(p.numel())``; for a structure network, of the primitives on the
        edges in use only (see ``num_edges``).
    num_vertices : int
        Vertices in use: the input, the output and every vertex touched by an edge in use
        (0 for a module that is not a structure network).
    num_edges : int
        Edges in use (:meth:`~bayesstruct.nn.DiscreteStructureNetwork.edges_in_use`): edges whose
        (chosen) primitive is not ``zero`` and that lie on a path of such edges to the output --
        an edge into a vertex cut off from the output by ``zero`` edges cannot change :math:`f`
        and is not counted, nor are its parameters (0 for a plain module).
    flops : int
        FLOPs of one sample's forward pass, 2 x multiply-adds (see :mod:`bayesstruct.nn.primitives`).
    latency_ms : float
        Median wall time of a forward pass of a batch of one, in milliseconds, on this machine.
    """

    num_params: int
    num_vertices: int
    num_edges: int
    flops: int
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        return (f"{self.num_params} params, {self.num_vertices} vertices, {self.num_edges} edges, "
                f"{self.flops} FLOPs, {self.latency_ms:.3f} ms")


def _module_flops(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(m, PrimitiveModule):
        r = len(m.in_shape)
        lead = inp.shape[: inp.dim() - r]
        return m.flops(tuple(inp.shape[inp.dim() - r:])) * int(lead.numel())
    if isinstance(m, nn.Linear):
        return 2 * m.in_features * m.out_features * int(inp.shape[:-1].numel())
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        return 2 * (m.in_channels // m.groups) * kh * kw * out.numel()
    return 0


def count_flops(module: nn.Module, x: torch.Tensor, *args: Any) -> int:
    """FLOPs of ``module(x, *args)``, from forward hooks on primitives, ``nn.Linear`` and ``nn.Conv2d``.

    The pass runs in evaluation mode (each submodule's flag is restored after it), so measuring
    a network never updates its batch-norm statistics. Submodules of a primitive are not
    counted twice; other modules count 0.
    """
    inside: set[int] = set()
    for m in module.modules():
        if isinstance(m, PrimitiveModule):
            inside.update(id(c) for c in m.modules() if c is not m)
    total = [0]

    def hook(m, inputs, output):
        total[0] += _module_flops(m, inputs[0], output)

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if id(m) not in inside and isinstance(m, (PrimitiveModule, nn.Linear, nn.Conv2d))
    ]
    try:
        with eval_mode(module), torch.no_grad():
            module(x, *args)
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


def operational_criteria(
    module: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    gamma: Mapping[tuple, Any] | None = None,
    repeats: int = 20,
    warmup: int = 3,
) -> Criteria:
    """Parameters, vertices, edges, FLOPs and latency of a network.

    Parameters
    ----------
    module : StructureNetwork, DiscreteStructureNetwork or nn.Module
        With ``gamma`` given, a :class:`StructureNetwork` is first discretized
        (:meth:`StructureNetwork.discretize`): the criteria of the chosen structure. Without
        it, the whole mixture network is measured (every primitive, evaluated at the
        default :math:`\\gamma`). A plain module is called as ``module(x)``.
    input_shape : tuple of int, optional
        Per-sample input shape; defaults to the graph's ``input_shape`` for structure networks.
    gamma : dict of (int, int) to Tensor, optional
        One structure ``{(j, k): (K,)}``, only for a :class:`StructureNetwork`.
    repeats, warmup : int
        Timed and untimed forward passes (batch of one, ``torch.no_grad``, eval mode).

    Returns
    -------
    Criteria
    """
    if not isinstance(module, nn.Module):
        raise InvalidArgumentError(f"`module` must be an nn.Module; got {type(module).__name__}")
    for name, v, lo in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InvalidArgumentError(f"`{name}` must be an int >= {lo}; got {v!r}")
    if gamma is not None:
        if not isinstance(module, StructureNetwork):
            raise InvalidArgumentError("`gamma` applies to a StructureNetwork only; got a "
                                       f"{type(module).__name__}")
        module = module.discretize(gamma)
    if input_shape is None:
        if not isinstance(module, (StructureNetwork, DiscreteStructureNetwork)):
            raise InvalidArgumentError("`input_shape` is required for a module that is not a structure network")
        input_shape = module.graph.input_shape
    shape = as_shape(input_shape, "input_shape")

    if isinstance(module, (StructureNetwork, DiscreteStructureNetwork)):
        edges = module.edges_in_use()
        vertices = {0, module.graph.output_vertex} | {v for e in edges for v in e}
        num_vertices, num_edges = len(vertices), len(edges)
        counted = [module.ops[_edge_key(e)] for e in edges]
    else:
        num_vertices = num_edges = 0
        counted = [module]
    num_params = sum({id(p): p.numel() for m in counted for p in m.parameters()}.values())  # shared ones once

    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn((1,) + shape, dtype=dtype, device=device)

    try:
        flops = count_flops(module, x)
    except RuntimeError as exc:
        if isinstance(module, (StructureNetwork, DiscreteStructureNetwork)):
            raise
        raise InvalidArgumentError(
            f"`input_shape` {shape} does not fit the module: calling it on a batch of shape {tuple(x.shape)} "
            f"failed ({str(exc).splitlines()[0]})"
        ) from None
    with eval_mode(module), torch.no_grad():
        for _ in range(warmup):
            module(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - start) * 1e3)
    return Criteria(
        num_params=int(num_params),
        num_vertices=num_vertices,
        num_edges=num_edges,
        flops=flops,
        latency_ms=float(statistics.median(times)),
    )
