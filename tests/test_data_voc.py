"""PASCAL VOC 2012 layout: the shapes world's VOC set and hand-made sets read back; bad files are named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipxai.data import shapes, voc
from clipxai.errors import InputError


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_palette_is_the_voc_colour_map():
    colours = np.array(voc.palette()).reshape(256, 3)
    assert colours[1].tolist() == [128, 0, 0] and colours[15].tolist() == [192, 128, 128]
    assert colours[255].tolist() == [224, 224, 192] and colours[0].tolist() == [0, 0, 0]


def test_void_borders_mark_both_sides_of_a_boundary_only():
    label = np.zeros((7, 7), np.uint8)
    label[2:5, 2:5] = 3
    out = voc.void_borders(label)
    assert out[3, 3] == 3 and out[0, 0] == 0  # interior and far background untouched
    assert out[2, 3] == 255 and out[1, 3] == 255  # inside and outside the top edge
    assert ((out == 255) == (voc.void_borders(label, width=1) == 255)).all()
    assert (voc.void_borders(label, width=2) == 255).sum() > (out == 255).sum()


def test_shapes_voc_round_trips(tmp_path):
    config = shapes.ShapesConfig(seed=4)
    shapes.write_voc(tmp_path, config, n_train=5, n_val=6, progress=False)
    data = voc.load(tmp_path, "val")
    assert data.class_names == ("background",) + shapes.SHAPES
    assert len(data) == 6
    for index, (image_id, image, label) in enumerate(data):
        scene = shapes._split_scene(config, "voc", "val", index)
        expected = np.zeros(scene.instances.shape, np.uint8)
        for k, obj in enumerate(scene.objects):
            expected[scene.instances == k + 1] = shapes.SHAPES.index(obj.shape) + 1
        assert image_id == f"shapes_val_{index:06d}" and image.shape == (64, 64, 3)
        assert np.array_equal(label, voc.void_borders(expected))
        assert (label == 255).any() and set(np.unique(label)) <= {0, 1, 2, 3, 4, 5, 255}
    png = Image.open(tmp_path / "VOCdevkit/VOC2012/SegmentationClass/shapes_val_000000.png")
    assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]
    lists = tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation"
    assert (lists / "trainval.txt").read_text().split() == \
        (lists / "train.txt").read_text().split() + (lists / "val.txt").read_text().split()
    # the first eval images show the held-out combinations (shape classes here), train never does
    assert [o.name for o in shapes._split_scene(config, "voc", "val", 0).objects][0] == config.held_out[0]
    shapes.write_voc(tmp_path / "again", config, n_train=5, n_val=6, progress=False)
    assert _tree(tmp_path / "again") == {k: v for k, v in _tree(tmp_path).items() if not k.startswith("again")}


def _hand_made(root):
    rng = np.random.default_rng(0)
    label = np.zeros((10, 12), np.uint8)
    label[2:6, 3:9] = 15
    samples = [("2007_000032", rng.integers(0, 255, (10, 12, 3), dtype=np.uint8), voc.void_borders(label))]
    return voc.write(root, {"val": samples}), samples


def test_hand_made_set_reads_with_voc_names_and_any_root(tmp_path):
    base, samples = _hand_made(tmp_path)
    for root in (tmp_path, tmp_path / "VOCdevkit", base):
        data = voc.load(root, "val")
        assert data.class_names == voc.VOC_CLASSES and data.ids == ["2007_000032"]
        assert np.array_equal(data[0][2], samples[0][2])


def test_bad_voc_files_are_named(tmp_path):
    base, _ = _hand_made(tmp_path)
    label_path = base / "SegmentationClass/2007_000032.png"
    Image.open(label_path).convert("RGB").save(label_path)
    with pytest.raises(InputError, match="mode P") as err:
        voc.load(tmp_path)[0]
    assert err.value.path == str(label_path) and "2007_000032" in err.value.field
    Image.new("P", (5, 5)).save(label_path)
    with pytest.raises(InputError, match="size"):
        voc.load(tmp_path)[0]
    label_path.write_bytes(voc.label_png(np.full((10, 12), 40, np.uint8)))
    with pytest.raises(InputError, match="class indices below 21"):
        voc.load(tmp_path)[0]
    label_path.unlink()
    with pytest.raises(InputError, match="SegmentationClass/2007_000032.png") as err:
        voc.load(tmp_path)
    assert err.value.path.endswith("ImageSets/Segmentation/val.txt")
    with pytest.raises(InputError, match="train"):
        voc.load(tmp_path, "train")
    with pytest.raises(InputError, match="VOC2012"):
        voc.load(tmp_path / "VOCdevkit/VOC2012/JPEGImages")


def _hand_written_void_borders(label, width):
    """The 4-neighbour boundary band written out (the definition scikit-image's find_boundaries replaced)."""
    boundary = np.zeros(label.shape, dtype=bool)
    vertical, horizontal = label[1:, :] != label[:-1, :], label[:, 1:] != label[:, :-1]
    boundary[1:, :] |= vertical
    boundary[:-1, :] |= vertical
    boundary[:, 1:] |= horizontal
    boundary[:, :-1] |= horizontal
    for _ in range(width - 1):
        grown = boundary.copy()
        grown[1:, :] |= boundary[:-1, :]
        grown[:-1, :] |= boundary[1:, :]
        grown[:, 1:] |= boundary[:, :-1]
        grown[:, :-1] |= boundary[:, 1:]
        boundary = grown
    out = label.copy()
    out[boundary] = voc.VOID
    return out


def test_void_borders_equal_the_hand_written_band_on_50_random_maps():
    for seed in range(50):
        gen = np.random.default_rng(seed)
        shape = tuple(int(x) for x in gen.integers(2, 40, size=2))
        label = gen.integers(0, 4, shape).astype(np.uint8)
        if seed % 2:  # blocky maps too: long straight boundaries, as the shapes world draws
            label = np.repeat(np.repeat(label[: shape[0] // 4 + 1, : shape[1] // 4 + 1], 4, 0), 4, 1)
        for width in (1, 2, 3):
            assert np.array_equal(voc.void_borders(label, width), _hand_written_void_borders(label, width)), \
                (seed, width)
