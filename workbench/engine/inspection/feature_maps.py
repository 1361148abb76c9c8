"""What each layer of a network outputs for one image, read with forward hooks.

`layer_tree` gives the model's modules as a tree (convolutions, pools, blocks, inception branches, dense
layers...) with the output shape each one produces; `feature_maps` and `conv_feature_maps` run one image
through the model and return the activations of a layer (or of every convolution) with per-channel
statistics, ready to be drawn as a grid of heatmaps.

Conventions:
- a module called several times in one forward pass (torchvision's ResNet blocks reuse one ReLU) reports
  its first call, as the model summary does, so shapes here and there agree; its node says how many
  calls there were (`calls`), so that the views can say which one they show;
- activations are copied when recorded: a later in-place operation (`ReLU(inplace=True)` after a
  convolution) would otherwise rewrite them;
- a dense layer's F outputs are returned as F channels of 1×1, so every layer fits the same grid.

Pure functions of (model, input tensor): no Qt, safe to call from a worker thread as long as no other
thread runs the same model object at the same time (hooks are per module).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.inspection.hooks import as_batch, eval_mode, forward_hooks, model_device_dtype

_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
          nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd)  # fmt: skip
_NORMS = (nn.modules.batchnorm._NormBase, nn.LocalResponseNorm, nn.LayerNorm, nn.GroupNorm)


def layer_kind(name: str, module: nn.Module) -> str:
    """conv | pool | dense | norm | activation | dropout | branch | block | other — what the tree shows."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, _POOLS):
        return "pool"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return "dropout"
    if type(module).__module__ == nn.modules.activation.__name__:
        return "activation"
    if any(module.children()):
        # Inception modules name their parallel paths branch1, branch3x3dbl_2, ...
        return "branch" if name.rsplit(".", 1)[-1].lower().startswith("branch") else "block"
    return "other"


