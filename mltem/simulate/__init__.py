"""Forward models that make labelled synthetic data (images with known answers)."""
from mltem.simulate._hrtem import (
    EdgeDislocation,
    Interface,
    Lattice,
    LithiatedRegion,
    StrainGradient,
    SyntheticLattice,
    UniformStrain,
    simulate_lattice,
    simulate_lattice_movie,
)

__all__ = [
    "EdgeDislocation",
    "Interface",
    "Lattice",
    "LithiatedRegion",
    "StrainGradient",
    "SyntheticLattice",
    "UniformStrain",
    "simulate_lattice",
    "simulate_lattice_movie",
]

from mltem.simulate._movie import CLASSES as MOVIE_CLASSES  # noqa: E402
from mltem.simulate._movie import SyntheticMovie, sei_time_law, simulate_movie  # noqa: E402

__all__ += ["MOVIE_CLASSES", "SyntheticMovie", "sei_time_law", "simulate_movie"]

from mltem.simulate._eels import (  # noqa: E402
    ELEMENT_MODELS,
    ElementModel,
    L23Params,
    ValenceState,
    element_model,
    plural_kernel_ft,
    random_l23_batch,
    simulate_l23,
    simulate_low_loss,
)

__all__ += [
    "ELEMENT_MODELS",
    "ElementModel",
    "L23Params",
    "ValenceState",
    "element_model",
    "plural_kernel_ft",
    "random_l23_batch",
    "simulate_l23",
    "simulate_low_loss",
]

from mltem.simulate._hologram import (  # noqa: E402
    SyntheticHologram,
    phase_charged_sphere,
    phase_line_charge,
    phase_mip_sphere,
    phase_potential_step,
    simulate_hologram,
)

__all__ += [
    "SyntheticHologram",
    "phase_charged_sphere",
    "phase_line_charge",
    "phase_mip_sphere",
    "phase_potential_step",
    "simulate_hologram",
]

from mltem.simulate._fronts import (  # noqa: E402
    FRONT_CLASSES,
    FRONT_GEOMETRIES,
    FrontMovie,
    growth_law,
    simulate_front_movie,
)

__all__ += ["FRONT_CLASSES", "FRONT_GEOMETRIES", "FrontMovie", "growth_law", "simulate_front_movie"]

from mltem.simulate._diffraction import SyntheticSAED, simulate_saed  # noqa: E402

__all__ += ["SyntheticSAED", "simulate_saed"]
