"""Saliencies (magnitude, OBD, OBS) and pruning masks, on a tiny 4-6-3 tanh MLP in float64."""

import copy
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.functional import cross_entropy, mse_loss
from torch.nn.utils import parametrize

from bayesstruct.datasets import load_digits, load_mnist
from bayesstruct.nn.zoo import lenet300

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.prune.saliency import _set_layer
from bayesstruct.prune import (
    PruneResult,
    apply_masks,
    compute_saliency,
    get_masks,
    evaluate,
    hessian_diagonal,
    layerwise_hessians,
    list_saliencies,
    prune,
    remove_pruning,
    train,
)


def make_data(seed=0, n=96):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    # a realisable teacher (a 4-6-3 tanh net) so that the trained student sits at a proper minimum
    w1, w2 = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ w1.T) @ w2.T / 2 + 0.05 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, y


def make_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def loss_of(net, data):
    with torch.no_grad():
        return float(mse_loss(net(data[0]), data[1]))


_TRAINED = {}


def trained_net(seed=0):
    """A net trained to (near) a minimum of the MSE by L-BFGS; cached state, fresh module."""
    if seed not in _TRAINED:
        net, data = make_net(seed), make_data(seed)
        opt = torch.optim.LBFGS(net.parameters(), max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = mse_loss(net(data[0]), data[1])
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        _TRAINED[seed] = {k: v.clone() for k, v in net.state_dict().items()}
    net = make_net(seed)
    net.load_state_dict(_TRAINED[seed])
    return net, make_data(seed)


def retrain_with_decay(net, data, steps):
    """Adam with weight decay on every parameter: without masks, the pruned weights would come back."""
    opt = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(steps):
        opt.zero_grad()
        mse_loss(net(data[0]), data[1]).backward()
        opt.step()


def flat_hessian(net, data):
    """Full Hessian of the loss w.r.t. all parameters flattened in named_parameters order."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for _, p in net.named_parameters()])

    def f(t):
        params = {n: c.view(s) for n, c, s in zip(names, torch.split(t, sizes), shapes)}
        return mse_loss(torch.func.functional_call(net, params, (data[0],)), data[1])

    return torch.autograd.functional.hessian(f, theta), names, sizes


def test_obd_diagonal_is_exact_hessian_diagonal():
    net, data = trained_net()
    H, names, sizes = flat_hessian(net, data)
    diag = dict(zip(names, torch.split(H.diagonal(), sizes)))
    ours = hessian_diagonal(net, mse_loss, data, hessian="exact")
    for layer in ("0", "2"):
        ref = diag[f"{layer}.weight"].reshape(ours[layer].shape)
        torch.testing.assert_close(ours[layer], ref, rtol=1e-6, atol=1e-12)
        sal = compute_saliency(net, "obd", loss_fn=mse_loss, data=data)[layer]
        w = dict(net.named_parameters())[f"{layer}.weight"].detach()
        torch.testing.assert_close(sal, 0.5 * ref * w**2, rtol=1e-6, atol=1e-14)


def test_hessian_approximations_track_exact_diagonal():
    net, data = trained_net()
    exact = torch.cat([v.reshape(-1) for v in hessian_diagonal(net, mse_loss, data, hessian="exact").values()])
    hutch = torch.cat([v.reshape(-1) for v in hessian_diagonal(net, mse_loss, data, hessian="hutchinson", num_samples=2000).values()])
    # Hutchinson is unbiased: with 2000 draws, a relative error of a few per cent of the scale
    assert (hutch - exact).abs().max() < 0.1 * exact.abs().max()
    fisher = hessian_diagonal(net, mse_loss, [data], hessian="fisher")
    assert all((v >= 0).all() for v in fisher.values())
    # batches: the same data split in two gives the same exact diagonal
    halves = [(data[0][:48], data[1][:48]), (data[0][48:], data[1][48:])]
    split = torch.cat([v.reshape(-1) for v in hessian_diagonal(net, mse_loss, halves, hessian="exact").values()])
    torch.testing.assert_close(split, exact, rtol=1e-10, atol=1e-12)


def test_fisher_diagonal_equals_per_example_gradients_squared():
    net, (x, y) = trained_net()
    fisher = hessian_diagonal(net, mse_loss, [(x[:40], y[:40]), (x[40:], y[40:])], hessian="fisher")
    ref = {n: torch.zeros_like(p) for n, p in net.named_parameters() if n.endswith("weight")}
    for i in range(len(x)):  # the definition, one example at a time
        net.zero_grad()
        mse_loss(net(x[i : i + 1]), y[i : i + 1]).backward()
        for n, p in net.named_parameters():
            if n.endswith("weight"):
                ref[n] += p.grad**2 / len(x)
    for n, v in ref.items():
        torch.testing.assert_close(fisher[n.rsplit(".", 1)[0]], v, rtol=1e-10, atol=1e-14)


def _explicit_gauss_newton_diagonal(net, x, y, out_hessian):
    """``1/N sum_n diag(J_n^T H_n J_n)`` with ``J_n`` from torch.autograd.functional.jacobian, one example at a time."""
    layers = [n for n, _ in net.named_parameters() if n.endswith("weight")]
    shapes = {n: p.shape for n, p in net.named_parameters()}
    theta = torch.cat([dict(net.named_parameters())[n].detach().reshape(-1) for n in layers])
    sizes = [shapes[n].numel() for n in layers]

    def out(t, xi):
        params = {n: c.view(shapes[n]) for n, c in zip(layers, torch.split(t, sizes))}
        return torch.func.functional_call(net, params, (xi[None],))[0]

    total = 0
    for xi, yi in zip(x, y):
        jac = torch.autograd.functional.jacobian(lambda t: out(t, xi), theta)
        total = total + (jac.T @ out_hessian(out(theta, xi).detach(), yi) @ jac).diagonal()
    return dict(zip([n.rsplit(".", 1)[0] for n in layers], torch.split(total / len(x), sizes)))


def test_gauss_newton_diagonal_is_the_ggn_of_lecun_1989():
    net, (x, y) = trained_net()
    # MSE with mean reduction over (N, 3): the output Hessian of one example is 2/3 I
    ggn = hessian_diagonal(net, mse_loss, [(x[:50], y[:50]), (x[50:], y[50:])], hessian="gauss-newton")
    ref = _explicit_gauss_newton_diagonal(net, x, y, lambda z, t: 2 / 3 * torch.eye(3, dtype=z.dtype))
    for name in ("0", "2"):
        torch.testing.assert_close(ggn[name].reshape(-1), ref[name], rtol=1e-9, atol=1e-14)
    # cross-entropy: H_n = diag(p) - p p^T (the true Fisher, not the empirical one)
    labels = y.argmax(1)
    ggn = hessian_diagonal(net, cross_entropy, (x, labels), hessian="gauss-newton")
    ref = _explicit_gauss_newton_diagonal(
        net, x, labels, lambda z, t: torch.diag(z.softmax(-1)) - torch.outer(z.softmax(-1), z.softmax(-1)))
    for name in ("0", "2"):
        torch.testing.assert_close(ggn[name].reshape(-1), ref[name], rtol=1e-9, atol=1e-14)
        assert (ggn[name] >= 0).all()
    empirical = hessian_diagonal(net, cross_entropy, (x, labels), hessian="fisher")
    assert not torch.allclose(empirical["0"], ggn["0"], rtol=0.05)
    # a loss vmap cannot batch (F.one_hot is data-dependent) is handled one example at a time
    def squared_error_to_one_hot(out, t):
        return 0.5 * ((out - nn.functional.one_hot(t, 3).to(out.dtype)) ** 2).sum(-1).mean()

    ggn = hessian_diagonal(net, squared_error_to_one_hot, (x, labels), hessian="gauss-newton")
    ref = _explicit_gauss_newton_diagonal(net, x, labels, lambda z, t: torch.eye(3, dtype=z.dtype))
    for name in ("0", "2"):
        torch.testing.assert_close(ggn[name].reshape(-1), ref[name], rtol=1e-9, atol=1e-14)


def test_gauss_newton_diagonal_of_a_conv_net_and_of_a_pruned_net():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3)).double()
    softmax_hessian = lambda z, t: torch.diag(z.softmax(-1)) - torch.outer(z.softmax(-1), z.softmax(-1))  # noqa: E731
    ref = _explicit_gauss_newton_diagonal(net, x, y, softmax_hessian)
    ggn = hessian_diagonal(net, cross_entropy, [(x[:5], y[:5]), (x[5:], y[5:])], hessian="gauss-newton")
    for name in ("0", "4"):
        torch.testing.assert_close(ggn[name].reshape(-1), ref[name], rtol=1e-9, atol=1e-14)
    # a masked weight has derivative 0 (the parametrisation multiplies it by its 0 mask)
    prune(net, "magnitude", amount=0.5)
    masks = get_masks(net)
    ggn = hessian_diagonal(net, cross_entropy, (x, y), hessian="gauss-newton")
    for name in ("0", "4"):
        assert (ggn[name][masks[name] == 0] == 0).all() and (ggn[name][masks[name] != 0] > 0).any()


class _SharedLayer(nn.Module):
    """One Linear applied twice: per-example gradients are sums over the two calls (the Jacobian path)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(torch.tanh(self.lin(x)))


def test_gauss_newton_diagonal_of_a_layer_called_twice():
    torch.manual_seed(6)
    net = _SharedLayer().double()
    x, y = make_data(6, n=20)
    y = torch.cat([y, y[:, :1]], 1)
    ref = _explicit_gauss_newton_diagonal(net, x, y, lambda z, t: 2 / 4 * torch.eye(4, dtype=z.dtype))
    ggn = hessian_diagonal(net, mse_loss, (x, y), hessian="gauss-newton")
    torch.testing.assert_close(ggn["lin"].reshape(-1), ref["lin"], rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_staged_obd_recomputes_the_diagonal_between_rounds(scope):
    net, (x, y) = trained_net()
    labels = y.argmax(1)
    staged = copy.deepcopy(net)
    res = prune(staged, "obd", amount=0.7, scope=scope, loss_fn=cross_entropy, data=(x, labels),
                hessian="gauss-newton", num_stages=3)
    sizes = {"0": 24, "2": 18}
    groups = [["0"], ["2"]] if scope == "layer" else [["0", "2"]]
    # exactly round(amount * n) per group, as one round would remove
    kept = {n: int(m.sum()) for n, m in get_masks(staged).items()}
    for g in groups:
        n0 = sum(sizes[n] for n in g)
        assert sum(kept[n] for n in g) == n0 - round(0.7 * n0)
    assert res.num_nonzero == sum(kept.values())
    # the same as three calls of prune(), each with the diagonal of the net it is given
    manual = copy.deepcopy(net)
    removed = {tuple(g): 0 for g in groups}
    for t in (1, 2, 3):
        fraction = 0.7 if t == 3 else 1 - 0.3 ** (t / 3)
        scores = compute_saliency(manual, "obd", loss_fn=cross_entropy, data=(x, labels), hessian="gauss-newton")
        masks = get_masks(manual)
        for g in groups:
            n0 = sum(sizes[n] for n in g)
            step = round(fraction * n0) - removed[tuple(g)]
            alive = torch.cat([scores[n][masks[n] > 0] for n in g])
            cut = alive.sort().values[step - 1]  # no ties in float64 scores
            for n in g:
                masks[n][(masks[n] > 0) & (scores[n] <= cut)] = 0
            removed[tuple(g)] += step
        for n, m in masks.items():
            mod = dict(manual.named_modules())[n]
            _set_layer(mod, m, mod.weight.detach().clone())  # install the round's masks
    for n in sizes:
        torch.testing.assert_close(get_masks(staged)[n], get_masks(manual)[n])
    # and not what one round of the dense net's diagonal removes (2 weights differ here in each scope)
    one = copy.deepcopy(net)
    prune(one, "obd", amount=0.7, scope=scope, loss_fn=cross_entropy, data=(x, labels), hessian="gauss-newton")
    assert any(not torch.equal(get_masks(one)[n], get_masks(staged)[n]) for n in sizes)
    # the unpruned weights are the trained ones (OBD never moves survivors)
    for n in sizes:
        w0 = dict(net.named_modules())[n].weight.detach()
        torch.testing.assert_close(dict(staged.named_modules())[n].weight.detach(), w0 * get_masks(staged)[n])
    with pytest.raises(InvalidArgumentError, match="num_stages"):
        prune(copy.deepcopy(net), "obd", threshold=1e-3, loss_fn=cross_entropy, data=(x, labels), num_stages=2)
    with pytest.raises(InvalidArgumentError, match="num_stages"):
        prune(copy.deepcopy(net), "obd", amount=0.5, loss_fn=cross_entropy, data=(x, labels), num_stages=0)


def test_gauss_newton_equals_exact_hessian_for_a_model_linear_in_its_weights():
    # softmax regression: the network has no second derivative, so G = H exactly
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (60,), generator=g)
    torch.manual_seed(3)
    model = nn.Linear(5, 4).double()
    ggn = hessian_diagonal(model, cross_entropy, (x, y), hessian="gauss-newton")[""]
    exact = hessian_diagonal(model, cross_entropy, (x, y), hessian="exact")[""]
    torch.testing.assert_close(ggn, exact, rtol=1e-10, atol=1e-14)


def test_gauss_newton_diagonal_is_the_exact_diagonal_of_a_relu_net_but_not_of_a_tanh_net():
    # a ReLU net is piecewise linear in each single weight: d^2 f / d theta_i^2 = 0, so the
    # diagonals agree; with tanh hidden units the first layer's entries do not
    g = torch.Generator().manual_seed(4)
    x = torch.randn(80, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (80,), generator=g)
    for act, equal in ((nn.ReLU, True), (nn.Tanh, False)):
        torch.manual_seed(4)
        net = nn.Sequential(nn.Linear(6, 7), act(), nn.Linear(7, 5), act(), nn.Linear(5, 3)).double()
        exact = hessian_diagonal(net, cross_entropy, (x, y), hessian="exact")
        ggn = hessian_diagonal(net, cross_entropy, (x, y), hessian="gauss-newton")
        gap = max(((exact[k] - ggn[k]).abs().max() / exact[k].abs().max()).item() for k in ("0", "2"))
        assert (gap < 1e-10) if equal else (gap > 0.05), (act, gap)
        # the last layer is linear in its weights under either activation
        torch.testing.assert_close(ggn["4"], exact["4"], rtol=1e-10, atol=1e-14)


def test_layerwise_obd_diagonal_is_the_reconstruction_hessian_diagonal():
    net, data = trained_net()
    diag = hessian_diagonal(net, None, data, hessian="layerwise")
    hess = layerwise_hessians(net, data)
    for name, m in [("0", net[0]), ("2", net[2])]:
        d = m.weight.shape[1]
        # the same diagonal for every output row; the bias coordinate (last) is not a weight
        torch.testing.assert_close(diag[name], hess[name].diagonal()[:d].expand(m.weight.shape[0], d))
    # needs no loss function, only the inputs
    res = prune(copy.deepcopy(net), "obd", amount=0.5, hessian="layerwise", data=data)
    assert res.num_nonzero == 4 * 6 + 6 * 3 - round(0.5 * (4 * 6 + 6 * 3))


def test_obs_update_beats_same_mask_without_update():
    net, data = trained_net()
    plain, _ = trained_net()
    result = prune(net, "obs", amount=0.3, loss_fn=mse_loss, data=data)
    assert result.method == "obs" and result.num_removed == round(0.3 * 42)
    masks = get_masks(net)
    with torch.no_grad():  # same weights removed, survivors left where training put them
        for name, mod in [("0", plain[0]), ("2", plain[2])]:
            mod.weight.mul_(masks[name])
    assert loss_of(net, data) < loss_of(plain, data)
    # the OBS update leaves the removed weights at exactly zero
    for name, mod in [("0", net[0]), ("2", net[2])]:
        assert (mod.weight[masks[name] == 0] == 0).all()


@pytest.mark.parametrize("amount", [0.2, 0.4, 0.6])
def test_second_order_saliencies_beat_magnitude_before_retraining(amount):
    # Measured on this trained net (seed 0, trained loss 0.0021), loss after one-shot pruning:
    #   amount  magnitude  OBD     OBS
    #   0.2     0.0105     0.0061  0.0057
    #   0.4     0.1217     0.0314  0.0876
    #   0.6     0.3560     0.1942  0.1595
    #   0.8     0.5627     0.3052  0.5648   <- OBS's single quadratic model breaks down; not asserted
    # OBS does not beat OBD at every amount (0.4): its Hessian is computed once per call.
    losses = {}
    for method in ("magnitude", "obd", "obs"):
        net, data = trained_net()
        opts = {} if method == "magnitude" else {"loss_fn": mse_loss, "data": data}
        res = prune(net, method, amount=amount, **opts)
        assert res.num_nonzero == 42 - round(amount * 42)
        losses[method] = loss_of(net, data)
    assert losses["obd"] <= losses["magnitude"]
    assert losses["obs"] <= losses["magnitude"]


@settings(max_examples=8, deadline=None)
@given(amount=st.floats(0.0, 0.9, exclude_max=True), method=st.sampled_from(["magnitude", "obd", "obs"]))
def test_masks_never_revive_under_adam_weight_decay(amount, method):
    torch.set_default_dtype(torch.float64)
    net, data = make_net(1), make_data(1)
    opts = {} if method == "magnitude" else {"loss_fn": mse_loss, "data": data}
    prune(net, method, amount=amount, **opts)
    masks = get_masks(net)
    retrain_with_decay(net, data, steps=50)
    for name, mod in [("0", net[0]), ("2", net[2])]:
        assert (mod.weight[masks[name] == 0] == 0).all()
        assert torch.equal(get_masks(net)[name], masks[name])


def test_cumulative_pruning_only_ranks_survivors():
    net = make_net()
    r1 = prune(net, "magnitude", amount=0.5)
    m1 = get_masks(net)
    r2 = prune(net, "magnitude", amount=0.5)
    m2 = get_masks(net)
    assert r1.num_nonzero == 21 and r2.num_nonzero == 21 - round(0.5 * 21) and r2.num_removed == round(0.5 * 21)
    for n in m1:
        assert (m2[n] <= m1[n]).all()  # no weight revived
    # the second call removed the smallest survivors: every survivor >= every newly removed weight
    survivors = torch.cat([net[i].weight[m2[n] > 0].abs() for i, n in ((0, "0"), (2, "2"))])
    gone = torch.cat([net[i].parametrizations.weight.original[(m1[n] > 0) & (m2[n] == 0)] for i, n in ((0, "0"), (2, "2"))])
    assert gone.numel() == 10 and (gone == 0).all()  # raw weights zeroed as well
    assert survivors.min() > 0
    remove_pruning(net)
    assert isinstance(net[0].weight, nn.Parameter) and int((net[0].weight == 0).sum()) == int((m2["0"] == 0).sum())


def test_layer_scope_prunes_each_layer_by_amount_global_does_not():
    def scaled_net():
        net = make_net()
        with torch.no_grad():
            net[2].weight.mul_(10.0)  # the second layer's weights all large: global magnitude spares them
        return net

    g = prune(scaled_net(), "magnitude", amount=0.5)
    layer = prune(scaled_net(), "magnitude", amount=0.5, scope="layer")
    assert [la.num_nonzero for la in layer.layers] == [12, 9]
    assert g.num_nonzero == layer.num_nonzero == 21
    ref = scaled_net()
    all_w = torch.cat([ref[0].weight.detach().abs().reshape(-1), ref[2].weight.detach().abs().reshape(-1)])
    cut = all_w.sort().values[20]  # the 21 smallest magnitudes over both layers go
    expected = [int((ref[i].weight.detach().abs() > cut).sum()) for i in (0, 2)]
    assert [la.num_nonzero for la in g.layers] == expected and expected[0] < 12
    d = layer.to_dict()
    assert d["layers"][0] == {"name": "0", "num_weights": 24, "num_nonzero": 12} and d["method"] == "magnitude"
    assert isinstance(layer, PruneResult) and d["sparsity"] == pytest.approx(0.5)
    # OBS with per-layer blocks honours the per-layer quota too
    net, data = trained_net()
    obs = prune(net, "obs", amount=0.5, scope="layer", loss_fn=mse_loss, data=data)
    assert [la.num_nonzero for la in obs.layers] == [12, 9] and obs.diagnostics["block"] == "layer"


@pytest.mark.parametrize(
    "method, options",
    [("magnitude", {}), ("obd", {}), ("obd", {"num_stages": 2}), ("obs", {"block": "layer"}), ("obs", {"block": "row"})],
)
def test_amount_per_layer_is_met_by_every_method(method, options):
    net, data = trained_net()
    kw = {} if method == "magnitude" else {"loss_fn": mse_loss, "data": data}
    res = prune(net, method, amount={"0": 0.75, "2": 0.5}, scope="layer", **kw, **options)
    # round(amount * alive) removed per layer: 24 -> 6 and 18 -> 9
    assert [la.num_nonzero for la in res.layers] == [6, 9]


def test_threshold_global_and_per_layer():
    net = make_net()
    sal = compute_saliency(net, "magnitude")
    res = prune(net, "magnitude", threshold=0.2)
    expected = sum(int((s >= 0.2).sum()) for s in sal.values())
    assert res.num_nonzero == expected
    net2 = make_net()
    res2 = prune(net2, "magnitude", threshold={"0": 0.0, "2": 10.0}, scope="layer")
    assert [la.num_nonzero for la in res2.layers] == [24, 0]
    net3, data = trained_net()
    res3 = prune(net3, "obs", threshold=1e-4, loss_fn=mse_loss, data=data)
    assert 0 < res3.num_removed < 42


def test_conv2d_layers_are_pruned():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)).double()
    x, y = torch.randn(5, 1, 4, 4), torch.randn(5, 2)
    res = prune(net, "obd", amount=0.5, loss_fn=mse_loss, data=(x, y))
    assert [la.num_weights for la in res.layers] == [18, 16] and res.num_nonzero == 17
    assert net(x).shape == (5, 2)


