"""A rehearsal mirror: a miniature copy of every real download of the catalogue (clipxai.data.sources), and of the
licence-bound local data and model files the paper config points at, so the whole paper DAG can run offline.

Each file has the name, archive kind and layout of the real one as its host serves it (the zip inside COCO's
panoptic zip, the top folder of the Waterbirds tar.gz, VOCdevkit/VOC2012/ in the VOC tar, ...), so the download,
extract and read steps of the paper path run on it unchanged; it holds a handful of images drawn from the shapes
world with the project's own writers. Model files hold random weights of the real architectures.

Layout of ``OUT`` (``clipxai rehearsal-mirror OUT [--weights ARCH ...] [--base-url URL]``):

* served downloads, the top-level files (serve ``OUT`` over HTTP; ``sources.yaml`` points config at them):
  ``val2017.zip``, ``panoptic_annotations_trainval2017.zip``, ``png_coco_val2017.json``, ``gtsegs_ijcv.mat``,
  ``waterbird_complete95_forest2water2.tar.gz``, ``VOCtrainval_11-May-2012.tar``, ``ILSVRC2012_img_val.tar``,
  ``ILSVRC2012_devkit_t12.tar.gz``, the four text pools (``*.txt``), CLIPpy's ``clippy_5k.pt`` (the release's
  training-checkpoint layout, random weights of clippy-B-16) and its Sentence-T5 ``tokenizer.json`` (a Unigram
  fast-tokenizer file with T5's special ids, trained on the mirror's own texts);
* local-path data (config keys point at these folders; never in ``sources.yaml``):
  ``imagenet/val`` + ``imagenet/ILSVRC2012_devkit_t12`` -> ``datasets.imagenet.path`` (``OUT/imagenet/val``);
  ``imagenet_folders/val/<wnid>/`` (the class-folder layout of the same images);
  ``artemis/artemis_dataset_release_v0.csv`` -> ``similarity.studies.artemis.csv`` and ``wikiart/`` ->
  ``similarity.studies.artemis.images``; ``affectnet/val_set`` -> ``similarity.studies.affectnet.path``;
  ``weights/<ARCH>.safetensors`` (only with ``--weights``) -> ``models.<m>.checkpoint``: random open_clip
  weights standing in for the hub tags (:data:`NOT_MIRRORED`);
* ``manifest.json``: each file's path, size, sha256, md5 and what it stands for; ``sources.yaml`` (with
  ``--base-url``): a config overlay holding only ``sources:``, every served file at ``URL/<name>`` with the
  mirror's own checksums.

The same call writes the same bytes: archive members are sorted and carry fixed timestamps, owners and modes, gzip
headers carry neither a time nor a file name, weights come from ``torch.manual_seed(SEED)``, and the tokenizer's
trained scores are rounded and its pieces sorted (the trainer's ties and last float digits vary from run to run).
"""

from __future__ import annotations

import gzip
import hashlib
import io as _io
import json
import math
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from clipxai.data import affectnet, artemis, coco_panoptic, imagenet, imagenet_seg, png, shapes, sources, voc
from clipxai.data.images import encode_jpeg, write_bytes
from clipxai.errors import InputError
from clipxai.io import atomic_path, current_umask, write_json

SEED = 0
# Archive member times: COCO's 2017 release day (zip has no time zone; tar stores seconds since the epoch).
ZIP_TIME = (2017, 9, 1, 0, 0, 0)
TAR_MTIME = 1504224000  # 2017-09-01 00:00:00 UTC
# What the mirror does not copy: the open_clip pretrained tags (hub / URL weights of OpenAI and LAION), which are
# not catalogue sources; random weights of their architectures stand in for them (``--weights``, weights/<ARCH>).
NOT_MIRRORED = ("open_clip pretrained tags (stand-ins: weights/<ARCH>.safetensors, --weights)",)
# The open_clip architectures of the paper config's models, written by ``--weights`` (``all``: every one).
WEIGHT_ARCHS = ("ViT-B-32-quickgelu", "ViT-B-16", "ViT-L-14")
# Manifest ``source`` of the local-path files that stand for no catalogue download (licence-bound or model files).
LOCAL_SOURCES = ("weights", "artemis", "affectnet")
SOURCES_YAML = "sources.yaml"
# CLIPpy's tokenizer: trainer target size (far below T5's 32,100 ids) and T5's 100 sentinel tokens, appended last
# in reverse order as in T5's own vocabulary (<extra_id_0> has the highest id).
TOKENIZER_VOCAB = 1000
T5_EXTRA_IDS = 100
T5_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2
SCORE_DIGITS = 6
# Real COCO val2017 image ids and (width, height) of the miniature images: landscape, portrait and square.
COCO_VAL_IMAGES = ((139, (96, 72)), (285, (64, 96)), (632, (112, 84)), (724, (72, 72)), (776, (120, 68)),
                   (785, (80, 104)))
