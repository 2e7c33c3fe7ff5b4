"""bayesstruct.io: the ArviZ adapter (shapes, values, groups), netCDF and JSON output."""

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.io import loo_compare, save_netcdf, structure_label, table_inference_data, to_inference_data, write_json

DEGREES = (1, 3, 5)
N = 20


@pytest.fixture(scope="module")
def table():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        x, y = sinusoid(n=N, noise=0.3, seed=0)
        return compare(PolynomialFamily(range(10)), x, y, methods="exact,laplace,smc",
                       structures=[{"degree": d} for d in DEGREES], workers=1, progress=False, seed=0)
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def test_import_does_not_load_arviz():
    code = "import sys, bayesstruct, bayesstruct.io; assert 'arviz' not in sys.modules, 'arviz imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method", ["laplace", "smc"])
def test_groups_shapes_and_values(table, method):
    for row in table.rows:
        result = row.estimates[method]
        idata = to_inference_data(result, observed=table.y)
        assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
        ll = result.pointwise_log_likelihood["y"]
        num_chains, num_draws = ll.shape[:2]
        if method == "smc":
            assert num_chains > 1  # one chain per SMC island
        da = idata.log_likelihood["y"]
        assert da.dims == ("chain", "draw", "y_dim_0")
        assert da.shape == (num_chains, num_draws, N)
        np.testing.assert_array_equal(da.values, ll.numpy())
        w = idata.posterior["w"]
        assert w.shape == (num_chains, num_draws, row.structure["degree"] + 1)
        np.testing.assert_array_equal(w.values, result.samples["w"].numpy())
        assert idata.observed_data["y"].dims == ("y_dim_0",)
        np.testing.assert_array_equal(idata.observed_data["y"].values, table.y.numpy())
        assert idata.attrs["bayesstruct_method"] == method


def test_exact_result_raises(table):
    with pytest.raises(InvalidArgumentError, match="'exact' kept no posterior samples"):
        to_inference_data(table.rows[0].estimates["exact"])
    with pytest.raises(InvalidArgumentError, match="`method` 'exact'"):
        table_inference_data(table, "exact")
    with pytest.raises(UnknownNameError, match="not in this table"):
        table_inference_data(table, "iwae")


def test_bad_observed_raises(table):
    result = table.rows[0].estimates["laplace"]
    with pytest.raises(InvalidArgumentError, match=r"`observed\['y'\]` must have shape \(20,\)"):
        to_inference_data(result, observed=table.y[:5])
    with pytest.raises(InvalidArgumentError, match="names site 'z'"):
        to_inference_data(result, observed={"z": table.y})
    with pytest.raises(InvalidArgumentError, match="`result` must be an EvidenceResult"):
        to_inference_data({"samples": {}})


def test_table_inference_data_labels_and_default_method(table):
    idatas = table_inference_data(table)
    assert list(idatas) == [structure_label(r.structure) for r in table.rows]
    assert set(idatas) == {f"degree={d}" for d in DEGREES}
    assert all(d.attrs["bayesstruct_method"] == "laplace" for d in idatas.values())  # first method with draws


def test_netcdf_round_trip(table, az, tmp_path):
    paths = save_netcdf(table, tmp_path / "nc", method="smc")
    assert [p.name for p in paths] == [f"degree-{r.structure['degree']}.smc.nc" for r in table.rows]
    assert sorted(os.listdir(tmp_path / "nc")) == sorted(p.name for p in paths)  # no temporary files left
    for path, row in zip(paths, table.rows):
        back = az.from_netcdf(path)
        result = row.estimates["smc"]
        np.testing.assert_array_equal(back.log_likelihood["y"].values, result.pointwise_log_likelihood["y"].numpy())
        np.testing.assert_array_equal(back.posterior["w"].values, result.samples["w"].numpy())
        np.testing.assert_array_equal(back.observed_data["y"].values, table.y.numpy())
        assert back.attrs["structure"] == structure_label(row.structure)


def test_write_json(table, tmp_path):
    path = tmp_path / "table.json"
    assert write_json(table, path) == path
    data = json.loads(path.read_text())
    assert {"structures", "best"} <= set(data)
    assert data["best"] == table.best
    assert len(data["structures"]) == len(DEGREES)
    assert os.listdir(tmp_path) == ["table.json"]


def test_write_json_keeps_old_file_when_serialising_fails(tmp_path):
    path = tmp_path / "table.json"
    path.write_text('{"old": true}\n')
    os.chmod(path, 0o640)

    class Broken:
        def to_dict(self):
            return {"bad": object()}  # not JSON serialisable

    with pytest.raises(TypeError):
        write_json(Broken(), path)
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["table.json"]

    class Good:
        def to_dict(self):
            return {"new": 1}

    write_json(Good(), path)
    assert json.loads(path.read_text()) == {"new": 1}
    assert os.stat(path).st_mode & 0o777 == 0o640  # permissions of the replaced file kept
    with pytest.raises(InvalidArgumentError, match="`path`"):
        write_json(Good(), tmp_path / "missing" / "t.json")


