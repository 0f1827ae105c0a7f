"""The registry: every layer of the library as ``TransformCase``s, one module per kind.

Plain imports: a missing or broken case module fails collection, it is never skipped.
"""

from cases_bijections import CASES as BIJECTIONS
from cases_generative import CASES as GENERATIVE
from cases_generative_w3 import CASES as GENERATIVE_3
from cases_inference import CASES as INFERENCE
from cases_inference_w4 import CASES as INFERENCE_4
from cases_stochastic import CASES as STOCHASTIC

CASES = [*BIJECTIONS, *INFERENCE, *INFERENCE_4, *GENERATIVE, *GENERATIVE_3, *STOCHASTIC]
