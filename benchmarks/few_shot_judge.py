"""The test accuracy of the workbench's checkpoints on a folder of test images, as `workbench eval` gets it,
without running the same frozen network over the same 10,000 images in every draw.

Every checkpoint is judged by the engine's own `predict_folder` (its preprocessing, its flip averaging),
except one kind: stage 1's instant model is the pretrained network untouched with only its linear head
fitted, so every such checkpoint at one input size has the same body, and the body's outputs on the test
images (the head's inputs, for each image and its mirror) are the same. They are captured once, by a hook on
the head while `predict_folder` judges the first such checkpoint, and each later checkpoint is judged by
applying its own head to them — after checking that every other weight and buffer, its preprocessing and
its flip averaging are identical to the first one's. For the first one the accuracy is computed both ways
and must agree. A fine-tuned network, or anything else whose body differs, goes through `predict_folder`.

On a 2-core CPU this turns the full protocol (15 draws × 2 runs × 10,000 test images and their mirrors at
224 px, ~7 minutes each) into one pass per input size.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import workbench.engine.evaluation.evaluate as evaluate_module
from workbench.engine.errors import ModelError
from workbench.engine.evaluation.figures import uses_flip_tta
from workbench.engine.features.embedder import linear_head
from workbench.engine.training.checkpoint import load_model


@dataclass
class SharedBody:
    """A stage-1 body's outputs on the test images, and what a checkpoint must match to use them."""

    state: dict[str, torch.Tensor]  # every weight and buffer but the head's
    features: torch.Tensor  # (N, D): the head's input for each test image
    mirrored: torch.Tensor | None  # (N, D) for each image's mirror, when the checkpoint flip-averages
    targets: torch.Tensor  # (N,) in the model's class numbering


class TestJudge:
    """Test accuracy of checkpoints on `folder` (its test/ split, or every image when it has none)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.shared: dict[str, SharedBody] = {}  # by (model, preprocessing, flip averaging)
        self.full_passes = 0  # checkpoints judged by predict_folder (for the benchmark's notes)

    def __call__(self, checkpoint: str) -> dict:
        """{"test_accuracy", "judged_by", "judge_s"} for one checkpoint (a path)."""
        started = time.perf_counter()
        model, meta = load_model(checkpoint)
        config = meta.get("config") or {}
        key = json.dumps([meta["model"], meta["preprocessing"], uses_flip_tta(config)])
        try:
            head_name, head = linear_head(model)
        except ModelError:  # no linear head: nothing to share
            head_name, head = None, None
        state = _body_state(model, head_name) if head is not None else None
        shared = self.shared.get(key)
        result: dict = {}
        if shared is not None and state is not None and _same(state, shared.state):
            accuracy = _accuracy(head, shared)
            result["judged_by"] = "its own head on the shared stage-1 body's test features"
        else:
            keep = head is not None and shared is None and meta.get("epoch") == 0  # stage 1's instant model
            accuracy, captured = self._predict(checkpoint, head_name if keep else None)
            self.full_passes += 1
            result["judged_by"] = "predict_folder"
            if captured is not None:
                captured.state = state
                again = _accuracy(head, captured)
                # The same numbers in other batches may round differently: a borderline image or two, no more.
                if abs(again - accuracy) * len(captured.targets) > 2:
                    raise AssertionError(
                        f"{checkpoint}: its head on the captured features scores {again:.4%}, "
                        f"predict_folder {accuracy:.4%}"
                    )
                self.shared[key] = captured
                result["judged_by"] += " (its body's test features kept for the other stage-1 checkpoints)"
                result["shared_features_accuracy"] = again
        result.update(test_accuracy=accuracy, judge_s=round(time.perf_counter() - started, 1))
        return result

    def _predict(self, checkpoint: str, head_name: str | None) -> tuple[float, SharedBody | None]:
        """predict_folder's accuracy, and (given `head_name`) the head's inputs it computed on the way: its
        model, built inside predict_folder, gets a hook on its head."""
        captured: list[torch.Tensor] = []
        load = evaluate_module.load_model

        def load_with_hook(ref, device="cpu"):
            model, meta = load(ref, device=device)
            model.get_submodule(head_name).register_forward_pre_hook(
                lambda _module, inputs: captured.append(inputs[0].detach().clone())
            )
            return model, meta

        if head_name is not None:
            evaluate_module.load_model = load_with_hook
        try:
            predictions = evaluate_module.predict_folder(checkpoint, self.folder)
        finally:
            evaluate_module.load_model = load
        accuracy = (predictions.logits.argmax(1) == predictions.targets).sum().item() / len(
            predictions.targets
        )
        if not captured:
            return accuracy, None
        if predictions.flip_averaged:  # FlipAveraged calls the model on each batch, then on its mirror
            features, mirrored = torch.cat(captured[0::2]), torch.cat(captured[1::2])
        else:
            features, mirrored = torch.cat(captured), None
        return accuracy, SharedBody({}, features, mirrored, predictions.targets)


def _body_state(model: torch.nn.Module, head_name: str | None) -> dict[str, torch.Tensor]:
    prefix = f"{head_name}."
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _accuracy(head: torch.nn.Linear, shared: SharedBody) -> float:
    """The head on the shared features, flip-averaged as FlipAveraged does, as an exact fraction."""
    with torch.inference_mode():
        logits = head(shared.features)
        if shared.mirrored is not None:
            logits = (logits + head(shared.mirrored)) / 2
    return (logits.argmax(1) == shared.targets).sum().item() / len(shared.targets)