def test_apply_masks_resumes_a_saved_pruned_model_and_keeps_it_pruned():
    net, data = trained_net()
    prune(net, "magnitude", amount=0.6)
    state, masks = copy.deepcopy(net.state_dict()), get_masks(net)
    fresh = make_net(seed=5)  # other weights: everything must come from the state dict
    with pytest.raises(RuntimeError):
        fresh.load_state_dict(state)  # the pruned keys do not fit a plain model ...
    apply_masks(fresh, masks)
    fresh.load_state_dict(state)  # ... and do once the masks are installed
    assert all(torch.equal(get_masks(fresh)[n], masks[n]) for n in masks)
    torch.testing.assert_close(fresh(data[0]), net(data[0]), rtol=0, atol=0)
    retrain_with_decay(fresh, data, steps=30)
    for name, mod in (("0", fresh[0]), ("2", fresh[2])):
        assert (mod.weight[masks[name] == 0] == 0).all() and (mod.weight[masks[name] == 1] != 0).all()


def test_apply_masks_never_revives_and_leaves_unnamed_layers_alone():
    net = make_net()
    prune(net, "magnitude", amount=0.5)
    before = get_masks(net)
    w2 = net[2].weight.detach().clone()
    extra = torch.ones_like(before["0"], dtype=torch.bool)
    extra[0, :] = False  # a mask that would revive the pruned weights of rows 1.. and removes row 0
    apply_masks(net, {"0": extra})
    after = get_masks(net)
    torch.testing.assert_close(after["0"], before["0"] * extra.to(before["0"].dtype))
    assert (net[0].weight[0] == 0).all() and int(after["0"].sum()) < int(before["0"].sum())
    assert torch.equal(after["2"], before["2"]) and torch.equal(net[2].weight, w2)
    # a plain model: the zeros of its weights become masks
    plain = make_net()
    with torch.no_grad():
        plain[0].weight[:, 0] = 0.0
    apply_masks(plain, {"0": plain[0].weight != 0})
    assert int(get_masks(plain)["0"].sum()) == 6 * 3 and "2" not in [n for n, m in get_masks(plain).items() if not m.all()]


