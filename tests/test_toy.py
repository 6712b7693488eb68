"""The tiny CLIP trainer: hard negatives, determinism, and that training actually lowers the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipxai.models import toy
from clipxai.seeding import generator

TINY = toy.tiny_config(image_size=32, patch_size=8, width=32, layers=1, head_width=16, text_width=32,
                       text_layers=1, text_heads=2, embed_dim=16)


def test_swap_shapes_changes_only_shape_words_inside_phrases():
    caption = "a red circle and a blue square"
    spans = [(0, 12), (17, 30)]
    swapped = toy.swap_shapes(caption, spans, generator(0, "t"))
    words, original = swapped.split(" "), caption.split(" ")
    assert [w for i, w in enumerate(words) if i not in (2, 6)] == [w for i, w in enumerate(original) if i not in (2, 6)]
    assert words[2] != "circle" and words[6] != "square"
    assert words[2] in toy.SHAPE_WORDS and words[6] in toy.SHAPE_WORDS


def test_hard_negatives_never_form_a_combination_training_captions_lack():
    caption = "a red circle and a blue square"
    spans = [(0, 12), (17, 30)]
    assert toy.phrase_combinations(caption, spans) == {("red", "circle"), ("blue", "square")}
    # "red star" is held out: it is in no training caption, so no negative may name it
    allowed = {("red", "circle"), ("red", "square"), ("blue", "square"), ("blue", "star")}
    gen = generator(0, "held-out")
    negatives = {toy.swap_shapes(caption, spans, gen, allowed) for _ in range(50)}
    assert negatives == {"a red square and a blue star"}
    unrestricted = {toy.swap_shapes(caption, spans, gen) for _ in range(200)}
    assert any("red star" in text for text in unrestricted)


def _narratives(tmp_path: Path, n: int = 24) -> list[toy.Narrative]:
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220)}
    items = []
    for i in range(n):
        colour = list(colours)[i % 2]
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[8:24, 8:24] = colours[colour]
        path = tmp_path / f"{i}.png"
        Image.fromarray(pixels).save(path)
        caption = f"a {colour} square"
        items.append(toy.Narrative(path, caption, [(0, len(caption))]))
    return items


def test_training_is_deterministic_and_learns(tmp_path):
    items = _narratives(tmp_path)
    settings = toy.TrainSettings(steps=12, batch_size=8, lr=2e-3, warmup=2, threads=1)
    first = toy.train(TINY, items, settings, tmp_path / "a")
    second = toy.train(TINY, items, settings, tmp_path / "b")
    assert (tmp_path / "a/open_clip_model.safetensors").read_bytes() == \
        (tmp_path / "b/open_clip_model.safetensors").read_bytes()
    assert first["final_loss"] == second["final_loss"]
    untrained = toy.train(TINY, items, toy.TrainSettings(steps=0, threads=1), tmp_path / "c")
    assert untrained["final_loss"] is None
    # the learning-rate schedule warms up, then decays to zero at the end
    assert toy._lr_at(0, settings) < toy._lr_at(1, settings) <= settings.lr
    assert abs(toy._lr_at(settings.steps - 1, settings)) < 0.05 * settings.lr
