"""The shapes world: a synthetic, seeded image-caption world that a tiny CLIP can learn on a CPU in minutes.

Each image (default 64 px, square) has a textured, muted background (noise, gradient, stripes, checks, dots) and
1-3 flat-coloured objects: 5 shapes (circle, square, triangle, star, cross) x 6 colours (red, green, blue, yellow,
purple, pink) = 30 (colour, shape) combinations, in 3 sizes, slightly rotated. The objects of one image have
distinct (colour, shape) combinations; they may overlap a little, but each keeps at least ``min_visible`` of its
pixels. The caption names every object: "a red circle and a blue square" ("and", "with", "next to" join phrases);
every word is one BPE token, the longest caption (3 objects) has 13 words, so it fits a 16-token context. The
background is not named by default (the measured baseline was trained that way).

What the tiny CLIP needs to learn *binding* (which colour goes with which shape), and how the world provides it:

* Colour and shape are independent: combinations are drawn uniformly (minus the held-out ones in training), so
  neither word predicts the other and a model cannot guess the shape from the colour.
* Shared attributes inside one image: with probability ``share_probability`` a further object copies the colour
  or the shape of an object already chosen ("a red circle and a red square", "a red circle and a blue circle").
  A bag of colour words plus a bag of shape words cannot tell such an image from its attribute-swapped caption
  ("a red square and a blue circle" for a red circle + blue square): only a representation that binds colour to
  shape can. Pairing these images with swapped captions as hard negatives (the toy trainer's ``hard_negatives``)
  turns that into a training signal; without it the loss is almost satisfied by bags of words.
* Held-out combinations (``held_out``, default red star, blue cross, green triangle, yellow circle) never occur in
  the train split, while their colour and their shape each occur with other partners, so the eval split can test
  composition. The eval split draws from all 30 combinations and its first ``len(held_out)`` images each show one
  held-out combination, so every one of them is present whatever the split size.
* A fraction (``single_fraction``) of eval images has one object: zero-shot classification "a {colour} {shape}".
* Object order in the caption is random (not the drawing order), so caption position says nothing about depth.

Everything random is drawn from ``clipxai.seeding.rng(seed, "shapes", purpose, split, index)``: image ``i`` is the
same whatever the number of images asked for, and the same seed gives byte-identical files.

Writers emit the world in each real data-set format: :func:`write_coco_png` (COCO panoptic + PNG narratives),
:func:`write_voc`, :func:`write_imagenet_seg`, :func:`write_waterbirds`, :func:`write_imagenet`.
"""

from __future__ import annotations

import colorsys
import functools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from clipxai import seeding
from clipxai.data import coco_panoptic, png
from clipxai.data.images import encode_jpeg, write_bytes
from clipxai.io import write_json

log = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 38, 38),
    "green": (34, 170, 60),
    "blue": (40, 84, 228),
    "yellow": (238, 214, 36),
    "purple": (146, 58, 200),
    "pink": (244, 112, 186),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COMBINATIONS: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # category id = index + 1
BACKGROUNDS: tuple[str, ...] = ("noise", "gradient", "stripes", "checks", "dots")
SIZES: dict[str, float] = {"small": 0.09, "medium": 0.13, "large": 0.17}  # object radius / image side
CONNECTORS: tuple[str, ...] = ("and", "and", "with", "next to")
# Pink rather than orange: every colour word then takes the article "a", so captions, prompts ("a {colour}
# {shape}") and plain English agree.
DEFAULT_HELD_OUT: tuple[str, ...] = ("red star", "blue cross", "green triangle", "yellow circle")

# Waterbirds-style set: two shapes play the bird classes (y), two backgrounds the places. The place words are
# disjoint from colour and shape words, so prompts such as "a circle on water" stay unambiguous.
BIRD_SHAPES: tuple[str, str] = ("cross", "circle")        # y = 0 "landbird", y = 1 "waterbird"
PLACES: tuple[str, str] = ("sand", "water")               # place = 0 land, place = 1 water
BIRD_COLOURS: tuple[str, ...] = ("red", "green", "purple")  # contrast with both sand and water


