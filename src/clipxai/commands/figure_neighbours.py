"""Verb ``figure-neighbours``: query images and their nearest neighbours in one attention head's output space
(TextSpan paper: a head that writes "colour" or "texture" retrieves images alike in that property only).

The head is named (``--head L.H``) or chosen from the TextSpan table (``auto``: the head whose texts explain the
largest share of its variance). Similarity is cosine between the head's centred contributions, in the whole space
or in its top ``--components`` principal directions (clipxai.heads.principal.nearest_neighbours). Queries are drawn
with a seeded generator, one per class where there are enough classes. Writes PNG + PDF + the sidecar.
"""

from __future__ import annotations

import argparse
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from clipxai.errors import InputError  # noqa: E402
from clipxai.commands import _args  # noqa: E402

NAME = "figure-neighbours"
HELP = "figure: query images and their nearest neighbours in one head's (or its components') subspace"
RULE = "figure_neighbours"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_checked(parser, "--decomposition", nargs="+", action="extend", required=True,
                      help="decomposition shards of the images", check=_args.npz_file_or_dir)
    parser.add_argument("--heads", required=True, help="TextSpan heads CSV of the same images (names the head)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--format", required=True, choices=("imagenet", "imagenet-seg", "waterbirds"),
                        help="on-disk format of the data set (real or the shapes world's)")
    parser.add_argument("--devkit", help="ImageNet: the ILSVRC2012_devkit_t12 folder if not beside --data")
    parser.add_argument("--split", default="val")
    parser.add_argument("--head", default="auto", help="'auto' or L.H, e.g. 3.1")
    parser.add_argument("--components", type=int, default=0, help="compare in the head's top-r principal "
                        "directions (0: its whole output space)")
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--k", type=int, default=5, help="neighbours per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--title", default="", help="prefix of the figure title (e.g. data set / model)")
    parser.add_argument("--rule", default=RULE)
    _args.add_output(parser, "--out", required=True, help="output .png (.pdf and .json sidecar beside it)")


def choose_head(heads: pd.DataFrame, wanted: str) -> tuple[int, int]:
    """(layer, head): the one asked for, or the head whose texts explain the largest share of its variance."""
    if wanted != "auto":
        try:
            layer, head = (int(x) for x in wanted.split("."))
        except ValueError:
            raise InputError("--head", "value", f"'auto' or LAYER.HEAD, got {wanted!r}") from None
        return layer, head
    shares = heads.groupby(["layer", "head"], sort=True)["variance_explained"].sum()
    layer, head = shares.idxmax()  # first maximum in (layer, head) order: deterministic
    return int(layer), int(head)


def pick_queries(labels: np.ndarray, n: int, seed: int) -> list[int]:
    """``n`` rows drawn with a seeded generator, from distinct classes while there are unused ones."""
    from clipxai.seeding import rng

    order = rng(seed, "neighbour-queries").permutation(len(labels))
    chosen, seen = [], set()
    for index in order:  # first pass: one per class
        if len(chosen) < n and int(labels[index]) not in seen:
            chosen.append(int(index))
            seen.add(int(labels[index]))
    for index in order:  # then fill up
        if len(chosen) < n and int(index) not in chosen:
            chosen.append(int(index))
    return chosen


def run(args: argparse.Namespace) -> int:
    from clipxai.heads.principal import nearest_neighbours
    from clipxai.heads.textspan import right_singular
    from clipxai.models.decompose import load_decomposition
    from clipxai.protocols.datasets import open_images
    from clipxai.protocols.tables import read_csv
    from clipxai.viz.provenance import save_figure, write_sidecar

    if args.queries < 1 or args.k < 1 or args.components < 0:
        raise InputError("--queries/--k/--components", "value", "positive counts (components >= 0)")
    heads = read_csv(args.heads, "explain-heads")
    layer, head = choose_head(heads, args.head)
    parts = [load_decomposition(path) for path in args.decomposition]
    n_layers, n_heads = parts[0]["attn"].shape[1:3]
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise InputError("--head", "value", f"a head of the model ({n_layers} layers x {n_heads} heads), got "
                         f"{layer}.{head}")
    outputs = np.concatenate([np.asarray(p["attn"][:, layer, head], dtype=np.float64) for p in parts])
    ids = [str(i) for p in parts for i in np.asarray(p["ids"]).tolist()]
    labels = np.concatenate([np.asarray(p["labels"]) for p in parts])
    components = None
    if args.components:
        components = right_singular(outputs - outputs.mean(0))[1][:args.components]
    queries = pick_queries(labels, min(args.queries, len(ids)), args.seed)
    neighbours, similarity = nearest_neighbours(outputs, queries, args.k, components)

    data = open_images(args.format, args.data, args.split, args.devkit)
    row_of = data.index_of()
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise InputError(args.data, "ids", f"the images of the decomposition, {missing[0]!r} is not one")

    def name_of(row: int) -> str:
        label = int(labels[row])
        return data.classnames[label] if 0 <= label < len(data.classnames) else ""

    cols = 1 + neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), cols, figsize=(1.7 * cols, 1.9 * len(queries)), squeeze=False)
    for r, query in enumerate(queries):
        panels = [(query, "query\n" + name_of(query))] + [
            (int(n), f"{s:.2f}\n{name_of(int(n))}") for n, s in zip(neighbours[r], similarity[r])]
        for c, (row, caption) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(data.image(row_of[ids[row]]))
            ax.set_title(caption, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(2)
    texts = heads[(heads["layer"] == layer) & (heads["head"] == head)].sort_values("rank")["text"].astype(str)
    described = "; ".join(texts.head(3)) or "(no texts)"
    space = f"top {args.components} principal directions" if args.components else "whole output space"
    fig.suptitle(f"{args.title + ': ' if args.title else ''}head L{layer}.H{head} ({described})", fontsize=9)
    fig.tight_layout()
    png, _ = save_figure(fig, args.out)
    plt.close(fig)
    write_sidecar(
        png, title=f"Nearest neighbours in head L{layer}.H{head}'s subspace",
        caption=(f"Each row: a query image (red frame) and the {neighbours.shape[1]} images whose contribution from "
                 f"head L{layer}.H{head} is most similar (cosine of centred contributions, {space}; the number above "
                 f"each image). TextSpan describes this head as: {described}. Head chosen "
                 f"{'by name' if args.head != 'auto' else 'as the one whose texts explain the most variance'}; "
                 f"queries drawn with seed {args.seed}."),
        rule=args.rule, command="clipxai figure-neighbours", inputs=[*args.decomposition, args.heads],
        section="inside the image tower", head=f"L{layer}.H{head}")
    log.info("head L%d.H%d, %d queries -> %s", layer, head, len(queries), png)
    return 0
