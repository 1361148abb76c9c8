"""`workbench feature-maps`, `workbench filters` and `workbench gradcam`: the inspector's views as PNG files."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli import arguments
from workbench.cli.output import Output

COLORMAPS = ("jet", "viridis", "inferno", "gray")  # = workbench.engine.inspection.overlay.COLORMAPS
MIN_PICTURE_SIDE = 224  # small training images (28 px) are enlarged so the overlay can be seen


def register(commands: argparse._SubParsersAction) -> None:
    maps = commands.add_parser("feature-maps", help="a layer's feature maps for one image, as a PNG grid")
    _add_model_and_image(maps)
    maps.add_argument("--layer", help="module name (default: the first convolution); see --list")
    maps.add_argument("--list", action="store_true", help="list the layers with their output shapes")
    maps.add_argument("--out", metavar="PNG", type=arguments.output_file, help="write the grid of channels (sorted by mean activation)")
    maps.add_argument("--colormap", default="viridis", choices=COLORMAPS)
    maps.add_argument("--json", action="store_true")
    maps.set_defaults(handler=run_feature_maps)

    filters = commands.add_parser("filters", help="a convolution's kernels as a PNG grid")
    filters.add_argument("model", metavar="RUN_OR_CHECKPOINT")
    filters.add_argument("--layer", help="a convolution's name (default: the first, shown in colour)")
    filters.add_argument(
        "--kernels", type=arguments.whole_number(1, 1024), default=16, help="deeper layers: kernels shown (one row each)"
    )
    filters.add_argument("--out", metavar="PNG", type=arguments.output_file, required=True)
    filters.add_argument("--json", action="store_true")
    filters.set_defaults(handler=run_filters)

    cam = commands.add_parser("gradcam", help="Grad-CAM heatmap over an image, as a PNG")
    _add_model_and_image(cam)
    cam.add_argument("--class", dest="class_name", help="class to explain (default: the predicted one)")
    cam.add_argument("--layer", help="layer to read (default: the last feature maps before pooling)")
    cam.add_argument("--opacity", type=arguments.number(0, 1), default=0.5, help="0 = image only, 1 = heatmap only")
    cam.add_argument("--colormap", default="jet", choices=COLORMAPS)
    cam.add_argument("--out", metavar="PNG", type=arguments.output_file, required=True)
    cam.add_argument("--json", action="store_true")
    cam.set_defaults(handler=run_gradcam)


def _add_model_and_image(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="RUN_OR_CHECKPOINT", help="run id (or 'last'), run folder or checkpoint file"
    )
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("--device", default="cpu", type=arguments.device)


def run_feature_maps(args: argparse.Namespace) -> int:
    from workbench.engine.inspection import Inspector, save_png, tile_grid

    out = Output(args.json)
    inspector = Inspector.load(args.model, device=args.device)
    if args.list:
        tree = inspector.layer_tree()
        for node in tree.walk():
            if node is tree:
                continue
            depth = node.name.count(".")
            shape = "×".join(map(str, node.output_shape)) if node.output_shape else "-"
            out.say(
                f"{'  ' * depth}{node.name.rsplit('.', 1)[-1]:<{max(1, 28 - 2 * depth)}} {node.type:<20} {shape}"
            )
        out.result(tree.to_dict())
        return 0
    layer = args.layer or inspector.kernels().layer
    maps = inspector.feature_maps(args.image, layer)
    order = maps.order("mean")
    out.say(
        f"{layer} ({maps.type}): {maps.num_channels} channels of {'×'.join(map(str, maps.activation.shape[1:]))}"
    )
    for index in order[:5]:
        info = maps.channel(index)
        out.say(
            f"  channel {index:>4}: mean {info.mean:.4g}  min {info.min:.4g}  max {info.max:.4g}  "
            f"zero {100 * info.fraction_zero:.0f}%"
        )
    if args.out:
        tiles = maps.normalized()[order].unsqueeze(1)
        save_png(
            tile_grid(tiles, tile_size=max(32, maps.activation.shape[-1]), colormap=args.colormap), args.out
        )
        out.say(f"grid of {maps.num_channels} channels (sorted by mean activation) written to {args.out}")
    out.result(
        {
            "layer": layer,
            "type": maps.type,
            "output_shape": maps.output_shape,
            "order": order,
            "channels": [_channel_dict(maps, i) for i in range(maps.num_channels)],
            "out": args.out,
        }
    )
    return 0


def _channel_dict(maps: Any, index: int) -> dict[str, Any]:
    info = maps.channel(index)
    return {
        "index": index,
        "min": info.min,
        "max": info.max,
        "mean": info.mean,
        "fraction_zero": info.fraction_zero,
    }


def run_filters(args: argparse.Namespace) -> int:
    from workbench.engine.inspection import Inspector, save_png, tile_grid

    out = Output(args.json)
    kernels = Inspector.load(args.model).kernels(args.layer)
    if args.layer is None:  # the first layer reads the image: one tile per kernel, in colour for RGB
        tiles, columns = kernels.color_tiles(), None
    else:  # one row per kernel, one grey tile per input channel
        shown = kernels.channel_tiles()[: max(1, args.kernels)]
        tiles, columns = shown.flatten(0, 1).unsqueeze(1), kernels.in_channels
    save_png(tile_grid(tiles, columns=columns, tile_size=max(24, kernels.weight.shape[-1] * 8)), args.out)
    out.say(
        f"{kernels.layer}: {kernels.num_kernels} kernels of {kernels.in_channels}×"
        f"{'×'.join(map(str, kernels.weight.shape[-2:]))} written to {args.out}"
    )
    out.result(
        {
            "layer": kernels.layer,
            "kernels": kernels.num_kernels,
            "in_channels": kernels.in_channels,
            "kernel_size": list(kernels.weight.shape[-2:]),
            "out": args.out,
        }
    )
    return 0


def run_gradcam(args: argparse.Namespace) -> int:
    from PIL import Image

    from workbench.engine.inspection import Inspector, heatmap_overlay, save_png
    from workbench.engine.inspection.overlay import as_rgb_array

    out = Output(args.json)
    inspector = Inspector.load(args.model, device=args.device)
    pixels = inspector.load_image(args.image)
    cam = inspector.grad_cam(pixels, args.class_name, args.layer)
    picture = Image.fromarray(as_rgb_array(pixels))
    if min(picture.size) < MIN_PICTURE_SIDE:
        scale = MIN_PICTURE_SIDE / min(picture.size)
        picture = picture.resize(
            (round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR
        )
    save_png(heatmap_overlay(picture, cam.heatmap, opacity=args.opacity, colormap=args.colormap), args.out)
    name = inspector.classes[cam.class_index]
    out.say(
        f"Grad-CAM for '{name}' (probability {100 * cam.probabilities[cam.class_index].item():.1f}%) "
        f"at layer {cam.layer} ({'×'.join(map(str, cam.coarse.shape))}) written to {args.out}"
    )
    out.result(
        {
            "class": name,
            "class_index": cam.class_index,
            "probability": cam.probabilities[cam.class_index].item(),
            "predicted": inspector.classes[int(cam.probabilities.argmax())],
            "layer": cam.layer,
            "out": args.out,
        }
    )
    return 0
