"""Verb ``figure-grounding``: qualitative grounding grid (image, phrase, relevance map, mask), as in CLIP-grounding.

Writes a PNG and a PDF, plus the JSON sidecar (title, caption, rule, command, inputs; clipxai.viz.provenance) the
report shows beside the figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from clipxai.errors import InputError  # noqa: E402
from clipxai.viz.provenance import publish_figure  # noqa: E402
from clipxai.commands import _args  # noqa: E402

NAME = "figure-grounding"
HELP = "qualitative grid: image, phrase, text->image relevance and ground-truth mask"


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    _args.add_checked(parser, "--maps", nargs="+", action="extend", required=True,
                      help="maps .npz of the methods to show (one column each)", check=_args.npz_file)
    parser.add_argument("--labels", nargs="+", action="extend", required=True, help="a column title per maps file")
    parser.add_argument("--n", type=int, default=6, help="number of entries (rows)")
    parser.add_argument("--rule", default="figure_grounding")
    _args.add_output(parser, "--out", required=True, help="output .png (a .pdf and a .json caption go beside it)")


def _load_t2i(path: str) -> dict[str, np.ndarray]:
    try:
        data = np.load(path)
        ids, directions, grids = data["entry_id"], data["direction"], data["image_grid"]
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, "entry_id/direction/image_grid", f"a maps file written by `clipxai ground` ({err})")
    keep = directions == "t2i"
    return dict(zip(ids[keep].tolist(), grids[keep]))


def run(args) -> int:
    from clipxai.attribution.base import upsample
    from clipxai.data import png
    from clipxai.data.transforms import pad_to_square

    if len(args.maps) != len(args.labels):
        raise InputError("--labels", "labels", f"one label per maps file ({len(args.maps)})")
    dataset = png.load(args.data, args.split)
    maps = [_load_t2i(p) for p in args.maps]
    shared = [e for e in dataset.entries if all(e.entry_id in m for m in maps)][: args.n]
    if not shared:
        raise InputError(args.maps[0], "entry_id", "entries present in every maps file")
    cols = 2 + len(maps)
    fig, axes = plt.subplots(len(shared), cols, figsize=(2.1 * cols, 2.2 * len(shared)), squeeze=False)
    for row, entry in enumerate(shared):
        with Image.open(entry.image_path) as im:
            image = pad_to_square(im.convert("RGB"))
        mask = pad_to_square(Image.fromarray(dataset.mask(entry).astype(np.uint8) * 255))
        side = image.size[0]
        axes[row, 0].imshow(image)
        # a phrase is data: shown as text, never parsed as mathtext
        axes[row, 0].set_title(f'"{entry.utterance}"', fontsize=8, parse_math=False)
        for col, (label, m) in enumerate(zip(args.labels, maps), start=1):
            grid = torch.from_numpy(m[entry.entry_id][None].astype(np.float32))
            heat = upsample(grid, (side, side))[0].numpy()
            axes[row, col].imshow(image)
            axes[row, col].imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if row == 0:
                axes[row, col].set_title(label, fontsize=9, parse_math=False)
        axes[row, -1].imshow(np.asarray(mask), cmap="gray", vmin=0, vmax=255)
        if row == 0:
            axes[row, -1].set_title("ground-truth mask", fontsize=9)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    publish_figure(
        fig, args.out, title="Text-to-image relevance, qualitative",
        caption=(f"First {len(shared)} entries of the {args.split} split; columns: the input with its phrase, "
                 f"the relevance map of each method (min-max normalised, jet), the phrase's mask."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=list(args.maps), section="grounding",
        examples=[e.entry_id for e in shared])
    return 0