COCO_TRAIN_IMAGES = ((9, (96, 72)), (25, (72, 96)))
VOC_IDS = {"train": ("2007_000032", "2007_000039", "2008_000008"),
           "val": ("2007_000033", "2007_000042", "2007_000061", "2008_000009")}
N_IMAGENET_CLASSES = 1000
MANIFEST = "manifest.json"


# ------------------------------------------------------------------------------------------------ archives


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def write_zip(path: Path, root: Path, prefix: str = "") -> None:
    """Zip every file under ``root`` (names relative to it, under ``prefix``) with folder entries, sorted, at a
    fixed time: the same files give the same bytes. JPEGs and PNGs are stored (already compressed), the rest
    deflated."""
    entries: dict[str, Path | None] = {}
    for file in _files_under(root):
        name = prefix + file.relative_to(root).as_posix()
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]) + "/", None)
        entries[name] = file
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # unix, so the modes below are read as such
            file = entries[name]
            if file is None:
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info.external_attr = 0o100644 << 16
            info.compress_type = (zipfile.ZIP_STORED if file.suffix.lower() in (".jpg", ".jpeg", ".png", ".zip")
                                  else zipfile.ZIP_DEFLATED)
            archive.writestr(info, file.read_bytes())
    path.write_bytes(buffer.getvalue())


def write_tar(path: Path, root: Path, gz: bool = False) -> None:
    """Tar every file and folder under ``root`` (names relative to it), sorted, with fixed owner, modes and time;
    ``gz``: gzip-compressed with no time or name in the gzip header."""
    buffer = _io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for entry in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
            info = tarfile.TarInfo(entry.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = TAR_MTIME, 0, 0, "", ""
            if entry.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = entry.read_bytes()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, _io.BytesIO(data))
    data = buffer.getvalue()
    if gz:
        packed = _io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=6) as stream:
            stream.write(data)
        data = packed.getvalue()
    path.write_bytes(data)


# ------------------------------------------------------------------------------------------------ images


def _config(image_size: int) -> shapes.ShapesConfig:
    return shapes.ShapesConfig(seed=SEED, image_size=image_size)


def _cropped_scene(purpose: str, split: str, index: int, width: int, height: int, **pins) -> shapes.Scene:
    """A shapes scene rendered square at the larger side and centre-cropped to ``width x height``."""
    side = max(width, height, 32)
    scene = shapes.render_scene(_config(side), purpose, split, index, train=False, **pins)
    top, left = (side - height) // 2, (side - width) // 2
    window = (slice(top, top + height), slice(left, left + width))
    scene.image, scene.instances = scene.image[window], scene.instances[window]
    return scene