def test_apply_masks_bad_input_names_the_argument_and_changes_nothing():
    net = make_net()
    ones = torch.ones(6, 4)
    bad = [
        ([ones], "`masks` must be a mapping"),
        ({"1": ones}, "not a prunable layer.*\\['0', '2'\\]"),
        ({"0": torch.ones(4, 6)}, "shape \\(6, 4\\)"),
        ({"0": ones.tolist()}, "must be a tensor"),
        ({"0": 0.5 * ones}, "only 0 and 1"),
        ({"2": torch.ones(3, 6), "0": 2 * ones}, "only 0 and 1"),  # checked before any layer changes
    ]
    for masks, match in bad:
        with pytest.raises(InvalidArgumentError, match=match):
            apply_masks(net, masks)
    assert all(not parametrize.is_parametrized(m, "weight") for m in (net[0], net[2]))
    with pytest.raises(InvalidArgumentError, match="no prunable layers"):
        apply_masks(nn.Sequential(nn.ReLU()), {})


def test_bad_inputs_name_the_argument():
    net = make_net()
    for bad in (1.0, -0.1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="`amount`"):
            prune(net, "magnitude", amount=bad)
    with pytest.raises(InvalidArgumentError, match="exactly one of `amount`"):
        prune(net, "magnitude", amount=0.5, threshold=0.1)
    with pytest.raises(InvalidArgumentError, match="exactly one of `amount`"):
        prune(net, "magnitude")
    with pytest.raises(UnknownNameError) as err:
        prune(net, "optimal-brain-nonsense", amount=0.5)
    for name in ("magnitude", "obd", "obs"):
        assert name in str(err.value) and name in list_saliencies()
    with pytest.raises(InvalidArgumentError, match="no prunable layers"):
        prune(nn.Sequential(nn.Tanh(), nn.ReLU()), "magnitude", amount=0.5)
    with pytest.raises(InvalidArgumentError, match="`loss_fn`"):
        prune(net, "obd", amount=0.5, data=make_data())
    with pytest.raises(InvalidArgumentError, match="`data`"):
        prune(net, "obs", amount=0.5, loss_fn=mse_loss)
    with pytest.raises(InvalidArgumentError, match="`scope`"):
        prune(net, "magnitude", amount=0.5, scope="row")
    with pytest.raises(InvalidArgumentError, match="`hessian`"):
        prune(net, "obd", amount=0.5, loss_fn=mse_loss, data=make_data(), hessian="diag")
    x, y = make_data()
    for method in ("obd", "obs"):
        with pytest.raises(InvalidArgumentError, match="`data`: loss_fn\\(model\\(x\\), y\\) fails on x of shape \\(96, 5\\)"):
            prune(net, method, amount=0.5, loss_fn=mse_loss, data=(torch.cat([x, x[:, :1]], 1), y))
    with pytest.raises(InvalidArgumentError, match="`data`: labels must be class indices 0..2 .* got labels 0..7"):
        prune(net, "obd", amount=0.5, loss_fn=cross_entropy, data=[(x[:8], torch.arange(8) % 3), (x[8:16], torch.arange(8))])
    with pytest.raises(InvalidArgumentError, match="`data`: the model fails"):
        layerwise_hessians(net, (x[:, :3], y))
    assert get_masks(net)["0"].all()  # nothing was pruned by the failed calls