def test_loo_compare(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ArviZ's k-hat warnings must not escape as errors
        df = loo_compare(table, "smc")
    assert set(df.index) == {f"degree={d}" for d in DEGREES}
    assert {"elpd_loo", "weight", "warning", "pareto_k_max"} <= set(df.columns)
    assert df.index[-1] == "degree=1"  # the straight line predicts a sinusoid worst
    assert isinstance(df.attrs["arviz_warnings"], list)


def test_structure_inference_data_stacks_chains_and_refuses_mismatches():
    import numpy as np

    from bayesstruct.exceptions import InvalidArgumentError
    from bayesstruct.io import chain_diagnostics, structure_inference_data

    rng = np.random.default_rng(0)
    a, b = {"s": rng.normal(size=500)}, {"s": rng.normal(size=500)}
    idata = structure_inference_data([a, b], family="demo")
    assert idata.posterior["s"].shape == (2, 500)
    assert chain_diagnostics(idata.posterior["s"].values)["r_hat"] < 1.01  # two chains of one N(0, 1)
    shifted = structure_inference_data([a, {"s": b["s"] + 3.0}])
    assert chain_diagnostics(shifted.posterior["s"].values)["r_hat"] > 1.5  # chains in different places
    for bad, match in (([], "empty"), ([a, {"t": b["s"]}], "different statistics"),
                       ([a, {"s": b["s"][:10]}], "same number"), ([3], "stats")):
        with pytest.raises(InvalidArgumentError, match=match):
            structure_inference_data(bad)


def test_read_json_inverts_write_json(tmp_path):
    from bayesstruct.io import read_json, write_json

    x, y = sinusoid(n=12, noise=0.3, seed=0)
    table = compare(PolynomialFamily(range(3)), x, y, methods="exact,laplace", workers=1, progress=False)
    assert read_json(write_json(table, tmp_path / "t.json")) == table.to_dict()
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    for path, match in ((tmp_path / "bad.json", "is not a JSON file"), (tmp_path / "list.json", "holds a JSON list"),
                        (tmp_path, "is a directory"), (tmp_path / "missing.json", "no such file")):
        with pytest.raises(InvalidArgumentError, match=match):
            read_json(path)


def test_netcdf_labels_that_map_to_one_file_name_keep_both_files(table, az, tmp_path, monkeypatch):
    import bayesstruct.io as bio

    real = bio.table_inference_data(table, "smc")
    first, second = list(real.values())[:2]
    monkeypatch.setattr(bio, "table_inference_data", lambda t, m=None: {"basis=x*1": first, "basis=x+1": second,
                                                                       "basis=y": first})
    paths = save_netcdf(table, tmp_path / "nc", method="smc")
    assert [p.name for p in paths] == ["basis-x_1-row0.smc.nc", "basis-x_1-row1.smc.nc", "basis-y.smc.nc"]
    assert len(set(paths)) == 3 and sorted(os.listdir(tmp_path / "nc")) == sorted(p.name for p in paths)
    np.testing.assert_array_equal(az.from_netcdf(paths[1]).posterior["w"].values, second.posterior["w"].values)


def test_netcdf_file_names_stay_unique_and_short(table, az, tmp_path, monkeypatch):
    import bayesstruct.io as bio

    real = bio.table_inference_data(table, "smc")
    first, second = list(real.values())[:2]
    long_label = ", ".join(f"edge_{i}_{j}=tanh" for i in range(7) for j in range(i + 1, 7))  # a 7-node network: 313 chars
    # "e=x_1-row0" is a label of its own and also the row-0 name of the clashing "e=x*1" (row 2 overwrote row 0)
    monkeypatch.setattr(bio, "table_inference_data", lambda t, m=None: {
        "e=x*1": first, "e=x+1": second, "e=x_1-row0": first, long_label: second})
    paths = save_netcdf(table, tmp_path / "nc", method="smc")
    assert len(set(paths)) == 4 and sorted(os.listdir(tmp_path / "nc")) == sorted(p.name for p in paths)
    assert all(len(p.name) < 200 for p in paths)  # the long label was a bare OSError: File name too long
    assert paths[3].name.startswith("edge_0_1-tanh_edge_0_2-tanh") and paths[3].name.endswith(".smc.nc")


def test_json_files_are_standard_json_with_null_for_non_finite_numbers(tmp_path):
    from bayesstruct.io import json_text, read_json

    value = {"log_prior": -math.inf, "nested": [1.5, math.nan, {"z": math.inf}], "ok": 2}
    text = json_text(value)
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}")) == {
        "log_prior": None, "nested": [1.5, None, {"z": None}], "ok": 2}
    path = tmp_path / "t.json"
    path.write_text(text)
    assert read_json(path)["log_prior"] is None
    with pytest.raises(InvalidArgumentError, match="`value` holds something JSON cannot encode"):
        json_text({"a": object()})
