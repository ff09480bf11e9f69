"""Thin Hydra entry points of the DVC pipeline: index, train, evaluate."""
