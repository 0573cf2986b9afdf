"""edgernn: make recurrent neural networks small and fast enough for edge devices."""

__version__ = "0.1.0"
