"""Neural-network layers, losses and initialisers, shaped like ``torch.nn``."""

from minigrad.nn import functional
from minigrad.nn.parameter import Parameter

__all__ = ["Parameter", "functional"]
