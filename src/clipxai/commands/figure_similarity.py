"""Verb ``figure-similarity``: images x targets of a similarity study, each cell the saliency of that similarity."""

from __future__ import annotations

from clipxai.viz.provenance import save_figure, write_sidecar
from clipxai.commands import _args

NAME = "figure-similarity"
HELP = "figure: a few images of a similarity study against every target, saliency overlaid, similarity printed"
RULE = "figure_similarity"


def add_arguments(parser) -> None:
    parser.add_argument("--result", required=True, help="results/similarity/<study>/<model>.npz")
    parser.add_argument("--n", type=int, default=4, help="images (rows)")
    parser.add_argument("--label", default="", help="shown in the title (study / model)")
    _args.add_output(parser, "--out", required=True, help="results/figures/<name>.png (.pdf and .json beside it)")
    parser.add_argument("--rule", default=RULE)


def _overlay(ax, image, grid):
    import numpy as np
    import torch

    from clipxai.attribution import upsample

    ax.imshow(image)
    if np.all(np.isfinite(grid)):
        heat = upsample(torch.as_tensor(grid[None]), image.shape[:2])[0].numpy()
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from clipxai.protocols.similarity import read_result
    from clipxai.data.images import read_rgb

    arrays = read_result(args.result)
    n = min(args.n, len(arrays["ids"]))
    columns = [(str(d), j) for d in arrays["domains"] for j in range(len(arrays[f"{d}__targets"]))]
    fig, axes = plt.subplots(n, len(columns) + 1, figsize=(1.25 * (len(columns) + 1), 1.45 * n + 0.6),
                             squeeze=False)
    for i in range(n):
        image = read_rgb(str(arrays["image_paths"][i]))
        axes[i][0].imshow(image)
        axes[i][0].set_xticks([])
        axes[i][0].set_yticks([])
        folder, _, name = str(arrays["ids"][i]).rpartition("/")
        axes[i][0].set_title(f"{folder[-20:]}\n{name.rsplit('.', 1)[0][-16:]}", fontsize=6)
        for c, (domain, j) in enumerate(columns, start=1):
            ax = axes[i][c]
            sims = arrays[f"{domain}__sims"][i]
            _overlay(ax, image, arrays[f"{domain}__saliency"][i, j])
            target = str(arrays[f"{domain}__targets"][j])
            best = int(np.argmax(sims)) == j
            annotated = int(arrays[f"{domain}__labels"][i]) == j
            ax.set_title(f"{domain}: {target}\n{sims[j]:.3f}{' *' if best else ''}", fontsize=6,
                         color="darkgreen" if annotated else "black")
            if f"{domain}__target_images" in arrays:
                ax.set_xlabel("vs another image", fontsize=5)
    fig.suptitle(f"{args.label}: saliency of each similarity ({arrays['method']}); * = most similar in the domain, "
                 "green = the annotated target", fontsize=8)
    fig.tight_layout()
    save_figure(fig, args.out)
    plt.close(fig)
    write_sidecar(args.out, title=f"Similarity with saliency: {args.label}",
                  caption=("Rows: sampled images; columns: every target of every domain (words; for the shapes "
                           "world also one image of the same colour and one of the same shape). Each cell overlays "
                           "the saliency map explaining that image's similarity to the target (for an image target, "
                           "the target image's embedding is the objective) and prints the cosine similarity."),
                  rule=args.rule, command=f"clipxai {NAME}", inputs=[args.result], section="similarity")
    return 0
