"""The example's own network, referred to from experiments.toml as `nets.py:TinyNet`.

reportgen passes `input_shape` (channels, height, width) and `classes` from the data set; every other
parameter is an `args` entry of the model preset, checked against this signature when the spec loads.
"""
from torch import nn


class TinyNet(nn.Module):
    """One convolution block with global average pooling, then a linear layer to the classes."""

    def __init__(self, classes: int, input_shape: tuple[int, int, int], width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, width, H/2, W/2)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 2 * width)
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.head(self.features(x))
