"""The persistent compilation cache: a compiled program lands in the chosen folder."""

import os
import subprocess
import sys

from survae_jax.compilation_cache import enable_compilation_cache

SCRIPT = """
import sys, jax, jax.numpy as jnp
from survae_jax.compilation_cache import enable_compilation_cache
assert enable_compilation_cache(sys.argv[1], min_compile_time_s=0.0) == sys.argv[1]
jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.ones(7)).block_until_ready()
"""


def test_compiled_program_is_written_to_the_cache_folder(tmp_path):
    folder = str(tmp_path / "xla")
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", SCRIPT, folder], check=True, env=env, timeout=300)
    assert len(os.listdir(folder)) >= 1


def test_empty_folder_name_turns_the_cache_off(monkeypatch):
    monkeypatch.setenv("SURVAE_JAX_CACHE_DIR", "")
    assert enable_compilation_cache() is None
