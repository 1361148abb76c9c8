"""Every zoo model builds, runs forward and one training step at its minimum size, with 1 and 3 channels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.errors import ModelError
from workbench.engine.models import build_model, check_input_size, get_spec, list_models

ALL_MODELS = [spec.name for spec in list_models()]
NUM_CLASSES = 3

ISSUE_NAMES = {
    # torchvision's names for what torchvision has
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "googlenet",
    "inception_v3",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_b2",
    # ours
    "lenet5",
    "course_cnn",
    "nin",
    "alexnet_lrn",
    "se_resnet18",
    "se_resnet50",
    "efficientnet_lite0",
    # small-image variants of the ResNet, SE-ResNet, VGG, DenseNet and NiN families
    "resnet18_small",
    "se_resnet18_small",
    "vgg11_small",
    "densenet121_small",
    "nin_small",
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared; small tensors do not gain from more
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_trains_one_step_at_its_minimum_size(name, channels):
    spec = get_spec(name)
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES, channels)
    model.train()
    images = torch.randn(2, channels, spec.min_size, spec.min_size)
    labels = torch.tensor([0, 2])

    logits = model(images)
    assert logits.shape == (2, NUM_CLASSES)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in params[:1] + params[-1:])  # stem and head both learn
    before = params[-1].detach().clone()
    torch.optim.SGD(params, lr=0.1).step()
    assert not torch.equal(before, params[-1])


def test_zoo_has_every_model_the_issue_names():
    assert set(ALL_MODELS) >= ISSUE_NAMES


def test_specs_are_complete_and_consistent():
    for spec in list_models():
        assert spec.family and spec.description and "\n" not in spec.description
        assert 1950 < spec.year < 2030
        assert 1 <= spec.min_size <= spec.default_size
        assert spec.source in ("torchvision", "workbench")
        assert spec.to_dict()["name"] == spec.name
    pretrained = {spec.name for spec in list_models() if spec.pretrained}
    assert {"resnet50", "vgg16", "efficientnet_b0", "efficientnet_lite0"} <= pretrained
    small_image_models = {spec.name for spec in list_models() if spec.default_size <= 64}
    assert {"lenet5", "course_cnn", "resnet18_small", "nin_small"} <= small_image_models
    assert not small_image_models & pretrained  # their stems differ from any published network's
    assert get_spec("resnet18_small").default_size == 32 and get_spec("resnet50").default_size == 224


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelError, match=r"unknown model 'resnet_18'.*resnet18"):
        get_spec("resnet_18")
    with pytest.raises(ModelError, match="unknown model"):
        build_model("no-such-net", 10)


def test_too_small_input_is_refused_with_the_minimum():
    check_input_size("resnet18_small", 8)
    with pytest.raises(ModelError, match=r"alexnet needs images of at least 63×63.*--img-size 63"):
        check_input_size("alexnet", 32)


def test_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="number of classes"):
        build_model("course_cnn", 0)
    with pytest.raises(ModelError, match="input channels"):
        build_model("course_cnn", 10, in_channels=0)
    with pytest.raises(ModelError, match="bad model option"):
        build_model("course_cnn", 10, 1, no_such_option=3)


def test_model_options_reach_the_architecture():
    wide = build_model("course_cnn", 10, 1, width=2)
    assert wide.features[0].out_channels == 32
    relu_lenet = build_model("lenet5", 10, 1, activation="relu")
    assert isinstance(relu_lenet.features[1], torch.nn.ReLU)
    with pytest.raises(ModelError, match="activation 'gelu'"):
        build_model("lenet5", 10, 1, activation="gelu")


def test_googlenet_aux_heads_are_optional_in_training():
    plain = build_model("googlenet", 4, 3)
    assert plain.aux1 is None
    with_aux = build_model("googlenet", 4, 3, aux_logits=True).train()
    outputs = with_aux(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outputs] == [(2, 4)] * 3  # main logits and both auxiliary heads
