"""ArviZ form and JSON summary of structure chains (several chains: R-hat, ESS)."""

import numpy as np
import pytest

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families import CIBPSampler
from bayesstruct.families.belief_net_report import chain_columns, posterior_summary, to_inference_data


def _chains(alphas=(1.0, 1.0), n=300, visible=8):
    return [CIBPSampler(a, 1.0, visible, seed=s).run(n, warmup=200, progress=False) for s, a in enumerate(alphas)]


def test_inference_data_has_chain_and_draw_dims():
    chains = _chains(n=300)
    idata = to_inference_data(chains)
    post = idata.posterior
    L = max(int(c.depth.max()) for c in chains)
    assert set(post.data_vars) == {"depth", "num_edges", "num_hidden_units", "log_joint",
                                   *(f"width_{m}" for m in range(1, L + 1))}
    assert post["depth"].shape == (2, 300) and post.sizes == {"chain": 2, "draw": 300}
    for c, chain in enumerate(chains):
        assert np.array_equal(post["depth"][c], chain.depth)
        assert np.array_equal(post["log_joint"][c], chain.log_target)  # CIBPSamples' name for it
        for m in range(1, L + 1):
            assert np.array_equal(post[f"width_{m}"][c], chain.width(m))
        assert np.array_equal(post["num_hidden_units"][c], [sum(w) for w in chain.widths])
    assert idata.attrs["bayesstruct_family"] == "belief_net"


def test_dict_of_columns_and_errors():
    cols = {"depth": [1, 2, 0], "num_edges": [3, 5, 0], "widths": [[2], [2, 1], []], "alpha": [1.0, 1.5, 2.0]}
    post = to_inference_data(cols, num_layers=3).posterior
    assert post["width_2"].values.tolist() == [[0, 1, 0]] and post["width_3"].values.tolist() == [[0, 0, 0]]
    assert post["alpha"].values.tolist() == [[1.0, 1.5, 2.0]]
    with pytest.raises(InvalidArgumentError, match="lacks `widths`"):
        chain_columns({"depth": [1], "num_edges": [1]})
    with pytest.raises(InvalidArgumentError, match="depth` disagrees"):
        chain_columns({**cols, "depth": [1, 1, 0]})
    with pytest.raises(InvalidArgumentError, match=r"alpha` must have shape \(3,\)"):
        chain_columns({**cols, "alpha": [1.0]})
    with pytest.raises(InvalidArgumentError, match="same number of draws"):
        to_inference_data([cols, {k: v[:2] for k, v in cols.items()}])
    with pytest.raises(InvalidArgumentError, match="num_layers"):
        to_inference_data(cols, num_layers=0)


def _iid_chain(rng, mean_depth, n=1000):
    """Independent draws: depth ~ 1 + Poisson(mean_depth - 1), widths uniform on 1..4, edges ~ Poisson(20)."""
    depth = 1 + rng.poisson(mean_depth - 1, size=n)
    widths = [list(rng.integers(1, 5, size=d)) for d in depth]
    return {"depth": depth, "widths": widths, "num_edges": rng.poisson(20, size=n), "alpha": rng.gamma(2.0, size=n),
            "beta": rng.gamma(2.0, size=n), "log_joint": rng.normal(size=n)}


def test_summary_matches_numpy_and_rhat_detects_disagreeing_chains():
    rng = np.random.default_rng(0)
    chains = [_iid_chain(rng, 2.0), _iid_chain(rng, 2.0)]
    same = posterior_summary(chains)
    depth = np.concatenate([c["depth"] for c in chains])
    assert same["depth"]["samples"] == depth.tolist()
    assert same["depth"]["mean"] == pytest.approx(depth.mean())
    assert same["depth"]["sd"] == pytest.approx(depth.std(ddof=1))
    assert same["depth"]["num_chains"] == 2 and isinstance(same["alpha"]["mean"], float)
    # Independent draws from one law: R-hat = 1 + O(1/S) and bulk ESS ~ 2,000 (all draws). With S = 1,000 per
    # chain the sampling sd of R-hat is ~0.002, so 1.01 (Vehtari et al. 2021's threshold) is a loose bound.
    for key in ("depth", "num_edges", "alpha"):
        assert same[key]["r_hat"] < 1.01 and same[key]["ess_bulk"] > 1000, key
    # Chains from different laws (mean depth 2 vs 5): R-hat ~ sqrt(1 + between/within) = sqrt(1 + 2.25/2.5) ~ 1.4.
    diff = posterior_summary([_iid_chain(rng, 2.0), _iid_chain(rng, 5.0)])
    assert diff["depth"]["r_hat"] > 1.2
    assert diff["width_per_layer"][2]["r_hat"] > 1.1  # K_3 = 0 unless depth >= 3: differs between the chains
    assert diff["num_edges"]["r_hat"] < 1.01  # same law in both chains
    # a prior-only chain records no alpha/beta: reported as None
    assert posterior_summary(CIBPSampler(1.0, 1.0, 4, seed=0).run(50, progress=False))["alpha"] is None
