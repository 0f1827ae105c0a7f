"""Every registered layer through every property its kind owes (``survae_jax.testing``).

The cases live in one module per kind (``registry.py`` imports them). A property that does not
apply to the layer's kind, that the case skips with a reason, or that needs data the case does
not give (``density`` without ``density=``), shows as skipped with that reason. Test ids read
``<case name>-<property>``.
"""

from __future__ import annotations

import pytest
from registry import CASES

from survae_jax.testing import PROPERTIES, TransformCase, check_property, not_applicable, not_checked
from survae_jax.testing.case import bind

PARAMS = [pytest.param(case, prop, id=f"{case.name}-{prop}") for case in CASES for prop in PROPERTIES]


def test_cases_are_cases_with_unique_names():
    assert all(isinstance(case, TransformCase) for case in CASES)
    names = [case.name for case in CASES]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate case names (test ids would clash): {dupes}"


_BOUND = {}


def _bound(case: TransformCase):
    """The case's layer and inputs, built once per process: the checks never mutate a layer
    (``shapes`` checks that), so the properties of one case share it and building nets (the
    slow part of a small case) happens once, not once per property."""
    if case.name not in _BOUND:
        _BOUND[case.name] = bind(case)
    return _BOUND[case.name]


@pytest.mark.parametrize(("case", "prop"), PARAMS)
def test_property(case, prop):
    if prop in case.skip:
        pytest.skip(f"case skips it: {case.skip[prop]}")
    bound = _bound(case)
    reason = not_applicable(bound.transform, case).get(prop)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")
    reason = not_checked(bound.transform, case).get(prop)
    if reason is not None:  # e.g. density without density=(base, lo, hi, expected)
        pytest.skip(f"not checked: {reason}")
    check_property(prop, bound)
