"""Bad input to the public API of bayesstruct.prune: an error that names the argument, nothing changed or lost."""

import copy
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import (
    HuffmanEncoded,
    VariationalFit,
    account,
    accounting_table,
    apply_masks,
    bayesian_layers,
    compress,
    compute_saliency,
    data_bits,
    decode_relative_indices,
    decompress,
    finetune_centroids,
    fit_variational,
    get_masks,
    hessian_diagonal,
    huffman_encode,
    iterative_prune,
    layerwise_hessians,
    mask_weights,
    penalty,
    predict_logits,
    prune,
    prune_by_relative_density,
    register_saliency,
    relative_indices,
    remove_pruning,
    share_weights,
    sparse_layer_bits,
    threshold_sweep,
    train,
    weight_histogram,
)


def net():  # float32 throughout (the suite's default dtype is float64): compress stores float32
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5, dtype=torch.float32), nn.Tanh(), nn.Linear(5, 3, dtype=torch.float32))


def data(n=10):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g, dtype=torch.float32), torch.randint(0, 3, (n,), generator=g)


X, Y = data()
NAN_X = torch.full_like(X, math.nan)


def nan_net():
    m = net()
    with torch.no_grad():
        m[0].weight[0, 0] = math.nan
    return m


def make_fit(model=None):
    model = model or net()
    layers = [("0", model[0]), ("2", model[2])]
    loc = {n: m.weight.detach().clone() for n, m in layers}
    scale = {n: torch.full_like(m.weight, 0.5) for n, m in layers}
    return VariationalFit(layers=("0", "2"), loc=loc, scale=scale, point_params={}, prior_scale=1.0, data_bits=0.0,
                          model_bits=0.0, initial_total_bits=0.0, history=())


# ----------------------------------------------------------------------------- prune and saliencies

OBD = dict(loss_fn=F.cross_entropy)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold={"0": 0.1, "2": 0.1, "20": 1.0}), "threshold"),  # a misspelt layer name was ignored
        (dict(method="obd", amount=0.5, data=(X, Y[:5]), **OBD), "same number of rows"),
        (dict(method="obd", amount=0.5, data=(X, Y[:5]), hessian="fisher", **OBD), "same number of rows"),
        (dict(method="obd", amount=0.5, data=(X, Y[:5]), hessian="gauss-newton", **OBD), "same number of rows"),
        (dict(method="obs", amount=0.5, data=(X, Y[:5]), **OBD), "same number of rows"),
        (dict(method="obs", amount=0.5, data=(X, Y[:5]), block="row", progress=False, **OBD), "same number of rows"),
        (dict(method="obd", amount=0.5, data=[(X, Y), (X[:3], Y[:4])], **OBD), "data` batch 1"),
        (dict(method="obd", amount=0.5, data=(NAN_X, Y), **OBD), "NaN"),
        (dict(method="obd", amount=0.5, data=(NAN_X, Y), hessian="layerwise"), "NaN"),
        (dict(method="obs", amount=0.5, data=(NAN_X, Y), **OBD), "NaN"),
        (dict(method="obd", amount=0.5, data=(X[:0], Y[:0]), **OBD), "n >= 1"),
        (dict(method="obd", amount=0.5, data=(X, Y.float()), **OBD), "integer class labels"),
        (dict(method="obd", amount=0.5, data=(X, Y.bool()), **OBD), "integer class labels"),
        (dict(method="obd", amount=0.5, data=(X.numpy(), Y.numpy()), **OBD), "torch tensors"),
        (dict(method="obd", amount=0.5, data=X, **OBD), "single tensor"),
        (dict(method="obd", amount=0.5, data=(X, Y), hessian="hutchinson", seed="a", **OBD), "seed"),
        (dict(method="obd", amount=0.5, data=(X, Y), num_samples=0, **OBD), "num_samples"),
    ],
)
def test_prune_rejects(kwargs, match):
    model = net()
    before = copy.deepcopy(model.state_dict())
    method = kwargs.pop("method", "magnitude")
    with pytest.raises(InvalidArgumentError, match=match):
        prune(model, method, **kwargs)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # untouched


