"""Module-mode helpers shared by the pruners and the operational criteria."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

from bayesstruct.exceptions import InvalidArgumentError


@contextmanager
def module_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """``model.train(training)`` for the block, then restore *each* submodule's own ``training`` flag.

    ``model.train(was_training)`` would not do for the restore: it sets every submodule to one
    flag, so a batch-norm layer a user froze in eval mode inside a training model would come
    back in training mode.
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    flags = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def eval_mode(model: nn.Module):
    """Put ``model`` in evaluation mode for the block, then restore each submodule's own flag.

    Saliencies, FLOP counts and test errors are properties of the trained network, the
    function it computes at test time: batch-norm uses (and does not update) its running
    statistics and dropout is off::

        with eval_mode(model):
            logits = model(x)
    """
    return module_mode(model, False)
