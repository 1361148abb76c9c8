"""The model zoo: architectures by name, their summaries, pretrained weights and adaptation to a dataset.

For example `build_model("resnet18_small", 10, in_channels=1)`, `build_model("efficientnet_lite0", 10,
pretrained=True)` (offline ImageNet weights) or `summarize("lenet5", img_size=28, in_channels=1)`.
"""

from workbench.engine.models.adapt import adapt_input_channels, find_head, first_conv, replace_head
from workbench.engine.models.registry import (
    ModelSpec,
    build_model,
    check_input_size,
    get_spec,
    list_models,
    pretrained_weights_file,
    register_model,
)
from workbench.engine.models.summary import LayerInfo, ModelSummary, summarize
from workbench.engine.models.weights import LoadReport, read_state_dict

__all__ = [
    "LayerInfo",
    "LoadReport",
    "ModelSpec",
    "ModelSummary",
    "adapt_input_channels",
    "build_model",
    "check_input_size",
    "find_head",
    "first_conv",
    "get_spec",
    "list_models",
    "pretrained_weights_file",
    "read_state_dict",
    "register_model",
    "replace_head",
    "summarize",
]
