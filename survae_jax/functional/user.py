"""A user's distribution called by a layer (fibre, encoder, decoder): one context convention, and
an exception it raises is re-raised as it is with a note naming the layer and the shapes."""

from __future__ import annotations

import jax.numpy as jnp


class UserDistribution:
    """``dist`` called with ``context = prepare(context)``; ``role`` names it in notes."""

    def __init__(self, dist, name: str, role: str, prepare=None):
        self.dist, self.name, self.role, self.prepare = dist, name, role, prepare
        self.exact = bool(getattr(dist, "exact", True))

    def _call(self, method: str, context, *args, **kwargs):
        c = context if self.prepare is None else self.prepare(context)
        try:
            return getattr(self.dist, method)(*args, context=c, **kwargs)
        except Exception as e:
            on = f" of a tensor of shape {tuple(jnp.shape(args[0]))}" if method == "log_prob" else ""
            e.add_note(f"{self.name}: raised by its {self.role} ({method}{on}, "
                       f"context of shape {tuple(jnp.shape(c))}).")
            raise

    def log_prob(self, s, *, context, key=None):
        return self._call("log_prob", context, s, key=key)

    def sample(self, key, *, context):
        return self._call("sample", context, key)

    def sample_and_log_prob(self, key, *, context):
        return self._call("sample_and_log_prob", context, key)