def _coco_split(staging: Path, split: str, images: tuple) -> list[dict]:
    """Write a COCO panoptic split (images, PNGs with COCO's folder name, JSON) under ``staging``; return the
    Panoptic Narrative Grounding narratives of its images (two per image, as the real file has several)."""
    cats = shapes.categories(_config(64))
    writer = coco_panoptic.PanopticWriter(staging, split, cats, info={
        "description": "clipxai rehearsal mirror (COCO 2017 layout)", "version": "1.0", "year": 2017},
        png_dir=coco_panoptic.COCO_PNG_DIR)
    narratives = []
    for index, (image_id, (width, height)) in enumerate(images):
        scene = _cropped_scene("rehearsal-coco", split, index, width, height)
        ids = np.zeros(scene.instances.shape, dtype=np.int32)
        segments, object_ids = [], {}
        for k, obj in enumerate(scene.objects):
            if not (scene.instances == k + 1).any():
                continue  # cropped away: no segment, and the narratives mention it without one
            cat = shapes.category_id(obj.name)
            ids[scene.instances == k + 1] = shapes.segment_id(cat)
            segments.append((shapes.segment_id(cat), cat))
            object_ids[k] = shapes.segment_id(cat)
        background_cat = len(shapes.COMBINATIONS) + shapes.BACKGROUNDS.index(scene.background) + 1
        if (scene.instances == 0).any():
            ids[scene.instances == 0] = shapes.segment_id(background_cat)
            segments.append((shapes.segment_id(background_cat), background_cat))
        writer.add(image_id, scene.image, ids, segments)
        # narrative 1: the world's caption; its connectors are utterances without segments
        narratives.append(png.make_narrative(image_id, scene.caption, [
            png.make_segment(text, [object_ids[k]] if k in object_ids else [], noun=k is not None)
            for text, k in scene.segments], annotator_id=1))
        # narrative 2, another annotator: every object and the background (a stuff segment) in one sentence
        parts = [("In this picture we can see", [])]
        for k, obj in enumerate(scene.objects):
            if k:
                parts.append(("and", []))
            parts.append((obj.phrase, [object_ids[k]] if k in object_ids else []))
        parts += [("on", []), (f"the {scene.background}", [shapes.segment_id(background_cat)]
                               if (scene.instances == 0).any() else []), (".", [])]
        caption = " ".join(text for text, _ in parts[:-1]) + "."
        narratives.append(png.make_narrative(image_id, caption, [
            png.make_segment(text, ids_, noun=bool(ids_) or text.startswith(("a ", "the "))) for text, ids_ in parts],
            annotator_id=2))
    writer.close()
    return narratives


def _write_coco(out: Path, work: Path) -> None:
    staging = work / "coco"
    val_narratives = _coco_split(staging, "val", COCO_VAL_IMAGES)
    _coco_split(staging, "train", COCO_TRAIN_IMAGES)
    write_zip(out / sources.get("coco_val2017_images").filename, staging / "images" / "val2017", "val2017/")
    annotations = work / "panoptic" / "annotations"
    annotations.mkdir(parents=True)
    for split in ("train2017", "val2017"):
        shutil.copyfile(staging / "annotations" / f"panoptic_{split}.json", annotations / f"panoptic_{split}.json")
        write_zip(annotations / f"panoptic_{split}.zip", staging / "annotations" / f"panoptic_{split}",
                  f"panoptic_{split}/")
    write_zip(out / sources.get("coco_panoptic_annotations").filename, work / "panoptic")
    (out / sources.get("png_coco_val2017").filename).write_text(json.dumps(val_narratives))


def _write_imagenet_seg(out: Path) -> None:
    sizes = ((96, 72), (64, 88), (80, 80), (104, 64))

    def samples():
        for index, (width, height) in enumerate(sizes):
            scene = _cropped_scene("rehearsal-imagenet-seg", "val", index, width, height, n_objects=1)
            yield scene.image, (scene.instances > 0).astype(np.uint8)

    imagenet_seg.write(out / sources.get("imagenet_seg_gtsegs").filename, samples())


def _write_waterbirds(out: Path, work: Path) -> None:
    name = sources.get("waterbirds").filename.removesuffix(".tar.gz")
    root = work / "waterbirds" / name
    shapes.write_waterbirds(root, _config(64), n_train=4, n_val=2, n_test=4, progress=False)
    (root / "shapes_world.json").unlink()  # the real archive has only metadata.csv and the class folders
    write_tar(out / sources.get("waterbirds").filename, work / "waterbirds", gz=True)


def _write_voc(out: Path, work: Path) -> None:
    sizes = ((96, 72), (72, 96), (88, 64), (80, 80))

    def samples(split: str):
        for index, image_id in enumerate(VOC_IDS[split]):
            width, height = sizes[index % len(sizes)]
            scene = _cropped_scene("rehearsal-voc", split, index, width, height)
            label = np.zeros(scene.instances.shape, dtype=np.uint8)
            for k, obj in enumerate(scene.objects):
                # VOC's 20 classes: each colour-shape combination stands for one of them
                label[scene.instances == k + 1] = 1 + shapes.COMBINATIONS.index(obj.name) % 20
            yield image_id, scene.image, voc.void_borders(label)

    voc.write(work / "voc", {split: samples(split) for split in ("train", "val")})
    write_tar(out / sources.get("voc2012_trainval").filename, work / "voc")


def imagenet_wnids() -> list[str]:
    """Stand-in wnids of the 1000 leaf classes (the real devkit's are not shipped), in ILSVRC2012 id order."""
    return [f"n{10000000 + 37 * k:08d}" for k in range(N_IMAGENET_CLASSES)]


