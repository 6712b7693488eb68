"""The GradCAM family for ResNet CLIP (seed 001), through the ``grad-cam`` package (pytorch_grad_cam 1.5.7).

Target layer: the last bottleneck of ``layer4``. Objective per row: cosine of the image embedding with the
normalised text embedding (seed 001 normalises both); ``polarity="negative"`` negates the target. Maps are the
package's ReLU'd CAM at the feature-map resolution (the model's grid), before its resize and min-max.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.attribution.base import (Attribution, Method, check_polarity, prepare_inputs, register,
                                      require_resnet)
from clipxai.errors import InputError


class _CosineTarget:
    """grad-cam target: cosine of one output row with a fixed, normalised target embedding."""

    def __init__(self, target: torch.Tensor):
        self.target = target

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return (F.normalize(output, dim=-1) * self.target).sum()


def _grid_cam(cam_class):
    """Subclass of a grad-cam CAM that returns the ReLU'd CAM at the feature-map resolution, unscaled."""

    class GridCAM(cam_class):
        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            activations = self.activations_and_grads.activations[0].cpu().numpy()
            grads = self.activations_and_grads.gradients
            grads = grads[0].cpu().numpy() if grads else None
            cam = self.get_cam_image(input_tensor, self.target_layers[0], targets, activations, grads, eigen_smooth)
            return [np.maximum(cam, 0)]

        def aggregate_multi_layers(self, cam_per_target_layer):
            return cam_per_target_layer[0]

    GridCAM.__name__ = f"Grid{cam_class.__name__}"
    return GridCAM


class _ResNetCam(Method):
    defaults = {"polarity": "positive"}
    maps_text = False
    cam_name = ""  # class name in pytorch_grad_cam
    uses_target = True

    def check_params(self) -> None:
        check_polarity(self.name, self.params["polarity"])
        if not self.uses_target and self.params["polarity"] != "positive":
            raise InputError(self.name, "polarity", f"'positive': {self.name} ignores the text, so it has no "
                             "negative saliency")

    def _configure(self, cam) -> None:
        """Per-method settings of the CAM object."""

    def attribute(self, model, images, texts) -> Attribution:
        require_resnet(self.name, model)
        images, texts = prepare_inputs(self.name, model, images, texts)
        import pytorch_grad_cam  # heavy (OpenCV, scikit-learn): only when a ResNet CAM is asked for

        clip = model.model
        visual = clip.visual
        with torch.no_grad():
            target = F.normalize(clip.encode_text(texts), dim=-1)
        if self.params["polarity"] == "negative":
            target = -target
        targets = [_CosineTarget(row) for row in target]
        cam_class = _grid_cam(getattr(pytorch_grad_cam, self.cam_name))
        # Differentiate w.r.t. the input only: no parameter gradients computed or left on the model.
        requires_grad = [p.requires_grad for p in visual.parameters()]
        cam = cam_class(model=visual, target_layers=[visual.layer4[-1]])
        self._configure(cam)
        try:
            for parameter in visual.parameters():
                parameter.requires_grad_(False)
            if cam.uses_gradients:
                with torch.enable_grad():
                    grid = cam(input_tensor=images.detach().clone().requires_grad_(True), targets=targets)
            else:
                with torch.no_grad():
                    grid = cam(input_tensor=images, targets=targets)
        finally:
            cam.activations_and_grads.release()
            for parameter, flag in zip(visual.parameters(), requires_grad):
                parameter.requires_grad_(flag)
        gh, gw = model.grid
        grid = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))
        if tuple(grid.shape[1:]) != (gh, gw):
            raise ValueError(f"{self.name}: CAM of shape {tuple(grid.shape[1:])}, expected the model grid {gh}x{gw}")
        return Attribution(image=grid, text=None)


@register
class GradCamResNet(_ResNetCam):
    name = "gradcam-rn"
    cam_name = "GradCAM"


@register
class GradCamPlusPlusResNet(_ResNetCam):
    name = "gradcampp-rn"
    cam_name = "GradCAMPlusPlus"


@register
class ScoreCamResNet(_ResNetCam):
    """ScoreCAM: one forward per feature channel (2048 for RN50), ``batch_size`` masked images at a time."""

    name = "scorecam-rn"
    cam_name = "ScoreCAM"
    defaults = {"polarity": "positive", "batch_size": 32}

    def _configure(self, cam) -> None:
        cam.batch_size = self.params["batch_size"]


@register
class EigenCamResNet(_ResNetCam):
    """EigenCAM: first principal component of the layer4 activations (ignores the text)."""

    name = "eigencam-rn"
    cam_name = "EigenCAM"
    uses_target = False
