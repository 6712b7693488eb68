"""ImageNet (ILSVRC2012) validation images as users have them, read, checked and written.

Two layouts are read:

* **devkit**: a flat folder of ``ILSVRC2012_val_00000001.JPEG`` ... ``ILSVRC2012_val_00050000.JPEG`` (``<root>`` or
  ``<root>/val``) plus the devkit ``ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt`` (line
  ``i`` = ILSVRC2012 id, 1..1000, of image ``i``) and ``data/meta.mat`` (MATLAB v5 struct array ``synsets``:
  ILSVRC2012_ID, WNID, words, ..., num_children; the 1000 classes are the leaves, num_children == 0).
* **class folders**: ``<root>/val/<wnid>/*.JPEG`` (or ``<root>/<wnid>/``), the layout torchvision prepares.

The class index of an image is the position of its wnid in the sorted list of the 1000 wnids (the order every
ImageNet classifier, open_clip's zero-shot class names included, uses) - not its ILSVRC2012 id, which follows
another order. :func:`verify` lists what is missing or unexpected. A ``classnames.txt`` (one name per line, in
class order) written beside synthetic class-folder sets gives their readable names.
"""

from __future__ import annotations

import io as _io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from clipxai.data.images import encode_jpeg, write_bytes
from clipxai.errors import InputError
from clipxai.io import write_text

N_VAL_IMAGES = 50_000
N_CLASSES = 1000
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "data/ILSVRC2012_validation_ground_truth.txt"
META = "data/meta.mat"
WNID = re.compile(r"^n\d{8}$")
VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass
class ImageNetVal:
    """The labelled images of a validation folder: ``samples`` are ``(path, class index)`` in file order."""

    root: Path
    layout: str                                   # "devkit" or "folders"
    wnids: list[str]                              # class index -> wnid (sorted) or folder name
    samples: list[tuple[Path, int]]
    class_names: list[str] = field(default_factory=list)  # class index -> readable name, when known

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[tuple[Path, int]]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> tuple[Path, int]:
        return self.samples[index]


def _image_folder(root: Path) -> Path:
    return root / "val" if (root / "val").is_dir() else root


def find_devkit(root: str | Path) -> Path | None:
    """The devkit folder under or beside ``root`` (or ``root`` itself), if there is one."""
    root = Path(root)
    for candidate in (root / DEVKIT, root.parent / DEVKIT, root):
        if (candidate / GROUND_TRUTH).exists() or (candidate / META).exists():
            return candidate
    return None


def read_meta(devkit: str | Path) -> dict[int, tuple[str, str]]:
    """``{ILSVRC2012 id: (wnid, words)}`` of the 1000 leaf synsets in ``data/meta.mat``."""
    import scipy.io

    path = Path(devkit) / META
    try:
        synsets = scipy.io.loadmat(str(path), squeeze_me=True)["synsets"]
    except FileNotFoundError:
        raise InputError(path, "file", "the ILSVRC2012 devkit's meta.mat (no such file)") from None
    except (KeyError, ValueError, NotImplementedError, TypeError) as err:
        raise InputError(path, "synsets", f"a MATLAB struct array of synsets ({err})") from None
    names = synsets.dtype.names or ()
    for key in ("ILSVRC2012_ID", "WNID", "words", "num_children"):
        if key not in names:
            raise InputError(path, f"synsets.{key}", "a field of every synset")
    leaves = {}
    for synset in np.atleast_1d(synsets):
        if int(synset["num_children"]) == 0:
            leaves[int(synset["ILSVRC2012_ID"])] = (str(synset["WNID"]), str(synset["words"]))
    return leaves


def read_ground_truth(devkit: str | Path) -> list[int]:
    """The ILSVRC2012 id of each validation image, in image order."""
    path = Path(devkit) / GROUND_TRUTH
    if not path.exists():
        raise InputError(path, "file", "the devkit's validation ground truth (one ILSVRC2012 id per line)")
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        if not line.strip().isdigit():
            raise InputError(path, f"line {number}", f"an ILSVRC2012 class id, got {line.strip()!r:.30}")
        ids.append(int(line))
    return ids


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(base: Path) -> list[Path]:
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_class_names(root: Path, n_classes: int) -> list[str]:
    path = root / "classnames.txt"
    if not path.exists():
        return []
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) != n_classes:
        raise InputError(path, "lines", f"one name per class ({n_classes}), got {len(names)}")
    return names