def _write_imagenet(out: Path, work: Path) -> None:
    """The two licence-bound tars (flat val images; devkit) and, ready to point config at, an unpacked devkit
    layout (``imagenet/val`` + ``imagenet/ILSVRC2012_devkit_t12``) and a class-folder layout."""
    wnids = imagenet_wnids()
    sizes = ((96, 72), (64, 96), (80, 80), (112, 70), (72, 88), (90, 60))
    labels = (1, 2, 500, 1000, 2, 777)  # ILSVRC2012 ids, 1-based; one class twice

    def samples():
        for index, (width, height) in enumerate(sizes):
            yield labels[index], _cropped_scene("rehearsal-imagenet", "val", index, width, height).image

    layout = out / "imagenet"
    imagenet.write_devkit_layout(layout, wnids, samples(), words=[f"class {k + 1}" for k in range(len(wnids))])
    (work / "imagenet_val").mkdir()
    for image in sorted((layout / "val").iterdir()):
        shutil.copyfile(image, work / "imagenet_val" / image.name)
    write_tar(out / sources.get("imagenet_val").filename, work / "imagenet_val")
    shutil.copytree(layout / imagenet.DEVKIT, work / "imagenet_devkit" / imagenet.DEVKIT)
    write_tar(out / sources.get("imagenet_devkit").filename, work / "imagenet_devkit", gz=True)

    def folder_samples():
        for index, (width, height) in enumerate(sizes):
            image = _cropped_scene("rehearsal-imagenet", "val", index, width, height).image
            yield wnids[labels[index] - 1], f"ILSVRC2012_val_{index + 1:08d}.JPEG", image

    imagenet.write_class_folders(out / "imagenet_folders", folder_samples())


def _write_text_pools(out: Path) -> None:
    from clipxai.protocols.textpool import shapes_text_pool

    pool = shapes_text_pool()
    words = sorted({word.strip(".,").lower() for line in pool for word in line.split()})
    texts = {
        "textspan_image_descriptions_general": pool[:40],
        "textspan_google_3498_english": words,
        "pclens_top_1500_nouns_bias_clean": [f"A photo of {line}." for line in pool[:30]],
        "pclens_top_1500_nouns_clean": [f"A photo of {line}." for line in pool[:36]],
    }
    for name, lines in texts.items():
        (out / sources.get(name).filename).write_text("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------------------------------------ CLIPpy


def _mirror_texts(out: Path) -> list[str]:
    """The texts a rehearsal tokenizes: the text pools, the narratives' captions, the ImageNet stand-in class
    names, prompt templates and the similarity studies' class words; sorted and de-duplicated."""
    texts = set()
    for name in ("textspan_image_descriptions_general", "textspan_google_3498_english",
                 "pclens_top_1500_nouns_bias_clean", "pclens_top_1500_nouns_clean"):
        texts.update((out / sources.get(name).filename).read_text().splitlines())
    texts.update(n["caption"] for n in json.loads((out / sources.get("png_coco_val2017").filename).read_text()))
    words = [f"class {k + 1}" for k in range(N_IMAGENET_CLASSES)] + list(artemis.EMOTIONS) + list(
        affectnet.EXPRESSIONS) + list(shapes.COMBINATIONS)
    texts.update(words)
    texts.update(f"a photo of a {word}." for word in words)
    return sorted(t for t in texts if t.strip())


def build_tokenizer(texts: list[str]) -> str:
    """A Sentence-T5-layout fast-tokenizer file (JSON text): a Unigram model trained on ``texts``, T5's special
    tokens (<pad>=0, </s>=1, <unk>=2) and sentinels, NFKC normalisation, whitespace + Metaspace pre-tokenisation and
    a post-processor appending </s>. Scores are rounded and pieces sorted, and every character of the texts (and
    printable ASCII) is a piece of its own, so the same texts give the same bytes and any such text tokenizes."""
    import string

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    def pipeline(tokenizer: Tokenizer) -> Tokenizer:
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")])
        return tokenizer

    trained = pipeline(Tokenizer(models.Unigram()))
    trainer = trainers.UnigramTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=list(T5_SPECIALS),
                                      unk_token="<unk>", show_progress=False)
    trained.train_from_iterator(texts, trainer)
    # The trainer's piece set is stable, but its scores are not (ties are broken in hash order): each piece is
    # scored again from the texts, by the log frequency of its occurrences in the pre-tokenized words.
    pieces = {piece for piece, _ in json.loads(trained.to_str())["model"]["vocab"] if piece not in T5_SPECIALS}
    characters = set("".join(texts)) | set(string.ascii_letters + string.digits + string.punctuation)
    pieces |= characters - set(" \t\n\r")
    words: dict[str, int] = {}
    for text in texts:
        for word, _ in trained.pre_tokenizer.pre_tokenize_str(trained.normalizer.normalize_str(text)):
            words[word] = words.get(word, 0) + 1
    counts = {piece: sum(n * word.count(piece) for word, n in words.items()) for piece in sorted(pieces)}
    total = sum(counts.values())
    floor = math.log(0.5 / total)  # a character of printable ASCII that no text has
    scores = {piece: round(math.log(n / total) if n else floor, SCORE_DIGITS) for piece, n in counts.items()}
    vocab = [(piece, 0.0) for piece in T5_SPECIALS] + sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    tokenizer = pipeline(Tokenizer(models.Unigram(vocab, unk_id=T5_SPECIALS.index("<unk>"), byte_fallback=False)))
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", T5_SPECIALS.index("</s>"))])
    tokenizer.add_special_tokens(list(T5_SPECIALS))
    tokenizer.add_special_tokens([f"<extra_id_{i}>" for i in range(T5_EXTRA_IDS - 1, -1, -1)])
    return tokenizer.to_str(pretty=True) + "\n"


