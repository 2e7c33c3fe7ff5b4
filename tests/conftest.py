"""Per-test setup in the manner of Pyro's own conftest: float64, a fixed seed, a clean
param store and Pyro's argument validation switched on."""

import pyro
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    # The tensors here are tiny; with 2 intra-op threads on a loaded 2-core machine, SMC's
    # many small ops ran 10-40x slower (thread contention) than single-threaded.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _pyro_test_setup():
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    try:
        yield
    finally:
        torch.set_default_dtype(old_dtype)