def test_prune_accepts_numpy_numbers():
    assert prune(net(), amount=np.float32(0.5)).num_removed == 18
    assert prune(net(), threshold=np.float32(0.0)).num_removed == 0


@pytest.mark.parametrize("call", ["prune", "saliency", "hessian", "layerwise"])
def test_nan_weights_are_refused(call):
    # magnitude ranked the NaN weights last: they survived and the finite ones were pruned
    fn = {
        "prune": lambda m: prune(m, amount=0.5),
        "saliency": lambda m: compute_saliency(m, "magnitude"),
        "hessian": lambda m: hessian_diagonal(m, F.cross_entropy, (X, Y)),
        "layerwise": lambda m: layerwise_hessians(m, (X, Y)),
    }[call]
    with pytest.raises(InvalidArgumentError, match="model.*NaN"):
        fn(nan_net())


def test_hessian_diagonal_and_register_saliency_reject():
    with pytest.raises(InvalidArgumentError, match="seed"):
        hessian_diagonal(net(), F.cross_entropy, (X, Y), hessian="hutchinson", seed=1.5)
    with pytest.raises(InvalidArgumentError, match="num_samples"):
        hessian_diagonal(net(), F.cross_entropy, (X, Y), hessian="hutchinson", num_samples=0)
    with pytest.raises(InvalidArgumentError, match="name"):
        register_saliency(5)
    with pytest.raises(InvalidArgumentError, match="same number of rows"):
        layerwise_hessians(net(), (X, Y[:3]))


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: train(net(), (X, Y), loss_fn="ce", progress=False), "loss_fn"),
        (lambda: train(net(), (X, Y), loss_fn=F.mse_loss, progress=False), "loss_fn"),
        (lambda: train(net(), (X, Y), loss_fn=lambda out, y: out, progress=False), "loss_fn.*scalar"),
        (lambda: train(nn.Sequential(nn.Linear(4, 3, dtype=torch.float32)).requires_grad_(False), (X, Y), progress=False), "model.*trainable"),
        (lambda: data_bits("m", (X, Y)), "model"),
        (lambda: predict_logits("m", X), "model"),
        (lambda: predict_logits(net(), X.numpy()), "`x`"),
        (lambda: predict_logits(net(), NAN_X), "`x`.*NaN"),
        (lambda: predict_logits(net(), torch.randn(3, 7, dtype=torch.float32)), "`x`"),
        (lambda: predict_logits(net(), X, batch_size=0), "batch_size"),
        (lambda: penalty(net(), l1=-1.0), "l1"),
        (lambda: penalty(net(), l2=math.nan), "l2"),
        (lambda: penalty("m", l1=1.0), "model"),
    ],
)
def test_training_rejects(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


def test_train_with_a_bad_loss_leaves_the_model_alone():
    model = net()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InvalidArgumentError, match="loss_fn"):
        train(model, (X, Y), loss_fn=F.mse_loss, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- iterative pruning


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0), "lr"),  # used to raise only after round 1 had pruned the model in place
        (dict(batch_size=0), "batch_size"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(seed="a"), "seed"),
        (dict(loss_fn="ce"), "loss_fn"),
        (dict(scope="neuron"), "scope"),
        (dict(foo=1), "option"),
        (dict(test_data=(X, Y + 3)), "test_data"),
        (dict(method="obd", saliency_data=(X, Y[:3])), "saliency_data"),
        (dict(method="obd", saliency_data=(X, Y + 3)), "saliency_data"),
    ],
)
def test_iterative_prune_checks_everything_before_the_first_round(kwargs, match):
    model = net()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InvalidArgumentError, match=match):
        iterative_prune(model, (X, Y), amounts=[0.5], retrain_epochs=1, progress=False, **kwargs)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_iterative_prune_takes_a_tensor_schedule():
    res = iterative_prune(net(), (X, Y), schedule=torch.tensor([0.5]), retrain_epochs=0, progress=False)
    assert res.rounds[-1].target_kept == 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bins=0), "bins"),
        (dict(bins="auto-ish"), "bins"),
        (dict(bins=[1.0, 0.0]), "bins"),
        (dict(range=(1.0, -1.0)), "range"),
        (dict(range=(math.nan, 1.0)), "range"),
    ],
)
def test_weight_histogram_rejects(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        weight_histogram(net(), **kwargs)


def test_weight_histogram_refuses_nan_weights():
    with pytest.raises(InvalidArgumentError, match="model.*NaN"):
        weight_histogram(nan_net())


# ----------------------------------------------------------------------------- Deep Compression


def shared_net():
    model = net()
    prune(model, amount=0.5)
    return model, share_weights(model, bits=2)


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(shared="s"), "shared"),
        (dict(loss_fn="ce"), "loss_fn"),
        (dict(loss_fn=F.mse_loss), "loss_fn"),
        (dict(data=(X, Y[:3])), "same number of rows"),
        (dict(data=(NAN_X, Y)), "NaN"),
        (dict(data=[(X, Y), (X, Y + 3)]), "labels"),
        (dict(model="m"), "model"),
    ],
)
def test_finetune_centroids_rejects(args, match):
    model, shared = shared_net()
    codebooks = {n: c.clone() for n, c in shared.codebooks.items()}
    kw = dict(model=model, shared=shared, loss_fn=F.cross_entropy, data=(X, Y), num_steps=2)
    kw.update(args)
    with pytest.raises(InvalidArgumentError, match=match):
        finetune_centroids(kw.pop("model"), kw.pop("shared"), kw.pop("loss_fn"), kw.pop("data"), **kw)
    assert all(torch.equal(codebooks[n], shared.codebooks[n]) for n in codebooks)  # no step was taken


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: relative_indices([0, -1, 2], 2), "assignment"),
        (lambda: relative_indices([0, 1.5, 2], 2), "assignment"),
        (lambda: relative_indices([0, math.nan], 2), "assignment"),
        (lambda: relative_indices(["a"], 2), "assignment"),
        (lambda: decode_relative_indices([0], [1], "a"), "numel"),
        (lambda: decode_relative_indices([0], [1], -1), "numel"),
        (lambda: decode_relative_indices([0.5], [1], 3), "gaps"),
    ],
)
def test_relative_indices_reject(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


@pytest.mark.parametrize("path", [5, None, ""])
def test_compress_and_decompress_name_a_bad_path(path, tmp_path):
    model, shared = shared_net()
    with pytest.raises(InvalidArgumentError, match="path"):
        compress(model, shared, path)
    with pytest.raises(InvalidArgumentError, match="path"):
        decompress(path)


def test_decompress_missing_file_or_directory(tmp_path):
    with pytest.raises(InvalidArgumentError, match="path.*no such file"):
        decompress(tmp_path / "missing.bsc")
    with pytest.raises(InvalidArgumentError, match="path.*directory"):
        decompress(tmp_path)


def test_compress_checks_the_directory_and_keeps_an_existing_file(tmp_path):
    model, shared = shared_net()
    with pytest.raises(InvalidArgumentError, match="path.*does not exist"):
        compress(model, shared, tmp_path / "nodir" / "m.bsc")
    target = tmp_path / "m.bsc"
    target.write_bytes(b"precious")
    with pytest.raises(InvalidArgumentError):
        compress(net(), shared, target, overwrite=True)  # weights are not codebook[assignment]
    assert target.read_bytes() == b"precious"


def _file_with_header(path, header):
    h = str(header).replace("'", '"').replace("True", "true").replace("False", "false").encode()
    body = b"BSDC" + bytes([1]) + struct.pack(">I", len(h)) + h
    path.write_bytes(body + struct.pack(">I", zlib.crc32(body)))
    return path


@pytest.mark.parametrize(
    "arch",
    [
        [{"type": "Flatten", "start_dim": 1.5, "end_dim": -1}],
        [{"type": "Linear", "in_features": 2, "out_features": 2, "bias": "no"}],
        [{"type": "MaxPool2d", "kernel_size": [2.5, 2], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1], "ceil_mode": False}],
    ],
)
def test_decompress_rejects_a_bad_architecture_entry(arch, tmp_path):
    path = _file_with_header(tmp_path / "bad.bsc", {"arch": arch, "layers": []})
    with pytest.raises(InvalidArgumentError, match="corrupt Deep Compression file"):
        decompress(path)


