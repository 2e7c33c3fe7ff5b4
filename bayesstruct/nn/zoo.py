"""The reference networks of the pruning literature, as plain ``nn.Sequential`` models.

* :func:`lenet300` -- LeNet-300-100, the fully connected ``784-300-100-10`` ReLU net of
  LeCun et al. (1998) on which Han et al. (NIPS 2015), Deep Compression (Han, Mao &
  Dally, ICLR 2016) and Sparse VD (Molchanov et al., ICML 2017) report their numbers.
* :func:`lenet5` -- the Caffe "LeNet-5" those papers prune: ``conv 20@5x5 -> max-pool 2
  -> conv 50@5x5 -> max-pool 2 -> fc 500 -> ReLU -> fc 10`` (431k weights on 28x28 MNIST).

Both are ``nn.Sequential`` of ``Linear``/``Conv2d``/``ReLU``/``MaxPool2d``/``Flatten``, so
every tool of :mod:`bayesstruct.prune` applies, including writing a Deep Compression file
(:func:`bayesstruct.prune.compress`). They output logits ``(N, num_classes)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bayesstruct._validation import check_positive_int
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError

__all__ = ["lenet300", "lenet5", "ARCHITECTURES", "make_architecture"]


def _factory(dtype: Any) -> dict[str, Any]:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidArgumentError(f"`dtype` must be a floating torch.dtype (e.g. torch.float32) or None; got {dtype!r}")
    return {"dtype": dtype}


def lenet300(
    num_inputs: int = 784, num_classes: int = 10, *, hidden: tuple[int, ...] = (300, 100), dtype: torch.dtype | None = None
) -> nn.Sequential:
    """LeNet-300-100: ``num_inputs -> 300 -> ReLU -> 100 -> ReLU -> num_classes``.

    On MNIST (``num_inputs=784``) it has ``235,200 + 30,000 + 1,000 = 266,200`` prunable
    weights and 410 biases. Input: flattened images ``(N, num_inputs)``; output: logits
    ``(N, num_classes)``.

    Parameters
    ----------
    num_inputs, num_classes : int >= 1
        784 and 10 for MNIST; 64 and 10 for scikit-learn's 8x8 digits.
    hidden : tuple of int
        Hidden widths (the name's 300 and 100 by default).
    dtype : torch.dtype, optional
        Parameter dtype (default: torch's default dtype).

    Examples
    --------
    >>> net = lenet300(64)
    >>> net(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """
    num_inputs = check_positive_int(num_inputs, "num_inputs")
    num_classes = check_positive_int(num_classes, "num_classes")
    if isinstance(hidden, int) or not hidden:
        raise InvalidArgumentError(f"`hidden` must be a non-empty tuple of widths, e.g. (300, 100); got {hidden!r}")
    widths = [num_inputs, *(check_positive_int(h, "hidden") for h in hidden)]
    kw = _factory(dtype)
    mods: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [nn.Linear(a, b, **kw), nn.ReLU()]
    mods.append(nn.Linear(widths[-1], num_classes, **kw))
    return nn.Sequential(*mods)


def _conv_out(size: int, kernel: int, padding: int) -> int:
    return size + 2 * padding - kernel + 1


def lenet5(
    input_size: int = 28, num_classes: int = 10, *, num_channels: int = 1, padding: int | str = "auto",
    dtype: torch.dtype | None = None,
) -> nn.Sequential:
    """LeNet-5 as pruned by Han et al. (2015): Caffe's ``lenet`` example.

    ``conv 20@5x5 -> max-pool 2x2 -> conv 50@5x5 -> max-pool 2x2 -> flatten -> fc 500 ->
    ReLU -> fc num_classes`` (Caffe's net has no non-linearity after the convolutions; the
    max-pools are its only ones there). On 28x28 MNIST: ``500 + 25,000 + 400,000 + 5,000 =
    430,500`` prunable weights. Input: images ``(N, num_channels, input_size, input_size)``.

    The flattened size after the second pool is computed from ``input_size``, so small
    images work too: with ``padding="auto"`` the convolutions are unpadded when the image is
    large enough (28x28: 24 -> 12 -> 8 -> 4, ``50*4*4 = 800`` features) and zero-padded by 2
    ("same") otherwise (8x8 digits: 8 -> 4 -> 4 -> 2, ``50*2*2 = 200`` features).

    Parameters
    ----------
    input_size : int
        Height = width of the input images.
    num_classes, num_channels : int
    padding : int or "auto"
        Zero padding of both convolutions.
    dtype : torch.dtype, optional

    Examples
    --------
    >>> net = lenet5(8)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    input_size = check_positive_int(input_size, "input_size")
    num_classes = check_positive_int(num_classes, "num_classes")
    num_channels = check_positive_int(num_channels, "num_channels")

    def final(p: int) -> int:
        s = _conv_out(input_size, 5, p) // 2
        return _conv_out(s, 5, p) // 2 if s >= 1 else 0

    if padding == "auto":
        padding = 0 if final(0) >= 1 else 2
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise InvalidArgumentError(f"`padding` must be 'auto' or an integer >= 0; got {padding!r}")
    side = final(padding)
    if side < 1:
        raise InvalidArgumentError(
            f"`input_size` {input_size} is too small for LeNet-5 with padding={padding} (two 5x5 convolutions and two 2x2 pools); "
            "use padding='auto' or a larger image"
        )
    kw = _factory(dtype)
    return nn.Sequential(
        nn.Conv2d(num_channels, 20, 5, padding=padding, **kw),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5, padding=padding, **kw),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(50 * side * side, 500, **kw),
        nn.ReLU(),
        nn.Linear(500, num_classes, **kw),
    )


#: architecture name -> (constructor, whether it takes flattened inputs)
ARCHITECTURES = {"lenet300": (lenet300, True), "lenet5": (lenet5, False)}


def make_architecture(name: str, example: torch.Tensor, num_classes: int = 10, **kwargs: Any) -> nn.Sequential:
    """Build architecture ``name`` (``"lenet300"`` or ``"lenet5"``) sized for inputs shaped like ``example``.

    ``example``: ``(N, D)`` flattened inputs for ``lenet300``; ``(N, C, H, W)`` with ``H == W``
    for ``lenet5``.
    """
    key = str(name).strip().lower()
    if key not in ARCHITECTURES:
        raise UnknownNameError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    if key == "lenet300":
        if example.dim() != 2:
            raise InvalidArgumentError(f"lenet300 takes flattened inputs (N, D); got shape {tuple(example.shape)}")
        return lenet300(int(example.shape[1]), num_classes, **kwargs)
    if example.dim() != 4 or example.shape[2] != example.shape[3]:
        raise InvalidArgumentError(f"lenet5 takes square images (N, C, H, H); got shape {tuple(example.shape)}")
    return lenet5(int(example.shape[2]), num_classes, num_channels=int(example.shape[1]), **kwargs)