def load(root: str | Path, devkit: str | Path | None = None) -> ImageNetVal:
    """Read a validation folder in either layout (see the module docstring); labels need the devkit or folders."""
    root = Path(root)
    base = _image_folder(root)
    if not base.is_dir():
        raise InputError(root, "layout", "a folder of ImageNet validation images")
    flat = sorted(p for p in base.iterdir() if VAL_NAME.match(p.name))
    if flat:
        kit = Path(devkit) if devkit is not None else find_devkit(root)
        if kit is None:
            raise InputError(root, DEVKIT, "the ILSVRC2012 devkit beside flat ILSVRC2012_val_*.JPEG images "
                                           "(for their labels)")
        leaves = read_meta(kit)
        truth = read_ground_truth(kit)
        wnids = sorted(wnid for wnid, _ in leaves.values())
        index_of = {wnid: i for i, wnid in enumerate(wnids)}
        words = {wnid: text for wnid, text in leaves.values()}
        samples = []
        for path in flat:
            number = int(VAL_NAME.match(path.name).group(1))
            if number > len(truth):
                raise InputError(kit / GROUND_TRUTH, f"line {number}", f"a label for {path.name}")
            ilsvrc_id = truth[number - 1]
            if ilsvrc_id not in leaves:
                raise InputError(kit / GROUND_TRUTH, f"line {number}",
                                 f"an ILSVRC2012 id of a leaf synset in {META}, got {ilsvrc_id}")
            samples.append((path, index_of[leaves[ilsvrc_id][0]]))
        return ImageNetVal(root, "devkit", wnids, samples, [words[w] for w in wnids])
    folders = _class_folders(base)
    if not folders:
        raise InputError(root, "layout", "ILSVRC2012_val_*.JPEG files with the devkit, or one folder per class")
    wnids = [p.name for p in folders]
    kit = Path(devkit) if devkit is not None else find_devkit(root)
    class_names: list[str] = _read_class_names(root, len(wnids))
    if kit is not None and (kit / META).exists():
        # the devkit fixes the full sorted class list, so a missing folder cannot shift the indices
        leaves = read_meta(kit)
        all_wnids = sorted(wnid for wnid, _ in leaves.values())
        unknown = [w for w in wnids if w not in set(all_wnids)]
        if unknown:
            raise InputError(base / unknown[0], "folder", f"a wnid of {kit / META}")
        words = {wnid: text for wnid, text in leaves.values()}
        wnids, class_names = all_wnids, [words[w] for w in all_wnids]
    index_of = {wnid: i for i, wnid in enumerate(wnids)}
    samples = [(path, index_of[folder.name]) for folder in folders for path in _images_in(folder)]
    return ImageNetVal(root, "folders", wnids, samples, class_names)


