"""Verb ``table-grounding``: the CLIP-grounding table (rows T2I / I2T, one column per method), from score results.

Reads the score-grounding summaries (one per data set x model x method) and their per-entry CSVs, and writes

- a tidy CSV, one row per data set x model x method x direction x mode (mean, bootstrap 95% CI, entries scored and
  excluded, the split's entries ``n_dataset_entries`` and ``complete``: every entry of the split was in scope; a
  partial run, ``max_entries``, is not the published setting);
- the entries each protocol excluded, counted by reason (``<name>_exclusions.csv``), with what the reason means;
- a Markdown rendering in the paper's layout, one block per (data set, model, mode, metric)
  (these three built by :mod:`clipxai.artifacts.grounding_table`);
- the sidecar the report reads (clipxai.viz.provenance), with ``layout: grounding`` so the report draws the table in
  the paper's layout beside the published values.
"""

from __future__ import annotations

from pathlib import Path

from clipxai.artifacts.grounding_table import SAME_METHOD_NOTE, exclusion_counts, grounding_table, to_markdown
from clipxai.io import write_csv, write_text
from clipxai.viz.provenance import write_sidecar
from clipxai.commands import _args

NAME = "table-grounding"
HELP = "the grounding table (T2I/I2T x methods) from score-grounding summaries and per-entry scores"
RULE = "table_grounding"


def add_arguments(parser) -> None:
    parser.add_argument("--summaries", nargs="+", action="extend", required=True,
                        help="results/<dataset>/<model>/scores/grounding/<method>_summary.csv files")
    parser.add_argument("--entries", nargs="*", action="extend", default=[],
                        help="the matching per-entry CSVs (<method>.csv), for the exclusion counts")
    _args.add_output(parser, "--out-csv", required=True)
    _args.add_output(parser, "--out-md", required=True)
    _args.add_output(parser, "--out-exclusions", default=None,
                     help="exclusions by reason (default: <out-csv stem>_exclusions.csv)")
    parser.add_argument("--rule", default=RULE)


def run(args) -> int:
    summaries = [Path(p) for p in args.summaries]
    entries = [Path(p) for p in args.entries]
    table = grounding_table(summaries)
    exclusions = exclusion_counts(entries)
    out_csv = Path(args.out_csv)
    out_exclusions = Path(args.out_exclusions or out_csv.with_name(f"{out_csv.stem}_exclusions.csv"))
    write_csv(out_csv, table)
    write_csv(out_exclusions, exclusions)
    write_text(args.out_md, to_markdown(table))
    write_sidecar(
        out_csv, title="Cross-modal grounding on Panoptic Narrative Grounding-format data",
        caption=("Mean two-class macro IoU (the paper's metric) and foreground IoU over entries, with bootstrap 95% "
                 "confidence intervals, per method, direction and protocol (faithful = the original code's "
                 "choices; corrected = fixed mask resize, token spans from character offsets, no silent skips). "
                 "complete = every entry of the split was in scope (n_entries + n_excluded of n_dataset_entries). "
                 + SAME_METHOD_NOTE),
        complete=bool(table["complete"].all()),
        rule=args.rule, command=f"clipxai {NAME}", inputs=[str(p) for p in summaries + entries],
        section="grounding", layout="grounding", files={"exclusions": str(out_exclusions), "markdown": args.out_md})
    return 0
