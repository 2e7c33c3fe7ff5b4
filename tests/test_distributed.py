"""compare() on a real Dask cluster (LocalCluster on 127.0.0.1) equals the serial run."""

import pytest

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid

distributed = pytest.importorskip("distributed")


def test_dask_executor_equals_serial():
    x, y = sinusoid(n=20, noise=0.3, seed=0)
    kw = dict(methods="laplace,iwae,smc", options={"smc": {"num_particles": 512}, "iwae": {"num_samples": 1024}},
              progress=False, seed=11)
    serial = compare(PolynomialFamily([2, 4]), x, y, workers=1, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask = compare(PolynomialFamily([2, 4]), x, y, executor=client.get_executor(), **kw)
    assert [r.structure for r in serial.rows] == [r.structure for r in on_dask.rows]
    for a, b in zip(serial.rows, on_dask.rows):
        for m in ("laplace", "iwae", "smc"):
            assert a.log_evidence(m) == b.log_evidence(m)
            assert a.estimates[m].stderr == b.estimates[m].stderr
