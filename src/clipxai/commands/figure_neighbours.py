"""Verb ``figure-neighbours``: query images and their nearest neighbours in one attention head's output space
(clipxai.protocols.neighbours), the head named (``--head L.H``) or chosen from the TextSpan table (``auto``).
Writes PNG + PDF + the sidecar.
"""

from __future__ import annotations

import argparse
import logging

from clipxai.errors import InputError
from clipxai.commands import _args
from clipxai.data.kinds import formats_serving

NAME = "figure-neighbours"
HELP = "figure: query images and their nearest neighbours in one head's (or its components') subspace"
RULE = "figure_neighbours"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_checked(parser, "--decomposition", nargs="+", action="extend", required=True,
                      help="decomposition shards of the images", check=_args.npz_file_or_dir)
    parser.add_argument("--heads", required=True, help="TextSpan heads CSV of the same images (names the head)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--format", required=True, choices=formats_serving("heads-explain"),
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


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.datasets import open_images
    from clipxai.protocols.neighbours import head_description, head_neighbours
    from clipxai.protocols.tables import read_csv
    from clipxai.viz.neighbours import neighbours_figure
    from clipxai.viz.provenance import publish_figure

    if args.queries < 1 or args.k < 1 or args.components < 0:
        raise InputError("--queries/--k/--components", "value", "positive counts (components >= 0)")
    heads = read_csv(args.heads, "explain-heads")
    found = head_neighbours(args.decomposition, heads, args.head, args.components, args.queries, args.k, args.seed)
    layer, head, ids, labels = found.layer, found.head, found.ids, found.labels
    data = open_images(args.format, args.data, args.split, args.devkit)
    row_of = data.index_of()
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise InputError(args.data, "ids", f"the images of the decomposition, {missing[0]!r} is not one")

    def name_of(row: int) -> str:
        label = int(labels[row])
        return data.classnames[label] if 0 <= label < len(data.classnames) else ""

    described = head_description(heads, layer, head)
    space = f"top {args.components} principal directions" if args.components else "whole output space"
    fig = neighbours_figure(found.queries, found.neighbours, found.similarity, lambda row: data.image(row_of[ids[row]]),
                            name_of, f"{args.title + ': ' if args.title else ''}head L{layer}.H{head} ({described})")
    png = publish_figure(
        fig, args.out, title=f"Nearest neighbours in head L{layer}.H{head}'s subspace",
        caption=(f"Each row: a query image (red frame) and the {found.neighbours.shape[1]} images whose contribution "
                 f"from head L{layer}.H{head} is most similar (cosine of centred contributions, {space}; the number "
                 f"above each image). TextSpan describes this head as: {described}. Head chosen "
                 f"{'by name' if args.head != 'auto' else 'as the one whose texts explain the most variance'}; "
                 f"queries drawn with seed {args.seed}."),
        rule=args.rule, command="clipxai figure-neighbours", inputs=[*args.decomposition, args.heads],
        section="inside the image tower", head=f"L{layer}.H{head}")
    log.info("head L%d.H%d, %d queries -> %s", layer, head, len(found.queries), png)
    return 0