def _write_tokenizer(out: Path) -> None:
    (out / sources.get("sentence_t5_base_tokenizer").filename).write_text(build_tokenizer(_mirror_texts(out)),
                                                                          encoding="utf-8")


def clippy_release_state() -> dict:
    """Random weights of clippy-B-16 (``torch.manual_seed(SEED)``) in the layout of the released ``clippy_5k.pt``:
    ``{"epoch", "name", "state_dict"}`` with the DistributedDataParallel prefix ``module.`` and the text tower as
    a SentenceTransformer (``text.0.auto_model.{shared,encoder.*}``, ``text.2.linear``): what
    :func:`clipxai.models.clippy.convert_state_dict` converts. The release's optimiser state is left out (it would
    triple the file and conversion drops it)."""
    import open_clip
    import torch

    from clipxai.models import clippy

    clippy.register()
    torch.manual_seed(SEED)
    model = open_clip.create_model(clippy.MODEL_NAME, pretrained=None, pretrained_image=False,
                                   pretrained_text=False, device="cpu")
    original = {}
    for key, value in model.state_dict().items():
        if key.startswith("text.transformer."):
            original["module.text.0.auto_model.encoder." + key[len("text.transformer."):]] = value
        elif key.startswith("text.proj."):
            original["module.text.2.linear." + key[len("text.proj."):]] = value
        else:
            original["module." + key] = value
    # T5's input embedding is tied: the SentenceTransformer saves it as `shared` and as the encoder's (one storage)
    original["module.text.0.auto_model.shared.weight"] = original["module.text.0.auto_model.encoder.embed_tokens.weight"]
    return {"epoch": 0, "name": "clipxai-rehearsal-clippy_5k", "state_dict": dict(sorted(original.items()))}


def _torch_bytes(obj) -> bytes:
    """torch.save into memory: the archive's root folder is then always ``archive``, never the (temp) file name."""
    import torch

    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _write_clippy(out: Path) -> None:
    (out / sources.get("clippy_5k").filename).write_bytes(_torch_bytes(clippy_release_state()))


# ------------------------------------------------------------------------------------------------ local data


ART_STYLES = ("Baroque", "Cubism", "Impressionism")
N_PAINTINGS = 6
N_FACES = 10  # ids 0-7 once each, then 8 (none) and 1 again: the reader skips 8


def painting_names() -> list[tuple[str, str]]:
    """(art_style, painting) of the mirror's WikiArt stand-ins."""
    return [(ART_STYLES[k % len(ART_STYLES)], f"clipxai-rehearsal_painting-{k + 1:02d}") for k in range(N_PAINTINGS)]


