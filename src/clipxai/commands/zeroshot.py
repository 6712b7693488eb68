"""``clipxai zeroshot``: zero-shot classification of an ImageNet-format validation set, any model.

Classifier: per class the mean over templates of the normalised text embeddings of its prompts, renormalised
(:func:`clipxai.models.zeroshot.classifier`); image embeddings normalised; top-1 / top-5 of their dot products.
Real ImageNet: open_clip's 1,000 class names and OpenAI's 80 templates (``--classnames imagenet --templates openai``,
the defaults; CLIPpy's evaluation used the same). The embedded shapes set: its ``classnames.txt`` ("red circle") with
the prompt "a {}" (``--classnames dataset --template "a {}"``).

``--verify`` checks the folder first (:func:`clipxai.data.imagenet.verify`: every expected image and class present)
and refuses to score an incomplete copy: the user's ImageNet is never downloaded, only checked. The protocol is
:mod:`clipxai.protocols.zeroshot`; this verb reads the command line, loads the model and writes the results.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from clipxai.io import save_npz, write_csv
from clipxai.commands import _args
from clipxai.commands._zeroshot_model import add_zeroshot_model_arguments, load_for_args

NAME = "zeroshot"
HELP = "zero-shot top-1/top-5 accuracy of a model on an ImageNet-format validation folder"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="validation folder: class folders, or flat "
                        "ILSVRC2012_val_*.JPEG with the devkit")
    parser.add_argument("--devkit", default=None, help="ILSVRC2012_devkit_t12 folder (default: looked for beside "
                        "--data)")
    parser.add_argument("--classnames", choices=("imagenet", "dataset"), default="imagenet",
                        help="imagenet: open_clip's 1,000 ImageNet names (default); dataset: the folder's "
                        "classnames.txt / devkit words")
    parser.add_argument("--templates", choices=("openai", "given"), default="openai",
                        help="openai: the 80 OpenAI ImageNet templates (default); given: the --template list")
    parser.add_argument("--template", action="append", default=[], help='a prompt template with {} for the class '
                        'name (repeatable; with --templates given), e.g. "a {}"')
    parser.add_argument("--max-templates", type=_args.non_negative_int, default=0, metavar="N",
                        help="only the first N templates (0 = all); fewer is a partial run (complete = false)")
    parser.add_argument("--verify", action="store_true", help="check the folder is complete before scoring")
    parser.add_argument("--expect-images", type=int, default=50_000,
                        help="with --verify: the images the copy holds (default 50000); fewer than the set's "
                        "--split-images is a partial run")
    parser.add_argument("--split-images", type=int, default=None,
                        help="images of the complete split (default: 50000 with --classnames imagenet, else "
                        "--expect-images with --verify, else the images found)")
    parser.add_argument("--expect-classes", type=int, default=1000, help="with --verify (default 1000)")
    parser.add_argument("--no-require-wnids", action="store_true",
                        help="with --verify: class folders need not be named by WordNet ids (synthetic sets)")
    parser.add_argument("--max-images", type=int, default=0, help="score only the first N images (0 = all)")
    add_zeroshot_model_arguments(parser, bootstrap_help="bootstrap resamples for the 95%% intervals (default 1000)")
    _args.add_output(parser, "--out", required=True, help="summary CSV (one row)")
    _args.add_output(parser, "--predictions", default=None, help="per-image .npz: image_path, label, top5, class_names")


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols import zeroshot

    split = zeroshot.open_split(
        args.data, args.devkit, classnames=args.classnames, templates=args.templates, template=args.template,
        max_templates=args.max_templates, max_images=args.max_images, verify=args.verify,
        expected_images=args.expect_images, expected_classes=args.expect_classes,
        require_wnids=not args.no_require_wnids, n_split_images=args.split_images)
    model = load_for_args(args)
    result = zeroshot.evaluate(model, split, dataset_name=args.dataset_label or Path(args.data).name,
                               model_name=args.model_label or args.model, batch_size=args.batch_size,
                               workers=args.workers, progress=not args.no_progress, seed=args.seed,
                               n_resamples=args.bootstrap)
    row = result.row
    write_csv(args.out, pd.DataFrame([row]))
    if args.predictions:
        save_npz(args.predictions, **result.predictions())
    log.info("zero-shot %s on %s: top-1 %.4f, top-5 %.4f (%d images, %d classes)", row["model"], row["dataset"],
             row["top1"], row["top5"], row["n_images"], row["n_classes"])
    return 0
