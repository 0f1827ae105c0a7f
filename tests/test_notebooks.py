"""The tutorial notebooks run from top to bottom (with a tiny step count)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(__file__), os.pardir, "notebooks")


@pytest.mark.slow
def test_toy2d_absflow_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVAE_NOTEBOOK_STEPS", "20")
    monkeypatch.setenv("SURVAE_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(os.path.join(NOTEBOOKS, "toy2d_absflow.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "absflow_density.png").exists() and (tmp_path / "absflow_samples.png").exists()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "test:" in outputs and "nats" in outputs


@pytest.mark.slow
def test_vae_mnist_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVAE_NOTEBOOK_STEPS", "5")
    monkeypatch.setenv("SURVAE_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(os.path.join(NOTEBOOKS, "vae_mnist.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "vae_mnist_samples.png").exists()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for name in ("vae", "hvae", "flowprior"):
        assert f"{name}: 5 steps" in outputs
    assert outputs.count("IWBO(100)") == 3
    assert "['VAE', 'VAE']" in outputs  # the hierarchical VAE is two VAE layers


def _run(name, tmp_path):
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_custom_surjection_notebook_runs(tmp_path):
    outputs = _run("custom_surjection.ipynb", tmp_path)
    assert "ELBO:" in outputs and "chi2 log-density" in outputs


@pytest.mark.slow
def test_interop_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVAE_NOTEBOOK_STEPS", "20")
    outputs = _run("interop.ipynb", tmp_path)
    assert "exact likelihood: True" in outputs and "same as flow.log_prob: True" in outputs
    assert "exact: False" in outputs and "needs a key" in outputs and "give only a bound" in outputs
    assert "NUTS: 20 posterior draws" in outputs
    assert "Flow.log_prob == distrax Transformed.log_prob: True" in outputs
