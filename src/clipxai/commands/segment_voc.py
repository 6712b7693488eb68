"""``clipxai segment-voc``: dense patch-text segmentation of a PASCAL VOC-format split, scored by mIoU.

The protocol is CLIPpy's (docs/protocols.md E, :mod:`clipxai.segmentation.dense`): 60 prompt classes ("a photo of a/an
{c}") for real VOC (``--classes voc-extended``) or the data set's own label classes (``--classes dataset``, the
shapes world), argmax over patch-class similarities upsampled to the label grid, extra classes -> background.

One confusion matrix per label alignment (faithful: the replication's squashed label; corrected: the label through
the image's own resize + centre crop), each scored two ways: ``absent=zero`` (faithful: a class absent from both
prediction and label scores IoU 0 and counts in the mean) and ``absent=exclude`` (corrected: left out).

Outputs: per-class IoU CSV, summary CSV (one row per alignment x absent; ``n_images`` scored of the split's
``n_split_images``: fewer with ``--max-images``, or a copy smaller than the real split given by ``--split-images``,
is a partial run), the confusion matrices (.npz) and, with
``--figure``, a figure of the first examples (model input, label, prediction) with a JSON caption beside it
(:mod:`clipxai.protocols.voc_dense`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clipxai.commands._zeroshot_model import add_zeroshot_model_arguments, load_for_args
from clipxai.io import save_npz, write_csv
from clipxai.commands import _args

NAME = "segment-voc"
HELP = "dense patch-text segmentation (CLIPpy protocol) of a VOC-format split: per-class IoU and mIoU"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipxai.segmentation.dense import ALIGNMENTS, CLIPPY_PROMPT

    parser.add_argument("--data", required=True, help="VOC root (holding VOCdevkit/VOC2012, or that folder)")
    parser.add_argument("--split", default="val", help="val (default; 1,449 images in VOC 2012) or train (the "
                        "split the replication's notebook scored)")
    parser.add_argument("--classes", choices=("voc-extended", "dataset"), default="voc-extended",
                        help="prompt classes: voc-extended = the replication's 60 (21 VOC + 39 context -> "
                        "background; default); dataset = the data set's own label classes")
    parser.add_argument("--prompt", default=CLIPPY_PROMPT, help='"clippy" ("a photo of a/an {c}", default) or a '
                        'template with {} (e.g. "a {}")')
    parser.add_argument("--alignments", nargs="+", action=_args.ExtendDefault, default=list(ALIGNMENTS),
                        choices=ALIGNMENTS)
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (0 = all)")
    parser.add_argument("--split-images", type=_args.non_negative_int, default=0, metavar="N",
                        help="images of the complete split (n_split_images; a copy with fewer is partial), e.g. "
                        "VOC2012 val's 1449 (default 0: the copy's own id list)")
    add_zeroshot_model_arguments(parser, bootstrap_help="bootstrap resamples for the mIoU's 95%% interval "
                                 "(default 1000)")
    _args.add_output(parser, "--out", required=True, help="per-class IoU CSV")
    _args.add_output(parser, "--summary", required=True, help="summary CSV (mIoU per alignment and absent mode)")
    _args.add_output(parser, "--confusion", default=None, help="confusion matrices .npz")
    _args.add_output(parser, "--figure", default=None, help="example figure .png (a .pdf and the .json sidecar are "
                        "written beside it)")
    parser.add_argument("--examples", type=int, default=4, help="images in the figure (default 4)")
    parser.add_argument("--rule", default="segment_voc", help="workflow rule named in the figure caption")


def run(args: argparse.Namespace) -> int:
    from clipxai.data import voc
    from clipxai.protocols import voc_dense
    from clipxai.segmentation.dense import evaluate

    dataset = voc.load(args.data, args.split)
    classes = voc_dense.prompt_classes(args.classes, dataset)
    model = load_for_args(args)
    n_examples = args.examples if args.figure else 0
    result = evaluate(model, dataset, classes, prompt=args.prompt, alignments=args.alignments,
                      batch_size=args.batch_size, workers=args.workers, max_images=args.max_images or None,
                      n_examples=n_examples, progress=not args.no_progress)
    labels = {"dataset": args.dataset_label or Path(args.data).name, "model": args.model_label or args.model,
              "split": args.split}
    per_class, summary = voc_dense.result_tables(result, dataset, labels, args.seed, args.bootstrap,
                                                 args.split_images)
    write_csv(args.out, per_class)
    write_csv(args.summary, summary)
    if args.confusion:
        save_npz(args.confusion, **voc_dense.confusion_arrays(result, dataset))
    if args.figure:
        voc_dense.write_figure(args.figure, result, dataset, summary, labels, args.rule,
                               inputs=[str(args.data)] + [p for p in (args.model, args.checkpoint, args.weights_stamp)
                                                          if p and Path(p).exists()])
    for row in summary.itertuples():
        log.info("%s %s: %s alignment, absent=%s: mIoU %.4f over %d images", row.model, row.dataset, row.alignment,
                 row.absent, row.miou, row.n_images)
    return 0
