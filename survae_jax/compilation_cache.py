"""JAX's persistent compilation cache for reruns: a compiled program is read back from disk.

The ``survae-jax`` command turns it on (:func:`enable_compilation_cache`), so a second run of
the same experiment and shapes skips XLA's compilation (tens of seconds for the point-cloud
flows on a CPU). Library users call it themselves. The folder is ``$SURVAE_JAX_CACHE_DIR``,
else ``~/.cache/survae_jax/xla``; ``SURVAE_JAX_CACHE_DIR=""`` turns the cache off.
"""

from __future__ import annotations

import os

import jax

DEFAULT_DIR = os.path.join("~", ".cache", "survae_jax", "xla")


def enable_compilation_cache(path: str | None = None, *, min_compile_time_s: float = 1.0) -> str | None:
    """Point JAX's persistent compilation cache at ``path``; return the folder used (or ``None``).

    Args:
      path: the folder; ``None``: ``$SURVAE_JAX_CACHE_DIR`` if set (``""``: no cache, returns
        ``None``), else ``~/.cache/survae_jax/xla``.
      min_compile_time_s: programs that compile faster than this are not written (JAX's
        ``jax_persistent_cache_min_compile_time_secs``).

    Raises:
      OSError: the folder cannot be created.

    Source: JAX's persistent compilation cache (``jax_compilation_cache_dir``).
    """
    if path is None:
        path = os.environ.get("SURVAE_JAX_CACHE_DIR", DEFAULT_DIR)
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
