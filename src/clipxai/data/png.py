"""Panoptic Narrative Grounding (PNG) on COCO panoptic: one grounding entry per phrase that has segments.

``annotations/png_coco_<split>2017.json`` (González et al., ICCV 2021, BCV-Uniandes/PNG) is a JSON list of
narratives, each with the field types of the released file::

    {"image_id": "139",                  # a string, although COCO's own ids are integers
     "annotator_id": 12,                 # an integer (Localized Narratives' annotator)
     "caption": "In this image ...",
     "segments": [{"utterance": "In this image", "segment_ids": [], "noun": false, "plural": false},
                  {"utterance": "a person", "segment_ids": ["3290192"], "noun": true, "plural": false}, ...]}

``segment_ids`` are strings naming ids of the image's panoptic segments (``R + 256 G + 256^2 B`` in the panoptic
PNG). The segments of a narrative cover its caption in order. The reader accepts ints where the file has strings
(and the reverse), so hand-made and shapes-world files read the same way; the writer emits the released types.

:func:`load` returns a :class:`PNGDataset` with one :class:`GroundingEntry` per segment whose ``segment_ids`` are
non-empty (8,573 narratives give 44,008 entries on val2017), in file order.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from clipxai.data import coco_panoptic
from clipxai.data._json import read_json, require
from clipxai.errors import InputError
from clipxai.io import write_json

_MASK_CACHE_IMAGES = 16  # decoded segment-id maps kept: entries of one image are consecutive in file order


@dataclass
class GroundingEntry:
    """One phrase of one narrative with the panoptic segments it refers to."""

    entry_id: str                       # "<image_id>_<narrative index in the file>_<segment index in the narrative>"
    image_id: int                       # the COCO image id (an int, whatever type the JSON used)
    image_path: Path
    caption: str
    utterance: str                      # the phrase, e.g. "a red circle"
    segment_ids: list[int]              # panoptic segment ids; the phrase's mask is their union
    char_span: tuple[int, int] | None   # [start, end) of the utterance in the caption; None if not found there
    categories: list[str]               # category name of each segment (the shapes world: "red circle")
    isthing: list[bool]                 # per segment: a thing (object) or stuff category
    narrative_index: int
    segment_index: int
    utterances: tuple[str, ...]         # every utterance of the narrative, in order (image->text joins them)
    noun: bool = True
    plural: bool = False


@dataclass
class PNGDataset:
    """The grounding entries of one split and lazy access to their images and masks."""

    root: Path
    split: str
    json_path: Path
    panoptic: coco_panoptic.PanopticSplit
    entries: list[GroundingEntry]
    n_narratives: int
    unlocated: list[str] = field(default_factory=list)   # entry ids whose utterance is not found in the caption
    _id_maps: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[GroundingEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> GroundingEntry:
        return self.entries[index]

    def image(self, entry: GroundingEntry) -> Image.Image:
        """The entry's image as an RGB PIL image."""
        try:
            with Image.open(entry.image_path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise InputError(entry.image_path, f"entry {entry.entry_id}: image", "an existing image file") from None
        except OSError as err:
            raise InputError(entry.image_path, f"entry {entry.entry_id}: image", f"a readable image ({err})") from None

    def segment_id_map(self, image_id: int) -> np.ndarray:
        """The image's int32 ``[H, W]`` panoptic segment ids (decoded once, kept for the next few images)."""
        if image_id in self._id_maps:
            self._id_maps.move_to_end(image_id)
            return self._id_maps[image_id]
        ids = self.panoptic.read_segment_ids(image_id)
        self._id_maps[image_id] = ids
        if len(self._id_maps) > _MASK_CACHE_IMAGES:
            self._id_maps.popitem(last=False)
        return ids

    def mask(self, entry: GroundingEntry) -> np.ndarray:
        """``bool [H, W]``: the union of the entry's segments in its panoptic PNG (each must be present there)."""
        ids = self.segment_id_map(entry.image_id)
        mask = np.zeros(ids.shape, dtype=bool)
        for segment_id in entry.segment_ids:
            segment = ids == segment_id
            if not segment.any():
                raise InputError(self.panoptic.segmentation_path(entry.image_id),
                                 f"entry {entry.entry_id}: segment_ids",
                                 f"segment id {segment_id} (from {self.json_path.name}) to occur in the PNG")
            mask |= segment
        return mask


def narratives_path(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"png_coco_{coco_panoptic.split_name(split)}.json"


def _as_int(value, path: Path, where: str, expected: str) -> int:
    """An id the file may store as a string ("139") or an int."""
    if isinstance(value, bool):
        raise InputError(path, where, f"{expected}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InputError(path, where, f"{expected}, got {value!r:.40}")


def _find_span(caption: str, utterance: str, cursor: int) -> tuple[int, int] | None:
    """Where ``utterance`` occurs in ``caption`` at or after ``cursor``: exactly, else ignoring case and spacing."""
    text = utterance.strip()
    if not text:
        return None
    start = caption.find(text, cursor)
    if start >= 0:
        return start, start + len(text)
    pattern = r"\s+".join(re.escape(word) for word in text.split())
    found = re.compile(pattern, re.IGNORECASE).search(caption, cursor)
    return (found.start(), found.end()) if found else None


def load(root: str | Path, split: str = "val") -> PNGDataset:
    """Read ``png_coco_<split>2017.json`` and the panoptic JSON under ``root``; check that every narrative's image
    and every segment id exists in the panoptic annotations. Images and PNGs are read lazily.
    """
    root = Path(root)
    panoptic = coco_panoptic.load(root, split)
    path = narratives_path(root, split)
    narratives = read_json(path, "the Panoptic Narrative Grounding narratives (a list)")
    if not isinstance(narratives, list):
        raise InputError(path, "top level", f"a list of narratives, got {type(narratives).__name__}")

    entries: list[GroundingEntry] = []
    unlocated: list[str] = []
    for n_index, narrative in enumerate(narratives):
        where = f"narratives[{n_index}]"
        raw_image_id = require(narrative, "image_id", (str, int), path, where, "a COCO image id")
        image_id = _as_int(raw_image_id, path, f"{where}.image_id", "a COCO image id (digits)")
        where = f"narratives[{n_index}] (image_id {image_id})"
        caption = require(narrative, "caption", str, path, where, "the narrative's caption")
        segments = require(narrative, "segments", list, path, where, "a list of segments")
        if image_id not in panoptic.images or image_id not in panoptic.annotations:
            raise InputError(path, f"{where}.image_id",
                             f"an image with annotations in {panoptic.json_path.name}, got {raw_image_id!r}")
        image_segments = panoptic.segments[image_id]
        image_file = panoptic.image_path(image_id)

        utterances, segment_lists, flags = [], [], []
        for s_index, segment in enumerate(segments):
            seg_where = f"{where}.segments[{s_index}]"
            utterances.append(require(segment, "utterance", str, path, seg_where, "the phrase text"))
            raw_ids = require(segment, "segment_ids", list, path, seg_where, "a list of panoptic segment ids")
            ids = [_as_int(v, path, f"{seg_where}.segment_ids", "a panoptic segment id") for v in raw_ids]
            for segment_id in ids:
                if segment_id not in image_segments:
                    raise InputError(path, f"{seg_where}.segment_ids",
                                     f"ids of image {image_id}'s segments_info in {panoptic.json_path.name}, "
                                     f"got {segment_id}")
            noun = require(segment, "noun", bool, path, seg_where, "true/false") if "noun" in segment else bool(ids)
            plural = require(segment, "plural", bool, path, seg_where, "true/false") if "plural" in segment else False
            segment_lists.append(ids)
            flags.append((noun, plural))

        # Spans are found left to right in segment order (every segment moves the cursor, entries or not), so a
        # word that occurs twice in the caption gets the occurrence this segment stands for.
        cursor = 0
        all_utterances = tuple(utterances)
        for s_index, (utterance, ids, (noun, plural)) in enumerate(zip(utterances, segment_lists, flags)):
            span = _find_span(caption, utterance, cursor)
            if span is not None:
                cursor = span[1]
            if not ids:
                continue
            entry_id = f"{image_id}_{n_index}_{s_index}"
            if span is None:
                unlocated.append(entry_id)
            category_infos = [panoptic.categories[image_segments[i]["category_id"]] for i in ids]
            entries.append(GroundingEntry(
                entry_id=entry_id, image_id=image_id, image_path=image_file, caption=caption,
                utterance=utterance, segment_ids=ids, char_span=span,
                categories=[c["name"] for c in category_infos], isthing=[bool(c["isthing"]) for c in category_infos],
                narrative_index=n_index, segment_index=s_index, utterances=all_utterances, noun=noun, plural=plural))
    return PNGDataset(root=root, split=coco_panoptic.split_name(split), json_path=path, panoptic=panoptic,
                      entries=entries, n_narratives=len(narratives), unlocated=unlocated)


def make_segment(utterance: str, segment_ids: list[int] | tuple[int, ...] = (), noun: bool | None = None,
                 plural: bool = False) -> dict:
    """One narrative segment with the released file's types (segment ids as strings)."""
    return {"utterance": utterance, "segment_ids": [str(int(i)) for i in segment_ids],
            "noun": bool(segment_ids) if noun is None else bool(noun), "plural": bool(plural)}


def make_narrative(image_id: int, caption: str, segments: list[dict], annotator_id: int = 0) -> dict:
    """One narrative with the released file's types (image id as a string, annotator id an int)."""
    return {"image_id": str(int(image_id)), "annotator_id": int(annotator_id), "caption": caption,
            "segments": segments}


def write_narratives(root: str | Path, split: str, narratives: list[dict]) -> Path:
    """Write ``annotations/png_coco_<split>2017.json`` (atomically)."""
    path = narratives_path(root, split)
    write_json(path, narratives)
    return path
