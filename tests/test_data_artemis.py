"""ArtEmis release CSV + WikiArt folder: read on a fixture written in the real layout; what is missing is named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipxai.data import artemis
from clipxai.errors import InputError


def _fixture(tmp_path, with_images=True):
    rows = [
        {"art_style": "Impressionism", "painting": "monet_water-lilies", "emotion": "contentment", "utterance": "calm",
         "repetition": 5},
        {"art_style": "Impressionism", "painting": "monet_water-lilies", "emotion": "awe", "utterance": "vast",
         "repetition": 5},
        {"art_style": "Impressionism", "painting": "monet_water-lilies", "emotion": "contentment", "utterance": "soft",
         "repetition": 5},
        {"art_style": "Baroque", "painting": "caravaggio_judith", "emotion": "fear", "utterance": "blood",
         "repetition": 5},
        {"art_style": "Baroque", "painting": "caravaggio_judith", "emotion": "something else", "utterance": "odd",
         "repetition": 5},
    ]
    csv_path = artemis.write_release(tmp_path / "artemis_dataset_release_v0.csv", rows)
    images = tmp_path / "wikiart"
    for style, name in (("Impressionism", "monet_water-lilies"), ("Baroque", "caravaggio_judith")):
        (images / style).mkdir(parents=True, exist_ok=True)
        if with_images:
            Image.new("RGB", (8, 8), (10, 20, 30)).save(images / style / f"{name}.jpg")
    return csv_path, images


def test_load_counts_emotions_per_painting_in_sorted_order(tmp_path):
    csv_path, images = _fixture(tmp_path)
    paintings = artemis.load(csv_path, images)
    assert [p.id for p in paintings] == ["Baroque/caravaggio_judith", "Impressionism/monet_water-lilies"]
    judith, lilies = paintings
    assert judith.counts[artemis.EMOTIONS.index("fear")] == 1
    assert judith.counts[artemis.EMOTIONS.index("something else")] == 1
    np.testing.assert_allclose(lilies.distribution[[1, 2]], [1 / 3, 2 / 3])
    assert lilies.image_path == images / "Impressionism" / "monet_water-lilies.jpg"
    artemis.verify(paintings)
    assert len(artemis.EMOTIONS) == 9


def test_missing_csv_folder_and_images_are_named_in_one_line(tmp_path):
    csv_path, images = _fixture(tmp_path, with_images=False)
    with pytest.raises(InputError, match="artemis_dataset_release_v0.csv.*licence-bound") as err:
        artemis.load(tmp_path / "nope.csv", images)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="WikiArt"):
        artemis.load(csv_path, tmp_path / "no_wikiart")
    with pytest.raises(InputError, match=r"caravaggio_judith\.jpg.*2 of 2"):
        artemis.verify(artemis.load(csv_path, images))


def test_bad_emotion_and_missing_column_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("art_style,painting,emotion,utterance,repetition\nA,b,joy,x,1\n")
    with pytest.raises(InputError, match="line 2: emotion"):
        artemis.load(bad, tmp_path)
    bad.write_text("art_style,painting,utterance\nA,b,x\n")
    with pytest.raises(InputError, match="emotion"):
        artemis.load(bad, tmp_path)
