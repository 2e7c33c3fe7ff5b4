"""StructureFamily.validate_structure: the keys of the space, and (for a closed space) its values."""

import re

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct import compare
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families import PolynomialFamily, StructureFamily


def order_model(x, y=None, *, order):
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([order]).to_event(1))
    with pyro.plate("data", len(x)):
        pyro.sample("y", dist.Normal((w * x.unsqueeze(-1) ** torch.arange(order)).sum(-1), 0.1), obs=y)


@pytest.mark.parametrize("degree", [99, -1, 2.5, "1", None, [1]])
def test_a_value_outside_the_space_is_refused_listing_the_allowed_ones(degree):
    family = PolynomialFamily(range(3))
    with pytest.raises(InvalidArgumentError, match=r"`structure\['degree'\]` must be one of .*\[0, 1, 2\]; "
                                                   rf"got {re.escape(repr(degree))}"):
        family.bind({"degree": degree})
    with pytest.raises(InvalidArgumentError, match=r"structure\['degree'\]"):
        family.validate_structure({"degree": degree})


def test_a_long_space_is_shortened_in_the_message():
    family = StructureFamily(order_model, {"order": range(1, 101)})
    with pytest.raises(InvalidArgumentError) as info:
        family.bind({"order": 0})
    message = str(info.value)
    assert "[1, 2, 3, 4, 5, 6, 7, 8, ..., 98, 99, 100] (100 values)" in message
    assert "50" not in message and "got 0" in message


def test_a_listed_value_is_returned_as_listed():
    family = PolynomialFamily(range(3))
    s = family.validate_structure({"degree": np.int64(2)})
    assert s == {"degree": 2} and type(s["degree"]) is int
    assert type(family.bind({"degree": 2.0}).kwargs["degree"]) is int
    with pytest.raises(InvalidArgumentError, match="got True"):  # True == 1, but no degree
        family.bind({"degree": True})


def test_compare_refuses_structures_outside_the_space():
    x = torch.linspace(0, 1, 8, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match=r"structure\['degree'\].*\[0, 1, 2\]; got 7"):
        compare(PolynomialFamily(range(3)), x, torch.sin(x), methods="exact", structures=[{"degree": 1}, {"degree": 7}],
                workers=1, progress=False)


class OpenFamily(StructureFamily):
    """A family whose override takes values beyond those it lists (as the superposition family does)."""

    closed_space = False

    def validate_structure(self, structure):
        s = super().validate_structure(structure)
        order = int(s["order"])
        if order < 1:
            raise InvalidArgumentError(f"`structure['order']` must be >= 1; got {order}")
        return {"order": order}


def test_an_open_space_lets_the_override_decide_the_values():
    family = OpenFamily(order_model, {"order": [1, 2]})
    assert family.bind({"order": "5"}).kwargs["order"] == 5  # not listed, parsed by the override
    with pytest.raises(InvalidArgumentError, match="keys"):
        family.bind({"degree": 1})  # the keys are still checked by the base

    class ClosedAgain(OpenFamily):
        closed_space = True

    with pytest.raises(InvalidArgumentError, match=r"must be one of .*\[1, 2\]; got '5'"):
        ClosedAgain(order_model, {"order": [1, 2]}).bind({"order": "5"})
    # and a plain family can open its space
    opened = StructureFamily(order_model, {"order": [1, 2]})
    opened.closed_space = False
    assert opened.bind({"order": 7}).kwargs["order"] == 7
