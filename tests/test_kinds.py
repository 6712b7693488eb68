"""clipxai.data.kinds: the one table of data set kinds agrees with the schema, the download catalogue, the
workflow's rules and the readers' formats."""

from __future__ import annotations

import re

import pytest
import yaml

from clipxai.data import sources
from clipxai.data.kinds import KINDS, PROTOCOLS, is_real, kinds_serving, needed_files
from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "src/clipxai/schemas/config.schema.yaml").read_text())


def test_every_schema_kind_has_one_record():
    enum = SCHEMA["properties"]["datasets"]["additionalProperties"]["properties"]["kind"]["enum"]
    assert sorted(KINDS) == sorted(enum)
    assert all(name == kind.name for name, kind in KINDS.items())


def test_downloads_are_catalogued_sources():
    for kind in KINDS.values():
        for name in kind.downloads:
            assert name in sources.SOURCES, (kind.name, name)
        assert not (kind.downloads and kind.shapes), kind.name  # the shapes world is generated, never downloaded


def test_shapes_kinds_name_the_rule_writing_them():
    rules = "".join(path.read_text() for path in (REPO / "rules").glob("*.smk"))
    for kind in KINDS.values():
        assert (kind.writer is not None) == kind.shapes, kind.name
        if kind.writer:
            assert re.search(rf"^rule {kind.writer}:$", rules, flags=re.M), kind.writer


def test_formats_are_what_make_shapes_writes_and_the_heads_read():
    from clipxai.commands.make_shapes import FORMATS as WRITTEN
    from clipxai.protocols.datasets import FORMATS as READ

    from clipxai.data.kinds import FORMATS

    assert {kind.format for kind in KINDS.values()} <= set(WRITTEN)
    assert set(READ) == {name for name, fmt in FORMATS.items() if fmt.reader}  # every labelled set has a reader
    assert set(READ) >= {"imagenet", "imagenet-seg", "waterbirds"}


@pytest.mark.parametrize("protocol, kinds", [
    ("grounding", ("shapes", "png")),
    ("toy-training", ("shapes",)),
    ("voc", ("voc", "shapes-voc")),
    ("zeroshot", ("imagenet", "shapes-imagenet")),
    ("heads-explain", ("imagenet", "shapes-imagenet", "imagenet-seg", "shapes-imagenet-seg", "waterbirds",
                       "shapes-waterbirds")),
    ("imagenet-seg", ("imagenet-seg", "shapes-imagenet-seg")),
    ("waterbirds", ("waterbirds", "shapes-waterbirds")),
    ("similarity-shapes", ("shapes-imagenet",)),
])
def test_protocols_read_these_kinds_in_this_order(protocol, kinds):
    # the order is the one the configuration messages list them in
    assert kinds_serving(protocol) == kinds


def test_every_protocol_is_known():
    assert {p for kind in KINDS.values() for p in kind.protocols} == set(PROTOCOLS)
    with pytest.raises(KeyError):
        kinds_serving("grounding-typo")


def test_needed_files_and_real_kinds():
    assert needed_files("shapes-voc", "r", "train") == ["r/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt"]
    assert needed_files("imagenet", "r", "val") == []
    assert is_real("voc") and not is_real("shapes-voc")
    assert [k.name for k in KINDS.values() if k.user_path] == ["imagenet"]


def test_every_format_names_a_writer_and_reader_that_exist():
    """The table's "module:function" strings are only checked when used: resolve every one here."""
    import inspect

    from clipxai.data.kinds import FORMATS, resolve

    for fmt in FORMATS.values():
        writer = resolve(fmt.shapes_writer)
        assert list(inspect.signature(writer).parameters) == ["out", "config", "sizes"], fmt.name
        if fmt.reader:
            assert list(inspect.signature(resolve(fmt.reader)).parameters)[:3] == ["root", "split", "devkit"]


def test_make_shapes_writes_through_the_format_table(tmp_path, monkeypatch):
    """A row of FORMATS is all make-shapes needs: its writer gets the sizes of the command line."""
    from clipxai import cli
    from clipxai.data import kinds, shapes

    seen = {}

    def fake_writer(out, config, sizes):
        seen.update(out=str(out), sizes=sizes, seed=config.seed)
        return {"format": "fake"}

    monkeypatch.setattr(shapes, "shapes_waterbirds", fake_writer)
    assert cli.main(["make-shapes", "--out", str(tmp_path / "w"), "--format", "waterbirds", "--seed", "3",
                     "--n-train", "2", "--n-val", "5"]) == 0
    assert seen == {"out": str(tmp_path / "w"), "seed": 3,
                    "sizes": shapes.ShapesSizes(n_train=2, n_val=5, n_test=5, eval_split="val")}
    assert kinds.FORMATS["waterbirds"].shapes_writer == "clipxai.data.shapes:shapes_waterbirds"
