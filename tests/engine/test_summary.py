"""Model summaries: shapes, parameters, MACs/FLOPs, receptive fields — checked against published numbers."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.models import summarize


def output_size(w: int, f: int, p: int, s: int) -> int:
    """The course's formula (W − F + 2P)/S + 1."""
    return (w - f + 2 * p) // s + 1


def test_lenet5_matches_the_course_keras_table():
    summary = summarize("lenet5", img_size=28, in_channels=1, num_classes=10)
    weighted = [
        (layer.type, layer.output_shape, layer.params)
        for layer in summary.layers
        if layer.type in ("Conv2d", "AvgPool2d", "Linear")
    ]
    assert weighted == [
        ("Conv2d", [6, 28, 28], 156),
        ("AvgPool2d", [6, 14, 14], 0),
        ("Conv2d", [16, 10, 10], 2_416),
        ("AvgPool2d", [16, 5, 5], 0),
        ("Conv2d", [120, 1, 1], 48_120),
        ("Linear", [84], 10_164),
        ("Linear", [10], 850),
    ]
    assert summary.total_params == summary.trainable_params == 61_706
    table = summary.format_table()
    assert "Total params: 61,706" in table and "Non-trainable params: 0" in table
    assert "features.6 (Conv2d)" in table and "48,120" in table


@pytest.mark.parametrize(
    ("name", "size", "params"),
    [("vgg16", 224, 138_357_544), ("resnet50", 224, 25_557_032), ("alexnet", 224, 61_100_840)],
)
def test_published_parameter_counts(name, size, params):
    summary = summarize(name, img_size=size, num_classes=1000)
    assert summary.total_params == params
    assert sum(layer.params for layer in summary.layers) == params  # every parameter is in some row


def test_vgg16_costs_15_5_gmacs_at_224():
    summary = summarize("vgg16", img_size=224, num_classes=1000)
    assert summary.macs == pytest.approx(15.5e9, rel=0.01)
    assert summary.flops == 2 * summary.macs
    first_conv = summary.layers[0]  # 3×3×3 kernels, 64 filters, 224×224 outputs
    assert first_conv.macs == 3 * 3 * 3 * 64 * 224 * 224


@pytest.mark.parametrize(
    ("kind", "f", "p", "s", "w"),
    [
        ("conv", 3, 1, 1, 32),
        ("conv", 5, 0, 1, 28),
        ("conv", 11, 2, 4, 224),
        ("conv", 7, 3, 2, 33),
        ("conv", 1, 0, 2, 15),
        ("max", 2, 0, 2, 28),
        ("max", 3, 1, 2, 56),
        ("avg", 3, 0, 3, 20),
    ],
)
def test_shapes_follow_the_output_size_formula(kind, f, p, s, w):
    layer = (
        nn.Conv2d(3, 8, f, stride=s, padding=p)
        if kind == "conv"
        else (nn.MaxPool2d(f, stride=s, padding=p) if kind == "max" else nn.AvgPool2d(f, stride=s, padding=p))
    )
    summary = summarize(nn.Sequential(layer, nn.ReLU()), img_size=w, in_channels=3)
    expected = output_size(w, f, p, s)
    assert summary.layers[0].output_shape == [8 if kind == "conv" else 3, expected, expected]
    assert summary.layers[0].receptive_field == f and summary.layers[0].stride == s


def test_stacked_3x3_convolutions_grow_the_receptive_field():
    # The course: two stacked 3×3 convs see 5×5, three see 7×7; a stride-2 pool doubles later growth.
    stack = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
    )
    summary = summarize(stack, img_size=32, in_channels=1)
    assert [(layer.receptive_field, layer.stride) for layer in summary.layers] == [
        (3, 1),
        (5, 1),
        (7, 1),
        (8, 2),
        (12, 2),
    ]


def test_residual_branches_keep_the_main_path_receptive_field():
    summary = summarize("resnet18", img_size=224, num_classes=1000)
    by_name = {layer.name: layer for layer in summary.layers}
    # The 1×1 stride-2 projection of layer2 sees what layer1's output sees; the main path grows further.
    assert by_name["conv1"].receptive_field == 7 and by_name["maxpool"].stride == 4
    assert by_name["layer2.0.downsample.0"].stride == 8
    assert by_name["layer2.0.conv2"].receptive_field > by_name["layer2.0.downsample.0"].receptive_field
    assert by_name["layer4.1.conv2"].stride == 32


def test_macs_count_convolutions_and_linear_layers():
    model = nn.Sequential(nn.Conv2d(3, 16, 5, padding=2, groups=1), nn.Flatten(), nn.Linear(16 * 10 * 10, 7))
    summary = summarize(model, img_size=10, in_channels=3)
    conv, _, linear = summary.layers
    assert conv.macs == 5 * 5 * 3 * 16 * 10 * 10  # F·F·D1 per output value × W2·H2·D2
    assert linear.macs == 1600 * 7 and linear.flops == 2 * linear.macs
    assert summary.macs == conv.macs + linear.macs


def test_frozen_parameters_are_counted_apart():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model[0].requires_grad_(False)
    summary = summarize(model, img_size=8, in_channels=1)
    assert summary.total_params == 40 + 290 and summary.trainable_params == 290
    assert summary.layers[0].trainable_params == 0
    assert "(frozen)" in summary.format_table()


def test_json_has_what_the_cli_and_app_read():
    summary = summarize("course_cnn", img_size=28, in_channels=1, num_classes=10)
    data = json.loads(json.dumps(summary.to_dict()))
    assert {"model", "total_params", "trainable_params", "macs", "layers"} <= set(data)
    assert data["model"] == "course_cnn" and data["input_shape"] == [1, 28, 28]
    layer = data["layers"][0]
    assert {"name", "type", "output_shape", "params", "macs", "receptive_field"} <= set(layer)
    assert data["layers"][-1]["output_shape"] == [10]


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model, img_size=8, in_channels=1)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model[0]._forward_hooks


def test_summary_refuses_too_small_images():
    with pytest.raises(ModelError, match="at least 28"):
        summarize("lenet5", img_size=16, in_channels=1)


def test_efficientnet_lite0_matches_its_published_size_and_cost():
    summary = summarize("efficientnet_lite0", img_size=224, num_classes=1000)
    assert summary.total_params == 4_652_008
    assert summary.macs == pytest.approx(0.385e9, rel=0.01)
    assert summary.layers[1].name == "_conv_stem" and summary.layers[1].output_shape == [32, 112, 112]


@pytest.mark.parametrize(
    "name",
    ["googlenet", "inception_v3", "densenet121", "mobilenet_v3_small", "se_resnet50_small", "nin_small"],
)
def test_every_parameter_and_mac_lands_in_some_layer(name):
    from workbench.engine.models import get_spec

    size = get_spec(name).min_size
    summary = summarize(name, img_size=size, num_classes=5)
    assert sum(layer.params for layer in summary.layers) == summary.total_params
    assert sum(layer.macs for layer in summary.layers) == summary.macs > 0
    assert summary.layers[-1].output_shape == [5]
    assert all(layer.receptive_field >= 1 and layer.stride >= 1 for layer in summary.layers)


def test_model_options_reach_the_summary():
    narrow = summarize("course_cnn", img_size=28, in_channels=1)
    wide = summarize("course_cnn", img_size=28, in_channels=1, width=2)
    assert wide.layers[0].output_shape == [32, 28, 28] and wide.total_params > narrow.total_params
