"""gtsegs_ijcv.mat (MATLAB v7.3 / HDF5 object references): written, read by the documented reference walk."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from clipxai.data import imagenet_seg, shapes
from clipxai.errors import InputError


def _samples():
    rng = np.random.default_rng(1)
    out = []
    for height, width in ((20, 31), (33, 17), (8, 8)):  # non-square: a swapped transpose cannot pass
        out.append((rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                    (rng.random((height, width)) > 0.6).astype(np.uint8)))
    return out


def test_written_file_has_the_real_layout(tmp_path):
    samples = _samples()
    path = tmp_path / "gtsegs_ijcv.mat"
    assert imagenet_seg.write(path, samples) == 3
    assert path.read_bytes().startswith(b"MATLAB 7.3 MAT-file")
    with h5py.File(path, "r") as f:  # the reads the public evaluation loaders do
        assert f["/value/img"].shape == (3, 1) and f["/value/gt"].shape == (3, 1)
        for i, (image, mask) in enumerate(samples):
            assert f[f["/value/img"][i, 0]].shape == (3, image.shape[1], image.shape[0])
            assert np.array_equal(np.array(f[f["/value/img"][i, 0]]).transpose((2, 1, 0)), image)
            assert np.array_equal(np.array(f[f[f["/value/gt"][i, 0]][0, 0]]).transpose((1, 0)), mask)


def test_reader_round_trips(tmp_path):
    samples = _samples()
    imagenet_seg.write(tmp_path / "gtsegs_ijcv.mat", samples)
    data = imagenet_seg.load(tmp_path)  # the folder is enough
    assert len(data) == 3
    for (image, mask), (read_image, read_mask) in zip(samples, data):
        assert read_image.dtype == np.uint8 and np.array_equal(read_image, image)
        assert np.array_equal(read_mask, mask)
    data.close()


def test_shapes_set_masks_are_the_drawn_object(tmp_path):
    config = shapes.ShapesConfig(seed=9)
    shapes.write_imagenet_seg(tmp_path / "a", config, n_images=5, progress=False)
    shapes.write_imagenet_seg(tmp_path / "b", config, n_images=5, progress=False)
    assert (tmp_path / "a/gtsegs_ijcv.mat").read_bytes() == (tmp_path / "b/gtsegs_ijcv.mat").read_bytes()
    data = imagenet_seg.load(tmp_path / "a/gtsegs_ijcv.mat")
    for index, (image, mask) in enumerate(data):
        scene = shapes.render_scene(config, "imagenet-seg", "val", index, train=False, n_objects=1)
        assert len(scene.objects) == 1
        assert np.array_equal(mask, (scene.instances > 0).astype(np.uint8)) and mask.sum() > 20
        assert image.shape == (64, 64, 3)


def test_bad_files_are_input_errors(tmp_path):
    path = tmp_path / "gtsegs_ijcv.mat"
    with pytest.raises(InputError, match="no such file"):
        imagenet_seg.load(path)
    path.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="HDF5"):
        imagenet_seg.load(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("value/img", data=np.zeros((2, 1)))
    with pytest.raises(InputError) as err:
        imagenet_seg.load(path)
    assert err.value.field == "value/img" and "object references" in err.value.expected
    good = _samples()
    imagenet_seg.write(path, good)
    with h5py.File(path, "r+") as f:  # swap in a mask of the wrong size for image 1
        del f["#refs#/gt1"]
        f["#refs#"].create_dataset("gt1", data=np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match=r"value/gt\[1\]"):
        imagenet_seg.load(path)[1]


def test_input_geometry_faithful_crops_the_image_but_squashes_the_mask():
    """A 8x16 image with its object in the left quarter, model input 8: the original's eval transform keeps the
    centre (columns 4..11, no object) while its label is the whole mask squashed to 8x8 (object in columns 0..1);
    the corrected geometry resizes the image like the mask, so the object is where the label says."""
    from types import SimpleNamespace

    from open_clip.transform import image_transform
    from PIL import Image

    from clipxai.protocols import segmentation

    image = np.zeros((8, 16, 3), np.uint8)
    image[:, :4, 0] = 255
    mask = np.zeros((8, 16), np.uint8)
    mask[:, :4] = 1
    identity = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # no normalisation: the tensors are the pixels / 255
    loaded = SimpleNamespace(image_size=8, mean=identity[0], std=identity[1],
                             preprocess=image_transform(8, is_train=False, mean=identity[0], std=identity[1]))
    label = segmentation.label_mask(mask, 8)
    assert label.shape == (8, 8) and label[:, :2].all() and not label[:, 2:].any()
    faithful = segmentation.image_input(loaded, "faithful")(Image.fromarray(image))
    corrected = segmentation.image_input(loaded, "corrected")(Image.fromarray(image))
    assert faithful.shape == corrected.shape == (3, 8, 8)
    np.testing.assert_array_equal(faithful.numpy(), np.transpose(image[:, 4:12], (2, 0, 1)) / np.float32(255))
    assert faithful[0].max() == 0  # the labelled object is not in the faithful input at all
    red = corrected[0].numpy()
    assert (red[:, :2] > 0.8).all() and (red[:, 3:] < 0.2).all()  # the object where the label is
    with pytest.raises(ValueError, match="mode"):
        segmentation.image_input(loaded, "other")