# ----------------------------------------------------------------------------- layer-wise OBS (block="row")


def test_layerwise_hessian_is_the_exact_hessian_of_the_reconstruction_error():
    # Dong et al. (2017), eq. 4: for one output row, E(theta) = 1/M sum_m (theta . x~_m - t_m)^2 has Hessian 2/M X~^T X~,
    # whatever the targets t; checked against autograd for a Linear fed by a tanh layer and for a Conv2d (im2col order)
    net, data = trained_net()
    hess = layerwise_hessians(net, data)
    with torch.no_grad():
        x2 = torch.tanh(net[0](data[0]))
    target = torch.randn(x2.shape[0], dtype=torch.float64)

    def err(theta):  # row 1 of layer "2": weights then bias
        return ((x2 @ theta[:-1] + theta[-1] - target) ** 2).mean()

    ref = torch.autograd.functional.hessian(err, torch.cat([net[2].weight[1], net[2].bias[1:2]]).detach())
    assert hess["2"].shape == (7, 7)
    torch.testing.assert_close(hess["2"], ref, rtol=1e-10, atol=1e-12)
    conv = nn.Sequential(nn.Conv2d(2, 3, 2, stride=1, padding=1, bias=False)).double()
    xc = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    tc = torch.randn(5, 5, 5, dtype=torch.float64)

    def err_conv(theta):  # output channel 0 of the convolution as a function of its 2*2*2 weights
        out = nn.functional.conv2d(xc, theta.view(1, 2, 2, 2), padding=1)[:, 0]
        return ((out - tc) ** 2).mean()

    ref_c = torch.autograd.functional.hessian(err_conv, conv[0].weight[0].detach().reshape(-1))
    torch.testing.assert_close(layerwise_hessians(conv, (xc, tc))["0"], ref_c, rtol=1e-10, atol=1e-12)


