"""io writers: bad paths and data are named; a failed write keeps the old file."""

import os

import pytest

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.io import to_inference_data, write_atomic, write_json


@pytest.mark.parametrize("path", [None, 3, ""])
def test_paths(tmp_path, path):
    with pytest.raises(InvalidArgumentError, match="path"):
        write_atomic(path, b"x")


def test_write_atomic_needs_bytes_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("OLD")
    with pytest.raises(InvalidArgumentError, match="data"):
        write_atomic(target, "text")
    assert target.read_text() == "OLD" and os.listdir(tmp_path) == ["a.txt"]


def test_write_json_unencodable_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("OLD")

    class Bad:
        def to_dict(self):
            return {"a": object()}

    with pytest.raises(InvalidArgumentError, match="table"):
        write_json(Bad(), target)
    assert target.read_text() == "OLD" and os.listdir(tmp_path) == ["t.json"]


@pytest.mark.parametrize("kwargs, match", [(dict(dims=3), "dims"), (dict(coords=3), "coords")])
def test_to_inference_data_mappings(kwargs, match):
    x, y = sinusoid(8)
    t = compare(PolynomialFamily([1]), x, y, methods="laplace", workers=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=match):
        to_inference_data(t.rows[0].estimates["laplace"], **kwargs)


# ----------------------------------------------------------------------------- structure chains
def _quiet_az():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def test_chain_diagnostics_reads_a_1d_array_as_one_chain_as_arviz_does():
    import numpy as np

    from bayesstruct.io import chain_diagnostics

    az = _quiet_az()
    x = np.random.default_rng(0).normal(size=300)
    one = chain_diagnostics(x)
    assert one == chain_diagnostics(x[None, :]) and one["num_chains"] == 1
    # ArviZ's own values on the same numpy array (it reads (draw,) as (1, draw) too)
    assert one["ess_bulk"] == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-12)
    assert one["ess_tail"] == pytest.approx(float(az.ess(x, method="tail")), rel=1e-12)
    assert one["mean"] == pytest.approx(x.mean()) and one["sd"] == pytest.approx(x.std(ddof=1))
    assert np.isnan(float(az.rhat(x)))  # ArviZ 0.23: R-hat of one chain is NaN ...
    assert one["r_hat"] is None  # ... reported as undefined
    import torch

    assert chain_diagnostics(torch.as_tensor(x)) == one
    assert chain_diagnostics([1, 2, 3])["ess_bulk"] is None  # under four draws: undefined


@pytest.mark.parametrize("values, match", [
    ((r for r in [[0.0, 1.0, 2.0, 3.0]] * 2), r"got a generator.*np\.stack\(list\(values\)\)"),
    (iter([[0.0, 1.0, 2.0, 3.0]]), "got a list_iterator"),
    ([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0]], "different lengths"),
    ([["a", "b", "c", "d"]], "must hold numbers"),
    ([], r"at least one draw; got shape \(0,\)"),
    (3.0, r"got shape \(\)"),
    ([[[0.0] * 4]], r"\(chain, draw\) or \(draw,\).*got shape \(1, 1, 4\)"),
])
def test_chain_diagnostics_bad_values_are_named(values, match):
    from bayesstruct.io import chain_diagnostics

    with pytest.raises(InvalidArgumentError, match=r"`values`") as info:
        chain_diagnostics(values)
    assert info.match(match)


