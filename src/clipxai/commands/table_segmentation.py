"""``clipxai table-segmentation``: the dense-segmentation (VOC mIoU) tables from ``segment-voc`` outputs.

* ``--out-csv``: one row per data set x model x split x alignment x absent mode x metric: ``value`` (fraction) with
  its bootstrap 95% interval (``lo``, ``hi``). The row of the published protocol (faithful alignment, absent
  classes counted as 0) of a run named by ``--published-miou`` carries the id of the published number in column
  ``reported`` (report/reported.yaml ``published``), so the report puts the published value beside it. For the same
  runs a ``JI`` row carries ``--published-ji``'s id with no value: the replication reports a Jaccard index but its
  code does not compute it, so the protocol cannot be stated exactly and JI is shown as published only.
  ``n_images`` of ``n_split_images`` were scored; ``complete`` says all were (a run with ``max_images`` is partial,
  and the report computes no difference from the published number for it).
* ``--out-classes DATASET=PATH`` (one per data set): per-class IoU, one row per model x split x alignment x absent,
  one column per label class.
* ``--out-md``: all of it as Markdown, in percent.

Every CSV gets its JSON sidecar (``clipxai.viz.provenance``).
"""

from __future__ import annotations

import argparse
import logging

from clipxai.errors import InputError
from clipxai.io import write_csv, write_text
from clipxai.artifacts.tables import parse_ids, read_csvs
from clipxai.protocols.voc_dense import JI_NOTE, KEYS, class_table, markdown_section, summary_table
from clipxai.commands import _args

NAME = "table-segmentation"
HELP = "VOC dense-segmentation tables (mIoU with 95% CI per model, per-class IoU), tied to the published numbers"

log = logging.getLogger(__name__)

SECTION = "segmentation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summaries", nargs="+", action="extend", required=True, help="segment-voc summary CSVs")
    parser.add_argument("--per-class", nargs="+", action="extend", required=True, help="segment-voc per-class CSVs")
    _args.add_reported_argument(parser, "report/reported.yaml: the ids given must exist in it")
    parser.add_argument("--published-miou", action="append", default=[], metavar="DATASET:MODEL=ID",
                        help="the run that reproduces a published mIoU, and that number's id (repeatable)")
    parser.add_argument("--published-ji", action="append", default=[], metavar="DATASET:MODEL=ID",
                        help="a published JI for that run (shown, not reproduced)")
    _args.add_output(parser, "--out-csv", required=True, help="summary table")
    _args.add_output(parser, "--out-classes", kind="pairs", nargs="*", action="extend", default=[],
                     metavar="DATASET=PATH",
                        help="per-class table of each data set")
    _args.add_output(parser, "--out-md", required=True)
    parser.add_argument("--rule", default="table_segmentation", help="rule named in the sidecars")


def run(args: argparse.Namespace) -> int:
    from clipxai.viz.provenance import write_sidecar

    summary = read_csvs(args.summaries, KEYS + ["n_images", "n_split_images", "miou", "miou_lo", "miou_hi"],
                        "segment-voc")
    per_class = read_csvs(args.per_class, KEYS + ["class_index", "class_name", "iou"], "segment-voc")
    reported = _args.reported_file(args.reported)
    miou_ids = parse_ids(args.published_miou, "--published-miou", reported)
    ji_ids = parse_ids(args.published_ji, "--published-ji", reported)
    table = summary_table(summary, miou_ids, ji_ids)
    write_csv(args.out_csv, table)
    inputs = list(args.summaries) + list(args.per_class)
    write_sidecar(args.out_csv, title="Dense patch-text segmentation on VOC-format data (CLIPpy protocol)",
                  caption=("mIoU over the label classes with a bootstrap 95% interval over images. alignment: "
                           "faithful = label squashed to the model's input size while the image is centre-cropped "
                           "(the replication), corrected = label through the image's own resize and crop. absent: "
                           "zero = a class absent from prediction and label counts as IoU 0 (the replication), "
                           f"exclude = left out of the mean. JI: {JI_NOTE}. complete = all n_split_images images "
                           "of the split were scored (n_images)."),
                  rule=args.rule, command="clipxai table-segmentation", inputs=inputs, section=SECTION,
                  complete=bool(table["complete"].all()))
    parts = ["# Dense patch-text segmentation (CLIPpy protocol)\n\n", f"JI: {JI_NOTE}.\n"]
    shown = table.assign(value=100 * table["value"], lo=100 * table["lo"], hi=100 * table["hi"])
    for item in args.out_classes:
        dataset, sep, path = item.partition("=")
        if not sep:
            raise InputError("--out-classes", "value", f"DATASET=PATH, got {item!r}")
        classes = class_table(per_class, dataset)
        write_csv(path, classes)
        write_sidecar(path, title=f"Per-class IoU, dense segmentation on {dataset}",
                      caption=("IoU of each label class (fraction) over the whole split, per model, alignment "
                               "and absent-class rule (see the segmentation table)."),
                      rule=args.rule, command="clipxai table-segmentation", inputs=inputs, section=SECTION)
        parts.append(markdown_section(shown, classes, dataset))
    write_text(args.out_md, "".join(parts))
    log.info("segmentation table: %d rows over %d data sets", len(table), table["dataset"].nunique())
    return 0
