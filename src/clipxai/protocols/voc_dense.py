"""The dense patch-text segmentation protocol of CLIPpy on a VOC-format split (the ``segment-voc`` verb's): its
prompt classes, its tables (per-class IoU; mIoU per label alignment and absent-class rule with a bootstrap 95%
interval), the confusion matrices it stores and its example figure. The segmentation itself is
:func:`clipxai.segmentation.dense.evaluate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipxai.errors import InputError

ABSENT_MODES = ("zero", "exclude")

# The table of segment-voc outputs (table-segmentation).
KEYS = ["dataset", "model", "split", "alignment", "absent"]
PUBLISHED_PROTOCOL = ("faithful", "zero")  # the replication's label geometry and absent-class rule
JI_NOTE = ("published only: the replication's code does not compute JI, so its protocol cannot be stated exactly; "
           "not reproduced")


def prompt_classes(choice: str, dataset) -> list[str]:
    """The classes prompted: the data set's own ("dataset") or the replication's 60 (real VOC only)."""
    from clipxai.segmentation.dense import N_VOC_CLASSES, VOC_EXTENDED_CLASSES

    if choice == "dataset":
        return list(dataset.class_names)
    if len(dataset.class_names) != N_VOC_CLASSES:
        raise InputError(dataset.root, "class_names", f"the {N_VOC_CLASSES} VOC classes for --classes voc-extended "
                         f"(this set has {len(dataset.class_names)}; use --classes dataset)")
    return list(VOC_EXTENDED_CLASSES)


def result_tables(result, dataset, labels: dict, seed: int = 0, n_resamples: int = 1000, split_images: int = 0
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-class rows, summary rows with the mIoU's bootstrap 95% interval) of a :class:`SegmentationResult`;
    ``n_split_images`` is ``split_images`` where given, else the copy's own list."""
    from clipxai.segmentation.dense import miou_interval

    per_class, summary = [], []
    for alignment, accumulator in result.accumulators.items():
        for absent in ABSENT_MODES:
            scored = accumulator.result(absent=absent)
            for index, name in enumerate(dataset.class_names):
                per_class.append({**labels, "alignment": alignment, "absent": absent, "class_index": index,
                                  "class_name": name, "iou": float(scored["per_class"][index]),
                                  "present": int(scored["present"][index])})
            lo, hi = miou_interval(result.per_image[alignment], absent, seed, n_resamples,
                                   keys=(labels["dataset"], labels["model"], labels["split"], alignment, absent))
            summary.append({**labels, "alignment": alignment, "absent": absent, "n_images": result.n_images,
                            "n_split_images": split_images or len(dataset),
                            "n_label_classes": len(dataset.class_names), "n_prompt_classes": len(result.prompts),
                            "n_classes_present": int(scored["present"].sum()),
                            "n_pixels": int(accumulator.confusion.sum()), "miou": scored["miou"], "miou_lo": lo,
                            "miou_hi": hi})
    return pd.DataFrame(per_class), pd.DataFrame(summary)


def confusion_arrays(result, dataset) -> dict[str, np.ndarray]:
    """What the confusion .npz holds: class names, prompts, the image ids scored, per alignment the confusion matrix
    and the per-image ones it sums."""
    return {"class_names": np.array(dataset.class_names), "prompts": np.array(result.prompts),
            "image_id": np.array(dataset.ids[:result.n_images]),
            **{f"confusion_{a}": acc.confusion for a, acc in result.accumulators.items()},
            **{f"per_image_{a}": matrices for a, matrices in result.per_image.items()}}


