"""mltem: automatic, fast interpretation of in-situ TEM data from battery research.

The classical routines (GPA, holography, EELS, diffraction, reaction fronts) are pure
functions on numpy arrays; ``mltem.io`` is the file and calibration layer around them;
networks are trained with ``mltem.training`` (extra ``mltem[train]``) and run from ONNX
with ``mltem.infer`` (numpy + onnxruntime only).
"""
from mltem._errors import MltemError

__version__ = "0.1.0"
__all__ = ["MltemError", "__version__"]
