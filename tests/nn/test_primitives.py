import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.nn import PrimitiveModule, get_primitive, list_primitives, make_primitive, register_primitive

VECTOR = ["linear", "linear_sigmoid", "linear_relu", "linear_tanh", "linear_softmax"]
IMAGE = ["conv3x3", "conv1x1"]
KEEP = ["avgpool3x3", "maxpool3x3", "identity"]


def test_registry_has_required_primitives():
    for name in VECTOR + IMAGE + KEEP + ["zero"]:
        assert name in list_primitives()
        assert issubclass(get_primitive(name), PrimitiveModule)


def test_unknown_primitive_lists_registered_names():
    with pytest.raises(UnknownNameError, match=r"unknown primitive 'conv5x5'; registered primitives: .*conv3x3.*linear"):
        get_primitive("conv5x5")


@pytest.mark.parametrize("name", VECTOR)
def test_vector_shapes_and_params(name):
    g = make_primitive(name, (4,), 3)
    assert g.out_shape == (3,) == g.output_shape((4,))
    assert g(torch.randn(5, 4)).shape == (5, 3)
    assert g(torch.randn(2, 5, 4)).shape == (2, 5, 3)
    assert g.num_params() == sum(p.numel() for p in g.parameters()) == 4 * 3 + 3
    assert g.flops() == 2 * 4 * 3


@pytest.mark.parametrize("name", IMAGE)
def test_conv_shapes_and_params(name):
    g = make_primitive(name, (3, 6, 5), 7)
    k = 3 if name == "conv3x3" else 1
    assert g.out_shape == (7, 6, 5)
    assert g(torch.randn(2, 3, 6, 5)).shape == (2, 7, 6, 5)
    assert g(torch.randn(4, 2, 3, 6, 5)).shape == (4, 2, 7, 6, 5)
    assert g.num_params() == sum(p.numel() for p in g.parameters()) == 3 * 7 * k * k + 7
    assert g.flops() == 2 * 3 * k * k * 7 * 6 * 5
    assert g.flops((3, 10, 10)) == 2 * 3 * k * k * 7 * 100


@pytest.mark.parametrize("name", KEEP)
def test_shape_keeping_primitives(name):
    g = make_primitive(name, (3, 6, 5), 99)  # `out` is ignored
    assert g.out_shape == (3, 6, 5)
    x = torch.randn(2, 3, 6, 5)
    assert g(x).shape == x.shape
    assert g.num_params() == 0
    assert g.flops() == (0 if name == "identity" else 9 * 3 * 6 * 5)


def test_pool_values():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    assert make_primitive("maxpool3x3", (1, 3, 3))(x)[0, 0, 1, 1] == 8.0
    assert make_primitive("avgpool3x3", (1, 3, 3))(x)[0, 0, 1, 1] == 4.0
    assert make_primitive("avgpool3x3", (1, 3, 3))(x)[0, 0, 0, 0] == (0 + 1 + 3 + 4) / 4


def test_zero_and_identity():
    x = torch.randn(5, 4)
    assert torch.equal(make_primitive("identity", (4,))(x), x)
    z = make_primitive("zero", (4,), 3)
    assert z.out_shape == (3,) and torch.equal(z(x), torch.zeros(5, 3))
    assert make_primitive("zero", (3, 6, 5)).out_shape == (3, 6, 5)
    assert make_primitive("zero", (3, 6, 5), 8).out_shape == (8, 6, 5)
    assert z.flops() == 0 and z.num_params() == 0


def test_generalised_linear_values():
    x = torch.randn(5, 4)
    for name, act in [("linear_sigmoid", torch.sigmoid), ("linear_relu", torch.relu), ("linear_tanh", torch.tanh),
                      ("linear_softmax", lambda t: torch.softmax(t, -1)), ("linear", lambda t: t)]:
        g = make_primitive(name, (4,), 3)
        torch.testing.assert_close(g(x), act(x @ g.linear.weight.T + g.linear.bias))


def test_wrong_input_rank_and_missing_out():
    with pytest.raises(InvalidArgumentError, match=r"'conv3x3' takes inputs of per-sample shape \(C, H, W\); got in_shape \(4,\)"):
        make_primitive("conv3x3", (4,), 2)
    with pytest.raises(InvalidArgumentError, match=r"'linear' needs `out`"):
        make_primitive("linear", (4,))
    with pytest.raises(InvalidArgumentError, match="per-sample shape"):
        make_primitive("linear", (0,), 2)


def test_register_custom_primitive():
    @register_primitive("Test_Double")
    class Double(PrimitiveModule):
        @classmethod
        def infer_shape(cls, in_shape, out=None):
            return cls.check_in_shape(in_shape)

        def flops(self, in_shape=None):
            return 4

        def forward(self, x):
            return 2 * x

    try:
        g = get_primitive("test_double").make((4,))
        assert g.name == "test_double" and torch.equal(g(torch.ones(4)), 2 * torch.ones(4))
    finally:
        from bayesstruct.nn import primitives

        primitives._REGISTRY._classes.pop("test_double")
    with pytest.raises(InvalidArgumentError):
        register_primitive("bad")(int)
