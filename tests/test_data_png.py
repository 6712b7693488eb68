"""The PNG loader on the shapes world (round trip) and on a hand-made file in the released format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipxai.data import coco_panoptic, png, shapes
from clipxai.errors import InputError

PERSON, DOG, OTHER_DOG, GRASS = 3290192, 1234567, 7654321, 5931152


def _write_real_format(root: Path, png_folder: str = "panoptic_segmentation/val2017") -> dict[int, np.ndarray]:
    """Two COCO-like images written with PIL and hand-written JSON in the released field types."""
    maps = {}
    ids = np.zeros((30, 40), dtype=np.int64)
    ids[5:15, 5:15] = PERSON
    ids[10:25, 20:35] = DOG
    ids[25:30, :] = GRASS
    maps[139] = ids
    ids = np.zeros((24, 32), dtype=np.int64)
    ids[2:10, 2:10] = DOG
    ids[12:20, 4:12] = PERSON
    ids[10:22, 20:30] = OTHER_DOG
    maps[285] = ids
    (root / "images/val2017").mkdir(parents=True)
    (root / "annotations" / png_folder).mkdir(parents=True)
    images, annotations = [], []
    categories = {PERSON: 1, DOG: 18, OTHER_DOG: 18, GRASS: 125}
    for image_id, ids in maps.items():
        h, w = ids.shape
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(root / f"images/val2017/{image_id:012d}.jpg")
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(root / "annotations" / png_folder / f"{image_id:012d}.png")
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w, "height": h,
                       "license": 1, "coco_url": "", "date_captured": "", "flickr_url": ""})
        segments_info = []
        for sid in np.unique(ids[ids > 0]).tolist():
            ys, xs = np.nonzero(ids == sid)
            segments_info.append({"id": sid, "category_id": categories[sid], "iscrowd": 0, "area": len(xs),
                                  "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]})
        annotations.append({"image_id": image_id, "file_name": f"{image_id:012d}.png",
                            "segments_info": segments_info})
    panoptic = {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "person", "supercategory": "person", "isthing": 1, "color": [220, 20, 60]},
        {"id": 18, "name": "dog", "supercategory": "animal", "isthing": 1, "color": [0, 0, 142]},
        {"id": 125, "name": "grass-merged", "supercategory": "plant", "isthing": 0, "color": [0, 255, 0]}]}
    (root / "annotations/panoptic_val2017.json").write_text(json.dumps(panoptic))

    def seg(utterance, ids=(), noun=None, plural=False):
        return {"utterance": utterance, "segment_ids": [str(i) for i in ids],
                "noun": bool(ids) if noun is None else noun, "plural": plural}

    narratives = [
        {"image_id": "139", "annotator_id": 12,
         "caption": "In this image we can see a person and a dog. A person is standing on the grass.",
         "segments": [seg("In this image we can see"), seg("a person", [PERSON]), seg("and"), seg("a dog", [DOG]),
                      seg("."), seg("A person", [PERSON]), seg("is standing on"), seg("the grass", [GRASS]),
                      seg(".")]},
        {"image_id": "285", "annotator_id": 3, "caption": "a dog near a person near a dog and  some  sky",
         "segments": [seg("a dog", [DOG]), seg("near"), seg("a person", [PERSON]), seg("near"),
                      seg("a dog", [OTHER_DOG]), seg("and"), seg("some sky", [], noun=True)]},
        {"image_id": "139", "annotator_id": 40, "caption": "two things on grass",
         "segments": [seg("two things", [PERSON, DOG], plural=True), seg("on grass")]},
    ]
    (root / "annotations/png_coco_val2017.json").write_text(json.dumps(narratives))
    return maps


def test_real_format_file_reads_with_released_types(tmp_path):
    maps = _write_real_format(tmp_path)
    data = png.load(tmp_path, "val")
    assert data.n_narratives == 3
    assert [e.entry_id for e in data] == ["139_0_1", "139_0_3", "139_0_5", "139_0_7", "285_1_0", "285_1_2",
                                          "285_1_4", "139_2_0"]
    by_id = {e.entry_id: e for e in data}
    for entry in data:
        assert entry.image_id in (139, 285) and all(isinstance(i, int) for i in entry.segment_ids)
        assert entry.image_path == tmp_path / f"images/val2017/{entry.image_id:012d}.jpg"
        start, end = entry.char_span
        assert entry.caption[start:end] == entry.utterance
        expected = np.isin(maps[entry.image_id], entry.segment_ids)
        assert np.array_equal(data.mask(entry), expected) and expected.any()
    # the second "a dog" is the other dog, later in the caption; "A person" is the second person mention
    assert by_id["285_1_0"].char_span == (0, 5)
    assert by_id["285_1_4"].char_span == (25, 30) and by_id["285_1_4"].segment_ids == [OTHER_DOG]
    assert by_id["139_0_5"].char_span[0] == 45
    assert by_id["139_0_7"].categories == ["grass-merged"] and by_id["139_0_7"].isthing == [False]
    plural = by_id["139_2_0"]
    assert plural.plural and plural.categories == ["person", "dog"]
    assert plural.utterances == ("two things", "on grass")
    assert data.unlocated == []


def test_ids_stored_as_ints_read_the_same(tmp_path):
    _write_real_format(tmp_path)
    path = tmp_path / "annotations/png_coco_val2017.json"
    narratives = json.loads(path.read_text())
    for narrative in narratives:
        narrative["image_id"] = int(narrative["image_id"])
        for segment in narrative["segments"]:
            segment["segment_ids"] = [int(i) for i in segment["segment_ids"]]
    path.write_text(json.dumps(narratives))
    assert [e.segment_ids for e in png.load(tmp_path)] == [[PERSON], [DOG], [PERSON], [GRASS], [DOG], [PERSON],
                                                          [OTHER_DOG], [PERSON, DOG]]


def test_shapes_world_round_trips_through_the_loader(tmp_path):
    config = shapes.ShapesConfig(seed=11)
    shapes.write_coco_png(tmp_path, config, n_train=4, n_val=12, progress=False)
    data = png.load(tmp_path, "val")
    scenes = [shapes.scene_for_coco(config, "val", i) for i in range(12)]
    assert len(data) == sum(len(s.objects) for s in scenes)
    entries = iter(data)
    for index, scene in enumerate(scenes):
        image_id = shapes.coco_image_id("val", index)
        for s_index, (text, k) in enumerate(scene.segments):
            if k is None:
                continue
            entry = next(entries)
            obj = scene.objects[k]
            assert entry.entry_id == f"{image_id}_{index}_{s_index}"
            assert entry.image_id == image_id and entry.caption == scene.caption
            assert entry.utterance == obj.phrase == text and entry.categories == [obj.name]
            assert entry.segment_ids == [shapes.segment_id(shapes.category_id(obj.name))]
            start, end = entry.char_span
            assert scene.caption[start:end] == obj.phrase
            assert np.array_equal(data.mask(entry), scene.instances == k + 1)
            assert np.array_equal(np.asarray(data.image(entry)).shape, scene.image.shape)
    # panoptic JSON areas and boxes describe the drawn pixels
    panoptic = json.loads((tmp_path / "annotations/panoptic_val2017.json").read_text())
    things = {c["id"] for c in panoptic["categories"] if c["isthing"]}
    first = panoptic["annotations"][0]["segments_info"]
    assert sorted(s["area"] for s in first if s["category_id"] in things) == sorted(
        o.visible for o in scenes[0].objects)
    # the background stuff segment covers every other pixel
    assert sum(s["area"] for s in first) == config.image_size ** 2
    narratives = json.loads((tmp_path / "annotations/png_coco_val2017.json").read_text())
    assert isinstance(narratives[0]["image_id"], str)
    assert all(isinstance(i, str) for s in narratives[0]["segments"] for i in s["segment_ids"])
    assert set(narratives[0]["segments"][0]) == {"utterance", "segment_ids", "noun", "plural"}


def test_background_segment_is_a_stuff_category_outside_the_captions(tmp_path):
    config = shapes.ShapesConfig(seed=2)  # the default world
    shapes.write_coco_png(tmp_path, config, n_train=1, n_val=3, progress=False)
    split = coco_panoptic.load(tmp_path, "val")
    image_id = shapes.coco_image_id("val", 0)
    ids = split.read_segment_ids(image_id)
    assert (ids > 0).all()  # objects plus background cover the image
    stuff = [s for s in split.segments[image_id].values() if not split.categories[s["category_id"]]["isthing"]]
    assert len(stuff) == 1
    object_words = set(shapes.COLOURS) | set(shapes.SHAPES)
    assert not set(split.categories[stuff[0]["category_id"]]["name"].split()) & object_words
    assert all(e.isthing == [True] for e in png.load(tmp_path, "val"))


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_field_names_file_entry_and_field(tmp_path):
    _write_real_format(tmp_path)
    path = tmp_path / "annotations/png_coco_val2017.json"
    _edit(path, lambda d: d[1].pop("caption"))
    with pytest.raises(InputError) as err:
        png.load(tmp_path)
    assert err.value.path == str(path) and "narratives[1]" in err.value.field and "caption" in err.value.field
    _write_real_format(tmp_path / "b")
    path = tmp_path / "b/annotations/png_coco_val2017.json"
    _edit(path, lambda d: d[0]["segments"][3].pop("segment_ids"))
    with pytest.raises(InputError, match=r"narratives\[0\].*segments\[3\]\.segment_ids"):
        png.load(tmp_path / "b")


def test_image_id_unknown_to_the_panoptic_json(tmp_path):
    _write_real_format(tmp_path)
    path = tmp_path / "annotations/png_coco_val2017.json"
    _edit(path, lambda d: d[2].update(image_id="999"))
    with pytest.raises(InputError, match=r"narratives\[2\].*image_id.*'999'") as err:
        png.load(tmp_path)
    assert err.value.path == str(path)


def test_segment_id_missing_from_json_or_png(tmp_path):
    _write_real_format(tmp_path)
    path = tmp_path / "annotations/png_coco_val2017.json"
    _edit(path, lambda d: d[0]["segments"][3].update(segment_ids=["42"]))
    with pytest.raises(InputError, match=r"segments\[3\]\.segment_ids.*got 42"):
        png.load(tmp_path)
    # listed in segments_info but absent from the PNG pixels: found when the mask is built
    _write_real_format(tmp_path / "b")
    _edit(tmp_path / "b/annotations/panoptic_val2017.json",
          lambda d: d["annotations"][0]["segments_info"].append({"id": 42, "category_id": 1, "iscrowd": 0,
                                                                  "area": 1, "bbox": [0, 0, 1, 1]}))
    _edit(tmp_path / "b/annotations/png_coco_val2017.json",
          lambda d: d[0]["segments"][3].update(segment_ids=["42"]))
    data = png.load(tmp_path / "b")
    entry = next(e for e in data if e.entry_id == "139_0_3")
    with pytest.raises(InputError) as err:
        data.mask(entry)
    assert err.value.path.endswith("000000000139.png") and "139_0_3" in err.value.field
    assert "42" in err.value.expected


def test_panoptic_png_of_another_size_than_the_image(tmp_path):
    _write_real_format(tmp_path)
    png_path = tmp_path / "annotations/panoptic_segmentation/val2017/000000000285.png"
    Image.open(png_path).resize((16, 12)).save(png_path)
    data = png.load(tmp_path)
    with pytest.raises(InputError, match="size") as err:
        data.mask(data[4])
    assert err.value.path == str(png_path) and "285" in err.value.field
    # the JSON agrees with the PNG but the JPEG does not
    _write_real_format(tmp_path / "b")
    jpg = tmp_path / "b/images/val2017/000000000139.jpg"
    Image.new("RGB", (41, 30)).save(jpg)
    data = png.load(tmp_path / "b")
    with pytest.raises(InputError, match="000000000139.jpg"):
        data.mask(data[0])


def test_coco_folder_layout_preferred_and_missing_files_reported(tmp_path):
    _write_real_format(tmp_path, png_folder="panoptic_val2017")
    assert len(png.load(tmp_path)) == 8
    shutil.rmtree(tmp_path / "annotations/panoptic_val2017")
    data = png.load(tmp_path)
    with pytest.raises(InputError, match="existing image"):
        data.mask(data[0])
    (tmp_path / "annotations/png_coco_val2017.json").unlink()
    with pytest.raises(InputError, match="png_coco_val2017.json"):
        png.load(tmp_path)


def test_still_zipped_panoptic_pngs_are_pointed_out(tmp_path):
    _write_real_format(tmp_path, png_folder="panoptic_val2017")
    shutil.make_archive(str(tmp_path / "annotations/panoptic_val2017"), "zip", tmp_path / "annotations",
                        "panoptic_val2017")
    shutil.rmtree(tmp_path / "annotations/panoptic_val2017")
    data = png.load(tmp_path)
    with pytest.raises(InputError, match="panoptic_val2017.zip is still packed"):
        data.mask(data[0])


def test_shapes_world_reads_the_way_the_png_benchmark_loader_reads_it(tmp_path):
    """The published grounding evaluation's loader: plain joins under the data root, the panoptic PNG from
    annotations/panoptic_segmentation/<split>2017/<12-digit id>.png, ids R + 256 G + 256^2 B, an entry's mask the
    union of its segment ids; and what COCO's panoptic evaluation (pq_compute) needs: a stuff category with
    segments (it averages PQ over stuff categories and divides by their number)."""
    from skimage import io

    config = shapes.ShapesConfig(seed=4)
    shapes.write_coco_png(tmp_path, config, n_train=1, n_val=6, progress=False)
    split = "val2017"
    annotations = tmp_path / "annotations"
    panoptic = json.loads((annotations / f"panoptic_{split}.json").read_text())
    info_by_id = {i["id"]: i for i in panoptic["images"]}
    narratives = json.loads((annotations / f"png_coco_{split}.json").read_text())
    data = png.load(tmp_path, "val")
    ours = {(e.image_id, e.segment_index): e for e in data}
    checked = 0
    for narrative in narratives:
        image_id = int(narrative["image_id"])
        assert (tmp_path / "images" / split / f"{narrative['image_id'].zfill(12)}.jpg").is_file()
        rgb = io.imread(annotations / "panoptic_segmentation" / split / f"{image_id:012d}.png").astype(np.int64)
        ids = rgb[:, :, 0] + rgb[:, :, 1] * 256 + rgb[:, :, 2] * 256 ** 2
        assert ids.shape == (info_by_id[image_id]["height"], info_by_id[image_id]["width"])
        for s_index, segment in enumerate(narrative["segments"]):
            if not segment["segment_ids"]:
                continue
            mask = np.zeros(ids.shape, dtype=bool)
            for segment_id in segment["segment_ids"]:
                mask[ids == int(segment_id)] = True
            assert mask.any()
            assert np.array_equal(mask, data.mask(ours[image_id, s_index]))
            checked += 1
    assert checked == len(data) > 6
    stuff = {c["id"] for c in panoptic["categories"] if c["isthing"] == 0}
    stuff_segments = [s for a in panoptic["annotations"] for s in a["segments_info"] if s["category_id"] in stuff]
    assert stuff and len(stuff_segments) == len(panoptic["annotations"])  # one background segment per image
