"""A Keras-like model summary: per layer its output shape, parameters, MACs/FLOPs, receptive field, stride.

One forward pass of a single image of the dataset's size records, for every layer (every module without
children, in the order they run):
- the output shape (without the batch dimension), which is what the course's (W − F + 2P)/S + 1 predicts;
- its parameters (trainable and frozen);
- multiply-accumulates of convolutions and matrix products (what the published tables count), FLOPs =
  2 · MACs. They are counted by the same per-thread TorchFunctionMode that follows receptive fields, not by
  PyTorch's FlopCounterMode, whose process-wide module hooks a training run in another thread would disturb;
- the receptive field (side, in input pixels, of the window an output value sees) and the cumulative stride
  (input pixels between neighbouring outputs), propagated through every torch operation: each k×k
  convolution or pooling of dilation d adds (d·(k − 1))·stride, global pooling or flattening extends the
  field over the whole map, and branches that are added or concatenated keep the largest field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass
class LayerInfo:
    name: str  # qualified module name, e.g. "layer1.0.conv1"
    type: str  # module class, e.g. "Conv2d"
    output_shape: list[int]  # without the batch dimension, e.g. [64, 56, 56]
    params: int
    trainable_params: int
    macs: int  # multiply-accumulates for one image
    flops: int  # = 2 * macs
    receptive_field: int  # side of the input window one output value depends on, in pixels
    stride: int  # cumulative stride: input pixels between two neighbouring outputs


@dataclass
class ModelSummary:
    model: str
    input_shape: list[int]  # [channels, height, width]
    layers: list[LayerInfo]
    total_params: int
    trainable_params: int
    macs: int
    flops: int

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": self.input_shape,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "layers": [asdict(layer) for layer in self.layers],
        }

    def format_table(self) -> str:
        """The summary as a text table, in the shape of Keras's `model.summary()`."""
        header = ("Layer (type)", "Output shape", "Param #", "MACs", "RF", "Stride")
        rows = [
            (
                f"{layer.name} ({layer.type})",
                "×".join(map(str, layer.output_shape)),
                f"{layer.params:,}" + ("" if layer.params == layer.trainable_params else " (frozen)"),
                f"{layer.macs:,}" if layer.macs else "",
                str(layer.receptive_field) if layer.receptive_field else "",
                str(layer.stride) if layer.stride else "",
            )
            for layer in self.layers
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            right = [cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join(left + right).rstrip()

        rule_width = sum(widths) + 2 * (len(widths) - 1)
        shape = "×".join(map(str, self.input_shape))
        return "\n".join(
            [
                f'Model: "{self.model}"  (input {shape}, channels × height × width)',
                "_" * rule_width,
                line(header),
                "=" * rule_width,
                *(line(row) for row in rows),
                "=" * rule_width,
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"MACs (multiply-accumulates): {_human(self.macs)}   FLOPs (= 2 × MACs): {_human(self.flops)}",
                "_" * rule_width,
            ]
        )


def _human(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return str(count)


def summarize(
    model_or_name: nn.Module | str,
    *,
    img_size: int,
    in_channels: int = 3,
    num_classes: int = 10,
    **model_args: Any,
) -> ModelSummary:
    """Summary of a zoo model (built for `num_classes` with `model_args`) or of a given module, for square
    images of `img_size`. The model is left as it was (mode, weights, statistics, hooks)."""
    if isinstance(model_or_name, str):
        from workbench.engine.models.registry import build_model, check_input_size

        check_input_size(model_or_name, img_size)
        model, label = build_model(model_or_name, num_classes, in_channels, **model_args), model_or_name
    else:
        model, label = model_or_name, type(model_or_name).__name__
    reference = next(model.parameters(), None)
    image = torch.zeros(
        1,
        in_channels,
        img_size,
        img_size,
        device=reference.device if reference is not None else None,
        dtype=reference.dtype if reference is not None else None,
    )
    names = {module: name for name, module in model.named_modules()}
    tracer = _Tracer(image)
    rows: dict[nn.Module, dict[str, Any]] = {}

    def enter(module: nn.Module, _inputs: Any) -> None:
        tracer.running.append(module)

    def leave(module: nn.Module, _inputs: Any, output: Any) -> None:
        tracer.running.pop()
        if module in names_of_layers and module not in rows and isinstance(output, torch.Tensor):
            field, stride = tracer.field_of(output)
            rows[module] = {
                "output_shape": list(output.shape[1:]),
                "receptive_field": field,
                "stride": stride,
            }

    names_of_layers = {
        m for m in model.modules() if m is not model and (not any(m.children()) or _own_params(m))
    }
    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave, always_call=True) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracer:
            model(image)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    infos = []
    for module, row in rows.items():
        params = _own_params(module) if any(module.children()) else list(module.parameters())
        macs = tracer.macs.get(module, 0)
        infos.append(
            LayerInfo(
                name=names[module],
                type=type(module).__name__,
                params=sum(p.numel() for p in params),
                trainable_params=sum(p.numel() for p in params if p.requires_grad),
                macs=macs,
                flops=2 * macs,
                **row,
            )
        )
    total_macs = sum(tracer.macs.values())
    return ModelSummary(
        model=label,
        input_shape=[in_channels, img_size, img_size],
        layers=infos,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=total_macs,
        flops=2 * total_macs,
    )


def _own_params(module: nn.Module) -> list[nn.Parameter]:
    return list(module.parameters(recurse=False))


# --- receptive fields ------------------------------------------------------------------------------------

_CONVOLUTIONS = {"conv2d"}
_POOLS = {"max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "lp_pool2d"}
_ADAPTIVE_POOLS = {"adaptive_avg_pool2d", "adaptive_max_pool2d"}


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _argument(args: tuple, kwargs: dict, position: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else default


def _first(value: Any) -> int:
    """The height component of an int-or-pair argument (images are square)."""
    return int(value[0] if isinstance(value, (tuple, list)) else value)


_MATMULS = {"matmul", "mm", "bmm", "addmm", "baddbmm"}


def _macs(op: str, args: tuple, kwargs: dict, result: Any) -> int:
    """Multiply-accumulates of one call (the batch holds one image): each output value of a convolution costs
    its kernel's size × input channels per group, each of a matrix product the shared inner dimension."""
    if not isinstance(result, torch.Tensor):
        return 0
    if op in ("conv1d", "conv2d", "conv3d"):
        weight = _argument(args, kwargs, 1, "weight", None)
        return result.numel() * math.prod(weight.shape[1:])
    if op == "linear":
        return result.numel() * _argument(args, kwargs, 1, "weight", None).shape[-1]
    if op in _MATMULS:
        left = args[1] if op in ("addmm", "baddbmm") else args[0]
        return result.numel() * left.shape[-1]
    return 0


class _Tracer(TorchFunctionMode):
    """Follows every torch call of one forward pass (in this thread only): counts the multiply-accumulates of
    convolutions and matrix products against the innermost module running, and gives each tensor derived
    from the image its (receptive field, cumulative stride)."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.running: list[nn.Module] = []  # module call stack, kept by the summary's hooks
        self.macs: dict[nn.Module | None, int] = {}
        self._fields: dict[int, tuple[int, int]] = {id(image): (1, 1)}
        self._alive: list[torch.Tensor] = [image]  # keeps ids from being reused during the pass

    def field_of(self, tensor: torch.Tensor) -> tuple[int, int]:
        return self._fields.get(id(tensor), (0, 0))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        op = getattr(func, "__name__", "")
        macs = _macs(op, args, kwargs, result)
        if macs:
            owner = self.running[-1] if self.running else None
            self.macs[owner] = self.macs.get(owner, 0) + macs
        sources = [t for t in _tensors((args, kwargs)) if id(t) in self._fields]
        if sources:
            for output in _tensors(result):
                self._fields[id(output)] = self._propagate(op, args, kwargs, sources, output)
                self._alive.append(output)
        return result

    def _propagate(
        self, op: str, args: tuple, kwargs: dict, sources: list[torch.Tensor], output: torch.Tensor
    ) -> tuple[int, int]:
        spatial = output.shape[-2:] if output.ndim == 4 else None
        # Inputs broadcast onto the output (e.g. squeeze-and-excitation's 1×1 channel scales) gate it but do
        # not widen the window it looks at.
        aligned = [
            t for t in sources if spatial is None or (t.ndim == 4 and t.shape[-2:] == spatial)
        ] or sources
        source = max(aligned, key=lambda t: self._fields[id(t)][0])
        field, stride = self._fields[id(source)]
        in_size = source.shape[-2] if source.ndim == 4 else 1
        if op in _CONVOLUTIONS and source is args[0]:
            weight = _argument(args, kwargs, 1, "weight", None)
            kernel = weight.shape[-2]
            dilation = _first(_argument(args, kwargs, 5, "dilation", 1))
            step = _first(_argument(args, kwargs, 3, "stride", 1))
            return field + dilation * (kernel - 1) * stride, stride * step
        if op in _POOLS and source is args[0]:
            kernel = _first(_argument(args, kwargs, 1, "kernel_size", 1))
            step = _argument(args, kwargs, 2, "stride", None)
            step = kernel if step is None or step == [] or step == () else _first(step)
            dilation = _first(_argument(args, kwargs, 4, "dilation", 1)) if op.startswith("max") else 1
            return field + dilation * (kernel - 1) * stride, stride * step
        if (
            source.ndim == 4
            and in_size > 1
            and (spatial is None or op in _ADAPTIVE_POOLS or spatial[0] < in_size)
        ):
            out_size = spatial[0] if spatial is not None else 1
            # adaptive pooling's window, or the whole map when flattened
            kernel = math.ceil(in_size / out_size)
            return field + (kernel - 1) * stride, stride * max(in_size // out_size, 1)
        return field, stride
