"""Datasets: the 2-D toys of Appendix I.1, SpatialMNIST (I.2), the image sets (I.3) and tabular sets."""

from survae_jax.data.toy2d import DATASETS as TOY2D_DATASETS
from survae_jax.data.toy2d import load_toy2d, sample_toy2d

__all__ = ["TOY2D_DATASETS", "load_toy2d", "sample_toy2d"]

from survae_jax.data.mnist import load_mnist
from survae_jax.data.spatial_mnist import (
    SpatialMNIST,
    build_spatial_mnist,
    images_to_point_clouds,
    load_spatial_mnist,
)

__all__ += ["load_mnist", "SpatialMNIST", "build_spatial_mnist", "images_to_point_clouds", "load_spatial_mnist"]

from survae_jax.data.images import (
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_images,
    load_mnist_images,
    read_cifar10_batch,
    write_cifar10_batch,
)

__all__ += ["load_cifar10", "load_digits", "load_fashion_mnist", "load_images", "load_mnist_images",
            "read_cifar10_batch", "write_cifar10_batch"]

from survae_jax.data.tabular import DATASETS as TABULAR_DATASETS
from survae_jax.data.tabular import TabularData, load_tabular

__all__ += ["TABULAR_DATASETS", "TabularData", "load_tabular"]
