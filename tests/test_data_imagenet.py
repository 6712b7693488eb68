"""ImageNet val layouts (devkit ground truth, class folders), the sorted-wnid class order, verify(), shapes set."""

from __future__ import annotations

import numpy as np
import pytest

from clipxai.data import imagenet, shapes
from clipxai.errors import InputError

# ILSVRC2012 ids follow their own order, not the sorted wnids: id 1 is the last wnid in sorted order here
LEAVES = ["n03000000", "n01000000", "n02000000"]


def _pixels(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(n)]


def test_devkit_layout_labels_follow_sorted_wnids(tmp_path):
    truth = [1, 2, 3, 1, 3, 2]
    imagenet.write_devkit_layout(tmp_path, LEAVES, zip(truth, _pixels(6)), words=["gamma", "alpha", "beta"])
    data = imagenet.load(tmp_path)
    assert data.layout == "devkit" and data.wnids == sorted(LEAVES)
    assert data.class_names == ["alpha", "beta", "gamma"]
    assert [p.name for p, _ in data][:2] == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    assert [c for _, c in data] == [2, 0, 1, 2, 1, 0]
    assert imagenet.verify(tmp_path, expected_images=6, expected_classes=3) == []


def test_verify_says_exactly_what_is_missing(tmp_path):
    imagenet.write_devkit_layout(tmp_path, LEAVES, zip([1, 2, 3, 1], _pixels(4)))
    (tmp_path / "val/ILSVRC2012_val_00000003.JPEG").unlink()
    problems = imagenet.verify(tmp_path, expected_images=4, expected_classes=3)
    assert len(problems) == 1 and "1 of 4 images missing: ILSVRC2012_val_00000003.JPEG" in problems[0]
    problems = imagenet.verify(tmp_path)  # against the real sizes
    assert any("50000 labels" in p or "4 labels, expected 50000" in p for p in problems)
    assert any("3 leaf synsets, expected 1000" in p for p in problems)
    assert any("49997 of 50000 images missing" in p for p in problems)
    (tmp_path / imagenet.DEVKIT / imagenet.GROUND_TRUTH).write_text("1\n9\n3\n1\n")
    assert any("ids without a leaf synset" in p and "9" in p for p in imagenet.verify(tmp_path, expected_images=4,
                                                                                        expected_classes=3))
    with pytest.raises(InputError, match="leaf synset.*got 9") as err:
        imagenet.load(tmp_path)
    assert err.value.field == "line 2"


def test_class_folder_layout_and_its_problems(tmp_path):
    samples = [(wnid, f"img{k}.JPEG", pixels) for k, (wnid, pixels) in
               enumerate(zip(["n02000000", "n01000000", "n02000000", "n01000000"], _pixels(4)))]
    imagenet.write_class_folders(tmp_path, samples)
    data = imagenet.load(tmp_path)
    assert data.layout == "folders" and data.wnids == ["n01000000", "n02000000"]
    assert sorted((p.parent.name, c) for p, c in data) == [("n01000000", 0)] * 2 + [("n02000000", 1)] * 2
    assert imagenet.verify(tmp_path, expected_images=4, expected_classes=2) == []
    (tmp_path / "val/tench").mkdir()
    (tmp_path / "val/tench/x.JPEG").write_bytes(b"")
    problems = imagenet.verify(tmp_path, expected_images=4, expected_classes=2)
    assert any("3 class folders, expected 2" in p for p in problems)
    assert any("not named like wnids" in p and "tench" in p for p in problems)
    assert any("5 images, expected 4" in p for p in problems)


def test_devkit_beside_class_folders_keeps_standard_indices(tmp_path):
    imagenet.write_devkit_layout(tmp_path / "kit", LEAVES, [])
    samples = [("n03000000", "a.JPEG", _pixels(1)[0])]  # two classes have no folder
    imagenet.write_class_folders(tmp_path / "set", samples)
    data = imagenet.load(tmp_path / "set", devkit=tmp_path / "kit" / imagenet.DEVKIT)
    assert [c for _, c in data] == [2] and len(data.wnids) == 3
    problems = imagenet.verify(tmp_path / "set", devkit=tmp_path / "kit" / imagenet.DEVKIT, expected_images=1,
                               expected_classes=3)
    assert any("2 classes of data/meta.mat have no folder: n01000000, n02000000" in p for p in problems)


def test_shapes_imagenet_style_set(tmp_path):
    config = shapes.ShapesConfig(seed=8)
    shapes.write_imagenet(tmp_path, config, n_images=60, progress=False)
    data = imagenet.load(tmp_path)
    assert len(data) == 60 and len(data.wnids) == 30
    assert data.class_names == [w.replace("_", " ") for w in data.wnids] and "red circle" in data.class_names
    for path, index in data:
        number = int(path.stem.split("_")[-1]) - 1
        assert data.class_names[index] == shapes.COMBINATIONS[number % 30]
    assert imagenet.verify(tmp_path, expected_images=60, expected_classes=30, require_wnids=False) == []
    assert any("not named like wnids" in p for p in imagenet.verify(tmp_path, expected_images=60,
                                                                    expected_classes=30))


def test_unrecognised_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="folder of ImageNet"):
        imagenet.load(tmp_path / "nothing")
    (tmp_path / "val").mkdir()
    (tmp_path / "val/ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    with pytest.raises(InputError, match="devkit"):
        imagenet.load(tmp_path)
