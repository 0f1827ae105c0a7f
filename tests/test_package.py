"""The package's top level: train/evaluate/save_model/load_model reachable, the docstring's quick
start runs as written, help(Flow) shows the real signature, evaluate's key."""

import inspect
import pydoc
import textwrap

import jax
import numpy as np
import pytest

import survae_jax as sj
from survae_jax.distributions import StandardNormal
from toy_layers import GaussianNoise


def test_training_and_evaluation_at_the_top_level():
    from survae_jax.training import TrainConfig, train

    assert sj.train is train and sj.TrainConfig is TrainConfig
    assert callable(sj.evaluate) and callable(sj.save_model) and callable(sj.load_model)
    assert {"train", "evaluate", "TrainConfig", "save_model", "load_model"} <= set(sj.__all__)


def test_package_quick_start_runs_as_written():
    code = textwrap.dedent(sj.__doc__.split("Quick start::", 1)[1])
    scope = {}
    exec(code, scope)
    assert scope["log_p"].shape == (256,) and np.all(np.isfinite(scope["log_p"]))
    assert scope["result"].step == 20 and np.isfinite(scope["test_nats"])


def test_help_flow_shows_its_signature():
    assert list(inspect.signature(sj.Flow).parameters) == ["base", "transforms"]
    assert list(inspect.signature(sj.ConditionalFlow).parameters) == ["base", "transforms", "context_net"]
    assert "Flow(base: 'Distribution', transforms: 'Sequence[Transform]')" in pydoc.render_doc(sj.Flow)


def test_evaluate_refuses_a_missing_key_for_an_inexact_model():
    flow = sj.Flow(StandardNormal((2,)), [GaussianNoise(2)])
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="evaluate: Flow is not exact .* pass key="):
        sj.evaluate(flow, x)
    a = sj.evaluate(flow, x, key=jax.random.key(1))
    assert a.shape == (4,) and np.all(np.isfinite(a))
    exact = sj.Flow(StandardNormal((2,)), [])
    np.testing.assert_allclose(sj.evaluate(exact, x), np.full(4, -np.log(2 * np.pi)), rtol=1e-6)


@pytest.mark.slow
def test_readme_quick_start_and_training_example_run_as_written(tmp_path, monkeypatch):
    import os
    import re

    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", readme.split("## The contract")[0], re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    scope = {}
    for code in blocks:
        exec(code, scope)
    x = scope["data"][3584:]
    assert scope["result"].step <= 500 and np.isfinite(scope["test_nats"])
    want = np.asarray(scope["flow"].log_prob(x))
    np.testing.assert_array_equal(np.asarray(scope["same"].log_prob(x)), want)
    assert (tmp_path / "ckpt" / "best").is_dir() and np.all(np.isfinite(np.asarray(scope["last"].log_prob(x))))
