"""``clipxai explain-heads``: name the last layers' attention heads with texts (TextSpan or principal components)
and check how much of the model the named parts carry (zero-shot accuracy with the heads replaced)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clipxai.artifacts.tables import HEAD_TEXT_COLUMNS
from clipxai.commands._args import add_model_arguments
from clipxai.errors import InputError
from clipxai.io import write_csv, write_json
from clipxai.commands import _args

NAME = "explain-heads"
HELP = "describe attention heads by texts (TextSpan / principal components) and score their reconstructions"
ALGORITHMS = ("textspan", "principal")
COLUMNS = HEAD_TEXT_COLUMNS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _args.add_checked(parser, "--decomposition", nargs="+", action="extend", required=True, metavar="DIR_OR_NPZ",
                      help="decomposition shard directories or .npz files (joined in the order given)",
                      check=_args.npz_file_or_dir)
    parser.add_argument("--texts", required=True, help="text pool, one description per line")
    parser.add_argument("--text-embeddings", help=".npy [texts, D] embeddings of --texts (else computed with "
                        "--model)")
    add_model_arguments(parser, required=False)  # the model embeds texts / classes when no embeddings are given
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="textspan")
    parser.add_argument("--layers", type=int, default=4, help="explain the heads of the last K layers")
    parser.add_argument("--m", type=int, default=10, help="texts per head (textspan) or top/bottom texts per "
                        "component (principal)")
    parser.add_argument("--rank", type=int, default=80, help="textspan: singular vectors the texts are "
                        "projected onto")
    parser.add_argument("--mode", choices=("faithful", "corrected"), default="faithful",
                        help="principal: 99%% of the singular values (faithful) or of the variance (corrected)")
    parser.add_argument("--classifier", help=".npy [D, classes] zero-shot weights for the accuracy check")
    parser.add_argument("--classnames", help="'imagenet' (open_clip's names) or a file of class names, one per "
                        "line; with --model, builds the classifier from OpenAI's 80 templates")
    _args.add_checked(parser, "--reference", nargs="+", action="extend", metavar="DIR_OR_NPZ",
                      help="decompositions whose means are used for mean-ablation (default: the explained images "
                      "themselves, as the original)", check=_args.npz_file_or_dir)
    _args.add_output(parser, "--out", required=True, help="heads CSV")
    _args.add_output(parser, "--accuracy-out", help="JSON with reconstruction accuracies (default: --out with .json)")


def _read_lines(path: str, what: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "(file)", f"a readable UTF-8 text file of {what} ({err.__class__.__name__})") from None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise InputError(path, "(lines)", f"at least one line of {what}")
    return lines


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(path, "(file)", f"a .npy array of {what} ({err.__class__.__name__})") from None
    if array.ndim != 2:
        raise InputError(path, "shape", f"a 2-D array of {what}, got {array.shape}")
    return array.astype(np.float32)


def _load_decompositions(paths: list[str]) -> dict:
    from clipxai.models.decompose import concatenate, load_decomposition

    return concatenate([load_decomposition(path) for path in paths])


def run(args: argparse.Namespace) -> int:
    from clipxai.heads import ablation, principal, textspan

    if args.m < 1 or args.rank < 1:
        raise InputError("--m/--rank", "value", "positive integers")
    data = _load_decompositions(args.decomposition)
    attn, mlp = data["attn"], data["mlp"]
    texts = _read_lines(args.texts, "texts")
    loaded = None
    if args.model:
        from clipxai.models.registry import load_model

        loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    if args.text_embeddings:
        text_embeddings = _load_npy(args.text_embeddings, "text embeddings")
    elif loaded is not None:
        from clipxai.models.zeroshot import text_embeddings as embed

        text_embeddings = embed(loaded.model, loaded.tokenizer, texts).cpu().numpy()
    else:
        raise InputError("--text-embeddings", "(missing)", "a .npy of text embeddings, or --model to compute them")

    if args.algorithm == "textspan":
        heads = textspan.explain_heads(attn, text_embeddings, texts, args.layers, args.m, args.rank)
    else:
        heads = principal.explain_heads(attn, text_embeddings, texts, args.layers, args.m, args.mode)
    rows = [row for head in heads for row in head.rows()]
    write_csv(args.out, pd.DataFrame(rows, columns=COLUMNS))

    summary = {"algorithm": args.algorithm, "layers": args.layers, "m": args.m, "n_images": int(len(attn)),
               "n_texts": len(texts), "unique_texts": len(_reconstructing_texts(heads, texts)),
               "baseline_accuracy": None, "mean_ablated_accuracy": None, "reconstructed_accuracy": None,
               "means_from": "reference" if args.reference else "same images"}
    if args.algorithm == "textspan":
        summary["rank"] = args.rank
    else:
        summary["mode"] = args.mode
        summary["mean_components_kept"] = float(np.mean([head.rank for head in heads]))
    classifier = _classifier(args, loaded, attn.shape[-1])
    labels = data.get("labels")
    if classifier is not None and labels is not None and (np.asarray(labels) >= 0).all():
        means = None
        if args.reference:
            reference = _load_decompositions(args.reference)
            means = ablation.component_means(reference["attn"], reference["mlp"])
        reconstructions = {(head.layer, head.head): head.reconstruction for head in heads}
        summary.update(ablation.replaced_accuracy(attn, mlp, classifier, np.asarray(labels), reconstructions,
                                                  args.layers, means))
    else:
        log.warning("no accuracy check: needs a classifier (--classifier or --classnames with --model) and labels "
                    "for every image in the decomposition")
    write_json(args.accuracy_out or Path(args.out).with_suffix(".json"), summary)
    log.info("explained %d heads with %s: %s", len(heads), args.algorithm,
             {k: v for k, v in summary.items() if k.endswith("accuracy")})
    return 0


def _reconstructing_texts(heads, texts: list[str]) -> set[str]:
    """The texts the reconstructions are built from: TextSpan's chosen texts, or each component's top text."""
    if heads and hasattr(heads[0], "top"):
        return {texts[index] for head in heads for index in head.top[:, 0]}
    return {text for head in heads for text in head.texts}


def _classifier(args: argparse.Namespace, loaded, dim: int) -> np.ndarray | None:
    if args.classifier:
        weights = _load_npy(args.classifier, "zero-shot weights [D, classes]")
    elif args.classnames and loaded is not None:
        from clipxai.models import zeroshot

        names = zeroshot.imagenet_classnames() if args.classnames == "imagenet" else \
            _read_lines(args.classnames, "class names")
        weights = zeroshot.classifier(loaded.model, loaded.tokenizer, names, zeroshot.openai_templates()).cpu().numpy()
    else:
        return None
    if weights.shape[0] != dim:
        raise InputError(args.classifier or args.classnames, "shape", f"[{dim}, classes] (the decomposition's D), "
                         f"got {weights.shape}")
    return weights
