"""benchmarks/pruning.py: its command line, its recipes and (slow) its smoke runs.

The benchmark is a script, not a module of the package, so it is loaded from its path.
"""

import copy
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from bayesstruct.datasets import load_digits
from bayesstruct.nn.zoo import lenet300
from bayesstruct.prune import compute_saliency, get_masks, hessian_diagonal, prune, prunable_layers

SCRIPT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "pruning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pruning_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_unknown_arch_is_an_argparse_error_naming_the_option(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--arch", "alexnet", "--quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--arch" in err and "lenet5" in err and "lenet300" in err


def test_every_arch_has_a_full_and_a_quick_recipe_of_its_own(bench):
    assert set(bench.CONFIGS) == {(a, q) for a in ("lenet300", "lenet5") for q in (False, True)}
    for (arch, _), cfg in bench.CONFIGS.items():
        assert cfg.arch == arch
        assert arch in bench.GOALS


@pytest.mark.parametrize(("arch", "shape", "prunable"), [
    # Han et al. 2015, Table 1: LeNet-300-100 has 267K parameters (266,200 weights + 410 biases) and
    # LeNet-5 431K (430,500 weights: conv 500 + 25,000, fc 400,000 + 5,000; + 580 biases).
    ("lenet300", (2, 784), 266_200),
    ("lenet5", (2, 1, 28, 28), 430_500),
])
def test_full_recipes_build_the_papers_networks(bench, arch, shape, prunable):
    net = bench.build_model(bench.CONFIGS[(arch, False)], torch.zeros(shape))
    assert sum(m.weight.numel() for _, m in prunable_layers(net)) == prunable
    assert net(torch.zeros(shape)).shape == (2, 10)


def test_precomputed_obd_scores_prune_exactly_as_obd_does(bench):
    # The benchmark computes OBD's Hessian diagonal once and prunes fresh copies of the dense net with
    # it (FixedScores); that must be the same as calling prune(copy, "obd", ...) at each level.
    x, y = load_digits(num_samples=200, seed=1)
    x = x.to(torch.get_default_dtype())  # the float64 of conftest, as the net
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    opts = {"hessian": "gauss-newton"}
    fixed = bench.FixedScores(compute_saliency(net, "obd", loss_fn=F.cross_entropy, data=(x, y), **opts))
    for amount in (0.5, 0.9):
        a, b = copy.deepcopy(net), copy.deepcopy(net)
        prune(a, "obd", amount=amount, scope="global", loss_fn=F.cross_entropy, data=(x, y), **opts)
        prune(b, fixed, amount=amount, scope="global")
        for name, mask in get_masks(a).items():
            assert torch.equal(mask, get_masks(b)[name])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["lenet300", "lenet5"])
