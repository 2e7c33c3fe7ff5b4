"""DARTS (Liu, Simonyan & Yang 2019): the architecture gradient, and the structure it finds."""

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn import StructureGraph, StructureNetwork
from bayesstruct.search import DARTS, search
from bayesstruct.search import prepare_data, train_discrete


def _unrolled_val_loss(net, data, logits, train, val, xi, wd):
    """L_val(w - xi (grad_w L_train(w, a) + wd w), a), with the gradient taken at this a (the paper's eq. 6)."""
    from torch.func import functional_call

    probs = {(0, 1): torch.softmax(logits, -1)}
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(data.loss(net(train[0], probs), train[1]), params, create_graph=True)
    w = {n: p - xi * (g + wd * p) for n, p, g in zip(names, params, grads)}
    return data.loss(functional_call(net, w, (val[0], probs)), val[1])


@pytest.mark.parametrize("order", [1, 2])
def test_architecture_gradient_matches_finite_differences_of_its_objective(xor, order):
    # order 1: d/da L_val(w, a); order 2: d/da L_val(w'(a), a) through the unrolled step.
    graph, x, y = xor
    data = prepare_data(graph, x, y)
    torch.manual_seed(0)
    net = StructureNetwork(graph)
    logits = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)
    train, val = (data.x_train, data.y_train), (data.x_val, data.y_val)
    xi, wd = 0.5, 1e-2
    darts = DARTS(order=order, xi=xi, weight_decay=wd)
    loss = darts._arch_loss(net, {(0, 1): torch.softmax(logits, -1)}, train, val, data, {}, w_lr=0.025)
    (grad,) = torch.autograd.grad(loss, logits)

    def objective(a):
        if order == 1:
            return float(data.loss(net(val[0], {(0, 1): torch.softmax(a, -1)}), val[1]).detach())
        return float(_unrolled_val_loss(net, data, a, train, val, xi, wd).detach())

    h = 1e-6
    fd = torch.tensor([(objective(logits.detach() + h * e) - objective(logits.detach() - h * e)) / (2 * h)
                       for e in torch.eye(3)])
    assert torch.allclose(grad, fd, atol=1e-7, rtol=1e-6), (grad, fd)
    if order == 2:  # the unrolled step matters: it is not the first-order gradient
        first = DARTS(order=1)._arch_loss(net, {(0, 1): torch.softmax(logits, -1)}, train, val, data, {}, 0.025)
        (g1,) = torch.autograd.grad(first, logits)
        assert (grad - g1).abs().max() > 1e-4


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_darts_finds_the_nonlinear_edge_that_xor_needs(xor, fast, order, seed):
    # A linear or zero hidden edge leaves the logits linear in x: chance accuracy on XOR.
    graph, x, y = xor
    r = search(graph, x, y, "darts", order=order, seed=seed, progress=False, **fast)
    assert r.choice() == {(0, 1): "linear_tanh"}, r
    assert int(torch.argmax(r.gamma[(0, 1)])) == 1 and r.gamma[(0, 1)][1] > 0.5
    assert r.val_accuracy > 0.85  # the refit tanh network; a linear one scores about 0.5
    assert [h["searching"] for h in r.history] == [False] * 10 + [True] * 20
    # alpha stays at 0 (uniform gamma) while only the weights train
    assert torch.allclose(r.history[9]["gamma"][(0, 1)], torch.full((3,), 1 / 3))


def test_darts_is_seeded(xor, fast):
    graph, x, y = xor
    a = search(graph, x, y, "darts", seed=5, progress=False, **fast)
    b = search(graph, x, y, "darts", seed=5, progress=False, **fast)
    assert torch.equal(a.gamma[(0, 1)], b.gamma[(0, 1)]) and a.val_loss == b.val_loss


def test_darts_regression_prefers_the_saturating_teacher():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=gen)
    y = torch.tanh(3 * x[:, 0] - 2 * x[:, 1]) + 0.05 * torch.randn(400, generator=gen)
    graph = StructureGraph(2, {(0, 1): ["linear", "linear_tanh"]}, input_shape=(2,), vertex_shapes={1: (1,)})
    r = search(graph, x, y, "darts", task="regression", noise_scale=0.1, progress=False, num_epochs=20,
               warmup_epochs=5, batch_size=32, lr=0.05, arch_lr=0.01)
    assert r.choice() == {(0, 1): "linear_tanh"}, r
    assert r.val_accuracy is None
    # the same refit of the linear structure fits worse: a line cannot saturate
    data = prepare_data(graph, x, y, task="regression", noise_scale=0.1)
    line = train_discrete(graph, {(0, 1): "linear"}, data, num_steps=200, lr=0.02, weight_decay=3e-4, seed=0)
    assert r.val_loss < 0.5 * data.score(line)[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=3), "`order`"), (dict(order=True), "`order`"), (dict(batch_size=0), "`batch_size`"),
    (dict(lr=-1), "`lr`"), (dict(arch_lr=0), "`arch_lr`"), (dict(num_epochs=0), "`num_epochs`"),
    (dict(warmup_epochs=-1), "`warmup_epochs`"), (dict(xi=float("nan")), "`xi`"),
    (dict(repel=[(1.0, "gamma")]), r"`repel\[0\]`"), (dict(repel=[(-1.0, {})]), r"`repel\[0\]`'s weight"),
])
def test_bad_options_name_the_argument(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DARTS(**kwargs)


def test_repel_must_cover_every_searched_edge(xor):
    graph, x, y = xor
    with pytest.raises(InvalidArgumentError, match=r"edge \(0, 1\) needs shape \(3,\)"):
        search(graph, x, y, "darts", repel=[(1.0, {(0, 1): [0.5, 0.5]})], progress=False, num_epochs=1)
