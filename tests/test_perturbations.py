"""The robustness perturbations: deterministic for a seed, and each changes a face in the way its name says."""

import cv2
import numpy as np
import pytest

from emotion.evaluation import perturbations
from emotion.evaluation.perturbations import PERTURBATIONS


def faces() -> np.ndarray:
    """Two mid-grey textured faces with a bright 8x8 square in the middle."""
    rng = np.random.default_rng(0)
    batch = rng.integers(90, 150, (2, 48, 48)).astype(np.uint8)
    batch[:, 20:28, 20:28] = 250
    return batch


def bright_centre(face: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(face > 200)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_each_perturbation_is_deterministic_and_changes_the_faces(name):
    perturb = PERTURBATIONS[name]
    out = perturb(faces(), 7)
    assert out.shape == (2, 48, 48) and out.dtype == np.uint8
    assert np.array_equal(out, perturb(faces(), 7))
    assert not np.array_equal(out, faces())


def test_box_shift_moves_the_face_by_a_tenth_of_the_box():
    moved = perturbations.box_shift(faces(), 3)
    for face in moved:
        assert np.linalg.norm(bright_centre(face) - bright_centre(faces()[0])) == pytest.approx(4.8, abs=0.6)


def test_box_scale_below_one_enlarges_the_face_and_above_one_shrinks_it():
    area = (faces()[0] > 200).sum()
    assert (perturbations.box_scale(faces(), 0, 0.85)[0] > 200).sum() > 1.25 * area
    assert (perturbations.box_scale(faces(), 0, 1.2)[0] > 200).sum() < 0.8 * area
    assert np.allclose(bright_centre(perturbations.box_scale(faces(), 0, 1.2)[0]), [23.5, 23.5], atol=0.5)


def test_brightness_shifts_every_pixel_by_fifty_levels():
    out = perturbations.brightness(faces(), 1).astype(int) - faces().astype(int)
    unclipped = faces() < 200
    assert set(np.unique(np.abs(out[unclipped]))) == {50}


def test_contrast_halves_the_spread_around_the_mean():
    out = perturbations.contrast(faces(), 0)
    assert out.std() == pytest.approx(faces().std() / 2, rel=0.05)
    assert out.mean() == pytest.approx(faces().mean(), abs=1)


def test_blur_removes_fine_detail():
    sharpness = [cv2.Laplacian(face, cv2.CV_64F).var() for face in (faces()[0], perturbations.blur(faces(), 0)[0])]
    assert sharpness[1] < 0.2 * sharpness[0]


def test_jpeg_keeps_the_face_but_adds_block_artefacts():
    out = perturbations.jpeg(faces(), 0).astype(int)
    assert 1 < np.abs(out - faces()).mean() < 20
