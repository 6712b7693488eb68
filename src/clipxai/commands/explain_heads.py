"""``clipxai explain-heads``: name the last layers' attention heads with texts (TextSpan or principal components)
and check how much of the model the named parts carry (zero-shot accuracy with the heads replaced)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clipxai.artifacts.tables import HEAD_TEXT_COLUMNS
from clipxai.commands._args import add_model_arguments
from clipxai.errors import InputError
from clipxai.io import write_csv, write_json
from clipxai.commands import _args
from clipxai.protocols.heads import ALGORITHMS

NAME = "explain-heads"
HELP = "describe attention heads by texts (TextSpan / principal components) and score their reconstructions"
COLUMNS = HEAD_TEXT_COLUMNS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_checked(parser, "--decomposition", nargs="+", action="extend", required=True, metavar="DIR_OR_NPZ",
                      help="decomposition shard directories or .npz files (joined in the order given)",
                      check=_args.npz_file_or_dir)
    parser.add_argument("--texts", required=True, help="text pool, one description per line")
    parser.add_argument("--text-embeddings", help=".npy [texts, D] embeddings of --texts (else computed with "
                        "--model)")
    add_model_arguments(parser, required=False)  # the model embeds texts / classes when no embeddings are given
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="textspan")
    parser.add_argument("--layers", type=int, default=4, help="explain the heads of the last K layers")
    parser.add_argument("--m", type=int, default=10, help="texts per head (textspan) or top/bottom texts per "
                        "component (principal)")
    parser.add_argument("--rank", type=int, default=80, help="textspan: singular vectors the texts are "
                        "projected onto")
    parser.add_argument("--mode", choices=("faithful", "corrected"), default="faithful",
                        help="principal: 99%% of the singular values (faithful) or of the variance (corrected)")
    parser.add_argument("--classifier", help=".npy [D, classes] zero-shot weights for the accuracy check")
    parser.add_argument("--classnames", help="'imagenet' (open_clip's names) or a file of class names, one per "
                        "line; with --model, builds the classifier from OpenAI's 80 templates")
    _args.add_checked(parser, "--reference", nargs="+", action="extend", metavar="DIR_OR_NPZ",
                      help="decompositions whose means are used for mean-ablation (default: the explained images "
                      "themselves, as the original)", check=_args.npz_file_or_dir)
    _args.add_output(parser, "--out", required=True, help="heads CSV")
    _args.add_output(parser, "--accuracy-out", help="JSON with reconstruction accuracies (default: --out with .json)")


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols import heads as protocol

    if args.m < 1 or args.rank < 1:
        raise InputError("--m/--rank", "value", "positive integers")
    data = protocol.load_decompositions(args.decomposition)
    attn = data["attn"]
    texts = protocol.read_lines(args.texts, "texts")
    loaded = None
    if args.model:
        from clipxai.models.registry import load_model

        loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    text_embeddings = protocol.text_embeddings_of(texts, args.text_embeddings, loaded)
    heads = protocol.explain(args.algorithm, attn, text_embeddings, texts, args.layers, args.m, args.rank, args.mode)
    write_csv(args.out, pd.DataFrame([row for head in heads for row in head.rows()], columns=COLUMNS))

    summary = protocol.summary_of(heads, texts, int(len(attn)), args.algorithm, args.layers, args.m, args.rank,
                                  args.mode, bool(args.reference))
    classifier = protocol.classifier_of(args.classifier, args.classnames, loaded, attn.shape[-1])
    labels = data.get("labels")
    if classifier is not None and labels is not None and (np.asarray(labels) >= 0).all():
        summary.update(protocol.reconstruction_accuracy(data, heads, classifier, args.layers, args.reference))
    else:
        log.warning("no accuracy check: needs a classifier (--classifier or --classnames with --model) and labels "
                    "for every image in the decomposition")
    write_json(args.accuracy_out or Path(args.out).with_suffix(".json"), summary)
    log.info("explained %d heads with %s: %s", len(heads), args.algorithm,
             {k: v for k, v in summary.items() if k.endswith("accuracy")})
    return 0
