"""Verb ``table-heads``: the head-explanation tables, from ``explain-heads`` outputs of every data set, model and
algorithm (TextSpan; principal components, faithful and corrected rank).

Two tables (clipxai.protocols.heads_tables), each a tidy CSV, a Markdown rendering and the report's sidecar: the
texts that describe each head of the last K layers, and zero-shot accuracy with those heads replaced by their text
reconstructions.
"""

from __future__ import annotations

import argparse
import logging

from clipxai.io import write_csv, write_text
from clipxai.commands import _args

NAME = "table-heads"
HELP = "tables of head texts (TextSpan / principal components) and reconstruction accuracy"
RULE = "table_heads"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heads", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/heads/<algorithm>.csv files (the .json beside each)")
    _args.add_output(parser, "--out-texts-csv", required=True)
    _args.add_output(parser, "--out-texts-md", required=True)
    _args.add_output(parser, "--out-accuracy-csv", required=True)
    _args.add_output(parser, "--out-accuracy-md", required=True)
    parser.add_argument("--rule", default=RULE)


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.heads_tables import accuracy_markdown, head_tables, texts_markdown
    from clipxai.viz.provenance import write_sidecar

    text_table, accuracy_table, principal_modes = head_tables(args.heads)
    write_csv(args.out_texts_csv, text_table)
    write_csv(args.out_accuracy_csv, accuracy_table)
    write_text(args.out_texts_md, texts_markdown(text_table, principal_modes))
    write_text(args.out_accuracy_md, accuracy_markdown(accuracy_table))

    inputs = [str(p) for p in args.heads]
    write_sidecar(
        args.out_texts_csv, title="Attention heads of the last layers described by texts",
        caption=("TextSpan (Gandelsman et al.): per head, texts chosen greedily from a pool to explain the most "
                 "variance of the head's outputs over the images, with the share each explains. Principal variant "
                 "(seed 004): per kept principal component of a head, the pool's texts with the largest (top) and "
                 "smallest (bottom) coordinate; rank kept at 99% of the singular values (faithful) or of the "
                 "variance (corrected); a component's share is its singular value over the sum of the kept ones "
                 "(faithful, as the original's relative strength) or its variance over the head's total variance "
                 "(corrected). The Markdown rendering shows the two modes side by side."),
        rule=args.rule, command="clipxai table-heads", inputs=inputs, section="inside the image tower")
    write_sidecar(
        args.out_accuracy_csv, title="How much of the model the head texts carry",
        caption=("Zero-shot accuracy on the explained images: unchanged; with every head before the last K layers "
                 "mean-ablated; and with, in addition, each head of the last K layers replaced by its reconstruction "
                 "from its texts. Close to the mean-ablated accuracy means the texts capture what those heads "
                 "contribute to the classification."),
        rule=args.rule, command="clipxai table-heads", inputs=inputs, section="inside the image tower")
    log.info("wrote %d head-text rows and %d accuracy rows", len(text_table), len(accuracy_table))
    return 0
