"""Verb ``score-grounding``: score grounding maps on a PNG-format data set (docs/protocols.md C), faithful and corrected.

The protocol (the scores, and which entries it leaves out and why) is :mod:`clipxai.protocols.grounding_scores`.
Outputs (byte-identical for identical inputs): a per-entry CSV (entry_id, direction, mode, macro_iou, fg_iou,
excluded_reason) and a summary CSV per (direction, mode) with percentile-bootstrap intervals over entries and the
split's n_dataset_entries (fewer in scope with ``--max-entries``: a partial run).

One run scores one method (``--maps`` of its shards, ``--out``, ``--summary``) or several: ``--method A B`` and every
``--maps``, ``--out`` and ``--summary`` given as ``A=PATH`` / ``B=PATH``. The data set is read once and each entry's
mask prepared once for all of them; each method's tables are those a run of it alone writes (the same bootstrap
seed and keys), and none is written unless every method was scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.metrics import grounding
from clipxai.protocols.grounding_scores import score_dataset
from clipxai.commands import _args

NAME = "score-grounding"
HELP = "score grounding maps (text->image and image->text IoU) in faithful and corrected mode"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    _args.add_grounding_data_arguments(parser, model=False)
    _args.add_labelled_maps(parser, method_help="score several methods in one run: their labels; then every --maps, "
                            "--out and --summary is LABEL=PATH",
                            maps_help="maps .npz files (all shards) of the method, or LABEL=PATH of each --method")
    parser.add_argument("--modes", nargs="+", action=_args.ExtendDefault, choices=grounding.MODES,
                        default=list(grounding.MODES))
    parser.add_argument("--max-entries", type=int, default=0,
                        help="only the first N entries are in scope, as given to `ground` (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (the same for every method)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (per-entry tensors are small: more threads only add overhead)")
    _args.add_checked(parser, "--out", nargs="+", action="extend", required=True,
                      help="per-entry CSV (LABEL=PATH of each --method)", check=_args.labelled_output_file)
    _args.add_checked(parser, "--summary", nargs="+", action="extend", required=True,
                      help="summary CSV (LABEL=PATH of each --method)", check=_args.labelled_output_file)


@dataclass
class Job:
    """One method to score: its maps files and where its tables go."""

    label: str
    maps: list[str]
    out: str
    summary: str


def jobs_of(args) -> list[Job]:
    """The methods of this run, from ``--method`` and the LABEL=PATH values (or one unnamed method)."""
    if args.method is None:
        if len(args.out) != 1 or len(args.summary) != 1:
            raise InputError("--out/--summary", "count", "one file each (several methods need --method LABEL ... "
                             "and LABEL=PATH values)")
        return [Job("", list(args.maps), args.out[0], args.summary[0])]
    grouped = _args.group_by_label(args, inputs=("maps",), outputs=("out", "summary"))
    return [Job(label, paths["maps"], paths["out"][0], paths["summary"][0]) for label, paths in grouped.items()]


def run(args) -> int:
    from clipxai.data import png

    import torch

    torch.set_num_threads(max(1, args.threads))
    if args.max_entries < 0:
        raise InputError("--max-entries", "max-entries", f"N >= 0, got {args.max_entries}")
    jobs = jobs_of(args)
    for job in jobs:  # LABEL=PATH values: the checks before the verb saw the pairs, these are the paths
        for path in job.maps:
            _args.npz_file(path, "--maps")
        _args.output_file(job.out, "--out")
        _args.output_file(job.summary, "--summary")
    dataset = png.load(args.data, args.split)
    tables = score_dataset(dataset, {job.label: job.maps for job in jobs}, args.modes, args.max_entries, args.seed,
                           args.bootstrap, args.level)
    for job in jobs:
        frame = tables[job.label][0]
        for (direction, mode, reason), count in frame[frame["excluded_reason"] != ""].groupby(
                ["direction", "mode", "excluded_reason"]).size().items():
            log.info("%s%s %s: %d excluded (%s)", f"{job.label}: " if job.label else "", direction, mode, count,
                     reason)
    for job in jobs:  # nothing is written unless every method was scored
        frame, summary = tables[job.label]
        write_csv(job.out, frame)
        write_csv(job.summary, summary)
        log.info("wrote %s (%d rows) and %s", job.out, len(frame), job.summary)
    return 0
