"""Data parallelism through ``jax.sharding``: one ``Mesh`` with a ``data`` axis, batches split over it.

:func:`survae_jax.train`, :func:`survae_jax.evaluate` and :func:`survae_jax.evaluation.sample`
take ``devices`` (``None``: every device, ``jax.devices()``; an ``int`` ``k``: the first ``k``;
or a sequence of ``jax.Device``). On a mesh of ``D`` devices:

* a batch ``(B, ...)`` is one global array sharded over ``data``,
  ``NamedSharding(mesh, P('data'))``: each device holds ``B / D`` examples, so ``B`` must
  divide by ``D``;
* parameters, the rest of the model state and the optimizer state are replicated,
  ``NamedSharding(mesh, P())``; XLA (GSPMD) inserts the all-reduce of the gradients;
* the training set ``(N, ...)`` is sharded over ``data`` too (each device keeps ``N / D`` rows,
  padded); a step's batch is gathered from it by global index, so step ``t`` sees the same
  examples on any ``D`` and the parameters agree with a one-device run up to float32 rounding
  (sums over the batch are taken in another order).

One device (the default device, one process) takes the plain unsharded path, so a
single-device run is the same program as without this module.

Several hosts: :func:`maybe_initialize_distributed` calls ``jax.distributed.initialize`` when
the environment names a coordinator; then ``jax.devices()`` spans every host, each host passes
its own shard of the training set (:func:`process_shard`), checkpoints are written by process 0
and read by every process.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DataParallel", "barrier", "is_primary", "make_mesh", "maybe_initialize_distributed", "process_shard",
           "resolve_devices"]

AXIS = "data"


def maybe_initialize_distributed() -> bool:
    """Start ``jax.distributed`` from the environment when it asks for several processes.

    * ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
      ``JAX_PROCESS_ID``: ``jax.distributed.initialize(address, num_processes, process_id)``;
    * ``SURVAE_JAX_DISTRIBUTED=auto``: ``jax.distributed.initialize()`` with JAX's own cluster
      detection (SLURM, Open MPI, Kubernetes, Cloud TPU).

    Nothing set: nothing done (one process). Must run before anything touches a device.

    Returns:
      ``True`` when ``jax.distributed`` is initialised (now or before), else ``False``.

    Raises:
      ValueError: ``JAX_COORDINATOR_ADDRESS`` without an integer ``JAX_NUM_PROCESSES`` >= 1 and
        ``JAX_PROCESS_ID`` in ``0..JAX_NUM_PROCESSES-1``.

    Source: this library (``jax.distributed`` of JAX's multi-controller runtime).
    """
    if jax.distributed.is_initialized():
        return True
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        try:
            num = int(os.environ["JAX_NUM_PROCESSES"])
            pid = int(os.environ["JAX_PROCESS_ID"])
        except (KeyError, ValueError) as e:
            raise ValueError(
                "maybe_initialize_distributed: JAX_COORDINATOR_ADDRESS is set, so JAX_NUM_PROCESSES and "
                f"JAX_PROCESS_ID must be integers, got {os.environ.get('JAX_NUM_PROCESSES')!r} and "
                f"{os.environ.get('JAX_PROCESS_ID')!r}."
            ) from e
        if num < 1 or not 0 <= pid < num:
            raise ValueError(f"maybe_initialize_distributed: need JAX_NUM_PROCESSES >= 1 and 0 <= "
                             f"JAX_PROCESS_ID < JAX_NUM_PROCESSES, got {num} and {pid}.")
        jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid)
        return True
    if os.environ.get("SURVAE_JAX_DISTRIBUTED", "").lower() == "auto":
        jax.distributed.initialize()
        return True
    return False


def is_primary() -> bool:
    """``True`` in process 0 (the one that writes files), and always with one process."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """With several processes, every process waits here until all have reached ``name``."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _spell(option: str, value) -> str:
    """``devices=4`` for a Python argument, ``--devices 4`` for a command-line flag."""
    return f"{option} {value}" if option.startswith("-") else f"{option}={value}"


def resolve_devices(devices: None | int | Sequence[jax.Device] = None, *, who: str = "devices",
                    option: str = "devices") -> list:
    """The devices of a mesh: ``None`` every device, ``k`` the first ``k``, or the given ones.

    With several processes the mesh must hold every device (each process feeds its own).

    Raises:
      ValueError: ``k`` outside ``1..jax.device_count()``, an empty or repeated sequence, or not
        every device with several processes; the message names ``who`` and the argument as
        ``option`` spells it (``devices=5``, or ``--devices 5`` for ``option="--devices"``).
    """
    every = jax.devices()
    if devices is None:
        chosen = list(every)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= int(devices) <= len(every):
            raise ValueError(f"{who}: {_spell(option, int(devices))}, but {len(every)} {jax.default_backend()} "
                             f"device(s) are available (an integer from 1 to {len(every)}).")
        chosen = list(every[: int(devices)])
    else:
        try:
            chosen = list(devices)
        except TypeError:
            raise ValueError(f"{who}: {option} must be None, an int or a sequence of jax devices, "
                             f"got {devices!r}.") from None
        if not chosen or len(set(chosen)) != len(chosen) or not all(isinstance(d, jax.Device) for d in chosen):
            raise ValueError(f"{who}: {option} must be a non-empty sequence of distinct jax devices, "
                             f"got {devices!r}.")
    if jax.process_count() > 1 and set(chosen) != set(every):
        raise ValueError(f"{who}: with {jax.process_count()} processes the mesh takes every device "
                         f"({len(every)}), got {len(chosen)}.")
    return chosen


def make_mesh(devices: None | int | Sequence[jax.Device] = None) -> Mesh:
    """A one-axis ``Mesh`` named ``data`` over :func:`resolve_devices` ``(devices)``.

    Raises:
      ValueError: see :func:`resolve_devices`.

    Source: this library (``jax.sharding.Mesh``).
    """
    return Mesh(np.asarray(resolve_devices(devices, who="make_mesh"), dtype=object), (AXIS,))


def process_shard(data: Any) -> Any:
    """This process's rows of ``data`` (``(N, ...)`` or a pytree): ``[p m, (p + 1) m)`` with
    ``m = N // P`` for process ``p`` of ``P`` (the last ``N mod P`` rows are left out, so every
    process holds as many rows); ``data`` itself with one process.

    Raises:
      ValueError: fewer rows than processes.

    Source: this library.
    """
    count, index = jax.process_count(), jax.process_index()
    if count == 1:
        return data
    n = {int(np.shape(x)[0]) for x in jax.tree.leaves(data)}
    if len(n) != 1 or min(n) < count:
        raise ValueError(f"process_shard: need one first-axis size >= {count} (the process count), got {sorted(n)}.")
    m = n.pop() // count
    return jax.tree.map(lambda x: x[index * m: (index + 1) * m], data)


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x) -> np.ndarray:
    """A host copy in JAX's canonical dtype (float64 -> float32 without x64, as ``jnp.asarray``)."""
    x = np.asarray(x)
    return x.astype(jax.dtypes.canonicalize_dtype(x.dtype), copy=False)


