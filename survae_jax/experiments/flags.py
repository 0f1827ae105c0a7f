"""argparse types of the command-line flags: counts must be >= 1, rates > 0.

A bad value ends the command with one line ``survae-jax: error: ... argument --steps: must be
an integer >= 1, got 0`` and exit status 2, before any run folder is written.
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count: steps, batch size, epochs, samples...).

    ``"10"`` -> ``10`` (a Python ``int``, a scalar ``()``).

    Raises:
      argparse.ArgumentTypeError: not an integer, or < 1 (argparse turns it into one ``error:`` line, exit 2).

    Source: this library (the CLI's flag checks).
    """
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (``--checkpoint-every 0``: only at the end).

    ``"0"`` -> ``0`` (a Python ``int``, a scalar ``()``).

    Raises:
      argparse.ArgumentTypeError: not an integer, or < 0 (argparse turns it into one ``error:`` line, exit 2).

    Source: this library (the CLI's flag checks).
    """
    return _bounded_int(text, 0)


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (a learning rate).

    ``"1e-3"`` -> ``0.001`` (a Python ``float``, a scalar ``()``).

    Raises:
      argparse.ArgumentTypeError: not a float, not finite, or <= 0 (argparse turns it into one ``error:`` line, exit 2).

    Source: this library (the CLI's flag checks).
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def dropout_rate(text: str) -> float:
    """argparse type: a float in ``[0, 1)`` (a dropout rate).

    ``"0.1"`` -> ``0.1`` (a Python ``float``, a scalar ``()``).

    Raises:
      argparse.ArgumentTypeError: not a float, or outside [0, 1) (argparse turns it into one ``error:`` line, exit 2).

    Source: this library (the CLI's flag checks).
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value
