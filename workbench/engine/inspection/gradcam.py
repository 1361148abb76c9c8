"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.

For a layer with feature maps A (C×h×w) and a class score y, each channel's weight is the average over
positions of ∂y/∂A; the map is ReLU(Σ_c weight_c · A_c), upsampled to the input's size and scaled to [0, 1].

The layer defaults to the network's last spatial feature maps: the last module, in the order modules finish
during the forward pass, whose output is C×h×w and that runs before the final global pooling — ResNet's
`layer4`, DenseNet's `features`, GoogLeNet's `inception5b`, NiN's last mlpconv (its class maps, which makes
this the original CAM). Execution order, not registration order, so GoogLeNet/Inception auxiliary heads
(registered after the main path, idle in eval mode) are never picked.

A module called several times in one pass contributes its last call here, and an output that the model
later changes in place (ResNet's `bn2`, to which the shortcut is added) is read as changed: pick the block
itself for such layers. No Qt; one call at a time per model object (hooks are per module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.inspection.hooks import as_batch, eval_mode, forward_hooks, logits_of


@dataclass
class GradCam:
    heatmap: torch.Tensor  # (H, W) float32 in [0, 1] at the input's resolution, on the CPU
    coarse: torch.Tensor  # (h, w) the unscaled map at the layer's resolution
    layer: str
    class_index: int
    score: float  # the class's logit
    probabilities: torch.Tensor  # (classes,) softmax of the logits


def _is_global_pool(module: nn.Module, inputs: Any, output: torch.Tensor) -> bool:
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and output.shape[-2:] == (1, 1):
        return True
    first = inputs[0] if isinstance(inputs, tuple) and inputs else None
    return (
        output.shape[-2:] == (1, 1)
        and isinstance(first, torch.Tensor)
        and first.ndim == 4
        and first.shape[-2] * first.shape[-1] > 1
    )


def grad_cam(
    model: nn.Module, x: torch.Tensor, class_index: int | None = None, layer: str | None = None
) -> GradCam:
    """Grad-CAM of one normalized image `x` ((C, H, W) or (1, C, H, W)) for `class_index` (default: the
    predicted class) at `layer` (default: see the module docstring)."""
    names = {module: name for name, module in model.named_modules() if module is not model}
    if layer is not None and layer not in dict(model.named_modules()):
        raise ModelError(f"the model has no layer named '{layer}'")
    # (name, output) of every module with a 4-D output, in the order they finish; global pools marked.
    finished: list[tuple[str, torch.Tensor, bool]] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        if module in names and isinstance(output, torch.Tensor) and output.ndim == 4:
            finished.append((names[module], output, _is_global_pool(module, inputs, output)))

    batch = as_batch(x, model).detach().clone().requires_grad_(True)  # grads flow even through frozen layers
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        eval_mode(model),
        forward_hooks(names, record),
    ):
        logits = logits_of(model(batch))[0]
        if class_index is None:
            class_index = int(logits.argmax())
        if not 0 <= class_index < logits.numel():
            raise ModelError(
                f"class index {class_index} is out of range: the model has {logits.numel()} classes"
            )
        target_name, activation = _pick(finished, layer, model)
        (gradient,) = torch.autograd.grad(logits[class_index], activation)
    weights = gradient[0].mean(dim=(1, 2), keepdim=True)
    coarse = F.relu((weights * activation[0]).sum(dim=0)).detach().float()
    upsampled = F.interpolate(coarse[None, None], size=batch.shape[-2:], mode="bilinear", align_corners=False)
    heatmap = upsampled[0, 0].clamp(min=0)
    peak = heatmap.max()
    heatmap = heatmap / peak if peak > 0 else torch.zeros_like(heatmap)
    return GradCam(
        heatmap=heatmap.cpu(),
        coarse=coarse.cpu(),
        layer=target_name,
        class_index=class_index,
        score=logits[class_index].item(),
        probabilities=logits.detach().float().softmax(dim=0).cpu(),
    )


def _pick(
    finished: list[tuple[str, torch.Tensor, bool]], layer: str | None, model: nn.Module
) -> tuple[str, torch.Tensor]:
    if layer is not None:
        outputs = [output for name, output, _ in finished if name == layer]
        if not outputs:
            module = model.get_submodule(layer)
            raise ModelError(
                f"layer {layer} ({type(module).__name__}) has no C×H×W output for this image: Grad-CAM needs "
                "a convolutional layer or block"
            )
        return layer, outputs[-1]
    last_pool = max((i for i, (_, _, pool) in enumerate(finished) if pool), default=len(finished))
    before = [(name, output) for name, output, pool in finished[:last_pool] if not pool]
    if not before:
        raise ModelError(f"{type(model).__name__} has no convolutional feature maps for Grad-CAM")
    return before[-1]


def default_cam_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The layer `grad_cam` uses when none is named, for an input like `x`."""
    return grad_cam(model, x).layer
