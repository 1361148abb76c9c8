"""Transfer learning: which parameters train, at which learning rate, epoch by epoch — and which strategy
to pick (the course's four scenarios).

Any zoo model is split into ordered *blocks* (input → output) and a *head* (`split_blocks`):
- the head is the layer that outputs class scores (`adapt.find_head`) plus any auxiliary classifier;
- blocks are the top-level children that hold parameters, except that containers are opened one level
  down: torchvision's `features` Sequential (VGG, DenseNet, MobileNet, EfficientNet: one block per stage or
  layer), any `nn.ModuleList` (EfficientNet-Lite's `_blocks`), and every container that holds the head (so
  VGG's two hidden FC layers are blocks of their own). ResNets give conv1, layer1 … layer4;
- a normalization layer joins the block before it (a conv and its batch norm are one block).

Strategies (names as in `training/config.py` STRATEGIES), for a pretrained model:
- feature-extractor: only the head trains;
- fine-tune-top: the head and the top `unfreeze` blocks train;
- fine-tune-all: everything trains;
- fine-tune-gradual (fastai's `fine_tune`): the head alone for `head_epochs` epochs, then everything.
Pretrained layers that train use lr × backbone_lr_mult (discriminative learning rates), the new head lr.
From scratch (pretrained=False) everything trains at lr, whatever the strategy.
Frozen parameters get requires_grad=False (no gradients, no optimizer state) and the batch-norm layers in
frozen blocks stay in eval mode, so their running statistics stay the pretrained ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from workbench.engine.errors import ConfigError, OptionError
from workbench.engine.models.adapt import find_head, is_aux_name
from workbench.engine.training.config import STRATEGIES

_NORMS = (_BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
SMALL_DATASET_IMAGES = 5_000  # below this many training images a dataset counts as "small"


@dataclass
class Block:
    name: str
    modules: list[nn.Module] = field(default_factory=list)
    loose_params: list[nn.Parameter] = field(default_factory=list)  # parameters held by no module of a block

    def parameters(self) -> list[nn.Parameter]:
        params = [p for module in self.modules for p in module.parameters()]
        return params + self.loose_params


def split_blocks(model: nn.Module) -> tuple[list[Block], Block]:
    """The model's body as ordered blocks (input → output) and its head (see the module docstring)."""
    head_name, head_layer = find_head(model)
    head = Block(head_name, [head_layer])
    blocks: list[Block] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            qualified = prefix + name
            if child is None or qualified == head_name:
                continue
            if not prefix and is_aux_name(name):
                head.modules.append(child)
                continue
            opens = (
                head_name.startswith(qualified + ".")
                or isinstance(child, nn.ModuleList)
                or (not prefix and name == "features")
            )
            if opens:
                visit(qualified + ".", child)
            elif any(True for _ in child.parameters()):
                if isinstance(child, _NORMS) and blocks:
                    blocks[-1].modules.append(child)
                else:
                    blocks.append(Block(qualified, [child]))

    visit("", model)
    covered = {id(p) for part in [*blocks, head] for p in part.parameters()}
    loose = [p for p in model.parameters() if id(p) not in covered]
    if loose:
        blocks.insert(0, Block("(other parameters)", loose_params=loose))
    return blocks, head


def blocks_to_unfreeze(model: nn.Module, fraction: float) -> int:
    """How many top blocks make up `fraction` of the model's blocks (at least 1 when fraction > 0)."""
    count = len(split_blocks(model)[0])
    return 0 if fraction <= 0 else max(1, min(count, round(fraction * count)))