def test_structure_inference_data_takes_belief_net_samples():
    import numpy as np

    from bayesstruct.families import BeliefNetSampler
    from bayesstruct.io import chain_diagnostics, structure_inference_data

    az = _quiet_az()
    data = np.random.default_rng(0).random((30, 5))
    chains = [BeliefNetSampler(data, seed=s).run(40, progress=False) for s in (0, 1, 2)]
    M = max(len(w) for c in chains for w in c.widths)
    assert len({max(len(w) for w in c.widths) for c in chains}) > 1  # the chains reach different depths ...
    idata = structure_inference_data(chains, family="belief_net")
    post = idata.posterior
    assert idata.attrs["bayesstruct_family"] == "belief_net"
    assert f"width_{M}" in post and f"width_{M + 1}" not in post  # ... and stack with M = the deepest
    for k in ("depth", "num_edges", "num_hidden_units", "alpha", "beta", "log_joint"):
        assert post[k].dims == ("chain", "draw") and post[k].shape == (3, 40)
        assert np.array_equal(post[k].values, np.stack([getattr(c, k) for c in chains]))
    assert np.array_equal(post["width_1"].values, np.stack([c.width(1) for c in chains]))
    # ArviZ runs on it and gives what it gives on the same numpy arrays directly
    summary = az.summary(idata)
    assert {"depth", "num_edges", "log_joint", "width_1"} <= set(summary.index)
    raw = np.stack([c.log_joint for c in chains])
    assert float(az.ess(idata)["log_joint"]) == pytest.approx(float(az.ess(raw)), rel=1e-12)
    assert float(az.rhat(idata)["log_joint"]) == pytest.approx(float(az.rhat(raw)), rel=1e-12)
    assert chain_diagnostics(post["log_joint"].values)["r_hat"] == pytest.approx(float(az.rhat(raw)), rel=1e-12)
    # one chain alone, a tuple, and a generator of chains (read into a list) all work
    single = structure_inference_data(chains[0])
    assert single.posterior["depth"].shape == (1, 40)
    assert single.posterior.sizes["draw"] == 40
    from_gen = structure_inference_data(c for c in chains)
    assert set(from_gen.posterior.data_vars) == set(post.data_vars)
    assert np.array_equal(from_gen.posterior["num_edges"].values, post["num_edges"].values)
    assert structure_inference_data(tuple(chains)).posterior["depth"].shape == (3, 40)


def test_structure_inference_data_errors_name_the_chain():
    import numpy as np

    from bayesstruct.io import structure_inference_data

    a = {"s": np.zeros(5)}
    for bad, match in (((c for c in []), "empty"), (3, r"^`chains` must have a stats\(\) method"),
                       ([a, 3], r"`chains\[1\]` must have a stats\(\) method"),
                       ([a, {"s": np.zeros(4)}], r"`chains\[1\]` statistic 's' has 4 draws"),
                       ({"s": np.zeros((2, 5))}, r"shape \(draw,\).*has shape \(2, 5\)"),
                       ([{"s": np.zeros(0)}], "no draws")):
        with pytest.raises(InvalidArgumentError, match=match):
            structure_inference_data(bad)
    with pytest.raises(InvalidArgumentError, match="`family` must be a str"):
        structure_inference_data(a, family=3)


def test_structure_chain_docstring_examples_run():
    import doctest

    import bayesstruct.io as io
    from bayesstruct.families import belief_net

    for obj, globs in ((io.chain_diagnostics, vars(io)), (io.structure_inference_data, vars(io)),
                       (belief_net.BeliefNetSamples.stats, vars(belief_net))):
        tests = doctest.DocTestFinder().find(obj, globs=dict(globs))
        assert tests and tests[0].examples, f"{obj.__qualname__} has no >>> example"
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for t in tests:
            runner.run(t)
        assert runner.failures == 0, obj.__qualname__


def test_write_atomic_takes_any_file_name_and_follows_a_symlink(tmp_path):
    long_name = tmp_path / ("r" * 245)  # legal (NAME_MAX 255), but the temporary name was 14 characters longer
    write_atomic(long_name, b"x")
    assert long_name.read_bytes() == b"x"
    real = tmp_path / "real.txt"
    real.write_text("OLD")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_atomic(link, b"NEW")  # the link was replaced by a regular file and real.txt kept OLD
    assert link.is_symlink() and real.read_text() == "NEW"
