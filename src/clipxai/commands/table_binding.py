"""Verb ``table-binding``: text->image grounding on the shapes world, split by whether the phrase's colour alone
picks out its object.

A model that grounds "a blue star" by colour finds the right object when the star is the only blue object, and
cannot when a blue square shares the image. Each entry of the per-entry grounding scores is put in one subset:
``single object`` (the image has one object), ``colour unique`` (the only object of its colour among several) or
``colour shared`` (another object has its colour). The table gives each subset's mean foreground and macro IoU with
bootstrap 95% CIs, per (data set, model, method): the gap between the last two is the binding gap. Shapes world
only: the subsets come from its category names ("<colour> <shape>").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.viz.provenance import write_sidecar
from clipxai.commands import _args

NAME = "table-binding"
HELP = "shapes-world grounding split by whether the phrase's colour alone identifies its object"
RULE = "table_grounding_binding"
SUBSETS = ("single object", "colour unique", "colour shared")
COLUMNS = ["dataset", "model", "method", "subset", "n_entries", "fg_mean", "fg_lo", "fg_hi", "macro_mean",
           "macro_lo", "macro_hi"]


def add_arguments(parser) -> None:
    parser.add_argument("--data", nargs="+", action="extend", required=True, metavar="DATASET=ROOT",
                        help="each shapes data set's name and folder (COCO panoptic + PNG layout)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--entries", nargs="+", action="extend", required=True,
                        help="per-entry scores, results/<dataset>/<model>/scores/grounding/<method>.csv")
    parser.add_argument("--mode", default="faithful", help="protocol mode of the scores to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    _args.add_output(parser, "--out", required=True, help="results/tables/<name>.csv (a .json sidecar goes beside it)")
    parser.add_argument("--rule", default=RULE)


def colour_subsets(entries) -> dict[str, str]:
    """entry_id -> one of SUBSETS, from the shapes world's category names ("<colour> <shape>").

    The objects of an image are the thing segments its narrative's phrases name.
    """
    objects: dict[tuple, list[str]] = {}
    for entry in entries:
        key = (entry.image_id, entry.narrative_index)
        objects.setdefault(key, [])
        objects[key] += [c for c, thing in zip(entry.categories, entry.isthing) if thing]
    subsets = {}
    for entry in entries:
        things = [c for c, thing in zip(entry.categories, entry.isthing) if thing]
        if len(things) != 1 or len(things[0].split(" ")) != 2:
            continue  # not one "<colour> <shape>" object: not a shapes-world phrase
        image_objects = sorted(set(objects[(entry.image_id, entry.narrative_index)]))
        colours = Counter(category.split(" ")[0] for category in image_objects)
        colour = things[0].split(" ")[0]
        subsets[entry.entry_id] = ("single object" if len(image_objects) == 1
                                   else "colour unique" if colours[colour] == 1 else "colour shared")
    return subsets


def _parse_roots(pairs: list[str]) -> dict[str, str]:
    roots = {}
    for pair in pairs:
        name, sep, root = pair.partition("=")
        if not sep or not name or not root:
            raise InputError("--data", pair, "DATASET=ROOT")
        roots[name] = root
    return roots


def read_entries(path: Path, mode: str) -> tuple[str, str, str, pd.DataFrame]:
    """(dataset, model, method, its scored text->image rows in ``mode``) of one per-entry scores file."""
    if len(path.parts) < 5 or path.parts[-2] != "grounding":
        raise InputError(path, "(path)", "results/<dataset>/<model>/scores/grounding/<method>.csv")
    try:
        frame = pd.read_csv(path, dtype={"entry_id": str}, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"per-entry grounding scores ({err})") from None
    for column in ("entry_id", "direction", "mode", "fg_iou", "macro_iou", "excluded_reason"):
        if column not in frame.columns:
            raise InputError(path, column, "a column of the per-entry scores (clipxai score-grounding)")
    scored = frame["excluded_reason"].fillna("") == ""
    rows = frame[(frame["direction"] == "t2i") & (frame["mode"] == mode) & scored]
    return path.parts[-5], path.parts[-4], path.stem, rows


def run(args) -> int:
    from clipxai.data import png
    from clipxai.metrics import bootstrap

    roots = _parse_roots(args.data)
    subsets_of: dict[str, dict[str, str]] = {}
    records = []
    for raw in args.entries:
        dataset, model, method, rows = read_entries(Path(raw), args.mode)
        if dataset not in roots:
            raise InputError(raw, "(path)", f"scores of a data set given with --data ({', '.join(roots)})")
        if dataset not in subsets_of:
            subsets_of[dataset] = colour_subsets(png.load(roots[dataset], args.split).entries)
        subset = rows["entry_id"].map(subsets_of[dataset])
        for name in SUBSETS:
            block = rows[subset == name]
            record = {"dataset": dataset, "model": model, "method": method, "subset": name, "n_entries": len(block)}
            for metric in ("fg", "macro"):
                mean, lo, hi = bootstrap.ci(block[f"{metric}_iou"].to_numpy(), args.seed, n_resamples=args.bootstrap,
                                            keys=("binding", dataset, model, method, name, metric))
                record.update({f"{metric}_mean": mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
            records.append(record)
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    write_csv(args.out, table)
    write_sidecar(
        args.out, title="Grounding on the shapes world: does the colour alone pick out the object?",
        caption=(f"Text->image foreground and macro IoU ({args.mode}), mean with bootstrap 95% CI, split by whether "
                 "the phrase's object is alone in its image, the only one of its colour, or shares its colour with "
                 "another object. A model that grounds by colour and not by shape scores well on the first two "
                 "and poorly on the third: the difference is the colour-shape binding gap."),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in args.entries], section="grounding")
    return 0
