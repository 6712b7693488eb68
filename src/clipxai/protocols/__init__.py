"""Protocols inside the image tower (issue 5), shared by the `clipxai` verbs the heads workflow calls.

``datasets``: one way to read the labelled image sets those protocols use (ImageNet val, ImageNet-segmentation,
Waterbirds), real or from the shapes world, with ids and labels that travel with every row. ``textpool``: the
shapes world's text pool. ``selection``: heads chosen by the words of their TextSpan texts. ``segmentation``: the
ImageNet-segmentation protocol (maps per method, then pixAcc / mIoU / mAP). ``waterbirds``: worst-group accuracy
before and after mean-ablating heads.
"""
