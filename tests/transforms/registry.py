"""The registry: every layer of the library as ``TransformCase``s, one module per kind.

Plain imports: a missing or broken case module fails collection, it is never skipped.
"""

from cases_bijections import CASES as BIJECTIONS
from cases_generative import CASES as GENERATIVE
from cases_inference import CASES as INFERENCE
from cases_stochastic import CASES as STOCHASTIC

CASES = [*BIJECTIONS, *INFERENCE, *GENERATIVE, *STOCHASTIC]
