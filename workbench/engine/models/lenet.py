"""LeNet-5 as in the course (LeCun et al., 1998, in its Keras form).

C1 conv5×5×6 'same' → avg-pool 2 → C3 conv5×5×16 → avg-pool 2 → C5 conv5×5×120 → FC84 → FC(classes),
tanh (or ReLU) after every layer but the last. At 28×28×1 with 10 classes its parameters are the
course's table: 156, 0, 2,416, 0, 48,120, 10,164, 850 = 61,706.

C5 sees a 5×5 map at 28×28 and outputs 1×1; the adaptive average pool after it is then the identity and
only matters for larger inputs, which it lets through instead of failing.
"""

from __future__ import annotations

from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.models.registry import register_model

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "tanh"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ModelError(f"lenet5: activation {activation!r} is not one of {', '.join(_ACTIVATIONS)}")
        act = _ACTIVATIONS[activation]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),  # C1
            act(),
            nn.AvgPool2d(2, stride=2),  # S2
            nn.Conv2d(6, 16, kernel_size=5),  # C3
            act(),
            nn.AvgPool2d(2, stride=2),  # S4
            nn.Conv2d(16, 120, kernel_size=5),  # C5
            act(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@register_model(
    "lenet5",
    family="LeNet",
    year=1998,
    description="LeNet-5: three 5×5 conv layers with average pooling, two FC layers, tanh (activation='relu')",
    min_size=28,
    default_size=28,
)
def lenet5(num_classes: int, in_channels: int, *, activation: str = "tanh") -> nn.Module:
    return LeNet5(num_classes, in_channels, activation)
