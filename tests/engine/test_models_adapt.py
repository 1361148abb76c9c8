"""Adapting any zoo model to a dataset: new heads for a new class set, stems for 1 or more channels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.models import adapt_input_channels, build_model, find_head, first_conv, replace_head


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("resnet18_small", "fc"),
        ("vgg11_bn", "classifier.6"),
        ("nin_small", "classifier.0.6"),
        ("efficientnet_lite0", "_fc"),
        ("mobilenet_v3_small", "classifier.3"),
        ("lenet5", "classifier.3"),
    ],
)
def test_head_is_the_layer_that_outputs_class_scores(name, head):
    model = build_model(name, 7, 3)
    found_name, layer = find_head(model)
    assert found_name == head
    assert (layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels) == 7


def test_replace_head_keeps_the_body_and_changes_the_classes():
    model = build_model("resnet18_small", 10, 1)
    body = model.layer4[1].conv2.weight.detach().clone()
    old_head = model.fc
    assert replace_head(model, 4) is model
    assert model.fc is not old_head and model.fc.out_features == 4 and model.fc.in_features == 512
    assert torch.equal(model.layer4[1].conv2.weight, body)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 4)


def test_replace_head_of_a_network_without_fc_layers():
    model = build_model("nin_small", 10, 3)
    replace_head(model, 3)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 3)


def test_replace_head_also_replaces_auxiliary_heads():
    model = build_model("googlenet", 10, 3, aux_logits=True)
    replace_head(model, 6)
    assert model.fc.out_features == model.aux1.fc2.out_features == model.aux2.fc2.out_features == 6
    with pytest.raises(ModelError):
        replace_head(model, 0)


def test_more_channels_replicate_the_kernels_keeping_the_response_to_uniform_input():
    torch.manual_seed(0)
    model = build_model("resnet18", 5, 3)
    kernels = model.conv1.weight.detach().clone()
    adapt_input_channels(model, 6)  # e.g. two RGB images stacked
    assert first_conv(model)[1].in_channels == 6
    assert torch.allclose(model.conv1.weight.sum(dim=1), kernels.sum(dim=1), atol=1e-6)
    assert torch.allclose(model.conv1.weight[:, 4], kernels[:, 1] / 2)


def test_googlenet_turns_off_its_colour_rescaling_for_gray_images():
    colour = build_model("googlenet", 5, 3)
    gray = build_model("googlenet", 5, 1)
    assert colour.transform_input and not gray.transform_input
    adapt_input_channels(colour, 1)
    assert not colour.transform_input
    assert colour.eval()(torch.zeros(1, 1, 32, 32)).shape == (1, 5)
