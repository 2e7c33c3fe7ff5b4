"""Structure families: Pyro model specs parameterised by a structure."""

from bayesstruct.families.base import BoundModel, StructureFamily, structure_family
from bayesstruct.families.polynomial import Hyper, PolynomialFamily, fit_type2_ml, polynomial_design, polynomial_model

__all__ = ["BoundModel", "StructureFamily", "structure_family", "Hyper", "PolynomialFamily", "fit_type2_ml",
           "polynomial_design", "polynomial_model"]
