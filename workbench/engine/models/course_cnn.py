"""The course's Fashion-MNIST CNN: conv5×5×16–BN–ReLU–maxpool, conv5×5×32–BN–ReLU–maxpool, FC.

Padding 2 keeps each convolution 'same' ((W − 5 + 2·2)/1 + 1 = W), so 28×28 becomes 7×7×32 before the
FC layer, as in the lecture. An adaptive average pool to 7×7 (the identity at 28×28) lets the same FC
layer take any input from 8×8 up.
"""

from __future__ import annotations

from torch import nn

from workbench.engine.models.registry import register_model


class CourseCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 1, dropout: float = 0.0):
        super().__init__()
        c1, c2 = 16 * width, 32 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c2 * 7 * 7, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@register_model(
    "course_cnn",
    family="Course CNN",
    year=2017,
    description="The course's Fashion-MNIST CNN: two conv5×5–BN–ReLU–maxpool stages and one FC layer",
    min_size=8,
    default_size=28,
)
def course_cnn(num_classes: int, in_channels: int, *, width: int = 1, dropout: float = 0.0) -> nn.Module:
    """width multiplies the channel counts (16, 32); dropout is applied before the FC layer."""
    return CourseCNN(num_classes, in_channels, width=width, dropout=dropout)