def layer_errors(before, after, data):
    """Per layer, 1/M ||X (W' - W)^T + (b' - b)||^2 with X the inputs the dense net ``before`` feeds that layer."""
    with torch.no_grad():
        x0 = data[0]
        x2 = torch.tanh(before[0](x0))
        out = {}
        for name, x in (("0", x0), ("2", x2)):
            i = int(name)
            out[name] = float(((after[i](x) - before[i](x)) ** 2).sum(1).mean())
    return out


def test_row_obs_update_beats_same_mask_without_update_and_is_least_squares():
    dense, data = trained_net()
    net, _ = trained_net()
    plain, _ = trained_net()
    res = prune(net, "obs", amount=0.5, block="row", damping=0.0, loss_fn=mse_loss, data=data)
    assert res.diagnostics["block"] == "row" and res.num_removed == 21
    masks = get_masks(net)
    with torch.no_grad():
        for name, mod in [("0", plain[0]), ("2", plain[2])]:
            mod.weight.mul_(masks[name])
    ours, without = layer_errors(dense, net, data), layer_errors(dense, plain, data)
    for name in ("0", "2"):
        assert ours[name] < without[name]
    assert loss_of(net, data) < loss_of(plain, data)
    # the update is the least-squares refit of each row's kept weights and bias to the dense layer's output
    # (damping=0: the exact minimiser, up to the 1e-12 relative jitter OBS adds to keep the Cholesky factor defined)
    x2 = torch.tanh(dense[0](data[0])).detach()
    for r in range(3):
        keep = masks["2"][r] > 0
        design = torch.cat([x2[:, keep], torch.ones(x2.shape[0], 1, dtype=x2.dtype)], 1)
        sol = torch.linalg.lstsq(design, dense[2](x2)[:, r].detach().unsqueeze(1)).solution[:, 0]
        torch.testing.assert_close(net[2].weight[r, keep].detach(), sol[:-1], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(net[2].bias[r].detach(), sol[-1], rtol=1e-6, atol=1e-8)


def test_row_obs_masks_stay_applied_and_only_kept_weights_move():
    net, data = trained_net()
    before = {n: net[int(n)].weight.detach().clone() for n in ("0", "2")}
    r1 = prune(net, "obs", amount=0.4, block="row", scope="layer", loss_fn=mse_loss, data=data)
    assert [la.num_nonzero for la in r1.layers] == [24 - round(0.4 * 24), 18 - round(0.4 * 18)]
    m1 = get_masks(net)
    for n in ("0", "2"):
        mod = net[int(n)]
        raw = mod.parametrizations.weight.original.detach()
        assert (raw[m1[n] == 0] == 0).all() and (mod.weight[m1[n] > 0] != 0).all()
        assert not torch.equal(mod.weight[m1[n] > 0], before[n][m1[n] > 0])  # the OBS update moved the survivors
    prune(net, "obs", amount=0.5, block="row", scope="layer", loss_fn=mse_loss, data=data)  # cumulative
    m2 = get_masks(net)
    retrain_with_decay(net, data, steps=20)
    for n in ("0", "2"):
        assert (m2[n] <= m1[n]).all() and torch.equal(get_masks(net)[n], m2[n])
        assert (net[int(n)].weight[m2[n] == 0] == 0).all()


def test_layerwise_obs_beats_magnitude_on_digits_before_retraining():
    # the goal "OBD and OBS beat one-shot magnitude at equal sparsity before retraining", on a 64-32-10 ReLU MLP
    # (seed 0, 40 Adam epochs on 1,347 digits, dense test error ~0.05 on the other 450). Measured test errors at 90%
    # sparsity before retraining (float32 run; float64 differs in the last digit):
    #   scope    magnitude  layer-wise OBS
    #   layer    0.753      0.211
    #   global   0.396      0.109
    # asserted with a margin of 0.1 (45 test digits), far below the measured gaps of 0.29 and 0.54
    torch.manual_seed(0)
    x, y = load_digits(seed=0)
    x = x.to(torch.get_default_dtype())  # conftest may set float64
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1347], perm[1347:]
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    train(net, (x[tr], y[tr]), epochs=40, seed=0, progress=False)
    dense = evaluate(net, (x[te], y[te]))
    errors = {}
    for method in ("magnitude", "obs"):
        for scope in ("layer", "global"):
            m = copy.deepcopy(net)
            opts = {"block": "row", "loss_fn": cross_entropy, "data": (x[tr], y[tr])} if method == "obs" else {}
            res = prune(m, method, amount=0.9, scope=scope, **opts)
            assert res.num_nonzero == 64 * 32 + 32 * 10 - round(0.9 * (64 * 32 + 32 * 10))
            errors[method, scope] = evaluate(m, (x[te], y[te]))
    assert dense < 0.1
    for scope in ("layer", "global"):
        assert errors["obs", scope] < errors["magnitude", scope] - 0.1, errors


