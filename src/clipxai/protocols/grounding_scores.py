"""Scoring of grounding maps on a PNG-format data set (docs/protocols.md C), faithful and corrected: the protocol
`clipxai score-grounding` runs.

Text->image rows: the patch-grid map is upsampled (bilinear) to the model input size and min-max normalised, then
scored against the phrase mask padded to a square and resized (:func:`clipxai.metrics.grounding.prepare_mask`).
Image->text rows: the caption tokens' relevance is scored against the phrase's token labels
(:func:`clipxai.metrics.grounding.phrase_token_labels`). Both: Otsu threshold, two-class macro IoU and foreground IoU.

Every in-scope entry gets one row per scored direction and mode; an entry a protocol leaves out gets an
``excluded_reason`` and no score:

- ``no_map``: the maps hold no row for it (both modes).
- ``non_finite_map``: its map has NaN/inf where a score is needed (both modes).
- faithful, image->text only, as the original code: ``over_70_words`` (more than 70 space-separated words in the
  utterances joined by spaces), ``raised:context_length`` (more tokens than the context: the original's tokenizer
  raised), ``raised:empty_phrase`` / ``raised:token_not_found`` (the original's span lookup would raise).
- corrected: ``caption_exceeds_context``; ``char_span_missing``; ``span_not_on_token_boundary``; ``empty_phrase``;
  ``empty_mask_at_input_size`` (text->image: the phrase's mask has no pixel left after the resize).

Outputs (byte-identical for identical inputs): a per-entry CSV (entry_id, direction, mode, macro_iou, fg_iou,
excluded_reason) and a summary CSV (direction, mode, n_entries, n_excluded, macro_mean, macro_lo, macro_hi, fg_mean,
fg_lo, fg_hi, n_dataset_entries) with percentile-bootstrap intervals over entries. n_entries + n_excluded entries were
in scope of the n_dataset_entries the split has: fewer with ``--max-entries``, a partial run that the report does not
compare with the published numbers.

Each method's tables are those it gets scored alone (the same bootstrap seed and keys), however many methods one
pass over the entries scores (:func:`score_methods`: each entry's mask is read and prepared once for all of them).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from clipxai.artifacts.grounding_table import ENTRY_COLUMNS, SUMMARY_COLUMNS
from clipxai.artifacts.maps import MapRow, read_maps
from clipxai.errors import InputError
from clipxai.metrics import bootstrap, grounding
from clipxai.protocols.grounding_pairs import i2t_text_and_span

DIRECTIONS = ("t2i", "i2t")


def _has_image_map(row: MapRow) -> bool:
    return not np.all(np.isnan(row.image_grid))


def _has_text_map(row: MapRow) -> bool:
    return not np.all(np.isnan(row.text))


def _excluded(entry_id: str, direction: str, mode: str, reason: str) -> dict:
    return {"entry_id": entry_id, "direction": direction, "mode": mode, "macro_iou": np.nan, "fg_iou": np.nan,
            "excluded_reason": reason}


def _scored(entry_id: str, direction: str, mode: str, scores: dict) -> dict:
    return {"entry_id": entry_id, "direction": direction, "mode": mode, "macro_iou": scores["macro"],
            "fg_iou": scores["fg"], "excluded_reason": ""}


def score_t2i(entry, row: MapRow, mask: np.ndarray, mode: str, targets: dict | None = None) -> dict:
    """One text->image row: Otsu on the upsampled, min-max normalised map against the prepared mask.

    ``targets``: a cache of this entry's prepared masks, shared by the methods scored on it (the prepared mask
    depends on the input size, mode and padding only)."""
    if not np.all(np.isfinite(row.image_grid)):
        return _excluded(entry.entry_id, "t2i", mode, "non_finite_map")
    key = (row.image_size, mode, row.padding)
    target = targets.get(key) if targets is not None else None
    if target is None:
        target = grounding.prepare_mask(mask, row.image_size, mode, padding=row.padding)
        if targets is not None:
            targets[key] = target
    if mode == "corrected" and not target.any():
        return _excluded(entry.entry_id, "t2i", mode, "empty_mask_at_input_size")
    relevance = grounding.upsample_unit(row.image_grid, row.image_size)
    return _scored(entry.entry_id, "t2i", mode, grounding.image_iou(relevance, target))


def _caption_token_count(tokens_row: np.ndarray, eot: int) -> int:
    hits = np.flatnonzero(tokens_row == eot)
    return int(hits[0]) - 1 if hits.size else -1


def match_text(entry, row: MapRow, tokenizer) -> tuple[str, tuple[int, int] | None, list[int]] | str:
    """Which text the image->text map explains: the caption, or the utterances joined by spaces (the original's).

    Returns (text, phrase char span, its tokens), or the string ``"truncated"`` when that text had more tokens than
    the context (the map's tokens are its truncation). Raises InputError when the map's tokens are neither.
    """
    context = row.tokens.shape[0]
    eot = tokenizer.eot_token_id
    candidates = [(entry.caption, entry.char_span)]
    joined = i2t_text_and_span(entry)
    if joined is not None:
        candidates.append(joined)
    n_tokens = _caption_token_count(row.tokens, eot)
    if row.tokens[0] != tokenizer.sot_token_id or n_tokens < 0:
        raise InputError(row.path, f"tokens of {entry.entry_id} (i2t)", "a start token, the caption's tokens, an "
                         "end token")
    in_map = row.tokens[1:1 + n_tokens].tolist()
    for text, span in candidates:
        tokens = list(tokenizer.encode(text))
        if tokens == in_map:
            return text, span, tokens
        if len(tokens) > context - 2 and n_tokens == context - 2 and tokens[:context - 2] == in_map:
            return "truncated"
    raise InputError(row.path, f"tokens of {entry.entry_id} (i2t)",
                     "the BPE tokens of the entry's caption or of its utterances joined by spaces")


def score_i2t(entry, row: MapRow, mode: str, tokenizer) -> dict:
    """One image->text row: Otsu on the caption tokens' relevance against the phrase's token labels."""
    eid = entry.entry_id
    joined = i2t_text_and_span(entry)
    if mode == "faithful" and grounding.faithful_too_long(joined[0] if joined else entry.caption):
        return _excluded(eid, "i2t", mode, "over_70_words")
    matched = match_text(entry, row, tokenizer)
    if matched == "truncated":
        return _excluded(eid, "i2t", mode, "raised:context_length" if mode == "faithful" else "caption_exceeds_context")
    text, span, tokens = matched
    if mode == "corrected" and span is None:
        return _excluded(eid, "i2t", mode, "char_span_missing")
    try:
        label_tokens, labels = grounding.phrase_token_labels(text, entry.utterance, span, tokenizer, mode)
    except grounding.ExcludedEntry as excluded:
        return _excluded(eid, "i2t", mode, excluded.reason)
    assert label_tokens == tokens  # the same text, the same tokenizer
    scores = row.text[1:1 + len(tokens)]
    if not np.all(np.isfinite(scores)):
        return _excluded(eid, "i2t", mode, "non_finite_map")
    return _scored(eid, "i2t", mode, grounding.token_iou(scores, labels))


def score_entries(entries: list, mask_of: Callable, maps: dict[tuple[str, str], MapRow], modes: Iterable[str],
                  tokenizer=None) -> pd.DataFrame:
    """The per-entry table for ``entries`` (objects with entry_id, caption, utterance, char_span, and for the
    original's joined text utterances and segment_index), ``mask_of(entry) -> bool [H, W]`` and the maps rows.

    Directions are those the maps hold (a direction whose maps are all NaN, e.g. a text-only method's images, is not
    scored). Rows sorted by (direction, mode, entry_id).
    """
    return score_methods(entries, mask_of, {"": maps}, modes, tokenizer)[""]


def score_methods(entries: list, mask_of: Callable, maps: dict[str, dict[tuple[str, str], MapRow]],
                  modes: Iterable[str], tokenizer=None) -> dict[str, pd.DataFrame]:
    """:func:`score_entries` of several methods' maps (label -> rows) in one pass over the entries: each entry's
    mask is read and prepared once for all of them. Each method's table is the one it would get alone."""
    tokenizer = tokenizer or grounding.default_tokenizer()
    modes = list(dict.fromkeys(modes))
    in_scope = {e.entry_id for e in entries}
    has_map = {"t2i": _has_image_map, "i2t": _has_text_map}
    directions = {}
    for label, rows in maps.items():
        unknown = sorted({eid for eid, _ in rows if eid not in in_scope})
        if unknown:
            raise InputError(rows[(unknown[0], next(d for d in DIRECTIONS if (unknown[0], d) in rows))].path,
                             "entry_id", f"ids of the data set's entries in scope, got {unknown[0]!r} "
                             f"({len(unknown)} unknown)")
        directions[label] = [d for d in DIRECTIONS if any(k[1] == d and has_map[d](row) for k, row in rows.items())]
    records = {label: [] for label in maps}
    for direction in DIRECTIONS:
        labels = [label for label in maps if direction in directions[label]]
        if not labels:
            continue
        for entry in tqdm(entries, desc=f"score {direction} ({len(labels)} methods)", mininterval=10):
            mask, targets = None, {}
            for label in labels:
                row = maps[label].get((entry.entry_id, direction))
                if row is None:
                    records[label] += [_excluded(entry.entry_id, direction, mode, "no_map") for mode in modes]
                    continue
                if direction == "t2i" and mask is None:
                    mask = mask_of(entry)
                for mode in modes:
                    if direction == "t2i":
                        records[label].append(score_t2i(entry, row, mask, mode, targets))
                    else:
                        records[label].append(score_i2t(entry, row, mode, tokenizer))
    frames = {}
    for label, rows in records.items():
        frame = pd.DataFrame.from_records(rows, columns=ENTRY_COLUMNS)
        frames[label] = frame.sort_values(["direction", "mode", "entry_id"], kind="stable").reset_index(drop=True)
    return frames


def summarise(frame: pd.DataFrame, seed: int, n_resamples: int = 1000, level: float = 0.95, *,
              n_dataset_entries: int) -> pd.DataFrame:
    """One row per (direction, mode): counts, and mean with bootstrap interval of macro and foreground IoU.

    ``n_dataset_entries``: the entries of the whole split, recorded beside the counts so a partial run (fewer entries
    in scope) is known as one downstream."""
    rows = []
    for (direction, mode), block in frame.groupby(["direction", "mode"], sort=True):
        scored = block[block["excluded_reason"] == ""]
        row = {"direction": direction, "mode": mode, "n_entries": len(scored), "n_excluded": len(block) - len(scored),
               "n_dataset_entries": int(n_dataset_entries)}
        for metric in ("macro", "fg"):
            mean, lo, hi = bootstrap.ci(scored[f"{metric}_iou"].to_numpy(), seed, n_resamples=n_resamples,
                                        level=level, keys=("grounding", direction, mode, metric))
            row.update({f"{metric}_mean": mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def score_dataset(dataset, maps_files: dict[str, list], modes: Iterable[str], max_entries: int, seed: int,
                  n_resamples: int = 1000, level: float = 0.95) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """label -> (per-entry table, summary) of each method's maps files (label -> paths) on ``dataset`` (a PNG-format
    data set, clipxai.data.png), its first ``max_entries`` (>= 0) entries in scope (0 = all)."""
    entries = dataset.entries[:max_entries] if max_entries else dataset.entries
    maps = {label: read_maps(paths) for label, paths in maps_files.items()}
    frames = score_methods(entries, dataset.mask, maps, modes)
    return {label: (frame, summarise(frame, seed, n_resamples, level, n_dataset_entries=len(dataset.entries)))
            for label, frame in frames.items()}
