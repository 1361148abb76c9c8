"""One trained model loaded for the inspector views: images in, feature maps / kernels / Grad-CAM out.

The app's feature-map inspector keeps one `Inspector` and calls it from a worker thread. It holds its own
copy of the weights (read from the checkpoint), so inspecting the latest checkpoint of a run that is still
training never touches the model being trained: pass `<run>/checkpoints/last.pt` for the newest epoch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from workbench.engine.data import decode_image
from workbench.engine.errors import ModelError
from workbench.engine.inspection.feature_maps import (
    FeatureMaps,
    LayerNode,
    conv_feature_maps,
    feature_maps,
    layer_tree,
)
from workbench.engine.inspection.filters import Kernels, conv_kernels
from workbench.engine.inspection.gradcam import GradCam, grad_cam
from workbench.engine.inspection.hooks import logits_of

ImageInput = str | Path | torch.Tensor  # a file, or a uint8 (C, H, W) tensor at the model's size


class Inspector:
    def __init__(self, model: nn.Module, meta: dict[str, Any], checkpoint: Path | None = None):
        self.model = model.eval()
        self.meta = meta
        self.checkpoint = checkpoint  # the file the weights came from, when loaded from one
        pre = meta["preprocessing"]
        self.size: int = pre["size"]
        self.channels: int = pre["channels"]
        self._mean = torch.tensor(pre["mean"], dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(pre["std"], dtype=torch.float32).view(-1, 1, 1)
        self._lock = threading.Lock()  # hooks are per module: one inspection at a time
        self._tree: LayerNode | None = None

    @classmethod
    def load(cls, ref: str | Path, device: str = "cpu", *, latest: bool = False) -> Inspector:
        """From a run id (or 'last'), a run folder or a checkpoint file. A run gives its best checkpoint, or
        with `latest` its newest one (last.pt: the epoch just finished by a run still training)."""
        from workbench.engine.training.checkpoint import BEST, LAST, find_checkpoint, load_model

        path = find_checkpoint(ref)
        if latest and path.name == BEST and (path.parent / LAST).is_file() and not Path(ref).is_file():
            path = path.parent / LAST
        return cls(*load_model(path, device=device), checkpoint=path)

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    # ---- images ------------------------------------------------------------------------------------------
    def load_image(
        self, image: ImageInput, *, flip: bool = False, shift: tuple[int, int] = (0, 0)
    ) -> torch.Tensor:
        """uint8 (C, size, size) as the model sees it (decoded like the training images), optionally flipped
        left-right and shifted by (dx, dy) pixels (the uncovered border is black), to watch maps move."""
        if isinstance(image, torch.Tensor):
            pixels = image
            if pixels.dtype != torch.uint8 or pixels.shape != (self.channels, self.size, self.size):
                raise ModelError(
                    f"expected a uint8 image tensor of shape {[self.channels, self.size, self.size]}, "
                    f"got {pixels.dtype} {list(pixels.shape)}"
                )
        else:
            pixels = decode_image(image, self.size, self.channels)
        if flip:
            pixels = TF.horizontal_flip(pixels)
        if shift != (0, 0):
            pixels = TF.affine(
                pixels, angle=0.0, translate=[int(shift[0]), int(shift[1])], scale=1.0, shear=[0.0, 0.0]
            )
        return pixels

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (C, H, W) → the float (1, C, H, W) input the model was trained on."""
        return ((pixels.float() / 255 - self._mean) / self._std).unsqueeze(0)

    def _input(self, image: ImageInput, flip: bool, shift: tuple[int, int]) -> torch.Tensor:
        return self.normalize(self.load_image(image, flip=flip, shift=shift))

    # ---- what the views ask for ------------------------------------------------------------------------
    def layer_tree(self) -> LayerNode:
        """Modules with their output shapes at the model's image size (computed once)."""
        with self._lock:
            if self._tree is None:
                self._tree = layer_tree(self.model, self.size, self.channels)
            return self._tree

    def probabilities(
        self, image: ImageInput, *, flip: bool = False, shift: tuple[int, int] = (0, 0)
    ) -> torch.Tensor:
        x = self._input(image, flip, shift)
        with self._lock, torch.inference_mode():
            return logits_of(self.model(x.to(self._device)))[0].float().softmax(dim=0).cpu()

    def feature_maps(
        self, image: ImageInput, layer: str, *, flip: bool = False, shift: tuple[int, int] = (0, 0)
    ) -> FeatureMaps:
        x = self._input(image, flip, shift)
        with self._lock:
            return feature_maps(self.model, x, layer)

    def conv_feature_maps(
        self, image: ImageInput, *, flip: bool = False, shift: tuple[int, int] = (0, 0)
    ) -> list[FeatureMaps]:
        x = self._input(image, flip, shift)
        with self._lock:
            return conv_feature_maps(self.model, x)

    def grad_cam(
        self,
        image: ImageInput,
        class_index: int | str | None = None,
        layer: str | None = None,
        *,
        flip: bool = False,
        shift: tuple[int, int] = (0, 0),
    ) -> GradCam:
        """Grad-CAM for a class index or name (default: the predicted class)."""
        if isinstance(class_index, str):
            if class_index not in self.classes:
                raise ModelError(
                    f"unknown class '{class_index}': the model's classes are {', '.join(self.classes)}"
                )
            class_index = self.classes.index(class_index)
        x = self._input(image, flip, shift)
        with self._lock:
            return grad_cam(self.model, x, class_index=class_index, layer=layer)

    def kernels(self, layer: str | None = None) -> Kernels:
        """A convolution's kernels (default: the first layer's)."""
        return conv_kernels(self.model, layer)

    @property
    def _device(self) -> torch.device:
        reference = next(self.model.parameters(), None)
        return reference.device if reference is not None else torch.device("cpu")