def test_row_obs_on_conv_and_bad_options():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)).double()
    x, y = torch.randn(5, 1, 4, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    res = prune(net, "obs", amount=0.5, block="row", loss_fn=mse_loss, data=(x, y))
    assert res.num_nonzero == 17 and res.diagnostics["block"] == "row"
    grouped = nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten()).double()
    with pytest.raises(InvalidArgumentError, match="groups=1"):
        prune(grouped, "obs", amount=0.5, block="row", loss_fn=mse_loss, data=(torch.randn(3, 2, 4, 4), torch.randn(3, 8)))
    with pytest.raises(InvalidArgumentError, match="`block`"):
        prune(net, "obs", amount=0.5, block="diag", loss_fn=mse_loss, data=(x, y))
    with pytest.raises(InvalidArgumentError, match="`num_stages`"):
        prune(net, "obs", amount=0.5, block="row", num_stages=0, loss_fn=mse_loss, data=(x, y))


MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")), reason="MNIST IDX files not present")
def test_layerwise_obs_on_lenet300_mnist():
    # LeNet-300-100 (266,200 weights), 3 Adam epochs on 20,000 MNIST digits (dense test error 0.050), pruned to 90%
    # with the layer-wise Hessians of 2,048 training digits. Measured test errors before retraining (seed 0):
    # magnitude global 0.191, magnitude per layer 0.717, layer-wise OBS global 0.052, per layer 0.063.
    # Asserted: OBS global stays within 0.03 of the dense error and at least 0.05 below global magnitude.
    # float32, as the measurement (the float64 default of conftest trains to another net: magnitude 0.135, OBS 0.053)
    torch.manual_seed(0)
    tr = load_mnist(MNIST, split="train", num_samples=20000, seed=0)
    te = load_mnist(MNIST, split="test")
    net = lenet300(dtype=torch.float32)
    train(net, tr, epochs=3, seed=0, progress=False)
    dense = evaluate(net, te)
    sub = torch.randperm(20000, generator=torch.Generator().manual_seed(0))[:2048]
    mag, obs = copy.deepcopy(net), copy.deepcopy(net)
    prune(mag, "magnitude", amount=0.9)
    res = prune(obs, "obs", amount=0.9, loss_fn=cross_entropy, data=(tr[0][sub], tr[1][sub]))
    assert res.diagnostics["block"] == "row" and res.num_nonzero == 266200 - round(0.9 * 266200)
    assert evaluate(obs, te) < dense + 0.03
    assert evaluate(obs, te) < evaluate(mag, te) - 0.05


