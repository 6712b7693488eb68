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
``--figure``, a figure of the first examples (model input, label, prediction) with a JSON caption beside it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clipxai.commands._zeroshot_model import add_model_arguments, load_for_args
from clipxai.errors import InputError
from clipxai.io import save_npz, write_csv
from clipxai.commands import _args

NAME = "segment-voc"
HELP = "dense patch-text segmentation (CLIPpy protocol) of a VOC-format split: per-class IoU and mIoU"

log = logging.getLogger(__name__)

ABSENT_MODES = ("zero", "exclude")


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
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap over images (default 0)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the mIoU's 95%% "
                        "interval (default 1000)")
    add_model_arguments(parser)
    _args.add_output(parser, "--out", required=True, help="per-class IoU CSV")
    _args.add_output(parser, "--summary", required=True, help="summary CSV (mIoU per alignment and absent mode)")
    _args.add_output(parser, "--confusion", default=None, help="confusion matrices .npz")
    _args.add_output(parser, "--figure", default=None, help="example figure .png (a .pdf and the .json sidecar are "
                        "written beside it)")
    parser.add_argument("--examples", type=int, default=4, help="images in the figure (default 4)")
    parser.add_argument("--rule", default="segment_voc", help="workflow rule named in the figure caption")


def prompt_classes(choice: str, dataset) -> list[str]:
    from clipxai.segmentation.dense import N_VOC_CLASSES, VOC_EXTENDED_CLASSES

    if choice == "dataset":
        return list(dataset.class_names)
    if len(dataset.class_names) != N_VOC_CLASSES:
        raise InputError(dataset.root, "class_names", f"the {N_VOC_CLASSES} VOC classes for --classes voc-extended "
                         f"(this set has {len(dataset.class_names)}; use --classes dataset)")
    return list(VOC_EXTENDED_CLASSES)


def result_tables(result, dataset, labels: dict, seed: int = 0, n_resamples: int = 1000, split_images: int = 0
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-class rows, summary rows with the mIoU's bootstrap 95% interval) of a :class:`SegmentationResult`;
    ``n_split_images`` is ``split_images`` where given, else the copy's own list."""
    from clipxai.segmentation.dense import miou_interval

    per_class, summary = [], []
    for alignment, accumulator in result.accumulators.items():
        for absent in ABSENT_MODES:
            scored = accumulator.result(absent=absent)
            for index, name in enumerate(dataset.class_names):
                per_class.append({**labels, "alignment": alignment, "absent": absent, "class_index": index,
                                  "class_name": name, "iou": float(scored["per_class"][index]),
                                  "present": int(scored["present"][index])})
            lo, hi = miou_interval(result.per_image[alignment], absent, seed, n_resamples,
                                   keys=(labels["dataset"], labels["model"], labels["split"], alignment, absent))
            summary.append({**labels, "alignment": alignment, "absent": absent, "n_images": result.n_images,
                            "n_split_images": split_images or len(dataset),
                            "n_label_classes": len(dataset.class_names), "n_prompt_classes": len(result.prompts),
                            "n_classes_present": int(scored["present"].sum()),
                            "n_pixels": int(accumulator.confusion.sum()), "miou": scored["miou"], "miou_lo": lo,
                            "miou_hi": hi})
    return pd.DataFrame(per_class), pd.DataFrame(summary)


def draw_examples(path: str, result, class_names, title: str) -> None:
    """Rows of (model input, label per alignment, prediction), coloured with VOC's palette."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from clipxai.data.voc import palette

    colours = np.asarray(palette(), dtype=np.uint8).reshape(256, 3)
    examples = result.examples
    alignments = list(result.accumulators)
    columns = ["input"] + [f"label ({a})" for a in alignments] + ["prediction"]
    fig, axes = plt.subplots(len(examples), len(columns), figsize=(2.4 * len(columns), 2.4 * len(examples) + 0.6),
                             squeeze=False)
    shown: set[int] = set()
    for row, example in enumerate(examples):
        panels = [example.image] + [colours[example.label[a]] for a in alignments] + [colours[example.prediction]]
        for a in alignments:
            shown |= set(np.unique(example.label[a]).tolist())
        shown |= set(np.unique(example.prediction).tolist())
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
            if col == 0:
                ax.set_ylabel(example.image_id, fontsize=7)
    handles = [Patch(color=colours[i] / 255, label=class_names[i] if i < len(class_names) else "void")
               for i in sorted(shown)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    from clipxai.viz.provenance import save_figure

    save_figure(fig, path)  # .png and .pdf, without timestamps: same input, same bytes
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from clipxai.data import voc
    from clipxai.segmentation.dense import evaluate

    dataset = voc.load(args.data, args.split)
    classes = prompt_classes(args.classes, dataset)
    model = load_for_args(args)
    n_examples = args.examples if args.figure else 0
    result = evaluate(model, dataset, classes, prompt=args.prompt, alignments=args.alignments,
                      batch_size=args.batch_size, workers=args.workers, max_images=args.max_images or None,
                      n_examples=n_examples, progress=not args.no_progress)
    labels = {"dataset": args.dataset_label or Path(args.data).name, "model": args.model_label or args.model,
              "split": args.split}
    per_class, summary = result_tables(result, dataset, labels, args.seed, args.bootstrap, args.split_images)
    write_csv(args.out, per_class)
    write_csv(args.summary, summary)
    if args.confusion:
        image_ids = np.array(dataset.ids[:result.n_images])
        save_npz(args.confusion, class_names=np.array(dataset.class_names), prompts=np.array(result.prompts),
                 image_id=image_ids, **{f"confusion_{a}": acc.confusion for a, acc in result.accumulators.items()},
                 **{f"per_image_{a}": matrices for a, matrices in result.per_image.items()})
    if args.figure:
        title = f"{labels['model']} on {labels['dataset']} ({args.split}): dense patch-text segmentation"
        draw_examples(args.figure, result, dataset.class_names, title)
        miou = summary.set_index(["alignment", "absent"])["miou"]
        scores = "; ".join(f"{a} alignment mIoU {100 * miou[(a, 'zero')]:.1f}%" for a in result.accumulators)
        from clipxai.viz.provenance import write_sidecar

        write_sidecar(
            args.figure, title=title, section="segmentation", rule=args.rule, command="clipxai segment-voc",
            caption=(f"First {len(result.examples)} images of the {args.split} split: the model's input (after its "
                     "resize and centre crop), the label brought to that grid (faithful: squashed as in the CLIPpy "
                     "replication; corrected: the image's own resize and crop) and the prediction (argmax over "
                     f"{len(result.prompts)} class prompts, extra classes as background). Over {result.n_images} "
                     f"images: {scores} (absent classes count as 0)."),
            inputs=[str(args.data)] + [p for p in (args.model, args.checkpoint, args.weights_stamp)
                                       if p and Path(p).exists()])
    for row in summary.itertuples():
        log.info("%s %s: %s alignment, absent=%s: mIoU %.4f over %d images", row.model, row.dataset, row.alignment,
                 row.absent, row.miou, row.n_images)
    return 0