def test_quick_run_end_to_end(arch, tmp_path):
    # ~20 s (lenet300) / ~50 s (lenet5) on the 2-core machine: slow.
    out_json, figs = tmp_path / "out.json", tmp_path / "figs"
    env = dict(os.environ, MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, str(SCRIPT), "--arch", arch, "--quick", "--no-progress", "--out", str(out_json),
                          "--figures", str(figs)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    suffix = "digits" if arch == "lenet300" else "digits_lenet5"
    assert (figs / f"pruning_curve_{suffix}.png").stat().st_size > 0
    assert (figs / f"weight_histograms_{suffix}.png").stat().st_size > 0
    res = json.loads(out_json.read_text())
    assert res["arch"] == arch and res["quick"] and res["goals"] == []
    assert "--out" in res["machine"]["command"] and res["machine"]["torch"]  # --out: the deprecated alias of --json
    # a trained net on digits: far below the 90% error of chance (LeNet-5 reaches ~2%, the MLP ~3%)
    assert res["dense_error"] < 0.1
    assert len(res["table"]["rows"]) == 6


DIAGNOSIS = SCRIPT.parent / "obd_diagnosis.py"


@pytest.fixture(scope="module")
def diagnosis():
    spec = importlib.util.spec_from_file_location("obd_diagnosis", DIAGNOSIS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_obd_diagnosis_allocation_helpers_keep_the_requested_fractions(diagnosis):
    gen = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(30, 20, generator=gen), "b": 3 * torch.rand(10, 5, generator=gen)}
    alloc = diagnosis.global_allocation(scores, 0.2)
    kept = sum(alloc[n] * s.numel() for n, s in scores.items())
    assert kept == pytest.approx(0.2 * 650, abs=0.5)
    assert alloc["b"] > alloc["a"]  # layer b's scores are larger, so it keeps more in a global ranking
    masks = diagnosis.masks_at(scores, alloc)
    for n, s in scores.items():
        assert int(masks[n].sum()) == int(round(alloc[n] * s.numel()))
        assert float(s[masks[n] > 0].min()) >= float(s[masks[n] == 0].max())  # the highest scores are the kept ones


def tiny_net_and_data(seed, n):
    """A 12-9-5-4 ReLU net and ``n`` non-negative inputs with 4-class labels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 12, generator=gen)
    y = torch.randint(0, 4, (n,), generator=gen)
    torch.manual_seed(seed)
    return lenet300(12, 4, hidden=(9, 5)), x, y


def test_obd_diagnosis_unit_curvature_is_the_gauss_newton_of_the_first_layer(diagnosis):
    net, x, y = tiny_net_and_data(1, 64)
    curv = diagnosis.unit_curvature(net, x, y)
    ggn = hessian_diagonal(net, F.cross_entropy, (x, y), hessian="gauss-newton")["0"]
    torch.testing.assert_close(curv.T @ x**2 / len(y), ggn, rtol=1e-4, atol=1e-9)
    rise = lambda delta, diagonal: diagnosis.quadratic_rise(curv, x, delta, diagonal=diagonal)  # noqa: E731
    # one weight moved: no cross-terms, the block and the diagonal predictions agree
    delta = torch.zeros(9, 12)
    delta[3, 7] = 0.5
    assert rise(delta, False) == pytest.approx(rise(delta, True), rel=1e-5)
    assert rise(delta, True) == pytest.approx(0.5 * float(ggn[3, 7]) * 0.25, rel=1e-4)
    # a whole row of one sign on non-negative inputs: the cross-terms add up
    delta = torch.zeros(9, 12)
    delta[3] = 0.1
    assert rise(delta, False) > 2 * rise(delta, True)


def test_obd_diagnosis_squared_error_and_its_unit_curvature(diagnosis):
    net, x, y = tiny_net_and_data(2, 48)
    out = net(x)
    expected = 0.5 * ((out - F.one_hot(y, 4).float()) ** 2).sum(-1).mean()
    torch.testing.assert_close(diagnosis.squared_error(out, y), expected)
    curv = diagnosis.unit_curvature(net, x, y, diagnosis.squared_error)  # J^T J: H_n = I
    ggn = hessian_diagonal(net, diagnosis.squared_error, (x, y), hessian="gauss-newton")["0"]
    torch.testing.assert_close(curv.T @ x**2 / len(y), ggn, rtol=1e-4, atol=1e-9)
    assert not torch.allclose(curv, diagnosis.unit_curvature(net, x, y), rtol=0.1)
    with pytest.raises(ValueError, match="loss_fn"):
        diagnosis.unit_curvature(net, x, y, F.nll_loss)


def test_obd_diagnosis_variants_have_tanh_units_and_fit_their_loss(diagnosis, bench):
    import dataclasses

    cfg = dataclasses.replace(bench.CONFIGS[("lenet300", True)], dense_phases=((40, 3e-3),))
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(96, 64, generator=gen)
    y = (x @ torch.randn(64, 10, generator=gen)).argmax(-1)  # labels a net can learn
    net = diagnosis.train_variant(bench, cfg, (x, y), activation="tanh", loss_fn=diagnosis.squared_error)
    kinds = [type(m) for m in net]
    assert torch.nn.ReLU not in kinds and kinds.count(torch.nn.Tanh) == len(cfg.hidden)
    # the best constant output (the class frequencies p) has squared error 1/2 sum_k p_k (1 - p_k)
    freq = torch.bincount(y, minlength=10).float() / len(y)
    with torch.no_grad():
        assert float(diagnosis.squared_error(net(x), y)) < 0.5 * float(0.5 * (freq * (1 - freq)).sum())


def test_obd_diagnosis_frozen_gates_are_linear_in_the_first_layer(diagnosis):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(50, 12, generator=gen)
    torch.manual_seed(2)
    net = lenet300(12, 4, hidden=(9, 5))
    with torch.no_grad():
        logits, flipped = diagnosis.frozen_gate_logits(net, net, x)
        torch.testing.assert_close(logits, net(x))
        assert flipped == 0.0
        moved = [copy.deepcopy(net) for _ in range(3)]
        delta = torch.randn(9, 12, generator=gen)
        for t, m in zip((0.0, 1.0, 2.0), moved):
            m[0].weight.add_(t * delta)
        out = [diagnosis.frozen_gate_logits(net, m, x) for m in moved]
    # linear in the first layer's weights: equal steps give equal changes of the logits
    torch.testing.assert_close(out[2][0] - out[1][0], out[1][0] - out[0][0], rtol=1e-5, atol=1e-5)
    # a unit-variance move of every weight flips some gates, and then the real net is not linear
    assert out[2][1] > 0.0
    assert not torch.allclose(moved[2](x) - moved[1](x), moved[1](x) - moved[0](x), atol=1e-3)
    with pytest.raises(TypeError, match="dense"):
        diagnosis.frozen_gate_logits(torch.nn.Sequential(torch.nn.Tanh()), torch.nn.Sequential(torch.nn.Tanh()), x)


def test_obd_diagnosis_evidence_precision_solves_mackays_fixed_point(diagnosis):
    # equal curvature c on d weights with sum theta^2 = S: alpha = d N c / ((N c + alpha) S),
    # the positive root of alpha^2 + N c alpha - d N c / S = 0
    d, n, c = 40, 1000, 0.02
    w = torch.full((d,), 0.3)
    s = float(w.pow(2).sum())
    root = (-n * c + math.sqrt((n * c) ** 2 + 4 * d * n * c / s)) / 2
    assert diagnosis.evidence_precision(torch.full((d,), c), w, n) == pytest.approx(root, rel=1e-6)
    # unequal curvatures: the returned alpha satisfies gamma(alpha) / S = alpha
    gen = torch.Generator().manual_seed(3)
    curv, w = torch.rand(200, generator=gen) * 1e-3, torch.randn(200, generator=gen) * 0.1
    alpha = diagnosis.evidence_precision(curv, w, 60_000)
    gamma = float((60_000 * curv / (60_000 * curv + alpha)).sum())
    assert alpha == pytest.approx(gamma / float(w.pow(2).sum()), rel=1e-6)
    with pytest.raises(ValueError, match="`curvature` a positive"):
        diagnosis.evidence_precision(torch.zeros(5), torch.ones(5), 10)
    with pytest.raises(ValueError, match="`curvature` must have the shape"):
        diagnosis.evidence_precision(torch.ones(4), torch.ones(5), 10)
    with pytest.raises(ValueError, match="`num_data`"):
        diagnosis.evidence_precision(torch.ones(5), torch.ones(5), 0)


@pytest.mark.slow
def test_obd_diagnosis_quick_run_prints_its_eight_tables(tmp_path):
    out = tmp_path / "obd.json"
    proc = subprocess.run([sys.executable, str(DIAGNOSIS), "--quick", "--no-progress", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())  # every table's numbers, as printed
    assert res["quick"] and "--json" in res["machine"]["command"]
    for r in res["1_allocation_vs_ranking"]:
        assert f"| {r['kept']:g} | {r['magnitude']:.2f} | {r['obd_ranking_magnitude_allocation']:.2f} | {r['obd']:.2f} |" in proc.stdout
    for r in res["4_training_loss"]:
        assert f"| {r['kept']:g} | {r['magnitude']:.4f} | {r['obd']:.4f} |" in proc.stdout
    assert len(res["8_squared_error_rise"]) == len(res["5_input_layer_rise"]) > 0
    for head in ("1. allocation vs ranking", "2. OBD's ranking in one layer", "3. the input layer", "4. training loss",
                 "5. the input layer (0) pruned alone", "6. OBD on the negative log posterior",
                 "7. OBD in other training settings", "8. table 5 for the ReLU net trained on the squared error"):
        assert head in proc.stdout
    figure = Path(proc.stdout.split("figure written to ")[1].splitlines()[0])
    assert figure.suffix == ".png" and figure.stat().st_size > 10_000 and SCRIPT.parent.parent not in figure.parents