class DataParallel:
    """Where the arrays of one data-parallel computation live: the mesh, the shardings, the puts.

    ``sharded`` is ``False`` for one device that is the default device in one process: then
    every method leaves arrays where JAX puts them by default (the unsharded path).

    Args:
      devices: see :func:`resolve_devices`.
      who: the function name used in error messages.
      option: how the messages spell the devices argument: ``devices`` (``devices=5``) or a
        command-line flag such as ``--devices`` (``--devices 5``).

    Raises:
      ValueError: see :func:`resolve_devices`.
    """

    def __init__(self, devices: None | int | Sequence[jax.Device] = None, *, who: str = "devices",
                 option: str = "devices"):
        chosen = resolve_devices(devices, who=who, option=option)
        self.who, self.option = who, option
        self.mesh = Mesh(np.asarray(chosen, dtype=object), (AXIS,))
        self.size = len(chosen)
        default = next(iter(jnp.zeros(()).devices()))
        self.sharded = not (self.size == 1 and chosen[0] == default and jax.process_count() == 1)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.batch = NamedSharding(self.mesh, PartitionSpec(AXIS))
        self.local_size = sum(d.process_index == jax.process_index() for d in chosen)

    def describe(self) -> str:
        """One line: ``mesh data=8 (8 cpu devices, 1 process)`` or ``one device (unsharded)``."""
        if not self.sharded:
            return f"one device ({jax.default_backend()}, unsharded)"
        return (f"mesh {AXIS}={self.size} ({self.size} {jax.default_backend()} devices, "
                f"{jax.process_count()} process(es)); batch sharded P('{AXIS}'), parameters and "
                "optimizer state replicated")

    def check_batch(self, batch_size: int, what: str = "batch_size") -> None:
        """Raise ``ValueError`` naming both numbers when ``batch_size`` does not divide by the devices."""
        if self.sharded and int(batch_size) % self.size:
            raise ValueError(
                f"{self.who}: {what} {int(batch_size)} does not divide by the {self.size} devices of the "
                f"'{AXIS}' mesh (each device takes {what} / {self.size} examples); use a multiple of "
                f"{self.size}, or {_spell(self.option, 'N')} with N a divisor of {int(batch_size)}."
            )

    def replicate(self, tree: Any) -> Any:
        """Every leaf replicated on the mesh (a fresh copy of host values on several processes)."""
        if not self.sharded:
            return tree

        def put(x):
            if jax.process_count() == 1:
                return jax.device_put(x, self.replicated)
            if _is_key(x):
                return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, self.replicated, lambda idx: host[idx])

        return jax.tree.map(put, tree)

    def shard_rows(self, tree: Any, axis: int = 0) -> Any:
        """Arrays equal on every process, split over ``data`` along ``axis`` (its size divides by the
        device count)."""
        if not self.sharded:
            return jax.tree.map(jnp.asarray, tree)
        spec = PartitionSpec(*([None] * axis), AXIS)
        sharding = NamedSharding(self.mesh, spec)

        def put(x):
            host = _host(x)
            if jax.process_count() == 1:
                return jax.device_put(host, sharding)
            return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

        return jax.tree.map(put, tree)

    def to_host(self, x) -> np.ndarray:
        """A global array as one numpy array on every process."""
        if jax.process_count() > 1 and not getattr(x, "is_fully_addressable", True):
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    def training_data(self, local: Any, n_local: int) -> tuple[Any, int, Any]:
        """``(data, n, rows)``: the training set as one global array sharded over ``data``.

        Each process's ``n_local`` rows are padded to ``m``, a multiple of its devices in the
        mesh, and placed in process order; ``n = P n_local`` examples; ``rows(g)`` maps a global
        example index ``g < n`` to its row, ``(g // n_local) m + g mod n_local`` (``None`` when
        it is ``g``). Every process must hold as many rows.

        Raises:
          ValueError: the processes hold different numbers of rows.
        """
        if not self.sharded:
            return jax.tree.map(jnp.asarray, local), n_local, None
        count = jax.process_count()
        if count > 1:
            from jax.experimental import multihost_utils

            sizes = np.asarray(multihost_utils.process_allgather(np.asarray([n_local], np.int64))).reshape(-1)
            if len(set(sizes.tolist())) != 1:
                raise ValueError(f"{self.who}: every process must pass as many training examples, got "
                                 f"{sizes.tolist()} (process_shard gives equal shards).")
        m = math.ceil(n_local / self.local_size) * self.local_size

        def put(x):
            host = _host(x)
            if m > n_local:
                host = np.concatenate([host, np.repeat(host[:1], m - n_local, axis=0)])
            return jax.make_array_from_process_local_data(self.batch, host, (count * m, *host.shape[1:]))

        data = jax.tree.map(put, local)
        if m == n_local or count == 1:
            return data, count * n_local, None
        return data, count * n_local, lambda g: (g // n_local) * m + g % n_local