def _summarise(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def verify(root: str | Path, devkit: str | Path | None = None, expected_images: int = N_VAL_IMAGES,
           expected_classes: int = N_CLASSES, require_wnids: bool = True) -> list[str]:
    """What is wrong with a validation folder, one line per problem (empty when complete).

    Checks: the layout is recognised; every one of ``expected_images`` images is there (by name in the devkit
    layout); the ground truth has one id per image, each a known class; there are ``expected_classes`` class
    folders named by wnids (``require_wnids``; ones the devkit does not know are listed) with
    ``expected_images / expected_classes`` images each.
    """
    root = Path(root)
    base = _image_folder(root)
    if not base.is_dir():
        return [f"{root}: no such folder"]
    problems: list[str] = []
    flat = sorted(p.name for p in base.iterdir() if VAL_NAME.match(p.name))
    kit = Path(devkit) if devkit is not None else find_devkit(root)
    known_wnids: set[str] | None = None
    if kit is not None and (kit / META).exists():
        try:
            leaves = read_meta(kit)
            known_wnids = {wnid for wnid, _ in leaves.values()}
            if len(leaves) != expected_classes:
                problems.append(f"{kit / META}: {len(leaves)} leaf synsets, expected {expected_classes}")
        except InputError as err:
            problems.append(str(err))
    if flat:
        expected_names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, expected_images + 1)]
        present = set(flat)
        missing = [name for name in expected_names if name not in present]
        extra = sorted(present - set(expected_names))
        if missing:
            problems.append(f"{base}: {len(missing)} of {expected_images} images missing: {_summarise(missing)}")
        if extra:
            problems.append(f"{base}: {len(extra)} images beyond the expected {expected_images}: {_summarise(extra)}")
        if kit is None:
            problems.append(f"{root}: no {DEVKIT} (with {GROUND_TRUTH} and {META}) to label the images")
            return problems
        try:
            truth = read_ground_truth(kit)
        except InputError as err:
            problems.append(str(err))
            return problems
        if len(truth) != expected_images:
            problems.append(f"{kit / GROUND_TRUTH}: {len(truth)} labels, expected {expected_images}")
        if known_wnids is None:
            problems.append(f"{kit}: no {META} to map ILSVRC2012 ids to wnids")
        else:
            bad = sorted({i for i in truth if i not in leaves})
            if bad:
                problems.append(f"{kit / GROUND_TRUTH}: ids without a leaf synset in {META}: "
                                f"{_summarise([str(i) for i in bad])}")
        return problems
    folders = _class_folders(base)
    if not folders:
        return [f"{base}: neither ILSVRC2012_val_*.JPEG images nor class folders"]
    names = [p.name for p in folders]
    if len(folders) != expected_classes:
        problems.append(f"{base}: {len(folders)} class folders, expected {expected_classes}")
    if known_wnids is not None:
        unknown = [n for n in names if n not in known_wnids]
        absent = sorted(known_wnids - set(names))
        if unknown:
            problems.append(f"{base}: folders that are not wnids of {META}: {_summarise(unknown)}")
        if absent:
            problems.append(f"{base}: {len(absent)} classes of {META} have no folder: {_summarise(absent)}")
    elif require_wnids:
        unknown = [n for n in names if not WNID.match(n)]
        if unknown:
            problems.append(f"{base}: folders not named like wnids (n########): {_summarise(unknown)}")
    counts = {folder.name: len(_images_in(folder)) for folder in folders}
    total = sum(counts.values())
    if total != expected_images:
        problems.append(f"{base}: {total} images, expected {expected_images}")
    if expected_classes and expected_images % expected_classes == 0:
        per_class = expected_images // expected_classes
        off = [f"{name} ({count})" for name, count in counts.items() if count != per_class]
        if off:
            problems.append(f"{base}: {len(off)} folders without {per_class} images: {_summarise(off)}")
    return problems


def write_class_folders(root: str | Path, samples: Iterable[tuple[str, str, np.ndarray]],
                        class_names: dict[str, str] | None = None) -> Path:
    """Write ``(folder, file name, rgb)`` samples as ``<root>/val/<folder>/<file>`` JPEGs; ``class_names`` maps
    folder -> readable name and is written as ``classnames.txt`` in sorted folder order."""
    base = Path(root) / "val"
    for folder, file_name, rgb in samples:
        write_bytes(base / folder / file_name, encode_jpeg(rgb))
    if class_names is not None:
        write_text(Path(root) / "classnames.txt", "".join(f"{class_names[f]}\n" for f in sorted(class_names)))
    return base


def write_devkit_layout(root: str | Path, leaf_wnids: list[str], samples: Iterable[tuple[int, np.ndarray]],
                        words: list[str] | None = None) -> Path:
    """Write flat ``ILSVRC2012_val_XXXXXXXX.JPEG`` images under ``<root>/val`` and a devkit beside them.

    ``leaf_wnids[k]`` is the wnid of ILSVRC2012 id ``k + 1``; ``samples`` are ``(ILSVRC2012 id, rgb)`` in image
    order. ``meta.mat`` also gets one non-leaf synset, as the real one has 860 of them.
    """
    import scipy.io

    root = Path(root)
    truth = []
    for number, (ilsvrc_id, rgb) in enumerate(samples, start=1):
        write_bytes(root / "val" / f"ILSVRC2012_val_{number:08d}.JPEG", encode_jpeg(rgb))
        truth.append(int(ilsvrc_id))
    kit = root / DEVKIT
    write_text(kit / GROUND_TRUTH, "".join(f"{i}\n" for i in truth))
    words = words or list(leaf_wnids)
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height",
              "num_train_images"]
    synsets = np.zeros((len(leaf_wnids) + 1,), dtype=[(f, object) for f in fields])
    for k, wnid in enumerate(leaf_wnids):
        synsets[k] = (k + 1, wnid, words[k], "", 0, np.zeros((0,), dtype=np.uint16), 0, 1300)
    synsets[-1] = (len(leaf_wnids) + 1, "n00001740", "entity", "", len(leaf_wnids),
                   np.arange(1, len(leaf_wnids) + 1, dtype=np.uint16), 1, 0)
    buffer = _io.BytesIO()
    scipy.io.savemat(buffer, {"synsets": synsets.reshape(-1, 1)})
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by clipxai".ljust(116, b" ")  # savemat stamps the time here
    write_bytes(kit / META, bytes(data))
    return kit
