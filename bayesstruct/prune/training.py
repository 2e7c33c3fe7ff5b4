"""Training and evaluating a (pruned) classifier: minibatch Adam/SGD with L1/L2 penalties.

Pruned layers keep their masks during training: :func:`bayesstruct.prune.prune` installs
them as :mod:`torch.nn.utils.parametrize` parametrizations (``weight = original * mask``), so
the optimiser only moves ``original`` and a pruned weight stays exactly zero. :func:`train`
checks this at the end and raises if a pruned weight came back.

The penalised objective of one minibatch ``B`` is

    J(theta) = 1/|B| sum_{n in B} loss(f(x_n; theta), y_n) + l1 * sum_i |w_i| + l2/2 * sum_i w_i^2,

with ``w`` the (masked) weights of every ``nn.Linear``/``nn.Conv2d`` (biases are not
penalised); ``l2`` is then the same as SGD's weight decay on the weights only. Han et al.
(NIPS 2015, sec. 3.1) compare L1 and L2 regularisation during pruning and retraining.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from bayesstruct._modes import eval_mode, module_mode
from bayesstruct._validation import check_seed
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune.saliency import _check_model_takes, get_masks, prunable_layers

__all__ = ["TrainHistory", "train", "evaluate", "data_bits", "predict_logits", "penalty", "check_data"]

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainHistory:
    """What :func:`train` did: the mean penalised minibatch objective of every epoch."""

    epochs: int
    loss: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "loss": list(self.loss)}


def check_data(data: Any, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a classification data set ``(x, y)``: ``x`` ``(N, ...)`` finite floats, ``y`` ``(N,)`` int labels."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)):
        raise InvalidArgumentError(f"`{name}` must be an (x, y) pair of tensors; got {type(data).__name__}")
    x, y = data
    if x.dim() < 1 or y.dim() != 1 or x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise InvalidArgumentError(
            f"`{name}`: x must be (N, ...) and y (N,) with the same N >= 1; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise InvalidArgumentError(f"`{name}`: y must hold integer class labels; got dtype {y.dtype}")
    if not x.is_floating_point() or not torch.isfinite(x).all():
        raise InvalidArgumentError(f"`{name}`: x must be a finite floating-point tensor")
    return x, y


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    return model


def _check_loss_fn(model: nn.Module, loss_fn: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """``loss_fn`` is callable and ``loss_fn(model(x_b), y_b)`` is a scalar on a first batch (eval mode, no gradients)."""
    if not callable(loss_fn):
        raise InvalidArgumentError(f"`loss_fn` must be a callable loss_fn(model(x), y) -> scalar; got {type(loss_fn).__name__}")
    if loss_fn is F.cross_entropy:
        return  # checked (labels against the logits) by _check_model_takes
    try:
        with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real run warns again, once
            out = loss_fn(model(x[:batch_size]), y[:batch_size])
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        raise InvalidArgumentError(f"`loss_fn`: loss_fn(model(x), y) fails on a batch of {min(batch_size, x.shape[0])}: {err}") from err
    if not torch.is_tensor(out) or out.numel() != 1:
        got = f"shape {tuple(out.shape)}" if torch.is_tensor(out) else type(out).__name__
        raise InvalidArgumentError(f"`loss_fn` must return a scalar tensor (the mean loss of the batch); got {got}")


def _param_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        return p.dtype
    return torch.get_default_dtype()


def _number(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"`{name}` must be a finite number; got {value!r}")
    if value < 0 or (positive and value == 0):
        raise InvalidArgumentError(f"`{name}` must be {'> 0' if positive else '>= 0'}; got {value!r}")
    return float(value)


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    return value


def _check_optimizer(optimizer: Any) -> str:
    opt_name = str(optimizer).strip().lower()
    if opt_name not in OPTIMIZERS:
        raise InvalidArgumentError(f"`optimizer` must be one of {OPTIMIZERS}; got {optimizer!r}")
    return opt_name


def penalty(model: nn.Module, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """``l1 * sum |w| + l2/2 * sum w^2`` over the prunable (masked) weights of ``model``."""
    _check_model(model)
    l1, l2 = _number(l1, "l1"), _number(l2, "l2")
    total = torch.zeros((), dtype=_param_dtype(model))
    if l1 == 0 and l2 == 0:
        return total
    for _, mod in prunable_layers(model):
        w = mod.weight
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + 0.5 * l2 * (w * w).sum()
    return total


def train(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 128,
    optimizer: str = "adam",
    momentum: float = 0.9,
    l1: float = 0.0,
    l2: float = 0.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    seed: int = 0,
    progress: bool = True,
) -> TrainHistory:
    """Minibatch training of ``model`` in place (masks of pruned weights stay applied).

    Minimises ``J`` of the module docstring with Adam (Kingma & Ba 2015) or SGD with
    momentum, over ``epochs`` passes through ``data`` in a seeded random order.

    Parameters
    ----------
    model : nn.Module
        Maps ``x`` to logits ``(N, C)`` (or whatever ``loss_fn`` takes).
    data : (x, y) tuple of Tensor
        ``x`` ``(N, ...)`` (cast to the model's parameter dtype), ``y`` ``(N,)`` int labels.
    epochs : int >= 0
    lr : float > 0
    batch_size : int >= 1
    optimizer : {"adam", "sgd"}
    momentum : float >= 0
        SGD only.
    l1, l2 : float >= 0
        Penalty strengths on the prunable weights (``l2`` acts as weight decay).
    loss_fn : callable
        ``loss_fn(model(x_batch), y_batch)`` -> scalar mean loss; cross-entropy by default.
    seed : int
        Seeds the minibatch order: the same seed and start gives the same model.
    progress : bool
        Show a tqdm bar over epochs.

    Returns
    -------
    TrainHistory

    Raises
    ------
    RuntimeError
        If a pruned (masked) weight is non-zero after training -- impossible with the masks of
        :func:`bayesstruct.prune.prune`; the check guards against a layer whose mask was removed.

    Examples
    --------
    >>> from bayesstruct.nn.zoo import lenet300
    >>> net = lenet300(4, 3, hidden=(8,))
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> train(net, (x, y), epochs=2, progress=False).epochs
    2
    """
    _check_model(model)
    x, y = check_data(data)
    epochs = _int(epochs, "epochs", 0)
    batch_size = _int(batch_size, "batch_size", 1)
    lr = _number(lr, "lr", positive=True)
    l1, l2, momentum = _number(l1, "l1"), _number(l2, "l2"), _number(momentum, "momentum")
    seed = check_seed(seed)
    opt_name = _check_optimizer(optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidArgumentError(f"`model` ({type(model).__name__}) has no trainable parameters (none with requires_grad=True)")
    x = x.to(_param_dtype(model))
    _check_model_takes(model, x, y, F.cross_entropy if loss_fn is F.cross_entropy else None)  # a custom loss may need a whole batch
    _check_loss_fn(model, loss_fn, x, y, batch_size)
    opt = torch.optim.Adam(params, lr=lr) if opt_name == "adam" else torch.optim.SGD(params, lr=lr, momentum=momentum)
    masks_before = get_masks(model) if prunable_layers(model) else {}
    gen = torch.Generator().manual_seed(seed)
    losses = []
    with module_mode(model, True):
        bar = tqdm(range(epochs), desc="train", unit="epoch", disable=not progress, leave=False)
        for _ in bar:
            perm = torch.randperm(x.shape[0], generator=gen)
            total, count = 0.0, 0
            for idx in perm.split(batch_size):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x[idx]), y[idx]) + penalty(model, l1, l2)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
    if masks_before:
        for name, mod in prunable_layers(model):
            dead = masks_before[name] == 0
            if bool((mod.weight.detach()[dead] != 0).any()):
                raise RuntimeError(f"layer {name!r}: a pruned weight became non-zero during training (its mask was removed?)")
    return TrainHistory(epochs=epochs, loss=tuple(losses))


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``model(x)`` in evaluation mode, in batches; ``x`` is cast to the model's dtype."""
    _check_model(model)
    if not torch.is_tensor(x) or x.dim() < 1:
        got = f"shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise InvalidArgumentError(f"`x` must be a tensor (N, ...) (convert with torch.as_tensor); got {got}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise InvalidArgumentError(f"`x` contains {int((~torch.isfinite(x)).sum())} NaN or infinite value(s)")
    batch_size = _int(batch_size, "batch_size", 1)
    _check_model_takes(model, x.to(_param_dtype(model)), name="x")
    return _predict_logits(model, x, batch_size)


@torch.no_grad()
def _predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    x = x.to(_param_dtype(model))
    with eval_mode(model):
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], *, batch_size: int = 4096) -> float:
    """Classification error rate ``1/N sum_n [argmax_c f(x_n)_c != y_n]`` of ``model`` on ``data``."""
    _check_model(model)
    x, y = check_data(data)
    batch_size = _int(batch_size, "batch_size", 1)
    _check_model_takes(model, x.to(_param_dtype(model)), y, F.cross_entropy)
    logits = _predict_logits(model, x, batch_size)
    return float((logits.argmax(-1) != y).double().mean())


def data_bits(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], *, batch_size: int = 4096) -> float:
    """``L(D | model) = sum_n -log2 softmax(f(x_n))_{y_n}`` in bits (the code length of the labels)."""
    _check_model(model)
    x, y = check_data(data)
    batch_size = _int(batch_size, "batch_size", 1)
    _check_model_takes(model, x.to(_param_dtype(model)), y, F.cross_entropy)
    logits = _predict_logits(model, x, batch_size).double()
    nats = F.cross_entropy(logits, y, reduction="sum")
    return float(nats) / math.log(2.0)
