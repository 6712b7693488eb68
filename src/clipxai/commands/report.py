"""Verb ``report``: render the report folder (index.html + the figures and tables it shows) from result files only.

The work is :mod:`clipxai.report` (reported.py: the published numbers; layouts.py: how each table is drawn;
provenance.py: commit, versions, machine, checksums, benchmarks; render.py: the page). This verb reads the command
line and calls :func:`clipxai.report.render.write_report` once.
"""

from __future__ import annotations

import json
import logging

from clipxai.commands import _args
from clipxai.errors import InputError
from clipxai.report.render import write_report

NAME = "report"
HELP = "render the HTML report folder from the run's tables, figures and provenance"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--config-json", required=True, help="the config as run, as a JSON string")
    parser.add_argument("--reported", default=None,
                        help="the published numbers (default: the packaged clipxai/report/reported.yaml)")
    parser.add_argument("--tables", nargs="*", action="extend", default=[],
                        help="table CSVs (each with its .json sidecar)")
    parser.add_argument("--figures", nargs="*", action="extend", default=[],
                        help="figure PNGs (each with .json sidecar, .pdf)")
    parser.add_argument("--train-summaries", nargs="*", action="extend", default=[],
                        help="resources/models/<model>/train_summary.json")
    parser.add_argument("--inputs", nargs="*", action="extend", default=[],
                        help="input data and model files to checksum")
    parser.add_argument("--checksum-dirs", nargs="*", action="extend", default=[],
                        help="data and model folders: every file in them is checksummed into inputs.sha256")
    parser.add_argument("--benchmarks-dir", default=None, help="the run's benchmarks/ folder (per-job .tsv)")
    parser.add_argument("--template-dir", default=None,
                        help="a folder with index.html.j2 and style.css (default: the packaged templates)")
    _args.add_output(parser, "--out-dir", kind="dir", required=True, help="the report folder (results/report)")


def run(args) -> int:
    try:
        config = json.loads(args.config_json)
    except json.JSONDecodeError as err:
        raise InputError("--config-json", "(JSON)", f"the workflow config as JSON ({err})") from None
    path = write_report(config, args.out_dir, reported=args.reported, tables=args.tables, figures=args.figures,
                        train_summaries=args.train_summaries, inputs=args.inputs, checksum_dirs=args.checksum_dirs,
                        benchmarks_dir=args.benchmarks_dir, template_dir=args.template_dir)
    log.info("wrote %s", path)
    return 0
