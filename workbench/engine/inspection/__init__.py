"""What a trained network learned, for one image at a time: feature maps, kernels, Grad-CAM.

Read in this order: `feature_maps` (the module tree and each layer's output, via forward hooks), `filters`
(the kernels as pictures), `gradcam` (where the evidence for a class lies), `overlay` (results as
pictures), `inspector` (one checkpoint loaded for the app's inspector views). No Qt anywhere.
"""

from __future__ import annotations

from workbench.engine.inspection.feature_maps import (
    ChannelInfo,
    FeatureMaps,
    LayerNode,
    capture_outputs,
    conv_feature_maps,
    conv_layer_names,
    feature_maps,
    layer_tree,
)
from workbench.engine.inspection.filters import Kernels, conv_kernels
from workbench.engine.inspection.gradcam import GradCam, default_cam_layer, grad_cam
from workbench.engine.inspection.inspector import Inspector
from workbench.engine.inspection.overlay import COLORMAPS, colorize, heatmap_overlay, save_png, tile_grid

__all__ = [
    "COLORMAPS",
    "ChannelInfo",
    "FeatureMaps",
    "GradCam",
    "Inspector",
    "Kernels",
    "LayerNode",
    "capture_outputs",
    "colorize",
    "conv_feature_maps",
    "conv_kernels",
    "conv_layer_names",
    "default_cam_layer",
    "feature_maps",
    "grad_cam",
    "heatmap_overlay",
    "layer_tree",
    "save_png",
    "tile_grid",
]