# ----------------------------------------------------------------------------- Huffman


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(payload=b"", payload_bits=0, num_symbols=0, code_lengths=[("a", 1)]), "code_lengths"),
        (dict(payload=b"", payload_bits=0, num_symbols=0, code_lengths=None), "code_lengths"),
        (dict(payload="ab", payload_bits=0, num_symbols=0), "payload"),
    ],
)
def test_huffman_encoded_rejects(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        HuffmanEncoded(**kwargs)


@pytest.mark.parametrize("symbols", [None, {1, 2}, (i for i in range(3)), "123"])
def test_huffman_encode_names_a_non_array(symbols):
    with pytest.raises(InvalidArgumentError, match="symbols.*1-D array of non-negative integers"):
        huffman_encode(symbols)


# ----------------------------------------------------------------------------- Graves


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=True), "lr"),
        (dict(prior_scale=True), "prior_scale"),
        (dict(data=(X, torch.randn(10, 2, dtype=torch.float32)), likelihood="normal"), "likelihood='normal'"),
        (dict(data=(X, Y.bool())), "integer class labels"),
        (dict(model=nan_net()), "model.*NaN"),
    ],
)
def test_fit_variational_rejects(kwargs, match):
    model = kwargs.pop("model", None) or net()
    d = kwargs.pop("data", (X, Y))
    with pytest.raises(InvalidArgumentError, match=match):
        fit_variational(model, d, num_steps=1, num_eval_samples=1, progress=False, **kwargs)


