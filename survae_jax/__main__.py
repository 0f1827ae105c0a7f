"""``python -m survae_jax``: the same as the ``survae-jax`` command."""

import sys

from survae_jax.cli import main

if __name__ == "__main__":
    sys.exit(main())
