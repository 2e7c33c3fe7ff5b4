"""train / evaluate / data_bits: masks hold under every optimiser and penalty, numbers checked by hand."""

import math

import pytest
import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import data_bits, evaluate, get_masks, penalty, prune, train


def blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=torch.float64)
    return centres[y] + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)).double()


def test_training_lowers_the_loss_and_the_error():
    data = blobs()
    net = mlp()
    before = evaluate(net, data)
    hist = train(net, data, epochs=30, lr=1e-2, batch_size=16, progress=False)
    # three well-separated Gaussian blobs (centres 3.4 apart, sd 0.5): a trained MLP classifies nearly all
    assert hist.loss[-1] < hist.loss[0] and evaluate(net, data) < min(before, 0.05)


def test_same_seed_same_model_and_other_seed_differs():
    data = blobs()
    a, b, c = mlp(), mlp(), mlp()
    for net, seed in ((a, 3), (b, 3), (c, 4)):  # minibatches of 16: the seed sets their order
        train(net, data, epochs=2, batch_size=16, seed=seed, progress=False)
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize("opts", [dict(optimizer="adam", l1=1e-2), dict(optimizer="sgd", l2=1e-1, lr=0.1), dict(optimizer="adam", l2=1.0)])
def test_pruned_weights_never_revive(opts):
    data = blobs()
    net = mlp()
    prune(net, "magnitude", amount=0.6)
    masks = get_masks(net)
    train(net, data, epochs=5, progress=False, **opts)
    for (name, mask), layer in zip(masks.items(), (net[0], net[2])):
        assert torch.equal(get_masks(net)[name], mask)
        assert (layer.weight.detach()[mask == 0] == 0).all()
        assert (layer.weight.detach()[mask == 1] != 0).all()  # the survivors did train (and are not all killed)


def test_evaluate_and_data_bits_by_hand():
    x = torch.zeros(4, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2])
    net = nn.Linear(2, 3).double()
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([0.0, 0.0, math.log(2.0)]))  # p = (1/4, 1/4, 1/2) for every x
    assert evaluate(net, (x, y)) == pytest.approx(0.5)  # argmax is class 2: two of four wrong
    assert data_bits(net, (x, y)) == pytest.approx(2 + 2 + 1 + 1)  # -log2 p(y): 2, 2, 1, 1 bits
    assert float(penalty(net, l1=0.0, l2=0.0)) == 0.0
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 0.0], [3.0, 0.0]]))
    assert float(penalty(net, l1=0.5, l2=2.0).detach()) == pytest.approx(0.5 * 6 + 0.5 * 2.0 * 14)  # biases not penalised


def test_float32_data_trains_a_float64_model():
    x, y = blobs()
    net = mlp()
    train(net, (x.float(), y), epochs=1, progress=False)
    assert 0.0 <= evaluate(net, (x.float(), y)) <= 1.0


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(epochs=-1), "epochs"),
        (dict(lr=0.0), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(l1=-1.0), "l1"),
        (dict(l2=float("nan")), "l2"),
        (dict(seed=1.5), "seed"),
    ],
)
def test_bad_options_name_the_argument(kwargs, needle):
    with pytest.raises(InvalidArgumentError, match=needle):
        train(mlp(), blobs(), progress=False, **kwargs)


def test_bad_data_is_rejected():
    x, y = blobs()
    with pytest.raises(InvalidArgumentError, match="data"):
        train(mlp(), (x, y[:-1]), progress=False)
    with pytest.raises(InvalidArgumentError, match="integer class labels"):
        evaluate(mlp(), (x, y.double()))
    with pytest.raises(InvalidArgumentError, match="pair"):
        evaluate(mlp(), x)
    with pytest.raises(InvalidArgumentError, match="class indices"):
        data_bits(mlp(), (x, y + 5))
    # labels the model has no logit for, and inputs of the wrong width: named, before any step
    net = mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for fn in (evaluate, data_bits, lambda m, d: train(m, d, epochs=1, progress=False)):
        with pytest.raises(InvalidArgumentError, match=r"`data`: labels must be class indices 0\.\.2 .* got labels 5\.\.7"):
            fn(net, (x, y + 5))
        with pytest.raises(InvalidArgumentError, match=r"`data`: the model fails on x of shape \(120, 3\)"):
            fn(net, (torch.cat([x, x[:, :1]], 1), y))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    # a custom loss is not probed on two examples: one that needs a whole batch still trains
    def batch_loss(out, t):
        if len(t) < 4:
            raise ValueError("needs at least 4 examples")
        return nn.functional.cross_entropy(out, t)

    assert train(mlp(), (x, y), epochs=1, batch_size=8, loss_fn=batch_loss, progress=False).epochs == 1
    with pytest.raises(InvalidArgumentError, match="`model` must map x to logits"):
        evaluate(nn.Sequential(nn.Linear(2, 3), nn.Flatten(0)).double(), (x, y))


def test_train_evaluate_and_predict_restore_each_module_mode():
    from bayesstruct.prune import predict_logits

    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    m = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Dropout(0.5), nn.Linear(5, 3))
    m[1].eval()  # a frozen batch-norm inside a model in training mode
    flags = [mod.training for mod in m.modules()]
    train(m, (x, y), epochs=1, batch_size=8)
    assert [mod.training for mod in m.modules()] == flags
    evaluate(m, (x, y))
    predict_logits(m, x)
    assert [mod.training for mod in m.modules()] == flags
