"""The shapes world generator: determinism, held-out combinations, captions, drawn objects, the make-shapes verb."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from clipxai.commands import make_shapes
from clipxai.data import png, shapes
from clipxai.data.images import read_rgb
from clipxai.errors import InputError


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_in_every_file(tmp_path):
    config = shapes.ShapesConfig(seed=3)
    shapes.write_coco_png(tmp_path / "a", config, n_train=10, n_val=8, progress=False)
    shapes.write_coco_png(tmp_path / "b", config, n_train=10, n_val=8, progress=False)
    first, second = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert len(first) == 2 * (10 + 8) + 2 * 3 + 1  # jpg+png per image; 3 JSON per split; shapes_world.json
    assert first == second
    shapes.write_coco_png(tmp_path / "c", shapes.ShapesConfig(seed=4), n_train=10, n_val=8, progress=False)
    other = _tree_bytes(tmp_path / "c")
    assert first.keys() == other.keys()
    assert first["images/train2017/000000000001.jpg"] != other["images/train2017/000000000001.jpg"]


def test_an_image_does_not_depend_on_how_many_are_written(tmp_path):
    config = shapes.ShapesConfig(seed=1)
    shapes.write_coco_png(tmp_path / "few", config, n_train=3, n_val=2, progress=False)
    shapes.write_coco_png(tmp_path / "many", config, n_train=7, n_val=5, progress=False)
    for rel in ("images/train2017/000000000003.jpg", "annotations/panoptic_segmentation/val2017/001000000002.png"):
        assert (tmp_path / "few" / rel).read_bytes() == (tmp_path / "many" / rel).read_bytes()


def test_held_out_combinations_never_in_train_and_all_in_eval(tmp_path):
    config = shapes.ShapesConfig(seed=0)
    train_names = {o.name for i in range(600) for o in shapes.scene_for_coco(config, "train", i).objects}
    assert not train_names & set(config.held_out)
    assert train_names == set(config.train_combinations)  # every other combination is trained on
    # even a tiny eval split holds every held-out combination
    shapes.write_coco_png(tmp_path, config, n_train=40, n_val=len(config.held_out), progress=False)
    val_names = {c for e in png.load(tmp_path, "val") for c in e.categories}
    assert set(config.held_out) <= val_names
    written_train = {c for e in png.load(tmp_path, "train") for c in e.categories}
    assert not written_train & set(config.held_out)


def test_objects_are_distinct_mostly_visible_and_painted_in_their_colour():
    config = shapes.ShapesConfig(seed=5)
    counts = {1: 0, 2: 0, 3: 0}
    for i in range(200):
        scene = shapes.scene_for_coco(config, "val", i)
        names = [o.name for o in scene.objects]
        assert len(names) == len(set(names))
        counts[len(names)] += 1
        for k, obj in enumerate(scene.objects):
            visible = scene.instances == k + 1
            assert visible.sum() == obj.visible >= config.min_visible * obj.pixels > 0
            mean = scene.image[visible].astype(float).mean(axis=0)
            assert np.abs(mean - np.array(shapes.COLOURS[obj.colour])).max() < 30, (obj.name, mean)
    assert 0.2 < counts[1] / 200 < 0.4  # single_fraction 0.3 of eval images
    assert counts[3] > 20


def test_binding_images_share_a_colour_or_a_shape_often():
    def shared_fraction(config):
        multi = [s for s in (shapes.scene_for_coco(config, "train", i) for i in range(300)) if len(s.objects) > 1]
        shared = [s for s in multi if len({o.colour for o in s.objects}) < len(s.objects)
                  or len({o.shape for o in s.objects}) < len(s.objects)]
        return len(shared) / len(multi)

    # by chance alone about half of the multi-object images share an attribute; the default makes it 3 in 4
    assert shared_fraction(shapes.ShapesConfig(share_probability=0.5)) > 0.65
    assert shared_fraction(shapes.ShapesConfig(share_probability=0.0)) < 0.55
    assert shared_fraction(shapes.ShapesConfig(share_probability=1.0)) == 1.0


def test_captions_name_every_object_and_fit_a_16_token_context():
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    config = shapes.ShapesConfig(seed=2)
    scenes = [shapes.scene_for_coco(config, "train", i) for i in range(300)]
    for scene in scenes:
        phrases = [text for text, k in scene.segments if k is not None]
        assert sorted(phrases) == sorted(o.phrase for o in scene.objects)
        assert " ".join(text for text, _ in scene.segments) == scene.caption
    words = {w for s in scenes for w in s.caption.split()} | set(shapes.COLOURS) | set(shapes.SHAPES)
    assert all(len(tokenizer.encode(w)) == 1 for w in words), words
    longest = max((s.caption for s in scenes), key=lambda c: len(c.split()))
    assert len(longest.split()) >= 11  # three objects were drawn somewhere
    tokens = tokenizer([longest], context_length=77)[0]
    assert int((tokens != 0).sum()) <= 16


def test_config_rejects_bad_held_out_and_sizes():
    with pytest.raises(ValueError, match="not '<colour> <shape>'"):
        shapes.ShapesConfig(held_out=("violet circle",))
    with pytest.raises(ValueError, match="no training combination with colour 'red'"):
        shapes.ShapesConfig(held_out=tuple(f"red {s}" for s in shapes.SHAPES))
    with pytest.raises(ValueError, match="image_size"):
        shapes.ShapesConfig(image_size=16)
    assert shapes.parse_held_out(" Red Star, blue cross ,") == ("red star", "blue cross")


def test_image_size_is_configurable(tmp_path):
    config = shapes.ShapesConfig(seed=0, image_size=96)
    shapes.write_coco_png(tmp_path, config, n_train=2, n_val=2, progress=False)
    assert read_rgb(tmp_path / "images/val2017/001000000001.jpg").shape == (96, 96, 3)
    world = json.loads((tmp_path / "shapes_world.json").read_text())
    assert world["config"]["image_size"] == 96 and len(world["classes"]) == 30


def _parse(argv):
    parser = argparse.ArgumentParser()
    make_shapes.add_arguments(parser)
    return parser.parse_args(argv)


def test_make_shapes_verb_writes_the_data_set(tmp_path, capsys):
    args = _parse(["--out", str(tmp_path), "--seed", "7", "--n-train", "5", "--n-val", "6",
                   "--held-out", "red circle, blue star"])
    assert make_shapes.run(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["splits"]["val2017"]["images"] == 6
    dataset = png.load(tmp_path, "val")
    assert dataset.n_narratives == 6
    assert {"red circle", "blue star"} <= {c for e in dataset for c in e.categories}


def test_make_shapes_verb_reports_bad_flags_as_input_errors(tmp_path):
    with pytest.raises(InputError, match="--held-out"):
        make_shapes.run(_parse(["--out", str(tmp_path), "--held-out", "red blob"]))
    with pytest.raises(InputError, match="--image-size"):
        make_shapes.run(_parse(["--out", str(tmp_path), "--image-size", "8"]))


@pytest.mark.parametrize("fmt", ["voc", "imagenet-seg", "waterbirds", "imagenet"])
def test_make_shapes_verb_writes_every_format_its_reader_reads(tmp_path, fmt, capsys):
    from clipxai.data import imagenet, imagenet_seg, voc, waterbirds

    args = _parse(["--out", str(tmp_path), "--format", fmt, "--n-train", "4", "--n-val", "30", "--n-test", "8"])
    assert make_shapes.run(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["format"] == fmt
    if fmt == "voc":
        assert len(voc.load(tmp_path, "train")) == 4 and len(voc.load(tmp_path, "val")) == 30
    elif fmt == "imagenet-seg":
        assert len(imagenet_seg.load(tmp_path)) == 30
    elif fmt == "waterbirds":
        assert [len(waterbirds.load(tmp_path, s)) for s in ("train", "val", "test")] == [4, 30, 8]
    else:
        assert imagenet.verify(tmp_path, expected_images=30, expected_classes=30, require_wnids=False) == []


def test_make_shapes_writes_the_png_benchmark_layout_with_a_background_stuff_segment(tmp_path, capsys):
    assert make_shapes.run(_parse(["--out", str(tmp_path / "a"), "--n-train", "2", "--n-val", "3"])) == 0
    pngs = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a/annotations").rglob("*.png"))
    assert pngs == [f"annotations/panoptic_segmentation/train2017/{i:012d}.png" for i in (1, 2)] + [
        f"annotations/panoptic_segmentation/val2017/{1_000_000_000 + i:012d}.png" for i in (1, 2, 3)]
    categories = json.loads((tmp_path / "a/annotations/panoptic_val2017.json").read_text())["categories"]
    assert any(c["isthing"] == 0 for c in categories)
    # --no-background-segment: things only; the grounding entries and their masks are the same either way
    assert make_shapes.run(_parse(["--out", str(tmp_path / "b"), "--n-train", "2", "--n-val", "3",
                                   "--no-background-segment"])) == 0
    categories = json.loads((tmp_path / "b/annotations/panoptic_val2017.json").read_text())["categories"]
    assert all(c["isthing"] == 1 for c in categories)
    with_stuff, things_only = png.load(tmp_path / "a", "val"), png.load(tmp_path / "b", "val")
    assert [e.entry_id for e in with_stuff] == [e.entry_id for e in things_only] and len(with_stuff) >= 3
    for a, b in zip(with_stuff, things_only):
        assert (a.utterance, a.segment_ids, a.categories) == (b.utterance, b.segment_ids, b.categories)
        assert np.array_equal(with_stuff.mask(a), things_only.mask(b))
    for rel in ("images/val2017/001000000001.jpg", "annotations/png_coco_val2017.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