class TransferPlan:
    """Made once per run; the trainer asks it what to train.

    Call `start_epoch(first_epoch)` before building the optimizer from `param_groups`, then at the start of
    every epoch; when it returns True the trainable set changed and the optimizer must be rebuilt.
    """

    def __init__(
        self,
        model: nn.Module,
        strategy: str,
        *,
        unfreeze: int = 2,
        backbone_lr_mult: float = 0.1,
        head_epochs: int = 1,
        pretrained: bool = True,
        freeze_bn_stats: bool = False,
        taps_held_at_zero: bool = False,
    ):
        if strategy not in STRATEGIES:
            raise OptionError("strategy", strategy, f"choose one of {', '.join(STRATEGIES)}")
        if unfreeze < 0:
            raise OptionError("unfreeze", unfreeze, "must be 0 or more blocks")
        if not backbone_lr_mult > 0:
            raise ConfigError(f"backbone learning-rate multiplier {backbone_lr_mult}: must be positive")
        if head_epochs < 0:
            raise ConfigError(f"head epochs {head_epochs}: must be 0 or more")
        self.model, self.strategy, self.unfreeze = model, strategy, unfreeze
        self.backbone_lr_mult, self.head_epochs, self.pretrained = backbone_lr_mult, head_epochs, pretrained
        self.freeze_bn_stats = freeze_bn_stats
        self.blocks, self.head = split_blocks(model)
        # Stage 2 of a linear-probe run keeps the head's tap columns at zero (a gradient mask, probe_stage.py):
        # they do not train, though they are part of a trainable tensor.
        self.held_at_zero = _tap_weights(model) if taps_held_at_zero else 0
        self._trainable_blocks: int | None = None
        self._apply(self._blocks_for_epoch(0))

    # --- phases ---

    def _blocks_for_epoch(self, epoch: int) -> int:
        """How many of the top blocks train during `epoch` (0-based)."""
        everything = len(self.blocks)
        if not self.pretrained or self.strategy == "fine-tune-all":
            return everything
        if self.strategy == "feature-extractor":
            return 0
        if self.strategy == "fine-tune-top":
            return min(self.unfreeze, everything)
        return 0 if epoch < self.head_epochs else everything  # fine-tune-gradual

    def _apply(self, trainable_blocks: int) -> bool:
        if trainable_blocks == self._trainable_blocks:
            return False
        first_trainable = len(self.blocks) - trainable_blocks
        for index, block in enumerate(self.blocks):
            for p in block.parameters():
                p.requires_grad_(index >= first_trainable)
        for p in self.head.parameters():
            p.requires_grad_(True)
        changed = self._trainable_blocks is not None
        self._trainable_blocks = trainable_blocks
        return changed

    def start_epoch(self, epoch: int) -> bool:
        """Set what trains during `epoch` (0-based); True when that changed since the last call."""
        return self._apply(self._blocks_for_epoch(epoch))

    @property
    def frozen_blocks(self) -> list[Block]:
        return self.blocks[: len(self.blocks) - (self._trainable_blocks or 0)]

    # --- what the trainer uses ---

    def train(self) -> None:
        """model.train(), but batch norm in frozen blocks (in every block with `freeze_bn_stats`) stays in
        eval mode: it keeps its pretrained statistics."""
        self.model.train()
        for block in self.blocks if self.freeze_bn_stats else self.frozen_blocks:
            for module in block.modules:
                for sub in module.modules():
                    if isinstance(sub, _BatchNorm):
                        sub.eval()

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups of the trainable parameters only: head at lr, pretrained body at
        lr × backbone_lr_mult; norm weights and biases (1-d parameters) without weight decay."""
        body_lr = lr * self.backbone_lr_mult if self.pretrained else lr
        groups = []
        for role, params, group_lr in (
            ("head", self.head.parameters(), lr),
            ("body", [p for b in self.blocks for p in b.parameters()], body_lr),
        ):
            trainable = _unique(p for p in params if p.requires_grad)
            decay = [p for p in trainable if p.ndim > 1]
            no_decay = [p for p in trainable if p.ndim <= 1]
            if decay:
                groups.append({"params": decay, "lr": group_lr, "weight_decay": weight_decay, "name": role})
            if no_decay:
                groups.append(
                    {"params": no_decay, "lr": group_lr, "weight_decay": 0.0, "name": f"{role}-no-decay"}
                )
        return groups

    def trainable_count(self) -> int:
        return sum(p.numel() for p in _unique(self.model.parameters()) if p.requires_grad) - self.held_at_zero

    def describe(self) -> str:
        """One line for the log, e.g. "feature extractor: 1,290 of 3,371,994 parameters train"."""
        total = sum(p.numel() for p in _unique(self.model.parameters()))
        counts = f"{self.trainable_count():,} of {total:,} parameters train" + (
            f" (the head's {self.held_at_zero:,} tap weights stay at zero)" if self.held_at_zero else ""
        )
        slower = f"; pretrained layers at lr × {self.backbone_lr_mult:g}"
        if not self.pretrained:
            return f"from scratch: {counts}"
        if self.strategy == "feature-extractor":
            return f"feature extractor: {counts}"
        if self.strategy == "fine-tune-all":
            return f"fine-tune all: {counts}{slower}"
        if self.strategy == "fine-tune-top":
            top = self.blocks[len(self.blocks) - (self._trainable_blocks or 0) :]
            names = ", ".join(b.name for b in top) or "none"
            return f"fine-tune top {len(top)} of {len(self.blocks)} blocks ({names}) + head: {counts}{slower}"
        if self._trainable_blocks == 0:
            return f"gradual fine-tuning, head only for {self.head_epochs} epoch(s): {counts}"
        return f"gradual fine-tuning, everything unfrozen: {counts}{slower}"


def _tap_weights(model: nn.Module) -> int:
    """How many head weights read a model's taps (EfficientNetLite's `tapped_columns`); 0 without taps."""
    taps = getattr(model, "tapped_columns", None)
    if taps is None:
        return 0
    _, head = find_head(model)
    return head.weight[:, taps].numel()


def _unique(params) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


# --- the advisor ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    strategy: str
    unfreeze_fraction: float  # share of the top blocks to train (0 = head only, 1 = all)
    reason: str  # one sentence


def advise_strategy(num_train_images: int, similar_to_imagenet: bool) -> Advice:
    """The course's four scenarios: small/large target data × similar/different from ImageNet."""
    size = f"{num_train_images:,} training images"
    if num_train_images < SMALL_DATASET_IMAGES:
        if similar_to_imagenet:
            return Advice(
                "feature-extractor",
                0.0,
                f"With few ({size}) images like ImageNet's, the pretrained features already fit and "
                "fine-tuning them would overfit: freeze the network and train only a new head.",
            )
        return Advice(
            "fine-tune-top",
            0.6,
            f"With few ({size}) images unlike ImageNet's, the later ImageNet-specific layers must "
            "adapt but too few images to retrain everything: freeze the first third to half and "
            "fine-tune the rest.",
        )
    if similar_to_imagenet:
        return Advice(
            "fine-tune-top",
            0.3,
            f"With many ({size}) images like ImageNet's, fine-tuning the top ~30% of the network "
            "(freezing ~60–80%) gains accuracy without overfitting, and similar data needs no more.",
        )
    return Advice(
        "fine-tune-all",
        1.0,
        f"With many ({size}) images unlike ImageNet's, there is enough data to fine-tune every layer, "
        "and starting from pretrained weights still converges faster than from random ones.",
    )
