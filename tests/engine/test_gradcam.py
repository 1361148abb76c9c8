"""Grad-CAM on a real trained model, checked against the formula by hand; overlays as pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.engine.errors import ModelError
from workbench.engine.inspection import Inspector, colorize, grad_cam, heatmap_overlay
from workbench.engine.inspection.overlay import colormap_table
from workbench.engine.models import build_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def inspector(fmnist_folder, tmp_path_factory) -> Inspector:
    """course_cnn trained two epochs on real Fashion-MNIST PNGs, loaded for inspection."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("gradcam-home")))
        # hard targets: after two epochs the model is confident enough to have positive evidence to show
        config = TrainConfig(
            data=str(fmnist_folder), model="course_cnn", epochs=2, batch_size=32, seed=0, label_smoothing=0.0
        )
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Inspector.load(finished.checkpoint)


@pytest.fixture(scope="module")
def trouser(fmnist_folder) -> Path:
    return sorted((Path(fmnist_folder) / "test" / "Trouser").glob("*.png"))[0]


def hand_made_grad_cam(model, x: torch.Tensor, class_index: int) -> torch.Tensor:
    """The formula, written out for course_cnn: A = pool(features(x)); w_c = mean ∂y/∂A_c; ReLU(Σ w_c A_c)."""
    activation = model.pool(model.features(x)).detach().requires_grad_(True)
    score = model.classifier(activation)[0, class_index]
    (gradient,) = torch.autograd.grad(score, activation)
    return F.relu((gradient[0].mean(dim=(1, 2), keepdim=True) * activation[0]).sum(dim=0)).detach()


def test_grad_cam_matches_the_formula_for_the_predicted_class(inspector, trouser):
    cam = inspector.grad_cam(trouser)
    x = inspector.normalize(inspector.load_image(trouser))
    probabilities = inspector.probabilities(trouser)
    assert cam.class_index == int(probabilities.argmax())
    assert torch.allclose(cam.probabilities, probabilities, atol=1e-6)
    assert cam.layer == "pool"  # course_cnn's last feature maps before the classifier
    assert torch.allclose(cam.coarse, hand_made_grad_cam(inspector.model, x, cam.class_index), atol=1e-6)
    assert cam.heatmap.shape == (28, 28)
    assert cam.heatmap.min() >= 0 and cam.heatmap.max() == pytest.approx(1.0)


def test_highlights_differ_between_two_classes(inspector, trouser):
    trouser_cam = inspector.grad_cam(trouser, "Trouser").heatmap
    bag_cam = inspector.grad_cam(trouser, "Bag").heatmap
    assert (trouser_cam - bag_cam).abs().mean() > 0.05
    index = inspector.classes.index("Bag")
    assert torch.equal(inspector.grad_cam(trouser, index).heatmap, bag_cam)


def test_a_chosen_layer_gives_maps_at_its_resolution(inspector, trouser):
    cam = inspector.grad_cam(trouser, layer="features.4")
    assert cam.layer == "features.4" and cam.coarse.shape == (14, 14) and cam.heatmap.shape == (28, 28)
    with pytest.raises(ModelError, match=r"classifier.2 \(Linear\) has no C×H×W output"):
        inspector.grad_cam(trouser, layer="classifier.2")
    with pytest.raises(ModelError, match="no layer named 'layer9'"):
        inspector.grad_cam(trouser, layer="layer9")
    with pytest.raises(ModelError, match="class index 10 is out of range"):
        inspector.grad_cam(trouser, 10)
    with pytest.raises(ModelError, match="unknown class 'Hat'"):
        inspector.grad_cam(trouser, "Hat")


def test_frozen_training_mode_model_works_and_is_left_as_it_was(inspector, trouser):
    model = build_model("course_cnn", 10, 1)
    model.load_state_dict(inspector.model.state_dict())
    model.train()
    model.features[1].eval()  # a module kept in eval mode, as transfer learning does for frozen BN
    for p in model.parameters():
        p.requires_grad_(False)
    stats = model.features[1].running_mean.clone()
    x = inspector.normalize(inspector.load_image(trouser))
    cam = grad_cam(model, x)
    assert torch.allclose(cam.heatmap, inspector.grad_cam(trouser).heatmap, atol=1e-6)
    assert model.training and not model.features[1].training and model.features[5].training
    assert torch.equal(model.features[1].running_mean, stats)  # eval mode during the pass: no stat update
    assert all(p.grad is None for p in model.parameters())


def test_nin_without_fc_gives_the_class_map_itself():
    """NiN's last 1×1 convolution outputs one map per class and global pooling makes the scores, so
    Grad-CAM at that layer is the original CAM: ReLU(class map) / (h·w)."""
    torch.manual_seed(0)
    model = build_model("nin_small", 4, 3).eval()
    x = torch.randn(3, 32, 32)
    cam = grad_cam(model, x, class_index=2)
    assert cam.layer == "classifier.0"
    with torch.no_grad():
        class_maps = model.classifier[0](model.features(x[None]))[0]
    h, w = class_maps.shape[-2:]
    assert torch.allclose(cam.coarse, F.relu(class_maps[2]) / (h * w), atol=1e-6)


def test_googlenet_with_aux_heads_reads_the_main_path():
    torch.manual_seed(0)
    model = build_model("googlenet", 4, 3, aux_logits=True).eval()
    cam = grad_cam(model, torch.randn(3, 64, 64))
    assert cam.layer == "inception5b" and cam.heatmap.shape == (64, 64)


def test_overlay_blends_image_and_heatmap(trouser):
    image = np.asarray(Image.open(trouser).convert("RGB"))
    heat = torch.linspace(0, 1, 7 * 7).view(7, 7)  # coarser than the image: resized inside
    only_image = heatmap_overlay(image, heat, opacity=0.0)
    assert only_image.shape == (28, 28, 4) and only_image.dtype == np.uint8
    assert np.array_equal(only_image[..., :3], image) and (only_image[..., 3] == 255).all()
    upsampled = F.interpolate(heat[None, None], size=(28, 28), mode="bilinear", align_corners=False)[0, 0]
    only_heat = heatmap_overlay(image, heat, opacity=1.0, colormap="viridis")
    assert np.array_equal(only_heat[..., :3], colorize(upsampled, "viridis"))
    half = heatmap_overlay(Image.fromarray(image), heat, opacity=0.5).astype(int)
    expected = (image.astype(int) + colorize(upsampled, "jet").astype(int)) / 2
    assert np.abs(half[..., :3] - expected).max() <= 1
    with pytest.raises(ValueError, match="opacity must be between 0 and 1"):
        heatmap_overlay(image, heat, opacity=1.5)


def test_colormaps_run_from_cold_to_hot():
    table = colormap_table("jet")
    assert table.shape == (256, 3) and tuple(table[0]) == (0, 0, 128) and tuple(table[-1]) == (128, 0, 0)
    values = np.array([[0.0, 1.0], [-3.0, 7.0]])  # out-of-range values are clipped
    assert np.array_equal(colorize(values, "gray"), np.array([[[0] * 3, [255] * 3], [[0] * 3, [255] * 3]]))
    with pytest.raises(ValueError, match="unknown colour map 'rainbow'"):
        colormap_table("rainbow")
