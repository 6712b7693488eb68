"""Metrics: grounding (PNG IoU, both directions, faithful and corrected), segmentation (VOC confusion mIoU,
ImageNet-segmentation pixAcc/mIoU/mAP), classification (zero-shot top-k, worst-group) and bootstrap CIs.

Import the submodule you need (``from clipxai.metrics import grounding``); none is imported here, so using one
does not pay for the others' dependencies.
"""

__all__ = ["bootstrap", "classification", "grounding", "segmentation"]
