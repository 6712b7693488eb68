"""AffectNet-style labelled faces (Mollahosseini et al. 2017): the eight expression classes, read and checked.

Licence-bound: never downloaded; the user gives the path of their copy. Three layouts are read:

* **release folder** (``train_set`` / ``val_set``): ``<root>/images/<n>.jpg`` with ``<root>/annotations/<n>_exp.npy``
  (the expression id as a one-element numpy array, string or integer);
* **CSV** (``training.csv`` / ``validation.csv`` of the first release): columns ``subDirectory_filePath`` (relative
  to the CSV's folder, or to ``images`` if given) and ``expression``;
* **class folders**: ``<root>/<expression>/*.jpg`` named by the eight names below.

Expression ids 0-7 are the classes below; 8-10 (none, uncertain, no face) are skipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipxai.errors import InputError

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
WHERE = "licence-bound, not downloaded: request AffectNet from its authors and give the path of your copy"


@dataclass
class Face:
    id: str
    image_path: Path
    label: int  # index into EXPRESSIONS


def _expression(value, where: Path, field: str) -> int | None:
    try:
        label = int(str(value).strip())
    except ValueError:
        raise InputError(where, field, f"an expression id 0-10, got {value!r}") from None
    if not 0 <= label <= 10:
        raise InputError(where, field, f"an expression id 0-10, got {label}")
    return label if label < len(EXPRESSIONS) else None


def load(path: str | Path, images: str | Path | None = None) -> list[Face]:
    """The faces with one of the eight expressions, sorted by id (see the module docstring for the layouts)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _load_csv(path, Path(images) if images else path.parent)
    if not path.is_dir():
        raise InputError(path, "(folder)", f"an AffectNet-style folder or CSV of labelled faces ({WHERE})")
    if (path / "annotations").is_dir() and (path / "images").is_dir():
        return _load_release(path)
    folders = {p.name.lower(): p for p in path.iterdir() if p.is_dir()}
    known = [name for name in EXPRESSIONS if name in folders]
    if known:
        faces = [Face(f"{name}/{image.name}", image, EXPRESSIONS.index(name)) for name in known
                 for image in sorted(folders[name].iterdir()) if image.suffix.lower() in IMAGE_SUFFIXES]
        return sorted(faces, key=lambda f: f.id)
    raise InputError(path, "layout", "images/ with annotations/<n>_exp.npy, or one folder per expression "
                     f"({', '.join(EXPRESSIONS)})")


def _load_release(root: Path) -> list[Face]:
    faces = []
    for image in sorted((root / "images").iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        annotation = root / "annotations" / f"{image.stem}_exp.npy"
        if not annotation.is_file():
            raise InputError(annotation, "(file)", f"the expression of {image.name} ({WHERE})")
        try:
            value = np.load(annotation, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(annotation, "(file)", f"a numpy array holding one expression id ({err})") from None
        label = _expression(value.reshape(-1)[0] if value.size else "", annotation, "expression")
        if label is not None:
            faces.append(Face(image.stem, image, label))
    if not faces:
        raise InputError(root / "images", "(images)", "at least one face with an expression id 0-7")
    return sorted(faces, key=lambda f: (len(f.id), f.id))


def _load_csv(csv_path: Path, images: Path) -> list[Face]:
    if not csv_path.is_file():
        raise InputError(csv_path, "(file)", f"an AffectNet CSV with subDirectory_filePath, expression ({WHERE})")
    faces = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for column in ("subDirectory_filePath", "expression"):
            if column not in (reader.fieldnames or []):
                raise InputError(csv_path, column, "a column of the AffectNet CSV")
        for line, row in enumerate(reader, start=2):
            label = _expression(row["expression"], csv_path, f"line {line}: expression")
            if label is not None:
                faces.append(Face(row["subDirectory_filePath"], images / row["subDirectory_filePath"], label))
    return sorted(faces, key=lambda f: f.id)


def verify(faces: list[Face]) -> None:
    """Raise one InputError naming the first missing image and how many of ``faces`` lack theirs."""
    missing = [f for f in faces if not f.image_path.is_file()]
    if missing:
        raise InputError(missing[0].image_path, "(file)", f"the image of face {missing[0].id} ({len(missing)} of "
                         f"{len(faces)} selected faces have no image; {WHERE})")