def draw_examples(path: str, result, class_names, title: str) -> None:
    """Rows of (model input, label per alignment, prediction), coloured with VOC's palette."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from clipxai.data.voc import palette

    colours = np.asarray(palette(), dtype=np.uint8).reshape(256, 3)
    examples = result.examples
    alignments = list(result.accumulators)
    columns = ["input"] + [f"label ({a})" for a in alignments] + ["prediction"]
    fig, axes = plt.subplots(len(examples), len(columns), figsize=(2.4 * len(columns), 2.4 * len(examples) + 0.6),
                             squeeze=False)
    shown: set[int] = set()
    for row, example in enumerate(examples):
        panels = [example.image] + [colours[example.label[a]] for a in alignments] + [colours[example.prediction]]
        for a in alignments:
            shown |= set(np.unique(example.label[a]).tolist())
        shown |= set(np.unique(example.prediction).tolist())
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
            if col == 0:
                ax.set_ylabel(example.image_id, fontsize=7)
    handles = [Patch(color=colours[i] / 255, label=class_names[i] if i < len(class_names) else "void")
               for i in sorted(shown)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    from clipxai.viz.provenance import save_figure

    save_figure(fig, path)  # .png and .pdf, without timestamps: same input, same bytes
    plt.close(fig)


def write_figure(path: str, result, dataset, summary: pd.DataFrame, labels: dict, rule: str,
                 inputs: list[str]) -> None:
    """The example figure (.png, .pdf) and its JSON sidecar, whose caption quotes the mIoU of each alignment."""
    from clipxai.viz.provenance import write_sidecar

    split = labels["split"]
    title = f"{labels['model']} on {labels['dataset']} ({split}): dense patch-text segmentation"
    draw_examples(path, result, dataset.class_names, title)
    miou = summary.set_index(["alignment", "absent"])["miou"]
    scores = "; ".join(f"{a} alignment mIoU {100 * miou[(a, 'zero')]:.1f}%" for a in result.accumulators)
    write_sidecar(
        path, title=title, section="segmentation", rule=rule, command="clipxai segment-voc",
        caption=(f"First {len(result.examples)} images of the {split} split: the model's input (after its "
                 "resize and centre crop), the label brought to that grid (faithful: squashed as in the CLIPpy "
                 "replication; corrected: the image's own resize and crop) and the prediction (argmax over "
                 f"{len(result.prompts)} class prompts, extra classes as background). Over {result.n_images} "
                 f"images: {scores} (absent classes count as 0)."),
        inputs=inputs)


def summary_table(summary: pd.DataFrame, miou_ids: dict, ji_ids: dict) -> pd.DataFrame:
    """The table of ``segment-voc`` summaries: a mIoU row per run x alignment x absent (the published protocol's
    tied to ``miou_ids``), and a value-less JI row for the runs of ``ji_ids``."""
    rows = []
    for record in summary.sort_values(KEYS, kind="stable").to_dict("records"):
        run = (record["dataset"], record["model"])
        published = (record["alignment"], record["absent"]) == PUBLISHED_PROTOCOL
        base = {k: record[k] for k in KEYS}
        coverage = {"n_images": int(record["n_images"]), "n_split_images": int(record["n_split_images"]),
                    "complete": bool(record["n_images"] >= record["n_split_images"])}
        rows.append({**base, "metric": "mIoU", "value": record["miou"], "lo": record["miou_lo"],
                     "hi": record["miou_hi"], **coverage,
                     "reported": miou_ids.get(run, "") if published else "", "note": ""})
        if published and run in ji_ids:
            rows.append({**base, "metric": "JI", "value": float("nan"), "lo": float("nan"), "hi": float("nan"),
                         **coverage, "reported": ji_ids[run], "note": JI_NOTE})
    return pd.DataFrame(rows)


def class_table(per_class: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per-class IoU of one data set: a row per model x split x alignment x absent, a column per class."""
    subset = per_class[per_class["dataset"] == dataset]
    if subset.empty:
        raise InputError("--out-classes", dataset, "a data set with per-class results")
    names = subset.drop_duplicates("class_index").sort_values("class_index")["class_name"].tolist()
    wide = subset.pivot_table(index=KEYS[1:], columns="class_index", values="iou", dropna=False, sort=True)
    wide.columns = names
    return wide.reset_index()


def markdown_section(shown: pd.DataFrame, classes: pd.DataFrame, dataset: str) -> str:
    """The Markdown of one data set: its summary rows (``shown``: the summary table in percent, noting a partial
    run) and its per-class IoU table (:func:`class_table`), in percent."""
    from clipxai.artifacts.tables import markdown_table

    parts = [f"\n## {dataset}\n\n"]
    partial = shown[(shown["dataset"] == dataset) & ~shown["complete"].astype(bool)]
    if len(partial):
        counts = sorted(set(zip(partial["n_images"], partial["n_split_images"])))
        parts.append("Partial run: " + ", ".join(f"{n} of {m} entries" for n, m in counts)
                     + "; not comparable with the published numbers.\n\n")
    parts.append("mIoU % (95% CI):\n\n")
    parts.append(markdown_table(shown[shown["dataset"] == dataset].drop(columns=["dataset", "note"])))
    parts.append("\nPer-class IoU %:\n\n")
    numeric = classes.columns[len(KEYS) - 1:]
    parts.append(markdown_table(classes.assign(**{c: 100 * classes[c] for c in numeric})))
    return "".join(parts)
