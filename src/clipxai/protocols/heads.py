"""``clipxai explain-heads``'s protocol: name the last layers' attention heads with texts (TextSpan or principal
components, clipxai.heads) and check how much of the model the named parts carry -- zero-shot accuracy with the
heads replaced by their text reconstructions (clipxai.heads.ablation)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from clipxai.artifacts.classifier import load_matrix
from clipxai.errors import InputError

ALGORITHMS = ("textspan", "principal")


def read_lines(path: str, what: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped; InputError when unreadable or empty."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "(file)", f"a readable UTF-8 text file of {what} ({err.__class__.__name__})") from None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise InputError(path, "(lines)", f"at least one line of {what}")
    return lines


def load_npy(path: str, what: str) -> np.ndarray:
    """A 2-D ``.npy`` of ``what`` as float32."""
    return load_matrix(path, f"a .npy array of {what}", f"a 2-D array of {what}")


def load_decompositions(paths: Sequence[str]) -> dict:
    """The decompositions at ``paths`` joined in order (clipxai.models.decompose)."""
    from clipxai.models.decompose import concatenate, load_decomposition

    return concatenate([load_decomposition(path) for path in paths])


def text_embeddings_of(texts: list[str], path: str | None, loaded) -> np.ndarray:
    """[texts, D]: read from ``path``, else computed with the loaded model."""
    if path:
        return load_npy(path, "text embeddings")
    if loaded is not None:
        from clipxai.models.zeroshot import text_embeddings as embed

        return embed(loaded.model, loaded.tokenizer, texts).cpu().numpy()
    raise InputError("--text-embeddings", "(missing)", "a .npy of text embeddings, or --model to compute them")


def explain(algorithm: str, attn: np.ndarray, text_embeddings: np.ndarray, texts: list[str], layers: int, m: int,
            rank: int, mode: str) -> list:
    """Every head of the last ``layers`` layers described by texts (HeadTexts or HeadComponents)."""
    from clipxai.heads import principal, textspan

    if algorithm == "textspan":
        return textspan.explain_heads(attn, text_embeddings, texts, layers, m, rank)
    return principal.explain_heads(attn, text_embeddings, texts, layers, m, mode)


def reconstructing_texts(heads, texts: list[str]) -> set[str]:
    """The texts the reconstructions are built from: TextSpan's chosen texts, or each component's top text."""
    if heads and hasattr(heads[0], "top"):
        return {texts[index] for head in heads for index in head.top[:, 0]}
    return {text for head in heads for text in head.texts}


def summary_of(heads: list, texts: list[str], n_images: int, algorithm: str, layers: int, m: int, rank: int,
               mode: str, has_reference: bool) -> dict:
    """The run's summary JSON, accuracies not yet checked (None)."""
    summary = {"algorithm": algorithm, "layers": layers, "m": m, "n_images": n_images,
               "n_texts": len(texts), "unique_texts": len(reconstructing_texts(heads, texts)),
               "baseline_accuracy": None, "mean_ablated_accuracy": None, "reconstructed_accuracy": None,
               "means_from": "reference" if has_reference else "same images"}
    if algorithm == "textspan":
        summary["rank"] = rank
    else:
        summary["mode"] = mode
        summary["mean_components_kept"] = float(np.mean([head.rank for head in heads]))
    return summary


def classifier_of(classifier: str | None, classnames: str | None, loaded, dim: int) -> np.ndarray | None:
    """Zero-shot weights [D, classes]: read from ``classifier``, else built from ``classnames`` ('imagenet' or a
    file of names) with the loaded model and OpenAI's templates; None when neither can be had."""
    if classifier:
        weights = load_npy(classifier, "zero-shot weights [D, classes]")
    elif classnames and loaded is not None:
        from clipxai.models import zeroshot

        names = zeroshot.imagenet_classnames() if classnames == "imagenet" else \
            read_lines(classnames, "class names")
        weights = zeroshot.classifier(loaded.model, loaded.tokenizer, names, zeroshot.openai_templates()).cpu().numpy()
    else:
        return None
    if weights.shape[0] != dim:
        raise InputError(classifier or classnames, "shape", f"[{dim}, classes] (the decomposition's D), "
                         f"got {weights.shape}")
    return weights


def reconstruction_accuracy(data: dict, heads: list, classifier: np.ndarray, layers: int,
                            reference: Sequence[str] | None) -> dict:
    """Zero-shot accuracy unchanged, mean-ablated and with the heads replaced by their reconstructions; means over
    the ``reference`` decompositions (default: the explained images themselves, as the original)."""
    from clipxai.heads import ablation

    means = None
    if reference:
        decomposition = load_decompositions(reference)
        means = ablation.component_means(decomposition["attn"], decomposition["mlp"])
    reconstructions = {(head.layer, head.head): head.reconstruction for head in heads}
    return ablation.replaced_accuracy(data["attn"], data["mlp"], classifier, np.asarray(data["labels"]),
                                      reconstructions, layers, means)
