"""The catalogue of real data sources: where each file comes from and how it is verified.

Facts from docs/protocols.md ("Data sources") and the original projects' instructions. A checksum that no
upstream publishes is recorded at the first download in a lock file (``record_checksum=True``; see
:func:`clipxai.data.download.download`'s ``checksum_lock``) and enforced from then on.

Every URL can be overridden from config (a lab mirror, a local copy): :func:`resolve`. Licence-bound sources
(ImageNet) have no URL: the user points config at their own copy, which is verified against the published md5.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from clipxai.errors import InputError

# Commits pinned for raw files of the TextSpan / seed-004 repositories: a branch name would let the text pools
# (and so the head explanations) change under us.
TEXTSPAN_COMMIT = "b31787c5820eb2121cf2904f90d9c9edd6ff647d"       # yossigandelsman/clip_text_span
PCLENS_COMMIT = "2beda136a55742ff4e57359a4c7706343e6ccc94"         # vstrozzi/PCLens_spectral_... (seed 004)
PCLENS_CLEAN_COMMIT = "643d9d18045918d452e95bf93295830b8f11f2b1"   # same repository, commit adding the pools


@dataclass(frozen=True)
class Source:
    """One downloadable file and how to verify and unpack it."""

    name: str
    url: str | None                 # None: licence-bound, the user must give their copy's location
    filename: str                   # the file name upstream uses (default name of the downloaded file)
    expect: str | None              # content kind sniffed before anything is published (see download.EXPECT_KINDS)
    size: int | None = None         # bytes, when published
    sha256: str | None = None
    md5: str | None = None
    record_checksum: bool = False   # no published checksum: pin the first download's sha256 in the lock file
    kind: str = "data"              # "data" | "text" | "weights"
    unverified: bool = False        # a mirror configured with `checksum: none`: no size/checksum is checked
    members: tuple[str, ...] | None = None  # what to extract by default (None: everything)
    nested: bool = False            # unpack zips found inside the archive
    homepage: str = ""
    note: str = ""

    @property
    def manual(self) -> bool:
        """True when the file cannot be downloaded by the workflow (licence) and needs a user-given copy."""
        return self.url is None

    @property
    def is_archive(self) -> bool:
        return self.expect in ("zip", "tar", "gz")


def _raw_github(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_CATALOGUE: tuple[Source, ...] = (
    Source(
        name="coco_val2017_images", url="http://images.cocodataset.org/zips/val2017.zip",
        filename="val2017.zip", expect="zip", size=815_585_330,
        sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05",
        homepage="https://cocodataset.org/#download",
        note="5,000 images in val2017/; extract into <root>/images"),
    Source(
        name="coco_panoptic_annotations",
        url="http://images.cocodataset.org/annotations/panoptic_annotations_trainval2017.zip",
        filename="panoptic_annotations_trainval2017.zip", expect="zip", size=860_725_834,
        sha256="c05f76d2129b6b561eb70efe16e7006df62f73fb92889132d373b9d90e31a370",
        members=("annotations/panoptic_val2017.json", "annotations/panoptic_val2017.zip"), nested=True,
        homepage="https://cocodataset.org/#download",
        note="zip inside the zip: annotations/panoptic_val2017.zip holds panoptic_val2017/<id>.png; extract into "
             "<root> (gives annotations/panoptic_val2017.json and annotations/panoptic_val2017/)"),
    Source(
        name="png_coco_val2017",
        url="https://lambda004.uniandes.edu.co/panoptic-narrative-grounding/annotations/png_coco_val2017.json",
        filename="png_coco_val2017.json", expect="json", record_checksum=True,
        homepage="https://bcv-uniandes.github.io/panoptic-narrative-grounding/#downloads",
        note="Panoptic Narrative Grounding val narratives (URL as used by CLIP-grounding's setup script)"),
    Source(
        name="imagenet_seg_gtsegs",
        url="http://calvin-vision.net/bigstuff/proj-imagenet/data/gtsegs_ijcv.mat",
        filename="gtsegs_ijcv.mat", expect="mat", record_checksum=True,
        homepage="http://calvin-vision.net/datasets/",
        note="ImageNet-segmentation, 4,276 images, MATLAB v7.3 (HDF5)"),
    Source(
        name="waterbirds",
        url="https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz",
        filename="waterbird_complete95_forest2water2.tar.gz", expect="gz", record_checksum=True,
        homepage="https://github.com/kohpangwei/group_DRO",
        note="Waterbirds (Stanford group DRO); metadata.csv + images in waterbird_complete95_forest2water2/"),
    Source(
        name="voc2012_trainval",
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        filename="VOCtrainval_11-May-2012.tar", expect="tar", md5="6cd6e144f989b92b3379bac3b3de84fd",
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        note="PASCAL VOC 2012 trainval; the segmentation val list is VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt"),
    Source(
        name="imagenet_val", url=None, filename="ILSVRC2012_img_val.tar", expect="tar",
        md5="29b22e2961454d5413ddabcf34fc5622", homepage="https://image-net.org/download.php",
        note="licence-bound: download it yourself and set its path in config; verified against the md5"),
    Source(
        name="imagenet_devkit", url=None, filename="ILSVRC2012_devkit_t12.tar.gz", expect="gz",
        md5="fa75699e90414af021442c21a62c3abf", homepage="https://image-net.org/download.php",
        note="licence-bound: download it yourself and set its path in config; verified against the md5"),
    Source(
        name="textspan_image_descriptions_general",
        url=_raw_github("yossigandelsman/clip_text_span", TEXTSPAN_COMMIT,
                        "text_descriptions/image_descriptions_general.txt"),
        filename="image_descriptions_general.txt", expect="text", record_checksum=True, kind="text",
        homepage="https://github.com/yossigandelsman/clip_text_span",
        note="TextSpan's general image-description pool (README: compute_complete_text_set.py "
             "--text_descriptions image_descriptions_general)"),
    Source(
        name="textspan_google_3498_english",
        url=_raw_github("yossigandelsman/clip_text_span", TEXTSPAN_COMMIT,
                        "text_descriptions/google_3498_english.txt"),
        filename="google_3498_english.txt", expect="text", record_checksum=True, kind="text",
        homepage="https://github.com/yossigandelsman/clip_text_span",
        note="3,498 common English words (TextSpan; also used by seed 004)"),
    Source(
        name="pclens_top_1500_nouns_bias_clean",
        url=_raw_github("vstrozzi/PCLens_spectral_explainability_in_CLIP_ViT_encoder", PCLENS_COMMIT,
                        "utils/text_descriptions/top_1500_nouns_5_sentences_imagenet_bias_clean.txt"),
        filename="top_1500_nouns_5_sentences_imagenet_bias_clean.txt", expect="text", record_checksum=True,
        kind="text", homepage="https://github.com/vstrozzi/PCLens_spectral_explainability_in_CLIP_ViT_encoder",
        note="seed 004's pool for the principal-component explanations (--text_descriptions "
             "top_1500_nouns_5_sentences_imagenet_bias_clean)"),
    Source(
        name="pclens_top_1500_nouns_clean",
        url=_raw_github("vstrozzi/PCLens_spectral_explainability_in_CLIP_ViT_encoder", PCLENS_CLEAN_COMMIT,
                        "utils/text_descriptions/top_1500_nouns_5_sentences_imagenet_clean.txt"),
        filename="top_1500_nouns_5_sentences_imagenet_clean.txt", expect="text", record_checksum=True,
        kind="text", homepage="https://github.com/vstrozzi/PCLens_spectral_explainability_in_CLIP_ViT_encoder",
        note="seed 004's de-duplicated 1500-noun pool before the bias filtering"),
    Source(
        name="clippy_5k",
        url="https://github.com/kahnchana/clippy/releases/download/v1.0/clippy_5k.pt",
        filename="clippy_5k.pt", expect="torch", record_checksum=True, kind="weights",
        homepage="https://github.com/kahnchana/clippy",
        note="CLIPpy ViT-B/16 checkpoint (open_clip config clippy-B-16 in the CLIPpy repository)"),
    Source(
        name="sentence_t5_base_tokenizer",
        url="https://huggingface.co/sentence-transformers/sentence-t5-base/resolve/main/tokenizer.json",
        filename="tokenizer.json", expect="json", record_checksum=True, kind="text",
        homepage="https://huggingface.co/sentence-transformers/sentence-t5-base",
        note="CLIPpy's text tower tokenizer (Sentence-T5 base, SentencePiece as a fast-tokenizer file); fetched "
             "with CLIPpy's weights, built beside the shipped T5 config"),
)

SOURCES: dict[str, Source] = {s.name: s for s in _CATALOGUE}

# Fields a config override may set. Checksums may be overridden too (a newer upstream release, a re-packed
# mirror), but the default is to keep the catalogue's: a mirror must serve the same bytes.
OVERRIDABLE = ("url", "size", "sha256", "md5", "expect", "members", "nested", "record_checksum", "checksum")
# What a config `sources:` mapping may give: a mirror's own checksums (they replace the catalogue's), or
# `checksum: none` to download it unverified (said so in the stamp and the report's provenance).
MIRROR_CHECKSUMS = ("sha256", "md5", "size")


def names() -> list[str]:
    """Every source name in the catalogue, in catalogue order."""
    return list(SOURCES)


def get(name: str) -> Source:
    """The catalogue entry ``name`` (InputError naming the known sources otherwise)."""
    try:
        return SOURCES[name]
    except KeyError:
        raise InputError("sources", "name", f"one of {', '.join(SOURCES)}, not {name!r}") from None


def resolve(source_name: str, overrides: dict | None = None) -> Source:
    """The catalogue entry with config overrides applied.

    ``overrides`` maps source names to either a URL/path string (the usual case: a mirror or a local copy) or a
    mapping of :data:`OVERRIDABLE` fields; entries for other sources are ignored. A licence-bound source resolved
    without a URL is an InputError telling the user what to set.
    """
    source = get(source_name)
    override = (overrides or {}).get(source_name)
    if override is not None:
        if isinstance(override, str):
            override = {"url": override}
        if not isinstance(override, dict):
            raise InputError("sources", source_name, "a URL/path string or a mapping of "
                             f"{', '.join(OVERRIDABLE)}")
        unknown = sorted(set(override) - set(OVERRIDABLE))
        if unknown:
            raise InputError("sources", f"{source_name}.{unknown[0]}", f"one of {', '.join(OVERRIDABLE)}")
        changes = dict(override)
        checksum = changes.pop("checksum", None)
        if checksum is not None and checksum != "none":
            raise InputError("sources", f"{source_name}.checksum", f"'none' (or give sha256/md5/size), not {checksum!r}")
        if checksum == "none" or any(changes.get(k) is not None for k in MIRROR_CHECKSUMS):
            if checksum == "none" and any(changes.get(k) is not None for k in MIRROR_CHECKSUMS):
                raise InputError("sources", f"{source_name}.checksum", "either `checksum: none` or checksums, not both")
            # A mirror's own bytes: its checksums replace all of the catalogue's (a re-packed archive has another
            # size and md5 too), and nothing is pinned in the lock file.
            changes = {"size": None, "sha256": None, "md5": None, "record_checksum": False, **changes,
                       "unverified": checksum == "none"}
        if changes.get("members") is not None:
            changes["members"] = tuple(changes["members"])
        if changes.get("url") is not None:
            changes["url"] = str(changes["url"])
        source = dataclasses.replace(source, **changes)
    if source.url is None:
        raise InputError("sources", f"{source_name}.url",
                         f"the path of your own copy of {source.filename} ({source.note}; {source.homepage})")
    return source


def download_arguments(source_name: str, entry: str | dict | None) -> list[str]:
    """The `clipxai download` / `fetch-weights` arguments of a config ``sources:`` entry (none when absent).

    A string is a mirror serving the catalogue's bytes (the catalogue's checksums apply). A mapping is a mirror with
    its own bytes: it must give ``sha256``, ``md5`` or ``size``, or say ``checksum: none`` explicitly.
    """
    if entry is None:
        return []
    if isinstance(entry, str):
        return ["--url", entry]
    if not isinstance(entry, dict) or not entry.get("url"):
        raise InputError("sources", source_name, "a URL/path string or a mapping with url")
    unknown = sorted(set(entry) - {"url", "checksum", *MIRROR_CHECKSUMS})
    if unknown:
        raise InputError("sources", f"{source_name}.{unknown[0]}", f"one of url, checksum, {', '.join(MIRROR_CHECKSUMS)}")
    given = [k for k in MIRROR_CHECKSUMS if entry.get(k) is not None]
    if not given and entry.get("checksum") != "none":
        raise InputError("sources", source_name, f"sha256, md5 or size of the mirror's {entry['url']}, or "
                         "`checksum: none` to download it unverified")
    if given and entry.get("checksum") is not None:
        raise InputError("sources", f"{source_name}.checksum", "either `checksum: none` or checksums, not both")
    args = ["--url", str(entry["url"])]
    for key in given:
        args += [f"--{key}", str(entry[key])]
    if entry.get("checksum") == "none":
        args.append("--no-checksum")
    return args


def catalogue() -> list[dict]:
    """The catalogue as plain dicts (for documentation, the report's provenance section and tests)."""
    return [dataclasses.asdict(s) for s in _CATALOGUE]


__all__ = ["SOURCES", "Source", "catalogue", "download_arguments", "get", "names", "resolve"]
