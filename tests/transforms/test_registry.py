"""Every registered layer through every property its kind owes (``survae_jax.testing``).

The cases live in one module per family, each defining ``CASES: list[TransformCase]``:
``cases_bijections.py``, ``cases_inference.py``, ``cases_generative.py``,
``cases_stochastic.py`` (next to this file), and any other ``cases_*.py`` there. A module that does not exist yet is skipped (and
only it); a module that exists but fails to import fails ``test_cases_module_loads``.
A property that does not apply to the layer's kind, that the case skips with a reason, or
that needs data the case does not give (``density`` without ``density=``), shows as skipped
with that reason. Test ids read ``<case name>-<property>``.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from survae_jax.testing import PROPERTIES, TransformCase, check_property, not_applicable, not_checked
from survae_jax.testing.case import bind

HERE = pathlib.Path(__file__).parent
EXPECTED = ("cases_bijections", "cases_inference", "cases_generative", "cases_stochastic")
# Every cases_*.py next to this file joins the registry (e.g. a second inference-cases file).
MODULES = tuple(sorted(set(EXPECTED) | {p.stem for p in HERE.glob("cases_*.py")}))


def _load(name: str):
    """``(cases, problem)``: the module's CASES, or why there are none."""
    path = HERE / f"{name}.py"
    if not path.exists():
        return [], ("missing", f"{name}.py does not exist yet")
    try:
        spec = importlib.util.spec_from_file_location(f"_survae_registry_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases = list(module.CASES)
    except Exception as e:  # noqa: BLE001 - reported by test_cases_module_loads
        return [], ("error", f"{name}.py failed to load: {type(e).__name__}: {e}")
    return cases, None


LOADED = {name: _load(name) for name in MODULES}
CASES = [case for cases, _ in LOADED.values() for case in cases]
PARAMS = [pytest.param(case, prop, id=f"{case.name}-{prop}") for case in CASES for prop in PROPERTIES]


@pytest.mark.parametrize("name", MODULES)
def test_cases_module_loads(name):
    cases, problem = LOADED[name]
    if problem is not None:
        kind, message = problem
        if kind == "missing":
            pytest.skip(message)
        pytest.fail(message)
    assert cases, f"{name}.CASES is empty"
    for case in cases:
        assert isinstance(case, TransformCase), f"{name}.CASES holds {type(case).__name__}, not a TransformCase"


def test_case_names_unique():
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