def _bn_dropout_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)).double()
    with torch.no_grad():  # running statistics unlike the batch's, so train- and eval-mode passes differ
        net[1].running_mean.fill_(0.3)
        net[1].running_var.fill_(2.0)
    return net


@pytest.mark.parametrize("hessian", ["exact", "gauss-newton", "fisher", "hutchinson", "layerwise"])
def test_saliency_passes_run_in_eval_mode_and_restore_each_module_mode(hessian):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (64,), generator=g)
    net = _bn_dropout_net()
    net.train()
    net[3].eval()  # a mixed mode: the whole model in train mode, its dropout in eval mode
    state = copy.deepcopy(net.state_dict())
    diag = hessian_diagonal(net, cross_entropy, (x, y), hessian=hessian)
    # batch-norm statistics untouched, every module's own flag back
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert [m.training for m in net.modules()] == [True, True, True, True, False, True]
    # the same numbers as on the model in evaluation mode (deterministic: dropout off)
    ref = _bn_dropout_net().eval()
    expected = hessian_diagonal(ref, cross_entropy, (x, y), hessian=hessian)
    assert all(torch.allclose(diag[k], expected[k]) for k in diag)
    # and prune() too: OBD/OBS on a training-mode net leave the statistics alone
    res = prune(net, "obs" if hessian == "layerwise" else "obd", amount=0.3, loss_fn=cross_entropy, data=(x, y),
                **({"block": "row"} if hessian == "layerwise" else {"hessian": hessian}))
    assert res.num_removed > 0 and torch.equal(net[1].running_mean, state["1.running_mean"]) and net.training
