"""Verb ``faithfulness``: deletion, insertion and negative-perturbation curves of grounding maps, per method.

Reads the maps `clipxai ground` wrote for a (data set, model, method), rebuilds each explained pair and perturbs it
in order of the map's relevance: image patches for text->image (replaced by a baseline image), caption tokens for
image->text (masked to padding). Writes one row per (entry, direction, curve) with the similarity per step and the
area under the curve (clipxai.protocols.faithfulness).

One run curves one method (``--maps`` of its shards, one ``--out``) or several: ``--method A B`` and every
``--maps`` and ``--out`` given as ``A=PATH`` / ``B=PATH``. The model and the data set are loaded once; each
method's CSV is the one a run of it alone writes (the curves draw nothing at random), and none is written until
every method's curves are done.
"""

from __future__ import annotations

import logging

from clipxai.commands import _args
from clipxai.errors import InputError

NAME = "faithfulness"
HELP = "perturbation curves (deletion, insertion, negative) of one or more methods' grounding maps, both towers"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    _args.add_grounding_data_arguments(parser)
    _args.add_labelled_maps(parser, method_help="curve several methods in one run: their labels; then every --maps "
                            "and --out is LABEL=PATH",
                            maps_help="the method's maps .npz, every shard (LABEL=PATH of each --method)")
    parser.add_argument("--steps", type=int, default=10, help="perturbation steps (10 = 10%% of the parts each)")
    parser.add_argument("--baseline", default="mean", choices=("mean", "blur"),
                        help="what a removed image patch shows: the image's mean colour or a blur of the image")
    parser.add_argument("--max-entries", type=int, default=0, help="only the first N entries (0 = all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _args.add_checked(parser, "--out", nargs="+", action="extend", required=True,
                      help="per-entry CSV (LABEL=PATH of each --method)", check=_args.labelled_output_file)


def jobs_of(args) -> list[tuple[str, list[str], str]]:
    """(label, maps files, output CSV) of every method of this run, from ``--method`` and the LABEL=PATH values
    (or one unnamed method), checked before the model or data is read."""
    if args.method is None:
        if len(args.out) != 1:
            raise InputError("--out", "count", f"one file (several methods need --method LABEL ... and LABEL=PATH "
                             f"values), got {len(args.out)}")
        return [("", list(args.maps), args.out[0])]
    grouped = _args.group_by_label(args, inputs=("maps",), outputs=("out",))
    return [(label, paths["maps"], paths["out"][0]) for label, paths in grouped.items()]


def run(args) -> int:
    import torch

    from clipxai.data import png
    from clipxai.io import write_csv
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import resolve_device
    from clipxai.protocols import faithfulness as protocol

    if args.steps < 1:
        raise InputError("--steps", "steps", f"an integer >= 1, got {args.steps}")
    jobs = jobs_of(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # --device cuda on a machine without one is refused before any work
    dataset = png.load(args.data, args.split)
    # every method's maps are read and matched to the data set before the model is loaded or a curve is run
    every_row = [protocol.read_maps(maps) for _, maps, _ in jobs]
    selected = [protocol.select_rows(dataset, rows, args.max_entries) for rows in every_row]
    lm = load_model(args.model, args.pretrained, args.checkpoint, device)
    results = []
    for (label, _, _), maps in zip(jobs, selected):
        log.info("%s%d map rows, %d steps, baseline %s", f"method {label}: " if label else "", len(maps),
                 args.steps, args.baseline)
        results.append(protocol.curve_rows(lm, dataset, maps, steps=args.steps, baseline=args.baseline,
                                           batch_size=args.batch_size))
    # every method's curves are done: only now is anything written, each file atomically
    for (label, _, out), rows, maps in zip(jobs, results, every_row):
        rows = protocol.with_dataset_entries(rows, maps)
        write_csv(out, rows)
        log.info("wrote %s (%d rows)", out, len(rows))
    return 0
