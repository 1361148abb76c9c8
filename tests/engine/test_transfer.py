"""Transfer-learning strategies, the strategy advisor, and a real-data check that fine-tuning an
ImageNet-pretrained network beats training the same one from scratch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.engine.errors import ConfigError
from workbench.engine.models import build_model
from workbench.engine.training.config import STRATEGIES
from workbench.engine.training.transfer import (
    SMALL_DATASET_IMAGES,
    TransferPlan,
    advise_strategy,
    blocks_to_unfreeze,
    split_blocks,
)

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "transfer_learning.py"


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("resnet18_small", 10, 1)


def train_step(model: nn.Module, plan: TransferPlan) -> torch.optim.Optimizer:
    optimizer = torch.optim.SGD(plan.param_groups(0.1, 5e-4), lr=0.1, momentum=0.9)
    plan.train()
    loss = F.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return optimizer


def optimized(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def test_resnet_splits_into_stem_stages_and_head(model):
    blocks, head = split_blocks(model)
    assert [b.name for b in blocks] == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert model.bn1 in blocks[0].modules  # a batch norm belongs to the conv before it
    assert head.name == "fc" and head.modules == [model.fc]
    every = {id(p) for part in [*blocks, head] for p in part.parameters()}
    assert every == {id(p) for p in model.parameters()}


def test_feature_extractor_trains_only_the_head(model):
    plan = TransferPlan(model, "feature-extractor")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    running_mean = model.layer2[0].bn1.running_mean.clone()
    optimizer = train_step(model, plan)

    head = {id(model.fc.weight), id(model.fc.bias)}
    assert optimized(optimizer) == head  # frozen parameters cost no optimizer state
    assert all(p.grad is None for p in model.parameters() if id(p) not in head)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"fc.weight", "fc.bias"}
    assert not model.layer2[0].bn1.training  # frozen batch norm stays in eval mode...
    assert torch.equal(model.layer2[0].bn1.running_mean, running_mean)  # ...and keeps its statistics
    total = sum(p.numel() for p in model.parameters())
    assert plan.describe() == f"feature extractor: 5,130 of {total:,} parameters train"


def test_fine_tune_top_trains_the_top_blocks_slower_than_the_head(model):
    plan = TransferPlan(model, "fine-tune-top", unfreeze=2, backbone_lr_mult=0.1)
    groups = plan.param_groups(0.01, 5e-4)
    lr_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert lr_of[id(model.fc.weight)] == pytest.approx(0.01)
    assert lr_of[id(model.layer4[0].conv1.weight)] == pytest.approx(0.001)
    assert lr_of[id(model.layer3[1].bn2.weight)] == pytest.approx(0.001)
    assert id(model.layer2[0].conv1.weight) not in lr_of and not model.layer2[0].conv1.weight.requires_grad
    decay_of = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    assert decay_of[id(model.layer4[0].conv1.weight)] == 5e-4
    # no weight decay on norm weights and biases
    assert decay_of[id(model.layer4[0].bn1.weight)] == decay_of[id(model.fc.bias)] == 0.0
    plan.train()
    assert model.layer4[0].bn1.training and not model.layer2[0].bn1.training
    assert "fine-tune top 2 of 5 blocks (layer3, layer4)" in plan.describe()


def test_fine_tune_all_and_scratch_train_everything(model):
    plan = TransferPlan(model, "fine-tune-all")
    assert plan.trainable_count() == sum(p.numel() for p in model.parameters())
    assert sorted({g["lr"] for g in plan.param_groups(1.0, 0.0)}) == pytest.approx([0.1, 1.0])
    # From scratch there is no pretrained body to keep: the strategy does not freeze anything.
    scratch = TransferPlan(model, "feature-extractor", pretrained=False)
    assert {g["lr"] for g in scratch.param_groups(1.0, 0.0)} == {1.0}
    assert scratch.describe().startswith("from scratch:")


def test_gradual_fine_tuning_trains_the_head_then_everything(model):
    plan = TransferPlan(model, "fine-tune-gradual", head_epochs=2)
    assert plan.start_epoch(0) is False
    head_only = optimized(train_step(model, plan))
    assert head_only == {id(model.fc.weight), id(model.fc.bias)}
    assert plan.start_epoch(1) is False
    assert plan.start_epoch(2) is True  # the trainer rebuilds its optimizer now
    assert optimized(train_step(model, plan)) == {id(p) for p in model.parameters()}
    assert all(m.training for m in model.modules())
    assert plan.start_epoch(3) is False
    assert "everything unfrozen" in plan.describe()


def test_resuming_mid_run_restores_the_phase(model):
    plan = TransferPlan(model, "fine-tune-gradual", head_epochs=1)
    assert plan.start_epoch(4) is True
    assert all(p.requires_grad for p in model.parameters())


def test_bad_plans_are_config_errors(model):
    with pytest.raises(ConfigError, match="choose one of"):
        TransferPlan(model, "freeze-everything")
    with pytest.raises(ConfigError, match="unfreeze"):
        TransferPlan(model, "fine-tune-top", unfreeze=-1)


@pytest.mark.parametrize(
    ("images", "similar", "strategy", "fraction"),
    [
        (400, True, "feature-extractor", 0.0),  # small & similar
        (50_000, True, "fine-tune-top", 0.3),  # large & similar: top ~20–40%
        (400, False, "fine-tune-top", 0.6),  # small & different: freeze the first third to half
        (50_000, False, "fine-tune-all", 1.0),  # large & different
    ],
)
def test_advisor_follows_the_four_scenarios(images, similar, strategy, fraction):
    advice = advise_strategy(images, similar)
    assert (advice.strategy, advice.unfreeze_fraction) == (strategy, fraction)
    assert advice.strategy in STRATEGIES
    assert f"{images:,}" in advice.reason and advice.reason.count(". ") == 0 and advice.reason.endswith(".")


def test_advisor_threshold_and_fraction_to_blocks(model):
    assert advise_strategy(SMALL_DATASET_IMAGES - 1, True).strategy == "feature-extractor"
    assert advise_strategy(SMALL_DATASET_IMAGES, True).strategy == "fine-tune-top"
    assert blocks_to_unfreeze(model, 0.0) == 0
    assert blocks_to_unfreeze(model, 0.3) == 2 and blocks_to_unfreeze(model, 0.6) == 3
    assert blocks_to_unfreeze(model, 1.0) == 5


@pytest.mark.slow
def test_pretrained_efficientnet_lite0_beats_scratch_on_fashion_mnist():
    # 200 training images (20 per class), 500 test images, 32 px, 6 epochs each (see the benchmark for more).
    # Measured: pretrained 60.2%, scratch 10.0%, 28 s (at 48 px and 8 epochs: 71.2% and 11.6%, 55 s).
    spec = importlib.util.spec_from_file_location("transfer_learning_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    result = benchmark.compare(per_class=20, test_per_class=50, img_size=32, epochs=6, lr=3e-3)
    assert result["train_images"] == 200 and result["test_images"] == 500
    assert result["pretrained_accuracy"] >= 0.5
    assert result["pretrained_accuracy"] >= result["scratch_accuracy"] + 0.15
