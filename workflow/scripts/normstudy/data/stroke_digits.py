"""A small, deterministic, learnable stand-in for MNIST: stroke digits with random pose and noise."""

from __future__ import annotations

import numpy as np

SIZE = 28


def _ellipse(
    cx: float, cy: float, rx: float, ry: float, start: float = 0.0, stop: float = 360.0, steps: int = 20
) -> list[tuple[float, float]]:
    angles = np.radians(np.linspace(start, stop, steps))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Each digit is a few polylines in a unit box (x right, y down); rendering thickens and poses them.
DIGIT_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_ellipse(0.5, 0.5, 0.24, 0.38)],
    1: [[(0.36, 0.25), (0.52, 0.1), (0.52, 0.9)]],
    2: [
        [
            (0.26, 0.3),
            (0.36, 0.14),
            (0.52, 0.1),
            (0.68, 0.16),
            (0.74, 0.32),
            (0.68, 0.48),
            (0.26, 0.9),
            (0.78, 0.9),
        ]
    ],
    3: [
        [
            (0.26, 0.14),
            (0.72, 0.14),
            (0.46, 0.45),
            (0.64, 0.52),
            (0.74, 0.7),
            (0.62, 0.87),
            (0.42, 0.9),
            (0.25, 0.82),
        ]
    ],
    4: [[(0.64, 0.9), (0.64, 0.1), (0.2, 0.64), (0.8, 0.64)]],
    5: [
        [
            (0.72, 0.12),
            (0.32, 0.12),
            (0.28, 0.46),
            (0.5, 0.4),
            (0.68, 0.5),
            (0.73, 0.68),
            (0.62, 0.86),
            (0.42, 0.9),
            (0.26, 0.82),
        ]
    ],
    6: [[(0.66, 0.12), (0.42, 0.3), (0.29, 0.58)], _ellipse(0.5, 0.68, 0.21, 0.21)],
    7: [[(0.22, 0.12), (0.78, 0.12), (0.42, 0.9)]],
    8: [_ellipse(0.5, 0.3, 0.18, 0.18), _ellipse(0.5, 0.7, 0.22, 0.2)],
    9: [_ellipse(0.5, 0.32, 0.2, 0.2), [(0.7, 0.32), (0.62, 0.9)]],
}


def _segments(digit: int) -> np.ndarray:
    """All line segments of a digit as an array of shape (S, 2, 2)."""
    parts = [np.array(line, dtype=np.float64) for line in DIGIT_STROKES[digit]]
    return np.concatenate([np.stack([p[:-1], p[1:]], axis=1) for p in parts])


def render_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """Render one digit as 28x28 uint8 with random scale, rotation, shear, shift, stroke width and noise."""
    segments = _segments(digit) - 0.5
    scale = rng.uniform(15.0, 20.0)
    angle = np.radians(rng.uniform(-15.0, 15.0))
    shear = rng.uniform(-0.25, 0.25)
    shift = rng.uniform(-2.5, 2.5, size=2) + SIZE / 2
    pose = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array(
        [[1.0, shear], [0.0, 1.0]]
    )
    points = segments @ (scale * pose).T + shift
    start, end = points[:, 0], points[:, 1]
    grid = np.stack(np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5), axis=-1).reshape(-1, 1, 2)
    direction = end - start
    length2 = np.maximum((direction**2).sum(axis=1), 1e-9)
    t = np.clip(((grid - start) * direction).sum(axis=2) / length2, 0.0, 1.0)
    nearest = start + t[..., None] * direction
    distance = np.sqrt(((grid - nearest) ** 2).sum(axis=2)).min(axis=1)
    half_width = rng.uniform(0.8, 1.6)
    ink = np.clip(half_width + 0.5 - distance, 0.0, 1.0) * rng.uniform(0.75, 1.0)
    ink = ink + rng.normal(0.0, 0.06, size=ink.shape)
    return np.clip(np.rint(ink * 255.0), 0, 255).astype(np.uint8).reshape(SIZE, SIZE)


def generate(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate `count` images with balanced labels; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 10).astype(np.uint8)
    images = (
        np.stack([render_digit(int(label), rng) for label in labels]) if count else np.zeros((0, SIZE, SIZE), np.uint8)
    )
    return images, labels
