"""Verb ``table-waterbirds``: worst-group accuracy before / after mean-ablating place heads, every data set and
model, with the finding of each in one sentence (did the ablation raise worst-group accuracy, by how much).

Reads ``waterbirds-ablation`` CSVs (and the JSON beside each); writes a tidy CSV, Markdown, and the sidecar.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from clipxai.data._json import read_json
from clipxai.errors import InputError
from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-waterbirds"
HELP = "Waterbirds per-group / worst-group accuracy before and after head ablation, with the finding"
RULE = "table_waterbirds"
GROUP_COLUMNS = ["acc_y0_p0", "acc_y0_p1", "acc_y1_p0", "acc_y1_p1"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/waterbirds/ablation.csv files (a .json beside each)")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default=RULE)


def _finding(path: Path) -> dict:
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path, "the JSON written by `clipxai waterbirds-ablation`")
    for key in ("finding", "groups"):
        if key not in meta:
            raise InputError(meta_path, key, "a key of the waterbirds-ablation JSON")
    return meta


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.tables import keys_from_path, markdown, read_csv
    from clipxai.viz.provenance import write_sidecar

    frames, blocks, findings = [], ["# Waterbirds: worst-group accuracy and place heads\n"], []
    for path in map(Path, args.results):
        dataset, model = keys_from_path(path, "waterbirds")
        frame = read_csv(path, "waterbirds-ablation")
        missing = [c for c in ["condition", "means_from", "worst_group", *GROUP_COLUMNS] if c not in frame.columns]
        if missing:
            raise InputError(path, missing[0], "a column of the waterbirds-ablation CSV")
        meta = _finding(path)
        frames.append(frame.assign(dataset=dataset, model=model, finding=meta["finding"]))
        shown = frame[["condition", "means_from", "n_heads", "heads"]].copy()
        for column in GROUP_COLUMNS:
            shown[f"{meta['groups'][column[4:]]} (%)"] = 100 * frame[column].astype(float)
        shown["mean (%)"] = 100 * frame["mean"].astype(float)
        shown["worst group (%)"] = 100 * frame["worst_group"].astype(float)
        shown["change (points)"] = 100 * frame["worst_group_change"].astype(float)
        blocks.append(f"## {dataset} / {model}\n\n**Finding:** {meta['finding']}\n\n{markdown(shown, digits=1)}")
        findings.append(f"{dataset} / {model}: {meta['finding']}")
    table = pd.concat(frames, ignore_index=True)
    table = table[["dataset", "model", *[c for c in table.columns if c not in ("dataset", "model")]]]
    write_csv(args.out_csv, table)
    write_text(args.out_md, "\n".join(blocks))
    write_sidecar(
        args.out_csv, title="Waterbirds: worst-group zero-shot accuracy before and after ablating place heads",
        caption=("Binary zero-shot classification of the two bird classes on the test split, accuracy per "
                 "(bird, place) group and the worst group's. Heads are selected by a rule: their TextSpan texts "
                 "contain place / background words; they are mean-ablated with means from the validation split "
                 "(corrected) and, as in the original, from the test split itself (faithful); a control ablates as "
                 "many random heads of the same layers. " + " ".join(findings)),
        rule=args.rule, command="clipxai table-waterbirds", inputs=[str(p) for p in args.results],
        section="inside the image tower")
    log.info("%s", " | ".join(findings))
    return 0
