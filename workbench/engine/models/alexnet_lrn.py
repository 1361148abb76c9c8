"""The original AlexNet (Krizhevsky, Sutskever & Hinton, 2012), course version, for teaching.

Unlike torchvision's later single-GPU variant (64-192-384-256-256 filters, no normalization) it keeps
the paper's 96-256-384-384-256 filters, 11×11 stride-4 first layer on 227×227 images, and Local Response
Normalization after the ReLUs of the first two layers, on one GPU (no grouped convolutions). Dropout 0.5
before each of the two 4096-wide FC layers. An adaptive average pool to 6×6 (the identity at 227×227)
lets other sizes through.
"""

from __future__ import annotations

from torch import nn

from workbench.engine.models.registry import register_model

# The paper's LRN: b = a / (k + α·Σa²)^β with k=2, n=5, α=1e-4, β=0.75. PyTorch divides α by n, so pass α·n.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4 * 5, 0.75, 2.0


class AlexNetLRN(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


@register_model(
    "alexnet_lrn",
    family="AlexNet",
    year=2012,
    description="The original AlexNet (96-256-384-384-256 filters, LRN after conv1/conv2, dropout), one GPU",
    min_size=67,
    default_size=227,
)
def alexnet_lrn(num_classes: int, in_channels: int, *, dropout: float = 0.5) -> nn.Module:
    return AlexNetLRN(num_classes, in_channels, dropout)
