"""Fit any zoo model to a dataset: a new head for its classes, a first convolution for its channels.

Conventions every zoo model follows (torchvision's do, ours are written to):
- the head is the last `nn.Linear` or `nn.Conv2d` registered outside auxiliary branches (NiN has no FC:
  its head is the final 1×1 convolution before global pooling);
- auxiliary classifiers (GoogLeNet's `aux1`/`aux2`, Inception v3's `AuxLogits`) are top-level children
  whose name starts with "aux"; their last Linear is a head too;
- the first `nn.Conv2d` registered is the stem that reads the image.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.engine.errors import ModelError


def is_aux_name(qualified_name: str) -> bool:
    return qualified_name.split(".", 1)[0].lower().startswith("aux")


def find_head(model: nn.Module) -> tuple[str, nn.Module]:
    """(qualified name, module) of the layer that outputs the class scores."""
    head = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not is_aux_name(name):
            head = (name, module)
    if head is None:
        raise ModelError(f"{type(model).__name__} has no Linear or Conv2d layer to use as its head")
    return head


def aux_heads(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The final Linear of each auxiliary classifier present (empty when aux heads are off)."""
    heads = []
    for child_name, child in model.named_children():
        if child is None or not is_aux_name(child_name):
            continue
        linears = [(f"{child_name}.{n}", m) for n, m in child.named_modules() if isinstance(m, nn.Linear)]
        if linears:
            heads.append(linears[-1])
    return heads


def head_module_names(model: nn.Module) -> list[str]:
    """Qualified names of every head (the main one first), i.e. the layers a new class set replaces."""
    return [find_head(model)[0]] + [name for name, _ in aux_heads(model)]


def num_outputs(model: nn.Module) -> int:
    head = find_head(model)[1]
    return head.out_features if isinstance(head, nn.Linear) else head.out_channels


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(model).__name__} has no convolution to read images with")


def _fresh_like(layer: nn.Module, out_features: int) -> nn.Module:
    """A newly initialized copy of `layer` (Linear or Conv2d) with `out_features` outputs."""
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, out_features, bias=layer.bias is not None, **factory)
    return nn.Conv2d(
        layer.in_channels,
        out_features,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=layer.bias is not None,
        **factory,
    )


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give `model` freshly initialized heads (main and auxiliary) for `num_classes` classes; returns it.

    Used after loading weights trained on another class set (ImageNet, or one of the user's runs).
    """
    if num_classes < 1:
        raise ModelError(f"the number of classes must be at least 1, got {num_classes}")
    for name in head_module_names(model):
        model.set_submodule(name, _fresh_like(model.get_submodule(name), num_classes))
    return model


def _conv_with_inputs(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    # type(conv): subclasses (e.g. TF "same" padding) keep nn.Conv2d's constructor and their behaviour.
    return type(conv)(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=1,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )


def set_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Swap the stem for a freshly initialized one reading `in_channels` channels (before loading weights)."""
    name, conv = first_conv(model)
    if conv.in_channels != in_channels:
        _check_groups(model, conv)
        model.set_submodule(name, _conv_with_inputs(conv, in_channels))
    _update_input_transform(model, in_channels)
    return model


@torch.no_grad()
def adapt_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Make the (pretrained) stem read `in_channels` channels while keeping what it learned.

    1 channel: the RGB kernels are summed, so a gray image gives the response the network had to the same
    image in colour (R = G = B). More channels: kernels are repeated cyclically and scaled by
    old/new channels, so the response to a uniform input keeps its magnitude (exactly for multiples of 3).
    """
    if in_channels < 1:
        raise ModelError(f"the number of input channels must be at least 1, got {in_channels}")
    name, conv = first_conv(model)
    if conv.in_channels != in_channels:
        _check_groups(model, conv)
        old = conv.weight
        if in_channels == 1:
            weight = old.sum(dim=1, keepdim=True)
        else:
            index = torch.arange(in_channels, device=old.device) % old.shape[1]
            weight = old[:, index] * (old.shape[1] / in_channels)
        new = _conv_with_inputs(conv, in_channels)
        new.weight.copy_(weight)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
        model.set_submodule(name, new)
    _update_input_transform(model, in_channels)
    return model


def _check_groups(model: nn.Module, conv: nn.Conv2d) -> None:
    if conv.groups != 1:
        raise ModelError(
            f"{type(model).__name__}: its first convolution is grouped; cannot change its channels"
        )


def _update_input_transform(model: nn.Module, in_channels: int) -> None:
    # GoogLeNet and Inception v3 rescale the 3 colour channels one by one; with other counts that breaks.
    if hasattr(model, "transform_input"):
        model.transform_input = model.transform_input and in_channels == 3