def test_relative_density_thresholds():
    fit = make_fit()
    assert prune_by_relative_density(net(), fit, np.float32(0.5)).method == "relative_density"
    with pytest.raises(InvalidArgumentError, match="thresholds"):
        threshold_sweep(net(), fit, 0.5, lambda m: 0.0)
    with pytest.raises(InvalidArgumentError, match="thresholds"):
        threshold_sweep(net(), fit, "0.5", lambda m: 0.0)


# ----------------------------------------------------------------------------- accounting


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data_test=(X, Y + 3)), "data_test"),
        (dict(mdl_data=(X, Y + 3)), "mdl_data"),
        (dict(model=nan_net()), "model.*NaN"),
    ],
)
def test_account_rejects(kwargs, match):
    model = kwargs.pop("model", None) or net()
    with pytest.raises(InvalidArgumentError, match=match):
        account(model, kwargs.pop("data_test", (X, Y)), method="m", **kwargs)


def test_account_with_a_fit_counts_only_weights_kept_when_masks_were_removed():
    model = net()
    fit = make_fit(model)
    prune_by_relative_density(model, fit, 0.5)
    with_masks = account(model, (X, Y), method="g", fit=fit).model_bits
    remove_pruning(model)  # masks baked in: the pruned weights are zeros without a mask
    assert account(model, (X, Y), method="g", fit=fit).model_bits == pytest.approx(with_masks)


@pytest.mark.parametrize("reports", [None, 5, "table"])
def test_accounting_table_names_reports(reports):
    with pytest.raises(InvalidArgumentError, match="reports"):
        accounting_table(reports)


def test_sparse_layer_bits_names_weight():
    with pytest.raises(InvalidArgumentError, match="weight"):
        sparse_layer_bits(np.ones(3))


# ----------------------------------------------------------------------------- Bayesian networks and masks


def bnn():
    import pyro.distributions as dist
    from pyro.nn import PyroModule, PyroSample

    class BNN(PyroModule):
        def __init__(self):
            super().__init__()
            self.fc = PyroModule[nn.Linear](4, 3, dtype=torch.float32)
            self.fc.weight = PyroSample(dist.Normal(0.0, 1.0).expand([3, 4]).to_event(2))

        def forward(self, x):
            return self.fc(x)

    return BNN()


