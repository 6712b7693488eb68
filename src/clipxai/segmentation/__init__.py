"""Dense (patch-text) semantic segmentation: CLIPpy's protocol on PASCAL VOC-format data (:mod:`.dense`)."""

from clipxai.segmentation.dense import (ALIGNMENTS, CLIPPY_PROMPT, N_VOC_CLASSES, VOC_EXTENDED_CLASSES,
                                        align_label, class_prompts, clippy_prompt, collapse_to_label_classes,
                                        evaluate, patch_features, predict, similarity_maps)

__all__ = ["ALIGNMENTS", "CLIPPY_PROMPT", "N_VOC_CLASSES", "VOC_EXTENDED_CLASSES", "align_label", "class_prompts",
           "clippy_prompt", "collapse_to_label_classes", "evaluate", "patch_features", "predict", "similarity_maps"]
