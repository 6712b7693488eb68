"""ArtEmis (Achlioptas et al. 2021): emotions annotators felt looking at WikiArt paintings, read and checked.

Licence-bound: neither the release CSV nor the WikiArt images are downloaded; the user gives their paths.
The release CSV (``artemis_dataset_release_v0.csv``) has one row per annotation with the columns ``art_style``,
``painting``, ``emotion`` (one of the nine below, "something else" included), ``utterance`` and ``repetition``. The
images are WikiArt's ``<images>/<art_style>/<painting>.jpg``. A painting's annotations become its emotion
distribution: the count of each emotion over its rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipxai.errors import InputError

EMOTIONS: tuple[str, ...] = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness",
                             "something else")
COLUMNS: tuple[str, ...] = ("art_style", "painting", "emotion", "utterance", "repetition")
IMAGE_SUFFIX = ".jpg"
WHERE = "licence-bound, not downloaded: request it at artemisdataset.org and give its path"


@dataclass
class Painting:
    art_style: str
    painting: str
    image_path: Path
    counts: np.ndarray  # int64 [9]: annotations per emotion, in EMOTIONS order

    @property
    def id(self) -> str:
        return f"{self.art_style}/{self.painting}"

    @property
    def distribution(self) -> np.ndarray:
        return self.counts / self.counts.sum()


def load(csv_path: str | Path, images: str | Path) -> list[Painting]:
    """Every annotated painting of the CSV (sorted by art style, then name) with its emotion counts.

    The CSV and the image folder must exist; images themselves are checked by :func:`verify` (only the ones used).
    """
    csv_path, images = Path(csv_path), Path(images)
    if not csv_path.is_file():
        raise InputError(csv_path, "(file)", f"the ArtEmis release CSV artemis_dataset_release_v0.csv ({WHERE})")
    if not images.is_dir():
        raise InputError(images, "(folder)", f"the WikiArt images as <art_style>/<painting>.jpg ({WHERE})")
    index = {e: i for i, e in enumerate(EMOTIONS)}
    counts: dict[tuple[str, str], np.ndarray] = {}
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(csv_path, missing[0], f"a column of the ArtEmis release CSV ({', '.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            emotion = row["emotion"].strip().lower()
            if emotion not in index:
                raise InputError(csv_path, f"line {line}: emotion", f"one of {', '.join(EMOTIONS)}, got {emotion!r}")
            key = (row["art_style"], row["painting"])
            if not all(key):
                raise InputError(csv_path, f"line {line}: art_style/painting", "non-empty names")
            counts.setdefault(key, np.zeros(len(EMOTIONS), dtype=np.int64))[index[emotion]] += 1
    if not counts:
        raise InputError(csv_path, "(rows)", "at least one annotation")
    return [Painting(style, name, images / style / f"{name}{IMAGE_SUFFIX}", counts[(style, name)])
            for style, name in sorted(counts)]


def verify(paintings: list[Painting]) -> None:
    """Raise one InputError naming the first missing image file and how many of ``paintings`` lack theirs."""
    missing = [p for p in paintings if not p.image_path.is_file()]
    if missing:
        raise InputError(missing[0].image_path, "(file)",
                         f"the WikiArt image of painting {missing[0].id} ({len(missing)} of {len(paintings)} "
                         f"selected paintings have no image; {WHERE})")


def write_release(csv_path: str | Path, rows: list[dict]) -> Path:
    """Write annotations in the release CSV's layout (for tests and fixtures)."""
    from clipxai.io import atomic_path

    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return csv_path
