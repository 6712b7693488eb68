"""clipxai: reproduce and check published results on how CLIP models ground language in images."""

__version__ = "0.1.0"