def _write_artemis(out: Path) -> None:
    """The ArtEmis release CSV (several annotations per painting, every emotion at least once) and its WikiArt
    images as ``wikiart/<art_style>/<painting>.jpg``."""
    rows = []
    for k, (style, name) in enumerate(painting_names()):
        scene = _cropped_scene("rehearsal-wikiart", "val", k, 96 - 8 * (k % 3), 72 + 8 * (k % 4))
        write_bytes(out / "wikiart" / style / f"{name}{artemis.IMAGE_SUFFIX}", encode_jpeg(scene.image))
        for repetition in range(5):
            emotion = artemis.EMOTIONS[(2 * k + repetition % 3) % len(artemis.EMOTIONS)]
            rows.append({"art_style": style, "painting": name, "emotion": emotion,
                         "utterance": f"the {scene.objects[0].phrase} makes me feel {emotion}",
                         "repetition": str(repetition + 1)})
    rows.sort(key=lambda r: (r["art_style"], r["painting"], r["repetition"]))
    (out / "artemis").mkdir()
    artemis.write_release(out / "artemis" / "artemis_dataset_release_v0.csv", rows)


def _write_affectnet(out: Path) -> None:
    """AffectNet's ``val_set`` layout: ``images/<n>.jpg`` and ``annotations/<n>_{exp,val,aro}.npy`` (one string
    each, as released); every expression once, plus one face labelled 8 (none), which readers skip."""
    root = out / "affectnet" / "val_set"
    labels = list(range(len(affectnet.EXPRESSIONS))) + [8, 1]
    (root / "annotations").mkdir(parents=True)
    for k, label in enumerate(labels[:N_FACES]):
        image = _cropped_scene("rehearsal-affectnet", "val", k, 96, 96).image
        write_bytes(root / "images" / f"{k}.jpg", encode_jpeg(image))
        for suffix, value in (("exp", str(label)), ("val", f"{(k - 4) / 5:.6f}"), ("aro", f"{(k % 5) / 5:.6f}")):
            buffer = _io.BytesIO()
            np.save(buffer, np.array(value), allow_pickle=False)
            (root / "annotations" / f"{k}_{suffix}.npy").write_bytes(buffer.getvalue())


def weight_archs(requested: list[str] | tuple[str, ...] | None) -> list[str]:
    """``--weights`` values in :data:`WEIGHT_ARCHS` order, ``all`` standing for every one; InputError otherwise."""
    chosen = set()
    for arch in requested or ():
        if arch == "all":
            chosen.update(WEIGHT_ARCHS)
        elif arch in WEIGHT_ARCHS:
            chosen.add(arch)
        else:
            raise InputError("rehearsal-mirror", "--weights", f"one of {', '.join(WEIGHT_ARCHS)} or all, not {arch!r}")
    return [arch for arch in WEIGHT_ARCHS if arch in chosen]


def open_clip_state(arch: str) -> dict:
    """Random weights of open_clip architecture ``arch`` (``torch.manual_seed(SEED)``): its state dict, which a
    strict ``open_clip.create_model(arch, pretrained=<file>)`` load (config ``checkpoint:``) accepts."""
    import open_clip
    import torch

    torch.manual_seed(SEED)
    model = open_clip.create_model(arch, pretrained=None, device="cpu")
    return {key: value.contiguous() for key, value in model.state_dict().items()}


def _write_weights(out: Path, archs: list[str]) -> None:
    from safetensors.torch import save

    for arch in archs:
        (out / "weights").mkdir(exist_ok=True)
        # one metadata key only: safetensors writes its metadata map in a random order, so two keys give one of
        # two byte strings per call (and the mirror's checksums would change from run to run)
        (out / "weights" / f"{arch}.safetensors").write_bytes(save(open_clip_state(arch), metadata={"format": "pt"}))


# ------------------------------------------------------------------------------------------------ the mirror


def _source_of(relative: str) -> str:
    """The catalogue source a mirror file stands for (the unpacked ImageNet folders stand for the two tars)."""
    for source in sources.SOURCES.values():
        if relative == source.filename:
            return source.name
    if relative.startswith(f"imagenet/{imagenet.DEVKIT}/"):
        return "imagenet_devkit"
    if relative.startswith(("imagenet/", "imagenet_folders/")):
        return "imagenet_val"
    if relative.startswith("weights/"):
        return "weights"
    if relative.startswith(("artemis/", "wikiart/")):
        return "artemis"
    if relative.startswith("affectnet/"):
        return "affectnet"
    raise AssertionError(f"mirror file {relative} stands for no catalogue source")


