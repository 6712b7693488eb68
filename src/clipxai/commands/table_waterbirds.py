"""Verb ``table-waterbirds``: worst-group accuracy before / after mean-ablating place heads, every data set and
model, with the finding of each in one sentence (did the ablation raise worst-group accuracy, by how much).

Reads ``waterbirds-ablation`` CSVs (and the JSON beside each); writes a tidy CSV, Markdown, and the sidecar.
"""

from __future__ import annotations

import argparse
import logging

from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-waterbirds"
HELP = "Waterbirds per-group / worst-group accuracy before and after head ablation, with the finding"
RULE = "table_waterbirds"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/waterbirds/ablation.csv files (a .json beside each)")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default=RULE)


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.waterbirds import ablation_table
    from clipxai.viz.provenance import write_sidecar

    table, markdown, findings = ablation_table(args.results)
    write_csv(args.out_csv, table)
    write_text(args.out_md, markdown)
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
