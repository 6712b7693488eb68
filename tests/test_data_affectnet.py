"""AffectNet-style faces in the release folder, CSV and class-folder layouts; missing files are named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipxai.data import affectnet
from clipxai.errors import InputError


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (100, 80, 60)).save(path)


def test_release_folder_reads_exp_npy_and_skips_non_expressions(tmp_path):
    root = tmp_path / "val_set"
    (root / "annotations").mkdir(parents=True)
    for stem, label in (("10", "1"), ("2", "7"), ("3", "9")):   # 9 = uncertain: skipped
        _image(root / "images" / f"{stem}.jpg")
        np.save(root / "annotations" / f"{stem}_exp.npy", np.array(label))
    faces = affectnet.load(root)
    assert [(f.id, affectnet.EXPRESSIONS[f.label]) for f in faces] == [("2", "contempt"), ("10", "happy")]
    affectnet.verify(faces)


def test_release_folder_without_an_annotation_names_it(tmp_path):
    root = tmp_path / "val_set"
    (root / "annotations").mkdir(parents=True)
    _image(root / "images" / "5.jpg")
    with pytest.raises(InputError, match="5_exp.npy"):
        affectnet.load(root)


def test_csv_layout_and_missing_images(tmp_path):
    csv_path = tmp_path / "validation.csv"
    csv_path.write_text("subDirectory_filePath,face_x,expression\n1/a.jpg,0,6\n1/b.jpg,0,0\n2/c.jpg,0,10\n")
    _image(tmp_path / "1" / "a.jpg")
    faces = affectnet.load(csv_path)
    assert [(f.id, f.label) for f in faces] == [("1/a.jpg", 6), ("1/b.jpg", 0)]
    with pytest.raises(InputError, match=r"b\.jpg.*1 of 2.*licence-bound"):
        affectnet.verify(faces)
    csv_path.write_text("subDirectory_filePath,expression\n1/a.jpg,happy\n")
    with pytest.raises(InputError, match="line 2: expression"):
        affectnet.load(csv_path)


def test_class_folders_and_a_missing_folder(tmp_path):
    _image(tmp_path / "faces" / "sad" / "x.png")
    _image(tmp_path / "faces" / "fear" / "y.jpg")
    faces = affectnet.load(tmp_path / "faces")
    assert [(f.id, affectnet.EXPRESSIONS[f.label]) for f in faces] == [("fear/y.jpg", "fear"), ("sad/x.png", "sad")]
    with pytest.raises(InputError, match="licence-bound") as err:
        affectnet.load(tmp_path / "missing")
    assert "missing" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="layout"):
        affectnet.load(tmp_path / "empty")
    assert len(affectnet.EXPRESSIONS) == 8