def _digests(path: Path) -> dict:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha256.update(block)
            md5.update(block)
    return {"size": path.stat().st_size, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def manifest(root: Path) -> dict:
    """Every file of the mirror (but itself and sources.yaml): path, what it stands for, size, sha256, md5; a
    weights file also names its open_clip architecture (``model``)."""
    files = []
    for path in _files_under(root):
        relative = path.relative_to(root).as_posix()
        if relative in (MANIFEST, SOURCES_YAML):
            continue
        entry = {"path": relative, "source": _source_of(relative), **_digests(path)}
        if entry["source"] == "weights":
            entry["model"] = path.name.removesuffix(".safetensors")
        files.append(entry)
    return {"description": "clipxai rehearsal mirror: miniature copies of the catalogue's downloads, the "
            "licence-bound local data and random weights of the model files", "seed": SEED,
            "not_mirrored": list(NOT_MIRRORED), "files": files}


def _build(out: Path, weights: list[str], base_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))
    try:
        _write_coco(out, work)
        _write_imagenet_seg(out)
        _write_waterbirds(out, work)
        _write_voc(out, work)
        _write_imagenet(out, work)
        _write_text_pools(out)
    finally:
        shutil.rmtree(work)
    _write_tokenizer(out)
    _write_clippy(out)
    _write_artemis(out)
    _write_affectnet(out)
    _write_weights(out, weights)
    record = manifest(out)
    write_json(out / MANIFEST, record)
    if base_url is not None:
        write_sources_yaml(out / SOURCES_YAML, record, base_url)


def check_base_url(url: str, field: str = "--base-url") -> str:
    """``url`` is where the mirror folder is served: an http(s):// or file:// URL, or an absolute path."""
    import urllib.parse

    parsed = urllib.parse.urlparse(url)
    if (parsed.scheme in ("http", "https") and parsed.netloc) or (parsed.scheme == "file" and parsed.path) or (
            not parsed.scheme and url.startswith("/")):
        return url
    raise InputError("rehearsal-mirror", field, f"an http(s):// or file:// URL or an absolute path where OUT is "
                     f"served, not {url!r}")


def write_mirror(out: str | Path, weights: list[str] | tuple[str, ...] | None = None,
                 base_url: str | None = None) -> dict:
    """Write the mirror into folder ``out`` (built beside it, then renamed into place; an earlier mirror there is
    replaced, any other non-empty folder refused); return the manifest.

    ``weights``: open_clip architectures (:data:`WEIGHT_ARCHS`, or ``all``) whose random weights go to
    ``weights/<ARCH>.safetensors``; ``base_url``: also write ``sources.yaml`` pointing config at the served files.
    """
    archs = weight_archs(weights)
    if base_url is not None:
        check_base_url(base_url)
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise InputError(out, "OUT", "a new or empty folder, or an earlier rehearsal mirror (with manifest.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would outlive the rename
        _build(staging, archs, base_url)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, retired / "mirror")
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return json.loads((out / MANIFEST).read_text())


def sources_config(manifest_: dict, base_url: str) -> dict:
    """The config ``sources:`` mapping that points every served download (the top-level files: data, text pools,
    CLIPpy's checkpoint and tokenizer) at ``base_url`` (where the mirror folder is served) with the mirror's own
    checksums (its bytes are not the real hosts'); the local-path folders are not in it."""
    base = base_url.rstrip("/")
    return {entry["source"]: {"url": f"{base}/{entry['path']}", "sha256": entry["sha256"], "md5": entry["md5"],
                              "size": entry["size"]}
            for entry in manifest_["files"] if "/" not in entry["path"]}


def write_sources_yaml(path: str | Path, manifest_: dict, base_url: str) -> Path:
    """Write (atomically) the config overlay ``{sources: ...}`` of :func:`sources_config`."""
    import yaml

    text = ("# clipxai rehearsal mirror: the `sources:` overlay for a mirror served at " + base_url + "\n"
            + yaml.safe_dump({"sources": sources_config(manifest_, base_url)}, sort_keys=True, width=1000))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


__all__ = ["LOCAL_SOURCES", "NOT_MIRRORED", "WEIGHT_ARCHS", "build_tokenizer", "check_base_url",
           "clippy_release_state", "imagenet_wnids", "manifest", "open_clip_state", "painting_names",
           "sources_config", "weight_archs", "write_mirror", "write_sources_yaml", "write_tar", "write_zip"]
