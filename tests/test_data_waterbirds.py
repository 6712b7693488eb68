"""Waterbirds metadata.csv layout and the shapes waterbirds-style set (spurious background correlation)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from clipxai.data import shapes, waterbirds
from clipxai.data.images import read_rgb
from clipxai.errors import InputError


@pytest.fixture(scope="module")
def shapes_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("waterbirds")
    shapes.write_waterbirds(root, shapes.ShapesConfig(seed=6), n_train=100, n_val=40, n_test=42, progress=False)
    return root


def test_splits_correlate_in_train_and_val_and_balance_in_test(shapes_set):
    records = waterbirds.load(shapes_set)
    assert [r.img_id for r in records] == list(range(1, 183))
    by_split = {s: [r for r in records if r.split == s] for s in (0, 1, 2)}
    assert [len(by_split[s]) for s in (0, 1, 2)] == [100, 40, 42]
    for split, n in ((0, 100), (1, 40)):
        assert sum(r.y == r.place for r in by_split[split]) == round(0.95 * n)
        assert Counter(r.y for r in by_split[split]) == {0: n // 2, 1: n // 2}
    groups = Counter(r.group for r in by_split[2])
    assert sorted(groups) == [0, 1, 2, 3] and max(groups.values()) - min(groups.values()) <= 1
    assert waterbirds.load(shapes_set, "test") == by_split[2] == waterbirds.load(shapes_set, 2)


def test_images_show_the_class_shape_on_the_place_background(shapes_set):
    config = shapes.ShapesConfig(seed=6)
    records = waterbirds.load(shapes_set, "test")
    mean_colour = {0: [], 1: []}
    for index, record in enumerate(records[:16]):
        scene = shapes.render_scene(config, "waterbirds", "test", index, train=False,
                                    allowed=tuple(f"{c} {shapes.BIRD_SHAPES[record.y]}" for c in shapes.BIRD_COLOURS),
                                    n_objects=1, background_kind=shapes.PLACES[record.place],
                                    sizes=("medium", "large"))
        assert scene.objects[0].shape == shapes.BIRD_SHAPES[record.y]
        assert scene.background == shapes.PLACES[record.place]
        assert record.img_filename.startswith(f"{record.y + 1:03d}.{shapes.BIRD_SHAPES[record.y]}/")
        image = read_rgb(record.path).astype(float)
        assert np.abs(image - scene.image).mean() < 6  # the file is that scene, JPEG-compressed
        mean_colour[record.place].append(image[scene.instances == 0].mean(axis=0))
    sand, water = np.mean(mean_colour[0], axis=0), np.mean(mean_colour[1], axis=0)
    assert sand[0] > sand[2] + 40 and water[2] > water[0] + 40  # warm sand, blue water


def test_metadata_columns_and_determinism(shapes_set, tmp_path):
    header = (shapes_set / "metadata.csv").read_text().splitlines()[0]
    assert header == "img_id,img_filename,y,split,place,place_filename"
    shapes.write_waterbirds(tmp_path, shapes.ShapesConfig(seed=6), n_train=100, n_val=40, n_test=42,
                            progress=False)
    for rel in ("metadata.csv", "002.circle/circle_0000002.jpg"):
        assert (tmp_path / rel).read_bytes() == (shapes_set / rel).read_bytes()


def _write(root, rows, header="img_id,img_filename,y,split,place,place_filename"):
    (root / "001.A").mkdir(parents=True, exist_ok=True)
    (root / "001.A/a.jpg").write_bytes(b"")
    (root / "metadata.csv").write_text(header + "\n" + "\n".join(rows) + "\n")


def test_bad_metadata_is_named(tmp_path):
    _write(tmp_path, ["1,001.A/a.jpg,0,0,1,/f/forest/1.jpg"])
    assert waterbirds.load(tmp_path)[0].place == 1
    _write(tmp_path, ["1,001.A/a.jpg,0,0,1"], header="img_id,img_filename,y,split,place")
    with pytest.raises(InputError, match="missing place_filename") as err:
        waterbirds.load(tmp_path)
    assert err.value.path.endswith("metadata.csv") and err.value.field == "columns"
    _write(tmp_path, ["1,001.A/a.jpg,0,0,1,x", "2,001.A/a.jpg,2,0,1,x"])
    with pytest.raises(InputError, match="0 or 1, got '2'") as err:
        waterbirds.load(tmp_path)
    assert err.value.field == "row 3 (img_id 2): y"
    _write(tmp_path, ["1,001.A/a.jpg,0,5,1,x"])
    with pytest.raises(InputError, match="split"):
        waterbirds.load(tmp_path)
    _write(tmp_path, ["7,001.A/missing.jpg,0,0,1,x"])
    with pytest.raises(InputError, match="missing.jpg is missing") as err:
        waterbirds.load(tmp_path)
    assert "img_id 7" in err.value.field
    with pytest.raises(ValueError):
        waterbirds.load(tmp_path, "dev")