@dataclass(frozen=True)
class ShapesConfig:
    """Parameters of the world (not of one data set's size); validated on construction."""

    seed: int = 0
    image_size: int = 64
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    objects_probabilities: tuple[float, float, float] = (0.25, 0.40, 0.35)  # P(1, 2, 3 objects)
    single_fraction: float = 0.3          # eval images with exactly one object (zero-shot classification)
    share_probability: float = 0.5        # a further object shares colour or shape with an earlier one
    min_visible: float = 0.75             # each object keeps at least this fraction of its pixels
    noise_sigma: float = 5.0              # pixel noise over the whole image (grey levels)
    # the background is a stuff segment (never in captions): panoptic tools (pq_compute) need a stuff category
    background_segment: bool = True

    def __post_init__(self):
        object.__setattr__(self, "held_out", tuple(_normalise_combination(c) for c in self.held_out))
        if not 32 <= self.image_size <= 512:
            raise ValueError(f"image_size must be between 32 and 512 pixels, got {self.image_size}")
        if len(set(self.held_out)) != len(self.held_out):
            raise ValueError(f"held_out lists a combination twice: {', '.join(self.held_out)}")
        train = [c for c in COMBINATIONS if c not in self.held_out]
        for colour in COLOURS:
            if not any(c.split(" ")[0] == colour for c in train):
                raise ValueError(f"held_out leaves no training combination with colour {colour!r}")
        for shape in SHAPES:
            if not any(c.split(" ")[1] == shape for c in train):
                raise ValueError(f"held_out leaves no training combination with shape {shape!r}")
        probabilities = np.asarray(self.objects_probabilities, dtype=float)
        if probabilities.shape != (3,) or (probabilities < 0).any() or not np.isclose(probabilities.sum(), 1):
            raise ValueError("objects_probabilities must be 3 non-negative numbers summing to 1")
        for name in ("single_fraction", "share_probability", "min_visible"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def train_combinations(self) -> tuple[str, ...]:
        return tuple(c for c in COMBINATIONS if c not in self.held_out)


def _normalise_combination(text: str) -> str:
    words = text.strip().lower().split()
    if len(words) != 2 or words[0] not in COLOURS or words[1] not in SHAPES:
        raise ValueError(f"{text!r} is not '<colour> <shape>' with colour in {', '.join(COLOURS)} "
                         f"and shape in {', '.join(SHAPES)}")
    return " ".join(words)


def parse_held_out(text: str) -> tuple[str, ...]:
    """``"red star, blue cross"`` -> ``("red star", "blue cross")`` (validated; empty text = none held out)."""
    return tuple(_normalise_combination(part) for part in text.split(",") if part.strip())


def category_id(combination: str) -> int:
    """COCO category id of a combination: 1..30 in colour-major order."""
    return COMBINATIONS.index(combination) + 1


def _category_colour(index: int) -> tuple[int, int, int]:
    # Distinct for index < 256 (odd multipliers are invertible mod 256); no channel is ever 0 for index 1..40,
    # so a segment id (= this colour's R + 256 G + 256^2 B) spans all three bytes of a PNG pixel.
    return ((index * 53 + 17) % 256, (index * 97 + 101) % 256, (index * 29 + 151) % 256)


def categories(config: ShapesConfig | None = None) -> list[dict]:
    """COCO panoptic categories: one thing per (colour, shape), plus a stuff per background when asked for."""
    cats = [{"id": i + 1, "name": name, "supercategory": name.split(" ")[1], "isthing": 1,
             "color": list(_category_colour(i + 1))} for i, name in enumerate(COMBINATIONS)]
    if config is not None and config.background_segment:
        base = len(COMBINATIONS)
        cats += [{"id": base + j + 1, "name": f"{kind} background", "supercategory": "background", "isthing": 0,
                  "color": list(_category_colour(base + j + 1))} for j, kind in enumerate(BACKGROUNDS)]
    return cats


def segment_id(category: int) -> int:
    """Panoptic segment id of a category's segment: each category occurs at most once per image."""
    return int(coco_panoptic.rgb2id(np.array(_category_colour(category))))


@dataclass
class ShapeObject:
    colour: str
    shape: str
    size: str
    centre: tuple[float, float]   # (x, y) in pixels
    radius: float                 # pixels
    rotation: float               # degrees
    pixels: int = 0               # drawn pixels
    visible: int = 0              # pixels left after later objects are drawn over it

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def phrase(self) -> str:
        return f"a {self.colour} {self.shape}"


@dataclass
class Scene:
    """One rendered image with everything needed to write any format."""

    image: np.ndarray                  # uint8 [S, S, 3]
    instances: np.ndarray              # uint8 [S, S]: 0 background, k + 1 = objects[k] (visible pixels)
    objects: list[ShapeObject]
    background: str
    caption: str = ""
    segments: list[tuple[str, int | None]] = field(default_factory=list)  # (utterance, object index or None)


def _polygon(shape: str, cx: float, cy: float, r: float, rotation: float) -> list[tuple[float, float]]:
    if shape == "square":
        h = 0.85 * r
        points = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        points = list(zip(1.2 * r * np.cos(angles), 1.2 * r * np.sin(angles)))
    elif shape == "star":
        angles = np.deg2rad(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.2 * r, 0.48 * r)
        points = list(zip(radii * np.cos(angles), radii * np.sin(angles)))
    elif shape == "cross":
        w, length = 0.36 * r, 1.05 * r
        points = [(-w, -length), (w, -length), (w, -w), (length, -w), (length, w), (w, w), (w, length),
                  (-w, length), (-w, w), (-length, w), (-length, -w), (-w, -w)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    theta = np.deg2rad(rotation)
    cos, sin = np.cos(theta), np.sin(theta)
    return [(float(cx + x * cos - y * sin), float(cy + x * sin + y * cos)) for x, y in points]


def shape_mask(shape: str, centre: tuple[float, float], radius: float, rotation: float, size: int) -> np.ndarray:
    """``bool [size, size]``: the pixels a shape covers (no anti-aliasing, so pixels and masks agree exactly)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = centre
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, rotation), fill=1)
    return np.asarray(canvas, dtype=bool)


def _muted(rng: np.random.Generator, hue: float | None = None, sat: tuple = (0.0, 0.3),
           val: tuple = (0.3, 0.75)) -> np.ndarray:
    h = rng.random() if hue is None else hue
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)), dtype=np.float32) * 255


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False  # shared between calls
    return ys, xs


def background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 ``[size, size, 3]`` texture (0..255) of the given kind, in muted (low-saturation) colours."""
    ys, xs = _grid(size)
    if kind == "sand":  # warm, blotchy
        tone_a = _muted(rng, hue=rng.uniform(0.08, 0.12), sat=(0.35, 0.5), val=(0.7, 0.85))
        tone_b = _muted(rng, hue=rng.uniform(0.07, 0.11), sat=(0.4, 0.6), val=(0.5, 0.65))
        t = _smooth_field(rng, size, int(rng.integers(6, 12)))
    elif kind == "water":  # blue, horizontal waves
        tone_a = _muted(rng, hue=rng.uniform(0.55, 0.6), sat=(0.5, 0.7), val=(0.45, 0.6))
        tone_b = _muted(rng, hue=rng.uniform(0.53, 0.58), sat=(0.3, 0.5), val=(0.65, 0.8))
        period = size / rng.uniform(5, 9)
        wave = ys + 1.5 * np.sin(2 * np.pi * xs / (size / rng.uniform(1.5, 3)) + rng.uniform(0, 2 * np.pi))
        t = (np.sin(2 * np.pi * wave / period) > 0.3).astype(np.float32)
    else:
        tone_a, tone_b = _muted(rng), _muted(rng)
        theta = rng.uniform(0, np.pi)
        projection = xs * np.cos(theta) + ys * np.sin(theta)
        if kind == "noise":
            t = _smooth_field(rng, size, int(rng.integers(4, 10)))
        elif kind == "gradient":
            t = (projection - projection.min()) / max(float(np.ptp(projection)), 1e-6)
        elif kind == "stripes":
            period = size / rng.uniform(4, 10)
            t = (np.floor(projection / (period / 2)) % 2).astype(np.float32)
        elif kind == "checks":
            cell = size / rng.uniform(4, 9)
            t = ((np.floor(xs / cell) + np.floor(ys / cell)) % 2).astype(np.float32)
        elif kind == "dots":
            spacing = size / rng.uniform(5, 9)
            dx = (xs % spacing) - spacing / 2
            dy = (ys % spacing) - spacing / 2
            t = (dx * dx + dy * dy < (0.25 * spacing) ** 2).astype(np.float32)
        else:
            raise ValueError(f"unknown background kind {kind!r}")
    return tone_a[None, None, :] * (1 - t[..., None]) + tone_b[None, None, :] * t[..., None]


def _choose_combinations(rng: np.random.Generator, n: int, allowed: tuple[str, ...], share_probability: float,
                         first: str | None = None) -> list[str]:
    chosen = [first if first is not None else allowed[int(rng.integers(len(allowed)))]]
    while len(chosen) < n:
        free = [c for c in allowed if c not in chosen]
        candidates = free
        if rng.random() < share_probability:
            anchor_colour, anchor_shape = chosen[int(rng.integers(len(chosen)))].split(" ")
            same_colour = rng.random() < 0.5
            candidates = [c for c in free if (c.split(" ")[0] == anchor_colour if same_colour
                                              else c.split(" ")[1] == anchor_shape)] or free
        chosen.append(candidates[int(rng.integers(len(candidates)))])
    return chosen


def _place(rng: np.random.Generator, names: list[str], sizes: list[str], image_size: int,
           min_visible: float) -> tuple[list[ShapeObject], np.ndarray]:
    """Place objects one by one (later ones on top); keep each earlier object at least ``min_visible`` visible."""
    instances = np.zeros((image_size, image_size), dtype=np.uint8)
    objects: list[ShapeObject] = []
    masks: list[np.ndarray] = []
    for name, size in zip(names, sizes):
        colour, shape = name.split(" ")
        for attempt in range(40):
            size_now = size if attempt < 20 else "small"  # crowded: retry smaller before giving up
            radius = SIZES[size_now] * image_size * rng.uniform(0.92, 1.08)
            margin = 1.15 * radius
            centre = (float(rng.uniform(margin, image_size - margin)), float(rng.uniform(margin, image_size - margin)))
            rotation = float(rng.uniform(-20, 20)) if shape != "star" else float(rng.uniform(-36, 36))
            mask = shape_mask(shape, centre, radius, rotation, image_size)
            if mask.sum() < 12:
                continue
            trial = instances.copy()
            trial[mask] = len(objects) + 1
            if all((trial == k + 1).sum() >= min_visible * masks[k].sum() for k in range(len(objects))):
                instances = trial
                masks.append(mask)
                objects.append(ShapeObject(colour, shape, size_now, centre, float(radius), rotation,
                                           pixels=int(mask.sum())))
                break
        # an object that finds no place is left out: the caption only names what is drawn
    for k, obj in enumerate(objects):
        obj.visible = int((instances == k + 1).sum())
    return objects, instances


def _caption(rng: np.random.Generator, objects: list[ShapeObject]) -> tuple[str, list[tuple[str, int | None]]]:
    order = rng.permutation(len(objects)).tolist()
    segments: list[tuple[str, int | None]] = []
    for position, k in enumerate(order):
        if position:
            segments.append((CONNECTORS[int(rng.integers(len(CONNECTORS)))], None))
        segments.append((objects[k].phrase, k))
    return " ".join(text for text, _ in segments), segments


def render_scene(config: ShapesConfig, purpose: str, split: str, index: int, *, train: bool,
                 n_objects: int | None = None, combinations: list[str] | None = None,
                 background_kind: str | None = None, first: str | None = None,
                 allowed: tuple[str, ...] | None = None, sizes: tuple[str, ...] = tuple(SIZES)) -> Scene:
    """Render image ``index`` of ``split`` for ``purpose`` (a format name; it keys the random draws).

    ``train`` excludes the held-out combinations; ``n_objects`` / ``combinations`` / ``background_kind`` /
    ``first`` pin parts of the scene (the other format writers use them), otherwise they are drawn.
    """
    rng = seeding.rng(config.seed, "shapes", purpose, split, index)
    size = config.image_size
    pool = allowed if allowed is not None else (config.train_combinations if train else COMBINATIONS)
    if combinations is None:
        if n_objects is None:
            probabilities = np.asarray(config.objects_probabilities, dtype=float)
            if train:
                n_objects = int(rng.choice(3, p=probabilities)) + 1
            elif rng.random() < config.single_fraction:
                n_objects = 1
            else:  # eval multi-object images: 2 or 3 objects in the training proportions
                multi = probabilities[1:] if probabilities[1:].sum() > 0 else np.array([1.0, 0.0])
                n_objects = int(rng.choice(2, p=multi / multi.sum())) + 2
        combinations = _choose_combinations(rng, n_objects, pool, config.share_probability, first)
    object_sizes = [sizes[int(rng.integers(len(sizes)))] for _ in combinations]
    kind = background_kind or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    pixels = background(kind, rng, size)
    objects, instances = _place(rng, list(combinations), object_sizes, size, config.min_visible)
    for k, obj in enumerate(objects):
        brightness = rng.uniform(0.88, 1.06)
        pixels[instances == k + 1] = np.asarray(COLOURS[obj.colour], dtype=np.float32) * brightness
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(config.noise_sigma)
    image = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    caption, segments = _caption(rng, objects)
    return Scene(image=image, instances=instances, objects=objects, background=kind, caption=caption,
                 segments=segments)


def coco_image_id(split: str, index: int) -> int:
    """Image ids: train 1, 2, ...; val 1000000001, ... (unique across splits, 12 digits at most)."""
    return index + 1 if coco_panoptic.split_name(split) == "train2017" else 1_000_000_000 + index + 1


def scene_for_coco(config: ShapesConfig, split: str, index: int) -> Scene:
    """The scene of image ``index`` of a COCO/PNG split (``train`` or an eval split such as ``val``)."""
    train = coco_panoptic.split_name(split) == "train2017"
    first = None if train or index >= len(config.held_out) else config.held_out[index]
    return render_scene(config, "coco-png", coco_panoptic.split_name(split), index, train=train, first=first)


def _progress(iterable, desc: str, enabled: bool):
    return tqdm(iterable, desc=desc, disable=not enabled, mininterval=2, leave=False)


def write_coco_png(out: str | Path, config: ShapesConfig, n_train: int, n_val: int, eval_split: str = "val",
                   progress: bool = True) -> dict:
    """Write the world as COCO panoptic + Panoptic Narrative Grounding under ``out`` (both splits).

    Per split: JPEG images, panoptic PNGs (``annotations/panoptic_segmentation/<split>2017/``, the Panoptic
    Narrative Grounding layout; the background is a stuff segment), ``panoptic_<split>2017.json``,
    ``png_coco_<split>2017.json`` (one narrative per image; each object phrase is one noun segment with that object's segment id, connectors are
    segments without ids) and ``shapes_<split>2017.json`` (the drawn objects, for analyses and tests). Also
    ``shapes_world.json`` (the world's parameters and class names). JSON files are written after the images.
    """
    out = Path(out)
    cats = categories(config)
    summary = {"format": "coco-png", "root": str(out), "splits": {}}
    for split, count in (("train", n_train), (eval_split, n_val)):
        name = coco_panoptic.split_name(split)
        writer = coco_panoptic.PanopticWriter(out, name, cats, info={
            "description": "clipxai shapes world", "version": "1.0", "year": 2017, "seed": config.seed},
            png_dir=coco_panoptic.PNG_BENCHMARK_DIR)
        narratives, drawn = [], []
        for index in _progress(range(count), f"shapes {name}", progress):
            scene = scene_for_coco(config, name, index)
            image_id = coco_image_id(name, index)
            ids = np.zeros(scene.instances.shape, dtype=np.int32)
            segments = []
            object_segment_ids = []
            for k, obj in enumerate(scene.objects):
                cat = category_id(obj.name)
                sid = segment_id(cat)
                ids[scene.instances == k + 1] = sid
                segments.append((sid, cat))
                object_segment_ids.append(sid)
            if config.background_segment:
                cat = len(COMBINATIONS) + BACKGROUNDS.index(scene.background) + 1
                ids[scene.instances == 0] = segment_id(cat)
                segments.append((segment_id(cat), cat))
            writer.add(image_id, scene.image, ids, segments)
            narratives.append(png.make_narrative(image_id, scene.caption, [
                png.make_segment(text, [] if k is None else [object_segment_ids[k]]) for text, k in scene.segments]))
            drawn.append({"image_id": image_id, "background": scene.background, "caption": scene.caption,
                          "objects": [dict(asdict(obj), name=obj.name, segment_id=object_segment_ids[k],
                                           category_id=category_id(obj.name))
                                      for k, obj in enumerate(scene.objects)]})
        writer.close()
        write_json(out / "annotations" / f"shapes_{name}.json", {"images": drawn})
        png.write_narratives(out, name, narratives)
        n_entries = sum(len(d["objects"]) for d in drawn)
        summary["splits"][name] = {"images": count, "entries": n_entries}
        log.info("shapes %s: %d images, %d grounding entries -> %s", name, count, n_entries, out)
    write_json(out / "shapes_world.json", world_description(config, n_train=n_train, n_val=n_val))
    return summary


def world_description(config: ShapesConfig, **counts) -> dict:
    """The world's parameters and vocabulary, written beside every shapes data set."""
    return {"config": {**asdict(config), "held_out": list(config.held_out)}, "colours": list(COLOURS),
            "shapes": list(SHAPES), "classes": list(COMBINATIONS), "held_out": list(config.held_out),
            "backgrounds": list(BACKGROUNDS), "counts": counts}


def _split_scene(config: ShapesConfig, purpose: str, split: str, index: int, **pins) -> Scene:
    """A scene of a train/eval split with the held-out rule: train never draws held-out combinations; the first
    ``len(held_out)`` eval images each show one of them."""
    train = split == "train"
    first = None if train or index >= len(config.held_out) else config.held_out[index]
    return render_scene(config, purpose, split, index, train=train, first=first, **pins)


def write_voc(out: str | Path, config: ShapesConfig, n_train: int, n_val: int, progress: bool = True) -> dict:
    """The world as PASCAL VOC 2012 segmentation: class = shape (background 0, circle 1, ... cross 5), colour
    ignored; a 1-pixel void (255) band on every object boundary; ``class_names.txt`` beside ``ImageSets``."""
    from clipxai.data import voc

    class_names = ("background",) + SHAPES

    def samples(split: str, count: int):
        for index in _progress(range(count), f"shapes voc {split}", progress):
            scene = _split_scene(config, "voc", split, index)
            label = np.zeros(scene.instances.shape, dtype=np.uint8)
            for k, obj in enumerate(scene.objects):
                label[scene.instances == k + 1] = SHAPES.index(obj.shape) + 1
            yield f"shapes_{split}_{index:06d}", scene.image, voc.void_borders(label)

    base = voc.write(out, {"train": samples("train", n_train), "val": samples("val", n_val)}, class_names)
    write_json(Path(out) / "shapes_world.json", world_description(config, n_train=n_train, n_val=n_val))
    return {"format": "voc", "root": str(base), "classes": list(class_names),
            "splits": {"train": n_train, "val": n_val}}


def write_imagenet_seg(out: str | Path, config: ShapesConfig, n_images: int, progress: bool = True) -> dict:
    """The world as ImageNet-segmentation (``gtsegs_ijcv.mat``): one object per image, mask 1 on it; the object's
    name per image goes to ``gtsegs_ijcv_labels.json`` (the real file has no labels)."""
    from clipxai.data import imagenet_seg

    names: list[str] = []

    def samples():
        for index in _progress(range(n_images), "shapes imagenet-seg", progress):
            scene = render_scene(config, "imagenet-seg", "val", index, train=False, n_objects=1)
            names.append(scene.objects[0].name)
            yield scene.image, (scene.instances > 0).astype(np.uint8)

    path = Path(out) / imagenet_seg.FILE_NAME
    count = imagenet_seg.write(path, samples())
    write_json(Path(out) / "gtsegs_ijcv_labels.json", {"labels": names, "classes": list(COMBINATIONS)})
    write_json(Path(out) / "shapes_world.json", world_description(config, n_images=n_images))
    return {"format": "imagenet-seg", "root": str(out), "file": str(path), "images": count}


def waterbirds_groups(n: int, split: int, rng: np.random.Generator, agree: float = 0.95) -> list[tuple[int, int]]:
    """``(y, place)`` of ``n`` images: in train (0) and val (1) classes are balanced and place = y for exactly
    ``round(agree * n)`` images; in test (2) the four groups are balanced (sizes differ by at most one)."""
    if split == 2:
        groups = [(g // 2, g % 2) for g in range(4)]
        return [groups[i % 4] for i in rng.permutation(n)]
    ys = [i % 2 for i in rng.permutation(n)]
    n_minority = n - int(round(agree * n))
    minority = set(rng.permutation(n)[:n_minority].tolist())
    return [(y, 1 - y if i in minority else y) for i, y in enumerate(ys)]


def write_waterbirds(out: str | Path, config: ShapesConfig, n_train: int, n_val: int, n_test: int,
                     progress: bool = True) -> dict:
    """The world as Waterbirds: one bird-shape per image (y = 0 a cross "landbird", y = 1 a circle "waterbird")
    on sand (place 0, "land") or water (place 1). Train and val: y and place agree for 95% of images; test
    (split 2): the four (y, place) groups are balanced, so a classifier that reads the background instead of the
    shape fails on the two minority groups (cross on water, circle on sand).

    (In the real Waterbirds the val split is group-balanced like test and landbirds outnumber waterbirds about 3 to
    1 in train; here classes are balanced and val follows the training correlation, so means for ablations
    computed on val carry the same bias as training.)
    """
    from clipxai.data import waterbirds

    out = Path(out)
    folders = [f"{y + 1:03d}.{shape}" for y, shape in enumerate(BIRD_SHAPES)]
    records = []
    img_id = 0
    for split_name_, split, count in (("train", 0, n_train), ("val", 1, n_val), ("test", 2, n_test)):
        groups = waterbirds_groups(count, split, seeding.rng(config.seed, "shapes", "waterbirds-groups", split))
        for index in _progress(range(count), f"shapes waterbirds {split_name_}", progress):
            y, place = groups[index]
            scene = render_scene(config, "waterbirds", split_name_, index, train=False,
                                 allowed=tuple(f"{c} {BIRD_SHAPES[y]}" for c in BIRD_COLOURS), n_objects=1,
                                 background_kind=PLACES[place], sizes=("medium", "large"))
            img_id += 1
            file_name = f"{folders[y]}/{BIRD_SHAPES[y]}_{img_id:07d}.jpg"
            write_bytes(out / file_name, encode_jpeg(scene.image))
            records.append({"img_id": img_id, "img_filename": file_name, "y": y, "split": split, "place": place,
                            "place_filename": f"/{PLACES[place][0]}/{PLACES[place]}/{img_id:08d}.jpg"})
    waterbirds.write_metadata(out, records)
    write_json(out / "shapes_world.json", {**world_description(config, n_train=n_train, n_val=n_val, n_test=n_test),
                                           "y_names": list(BIRD_SHAPES), "place_names": list(PLACES)})
    return {"format": "waterbirds", "root": str(out), "splits": {"train": n_train, "val": n_val, "test": n_test},
            "y_names": list(BIRD_SHAPES), "place_names": list(PLACES)}


def write_imagenet(out: str | Path, config: ShapesConfig, n_images: int, progress: bool = True) -> dict:
    """The world as an ImageNet-style classification set in the class-folder layout: 30 classes ("red circle",
    held-out ones included), one object per image, image ``j`` of class ``j mod 30``; folders ``red_circle``;
    ``classnames.txt`` lists the names in class-index (sorted folder) order."""
    from clipxai.data import imagenet

    folder_of = {name: name.replace(" ", "_") for name in COMBINATIONS}

    def samples():
        for index in _progress(range(n_images), "shapes imagenet", progress):
            name = COMBINATIONS[index % len(COMBINATIONS)]
            scene = render_scene(config, "imagenet", "val", index, train=False, combinations=[name])
            yield folder_of[name], f"shapes_val_{index + 1:08d}.JPEG", scene.image

    used = {COMBINATIONS[index % len(COMBINATIONS)] for index in range(n_images)}
    imagenet.write_class_folders(out, samples(), {folder_of[name]: name for name in used})
    write_json(Path(out) / "shapes_world.json", world_description(config, n_images=n_images))
    return {"format": "imagenet", "root": str(out), "images": n_images, "classes": len(COMBINATIONS)}


# ---- one signature for every format's writer (clipxai.data.kinds.FORMATS names them; make-shapes calls them)


@dataclass(frozen=True)
class ShapesSizes:
    """How many images make-shapes writes; each format takes the counts it has splits for."""

    n_train: int
    n_val: int
    n_test: int
    eval_split: str = "val"


def shapes_coco_png(out: str | Path, config: ShapesConfig, sizes: ShapesSizes) -> dict:
    return write_coco_png(out, config, n_train=sizes.n_train, n_val=sizes.n_val, eval_split=sizes.eval_split)


def shapes_voc(out: str | Path, config: ShapesConfig, sizes: ShapesSizes) -> dict:
    return write_voc(out, config, n_train=sizes.n_train, n_val=sizes.n_val)


def shapes_imagenet_seg(out: str | Path, config: ShapesConfig, sizes: ShapesSizes) -> dict:
    return write_imagenet_seg(out, config, n_images=sizes.n_val)


def shapes_waterbirds(out: str | Path, config: ShapesConfig, sizes: ShapesSizes) -> dict:
    return write_waterbirds(out, config, n_train=sizes.n_train, n_val=sizes.n_val, n_test=sizes.n_test)


def shapes_imagenet(out: str | Path, config: ShapesConfig, sizes: ShapesSizes) -> dict:
    return write_imagenet(out, config, n_images=sizes.n_val)
