"""Explaining the image tower's attention heads with text: TextSpan, its principal-component variant (seed 004),
and mean-ablation on stored residual decompositions (``clipxai.models.decompose``)."""