def test_bayesian_layers_of_a_model_never_run():
    assert [s for s, _ in bayesian_layers(bnn())] == ["fc.weight"]  # was a bare AssertionError from Pyro
    with pytest.raises(InvalidArgumentError, match="model"):
        bayesian_layers("m")


@pytest.mark.parametrize(
    "fn, masks, match",
    [
        (5, {}, "fn"),
        (None, {"fc.weight": "x"}, r"masks\['fc.weight'\]"),
        (None, {"fc.weight": torch.full((3, 4), 0.5)}, r"masks\['fc.weight'\].*0 and 1"),
        (None, {3: torch.ones(3, 4)}, "masks"),
    ],
)
def test_mask_weights_rejects(fn, masks, match):
    with pytest.raises(InvalidArgumentError, match=match):
        mask_weights(fn, masks)


def test_apply_masks_still_refuses_half_masks():
    with pytest.raises(InvalidArgumentError, match="masks"):
        apply_masks(net(), {"0": torch.full((5, 4), 0.5)})
    assert set(get_masks(net())) == {"0", "2"}


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def _torch_pruned():
    net = _mlp()
    torch.nn.utils.prune.l1_unstructured(net[0], "weight", 0.5)
    return net


def _tied():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    return nn.Sequential(a, nn.Tanh(), b)


@pytest.mark.parametrize(
    "make, match",
    [
        (_torch_pruned, r"layer '0' was pruned with torch.nn.utils.prune.*prune.remove"),
        (_tied, r"layers '0' and '2' share one weight tensor"),
        (lambda: nn.Sequential(nn.LazyLinear(6), nn.Tanh(), nn.Linear(6, 3)), r"layer '0' \(LazyLinear\).*lazy"),
    ],
)
@pytest.mark.parametrize("method", ["magnitude", "obd", "obs"])
def test_models_the_masks_cannot_handle_are_refused_unchanged(make, match, method):
    net = make()
    before = copy.deepcopy(net.state_dict())
    d_in = 4
    data = (torch.randn(16, d_in), torch.randn(16, 3 if make is not _tied else 4))
    kw = {} if method == "magnitude" else {"loss_fn": F.mse_loss, "data": data}
    with pytest.raises(InvalidArgumentError, match=match):
        prune(net, method, amount=0.5, **kw)
    after = net.state_dict()
    lazy = [k for k, v in before.items() if isinstance(v, nn.parameter.UninitializedParameter)]
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before if k not in lazy)
    assert all(isinstance(after[k], nn.parameter.UninitializedParameter) for k in lazy)


@pytest.mark.parametrize("method", ["obd", "obs"])
def test_a_loss_fn_returning_one_loss_per_example_is_refused(method):
    net, x, y = _mlp(), torch.randn(16, 4), torch.randn(16, 3)
    with pytest.raises(InvalidArgumentError, match=r"`loss_fn` must return the mean loss.*shape \(2,\)"):
        prune(net, method, amount=0.5, loss_fn=lambda out, t: ((out - t) ** 2).mean(1), data=(x, y))
    assert int(get_masks(net)["0"].sum()) == 24


def test_convolutions_other_than_conv2d_are_named_in_a_warning_and_left_dense():
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"\['0 \(Conv1d\)'\] are not pruned"):
        res = prune(net, "magnitude", amount=0.5)
    assert res.num_nonzero == 4 and int((net[0].weight != 0).sum()) == 6


def test_grouped_conv_message_names_the_layerwise_hessian_of_obd_and_obs():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(16, 3))
    data = (torch.randn(8, 2, 4, 4), torch.randint(0, 3, (8,)))
    with pytest.raises(InvalidArgumentError, match=r"OBD hessian='layerwise'.*groups=2.*OBD with hessian='gauss-newton'"):
        prune(net, "obd", amount=0.5, hessian="layerwise", loss_fn=F.cross_entropy, data=data)


def test_eval_mode_names_a_non_module():
    from bayesstruct.prune import eval_mode

    with pytest.raises(InvalidArgumentError, match="`model` must be a torch.nn.Module"):
        with eval_mode("net"):
            pass
