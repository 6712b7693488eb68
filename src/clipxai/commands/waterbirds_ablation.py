"""Verb ``waterbirds-ablation``: Waterbirds worst-group accuracy before and after mean-ablating selected heads.

Inputs: the decomposition shards of the evaluated split (test) and of the reference split whose means replace the
ablated heads (val), the two-class zero-shot classifier, and the selection of ``clipxai select-heads``. The place of
each image is looked up by its stored id in ``metadata.csv`` (and its stored label checked against the file).
Writes one CSV row per condition (clipxai.protocols.waterbirds) and a JSON with the finding in one sentence.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv, write_json
from clipxai.commands import _args

NAME = "waterbirds-ablation"
HELP = "Waterbirds per-group and worst-group zero-shot accuracy before/after mean-ablating selected heads"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="Waterbirds root (metadata.csv)")
    parser.add_argument("--split", default="test", help="evaluated split (default test)")
    _args.add_checked(parser, "--decomposition", nargs="+", action="extend", required=True,
                      help="shards of the evaluated split", check=_args.npz_file_or_dir)
    _args.add_checked(parser, "--reference", nargs="+", action="extend", required=True,
                      help="shards of the split the means come from", check=_args.npz_file_or_dir)
    parser.add_argument("--classifier", required=True, help="two-class zero-shot weights .npy")
    parser.add_argument("--selection", required=True, help="select-heads CSV")
    parser.add_argument("--layers", type=int, default=4, help="K: the explained last layers (the original's "
                        "setting mean-ablates every head before them)")
    parser.add_argument("--controls", type=int, default=20, help="random-head control draws (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    _args.add_output(parser, "--out", required=True, help="output CSV, one row per condition (a .json finding beside)")


def run(args: argparse.Namespace) -> int:
    from clipxai.artifacts.classifier import load_classifier
    from clipxai.protocols import waterbirds
    from clipxai.protocols.datasets import open_images
    from clipxai.protocols.selection import selected_pairs

    data = open_images("waterbirds", args.data, args.split)
    test = waterbirds.Split.load(args.decomposition)
    reference = waterbirds.Split.load(args.reference)
    row_of = data.index_of()
    ids = test.ids
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise InputError(Path(args.data) / "metadata.csv", f"{args.split} split",
                         f"every image id of the decomposition, {missing[0]!r} is not in it")
    rows = np.array([row_of[i] for i in ids])
    if not np.array_equal(data.labels[rows], test.labels):
        raise InputError(args.decomposition[0], "labels", "the y of metadata.csv for every stored image id")
    if len(set(ids)) != len(data):
        log.warning("the decomposition covers %d of the %d %s images", len(set(ids)), len(data), args.split)
    try:
        selection = pd.read_csv(args.selection, keep_default_na=False)
        chosen = selected_pairs(selection)
        candidates = list(zip(selection["layer"].astype(int), selection["head"].astype(int)))
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(args.selection, "layer/head/selected", f"a select-heads CSV ({err})") from None
    results = waterbirds.evaluate(test, reference, load_classifier(args.classifier), data.places[rows], chosen,
                                  candidates, args.seed, args.controls, args.layers)
    names = waterbirds.group_names(data.classnames, data.place_names)
    frame = pd.DataFrame(results)
    write_csv(args.out, frame)
    sentence = waterbirds.finding(results, controls_requested=args.controls > 0)
    write_json(Path(args.out).with_suffix(".json"), {
        "finding": sentence, "groups": {f"y{y}_p{p}": name for (y, p), name in names.items()},
        "class_names": list(data.classnames), "place_names": list(data.place_names),
        "n_test": len(ids), "split": args.split, "selected_heads": [f"L{l}.H{h}" for l, h in chosen]})
    log.info("%s", sentence)
    return 0