@dataclass
class LayerNode:
    """One module of the model; the root (name "") is the model itself."""

    name: str  # qualified name, e.g. "layer1.0.conv1"
    type: str  # class name, e.g. "Conv2d"
    kind: str  # see `layer_kind`; "model" for the root
    output_shape: (
        list[int] | None
    )  # without the batch dimension; None if it did not run or returned no tensor
    params: int  # parameters in this module and its children
    children: list[LayerNode] = field(default_factory=list)
    calls: int = 1  # times it ran in one forward pass (0: not at all); output_shape is its first call's

    @property
    def inspectable(self) -> bool:
        """True when its output can be shown as feature maps: (C, H, W) or (F,)."""
        return self.output_shape is not None and len(self.output_shape) in (1, 3)

    def walk(self) -> Iterator[LayerNode]:
        """This node and all below it, parents before children, in registration order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> LayerNode:
        for node in self.walk():
            if node.name == name:
                return node
        raise ModelError(f"the model has no layer named '{name}'")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "output_shape": self.output_shape,
            "params": self.params,
            "calls": self.calls,
            "children": [child.to_dict() for child in self.children],
        }


def layer_tree(model: nn.Module, img_size: int, in_channels: int) -> LayerNode:
    """The module tree with each module's output shape for one `img_size`² image (one forward pass)."""
    device, dtype = model_device_dtype(model)
    image = torch.zeros(1, in_channels, img_size, img_size, device=device, dtype=dtype)
    shapes: dict[nn.Module, list[int]] = {}
    calls: dict[nn.Module, int] = {}

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:
        calls[module] = calls.get(module, 0) + 1
        if module not in shapes and isinstance(output, torch.Tensor):
            shapes[module] = list(output.shape[1:])

    with forward_hooks(model.modules(), record), eval_mode(model), torch.no_grad():
        model(image)

    def node(name: str, module: nn.Module) -> LayerNode:
        return LayerNode(
            name=name,
            type=type(module).__name__,
            kind="model" if module is model else layer_kind(name, module),
            output_shape=shapes.get(module),
            params=sum(p.numel() for p in module.parameters()),
            calls=calls.get(module, 0),
            children=[
                node(f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module.named_children()
                if child is not None
            ],
        )

    return node("", model)


def conv_layer_names(model: nn.Module) -> list[str]:
    """Qualified names of every 2-D convolution, in registration order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


# --- activations -----------------------------------------------------------------------------------------


@dataclass
class ChannelInfo:
    """One channel of a layer's output, as the enlarged view shows it."""

    index: int
    map: torch.Tensor  # (H, W) float32
    min: float
    max: float
    mean: float
    fraction_zero: float  # share of exactly-zero values (ReLU sparsity)


@dataclass
class FeatureMaps:
    """A layer's output for one image, with per-channel statistics (each a (C,) tensor)."""

    layer: str
    type: str
    activation: torch.Tensor  # (C, H, W) float32 on the CPU; a dense layer's (F,) becomes (F, 1, 1)
    output_shape: list[int]  # the layer's own output shape without the batch dimension
    min: torch.Tensor = field(init=False)
    max: torch.Tensor = field(init=False)
    mean: torch.Tensor = field(init=False)
    fraction_zero: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        flat = self.activation.flatten(1)
        self.min = flat.amin(dim=1)
        self.max = flat.amax(dim=1)
        self.mean = flat.mean(dim=1)
        self.fraction_zero = (flat == 0).float().mean(dim=1)

    @property
    def num_channels(self) -> int:
        return self.activation.shape[0]

    def order(self, by: str = "mean", descending: bool = True) -> list[int]:
        """Channel indices sorted by a statistic (mean, max, min or fraction_zero); ties keep index order."""
        if by not in ("mean", "max", "min", "fraction_zero"):
            raise ValueError(f"cannot sort channels by {by!r}")
        values: torch.Tensor = getattr(self, by)
        return torch.sort(values, descending=descending, stable=True).indices.tolist()

    def normalized(self) -> torch.Tensor:
        """(C, H, W) in [0, 1], each channel stretched to its own min..max (a constant channel becomes 0)."""
        low = self.min.view(-1, 1, 1)
        span = (self.max - self.min).view(-1, 1, 1)
        return torch.where(span > 0, (self.activation - low) / span.clamp(min=1e-12), 0.0)

    def channel(self, index: int) -> ChannelInfo:
        if not 0 <= index < self.num_channels:
            raise ModelError(f"layer {self.layer} has {self.num_channels} channels, not channel {index}")
        return ChannelInfo(
            index=index,
            map=self.activation[index],
            min=self.min[index].item(),
            max=self.max[index].item(),
            mean=self.mean[index].item(),
            fraction_zero=self.fraction_zero[index].item(),
        )


def capture_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """One forward pass of one image `x` ((C, H, W) or (1, C, H, W), normalized); returns each named layer's
    output (batch dimension removed, float32, CPU), from its first call. ModelError for an unknown name, or
    for a layer that did not run (an auxiliary head in eval mode) or returned no tensor."""
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ModelError(f"the model has no layer named {', '.join(repr(n) for n in unknown)}")
    wanted = {modules[name]: name for name in layers}
    captured: dict[str, torch.Tensor] = {}

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:
        name = wanted[module]
        if name not in captured and isinstance(output, torch.Tensor):
            captured[name] = output[0].detach().float().clone()

    batch = as_batch(x, model)
    with forward_hooks(wanted, record), eval_mode(model), torch.inference_mode():
        model(batch)
    missing = [name for name in layers if name not in captured]
    if missing:
        raise ModelError(
            f"layer(s) {', '.join(missing)} produced no tensor for this image (not used in inference mode?)"
        )
    return {name: captured[name].cpu() for name in layers}


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> FeatureMaps:
    """The output of `layer` for one image, with per-channel statistics."""
    return _to_feature_maps(model, layer, capture_outputs(model, x, [layer])[layer])


def conv_feature_maps(model: nn.Module, x: torch.Tensor) -> list[FeatureMaps]:
    """Every convolution's output for one image, in one forward pass, in the order the layers are registered."""
    names = conv_layer_names(model)
    outputs = capture_outputs(model, x, names)
    return [_to_feature_maps(model, name, outputs[name]) for name in names]


def _to_feature_maps(model: nn.Module, layer: str, output: torch.Tensor) -> FeatureMaps:
    module = model.get_submodule(layer)
    if output.ndim == 1:
        activation = output.view(-1, 1, 1)
    elif output.ndim == 3:
        activation = output
    else:
        raise ModelError(
            f"layer {layer} ({type(module).__name__}) outputs shape {list(output.shape)}, which is neither "
            "feature maps (C×H×W) nor a dense vector"
        )
    return FeatureMaps(layer, type(module).__name__, activation, list(output.shape))
