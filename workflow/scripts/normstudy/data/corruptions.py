"""Corrupted copies of test images: MNIST-C's fifteen kinds (Mu & Gilmer, 2019) and contrast.

Every kind is a pure function of the images (uint8, N x 28 x 28), a severity and a seeded generator, and returns
uint8 images of the same shape: values are computed in [0, 1] and rounded to 8 bits like the originals. Severity 0
is the identity for every kind; 1 to 5 follow MNIST-C's tables where it has one (`shift_sets.MNIST_C_SEVERITY` names
the level its published set used). Its four single-form kinds are graded here: stripe by the width of the inverted
bands, dotted line and zigzag by how many are drawn, Canny edges by how much of the edge map replaces the digit;
MNIST-C's own form is the level named. Image operations come from scipy.ndimage and scikit-image.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from scipy import ndimage, signal
from skimage import feature, transform, util

SIDE = 28
CENTRE = (SIDE - 1) / 2
SEVERITIES = (0, 1, 2, 3, 4, 5)

# Parameters by severity 1..5 (MNIST-C's corruptions.py where it has them).
SHOT_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # sigma, max shift, passes
MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # kernel radius, sigma (ImageMagick's motion blur)
SHEAR = (0.2, 0.4, 0.6, 0.8, 1.0)
SCALE = (1 / 0.9, 1 / 0.8, 1 / 0.7, 1 / 0.6, 1 / 0.5)  # inverse map: the digit shrinks by 0.9 .. 0.5
ROTATE = (0.2, 0.4, 0.6, 0.8, 1.0)  # radians
TRANSLATE = (1, 2, 3, 4, 5)  # pixels along each axis
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # strength, decay of the fractal's roughness
SPATTER = (
    (0.65, 0.3, 4, 0.69, 0.6),
    (0.65, 0.3, 3, 0.68, 0.6),
    (0.65, 0.3, 2, 0.68, 0.5),
    (0.65, 0.3, 1, 0.65, 1.5),
    (0.67, 0.4, 1, 0.65, 1.5),
)  # liquid mean, sd, blur, threshold, mask blur
STRIPE_WIDTH = (3, 4, 5, 6, 7)  # columns inverted at each side
LINES = (1, 2, 3, 4, 5)  # dotted lines or zigzags drawn
CANNY_WEIGHT = (0.2, 0.4, 0.6, 0.8, 1.0)  # share of the edge map in the result
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
SPATTER_GREY = 63 / 255
MOTION_CHUNK = 1000


def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float64) / 255.0


def shot_noise(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise: each pixel a photon count of mean x * c, over c."""
    photons = SHOT_PHOTONS[level - 1]
    return rng.poisson(x * photons) / photons


def impulse_noise(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on a share of the pixels (scikit-image's random_noise)."""
    return util.random_noise(x, mode="s&p", amount=IMPULSE_AMOUNT[level - 1], rng=rng, clip=True)


def glass_blur(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, swap pixels with random near neighbours pass by pass (MNIST-C's order), blur again."""
    sigma, shift, passes = GLASS[level - 1]
    out = np.round(ndimage.gaussian_filter(x, sigma=(0, sigma, sigma)) * 255) / 255
    rows = np.arange(len(out))
    for _ in range(passes):
        for h in range(SIDE - shift, shift, -1):
            for w in range(SIDE - shift, shift, -1):
                chosen = rows[rng.random(len(out)) < 0.5]
                dy, dx = rng.integers(-shift, shift, size=(2, len(chosen)))
                here, there = out[chosen, h, w], out[chosen, h + dy, w + dx]
                out[chosen, h, w], out[chosen, h + dy, w + dx] = there, here
    return ndimage.gaussian_filter(out, sigma=(0, sigma, sigma))


def motion_kernels(radius: int, sigma: float, angles_degrees: np.ndarray) -> np.ndarray:
    """Per angle, a one-sided Gaussian streak of `radius` pixels, as ImageMagick's motion blur draws it: each step's
    weight split between its four nearest pixels."""
    size, count = 2 * radius + 1, len(angles_degrees)
    kernels = np.zeros((count, size, size))
    theta, steps = np.deg2rad(angles_degrees)[:, None], np.arange(radius + 1)[None, :]
    rows, cols = radius - steps * np.sin(theta), radius + steps * np.cos(theta)
    weights = np.broadcast_to(np.exp(-(steps**2) / (2 * sigma**2)), rows.shape)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    which = np.broadcast_to(np.arange(count)[:, None], rows.shape)
    for dr in (0, 1):
        for dc in (0, 1):
            share = (1 - np.abs(rows - r0 - dr)) * (1 - np.abs(cols - c0 - dc))
            keep = (r0 + dr < size) & (c0 + dc < size)
            np.add.at(kernels, (which[keep], (r0 + dr)[keep], (c0 + dc)[keep]), (weights * share)[keep])
    return kernels / kernels.sum(axis=(1, 2), keepdims=True)


def motion_blur(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Each image smeared along its own random direction within 45 degrees of horizontal (scipy's FFT convolution,
    zero outside the image)."""
    radius, sigma = MOTION[level - 1]
    angles = rng.uniform(-45, 45, size=len(x))
    # In chunks: the padded transforms of 10,000 images and kernels at once took 2.4 GB.
    out = np.empty_like(x)
    for i in range(0, len(x), MOTION_CHUNK):
        kernels = motion_kernels(radius, sigma, angles[i : i + MOTION_CHUNK])
        out[i : i + MOTION_CHUNK] = signal.fftconvolve(x[i : i + MOTION_CHUNK], kernels, mode="same", axes=(1, 2))
    return out


def _warped(x: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """Each image through its own affine map about the image centre (scikit-image's warp, inverse map)."""
    out = np.empty_like(x)
    to_centre = transform.AffineTransform(translation=(-CENTRE, -CENTRE)).params
    back = transform.AffineTransform(translation=(CENTRE, CENTRE)).params
    for i, (image, matrix) in enumerate(zip(x, matrices, strict=True)):
        out[i] = transform.warp(image, transform.AffineTransform(matrix=back @ matrix @ to_centre), order=1)
    return out


def shear(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Horizontal shear about the centre, in a random direction per image."""
    signs = rng.choice((-1.0, 1.0), size=len(x))
    return _warped(x, [transform.AffineTransform(shear=SHEAR[level - 1] * s).params for s in signs])


def scale(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """The digit shrunk about the centre."""
    matrix = transform.AffineTransform(scale=SCALE[level - 1]).params
    return _warped(x, [matrix] * len(x))


def rotate(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Rotation about the centre, in a random direction per image."""
    signs = rng.choice((-1.0, 1.0), size=len(x))
    return _warped(x, [transform.AffineTransform(rotation=ROTATE[level - 1] * s).params for s in signs])


def translate(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A shift by the level's pixels along each axis, each in a random direction."""
    signs = rng.choice((-1.0, 1.0), size=(len(x), 2))
    return _warped(x, [transform.AffineTransform(translation=TRANSLATE[level - 1] * s).params for s in signs])


def brightness(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """MNIST-C's HSV value shift; for grey images value is the pixel itself, so: x + c."""
    return x + BRIGHTNESS[level - 1]


def contrast(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Each image's deviations from its own mean scaled down."""
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * CONTRAST[level - 1] + means


def plasma(count: int, decay: float, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Diamond-square fractal noise in [0, 1], one 28 x 28 map per image (mapsize 32, cropped)."""
    maps, step, wibble = np.zeros((count, size, size)), size, 100.0
    while step >= 2:
        half = step // 2
        corners = maps[:, 0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half:size:step, half:size:step] = square / 4 + wibble * rng.uniform(-wibble, wibble, square.shape)
        centres = maps[:, half:size:step, half:size:step]
        corners = maps[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:size:step, half:size:step] = left / 4 + wibble * rng.uniform(-wibble, wibble, left.shape)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:size:step, 0:size:step] = top / 4 + wibble * rng.uniform(-wibble, wibble, top.shape)
        step, wibble = half, wibble / decay
    maps = maps[:, :SIDE, :SIDE]
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def fog(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Fractal haze added and the image rescaled to keep its brightest pixel's share."""
    strength, decay = FOG[level - 1]
    peak = x.max(axis=(1, 2), keepdims=True)
    return (x + strength * plasma(len(x), decay, rng)) * peak / (peak + strength)


def spatter(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Blurred, thresholded noise as grey mud drops over the digit."""
    mean, sd, blur, threshold, mask_blur = SPATTER[level - 1]
    liquid = ndimage.gaussian_filter(rng.normal(mean, sd, size=x.shape), sigma=(0, blur, blur))
    liquid[liquid < threshold] = 0
    mask = ndimage.gaussian_filter((liquid > threshold).astype(np.float64), sigma=(0, mask_blur, mask_blur))
    mask[mask < 0.8] = 0
    return x * (1 - mask) + SPATTER_GREY * mask


def stripe(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """The outer columns at both sides inverted."""
    width, out = STRIPE_WIDTH[level - 1], x.copy()
    out[:, :, :width] = 1 - out[:, :, :width]
    out[:, :, SIDE - width :] = 1 - out[:, :, SIDE - width :]
    return out


def line_mask(c0: np.ndarray, r0: np.ndarray, c1: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """Per image, a soft line from (c0, r0) to (c1, r1), columns c0..c1 only (MNIST-C's log-decay profile)."""
    cols, rows = np.arange(SIDE)[None, None, :], np.arange(SIDE)[None, :, None]
    c0, r0, c1, r1 = (np.asarray(v, dtype=np.float64)[:, None, None] for v in (c0, r0, c1, r1))
    flat = c1 == c0
    slope = np.where(flat, 0.0, (r1 - r0) / np.where(flat, 1.0, c1 - c0))
    distance = np.clip(np.abs(rows - (slope * (cols - c0) + r0)), 0, 2.3 - 1e-10)
    mask = np.clip(np.log(1 - distance / 2.3) + 1, 0, 1)
    inside = (cols >= np.floor(c0)) & (cols < np.ceil(c1)) & ~flat
    return mask * inside


def dotted_line(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Dotted lines across the image (two columns on, two off), as many as the level says."""
    out, dots = x.copy(), (np.arange(SIDE) // 2) % 2 == 1
    for _ in range(LINES[level - 1]):
        r0, r1 = rng.integers(0, SIDE - 1, size=(2, len(x)))
        out = out + line_mask(np.zeros(len(x)), r0, np.full(len(x), SIDE - 1.0), r1) * dots
    return out


def zigzag(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Zigzag lines across the image, as many as the level says: from column 2 to 25 along a random slope, teeth 2 px
    long and 2 px high (MNIST-C's shape), drawn as soft segments."""
    out = x.copy()
    for _ in range(LINES[level - 1]):
        r0 = rng.integers(0, SIDE - 1, size=len(x)).astype(np.float64)
        cols, rows = zigzag_points(r0, r0 + rng.integers(-5, 5, size=len(x)))
        for i in range(1, cols.shape[1]):
            left = cols[:, i - 1] <= cols[:, i]
            a_c, b_c = np.where(left, cols[:, i - 1], cols[:, i]), np.where(left, cols[:, i], cols[:, i - 1])
            a_r, b_r = np.where(left, rows[:, i - 1], rows[:, i]), np.where(left, rows[:, i], rows[:, i - 1])
            out = np.clip(out + line_mask(a_c, a_r, b_c, b_r), 0, 1)
    return out


def zigzag_points(r0: np.ndarray, r1: np.ndarray, c0: float = 2.0, c1: float = 25.0, tooth: float = 2.0):
    """Per image, the zigzag's corners (columns, rows) from (c0, r0) towards (c1, r1)."""
    theta = np.arctan((r1 - r0) / (c1 - c0))[:, None]
    span = (c1 - c0) / np.cos(theta)
    teeth = int((c1 - c0) // (2 * tooth))  # the same for every slope here: a span of 23 to 23.6 pixels
    corners = np.broadcast_to((2 * np.arange(teeth) + 1) * tooth, (len(r0), teeth))
    heights = np.broadcast_to((-1.0) ** np.arange(teeth) * tooth, (len(r0), teeth))
    along = np.concatenate([np.zeros_like(span), corners, span], axis=1)
    across = np.concatenate([np.zeros_like(span), heights, np.zeros_like(span)], axis=1)
    cols = c0 + along * np.cos(theta) - across * np.sin(theta)
    rows = r0[:, None] + along * np.sin(theta) + across * np.cos(theta)
    return cols, rows


def canny_edges(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """The digit blended with its Canny edge map (scikit-image, sigma 1); level 5 is the edge map alone."""
    weight = CANNY_WEIGHT[level - 1]
    edges = np.stack([feature.canny(image) for image in x]).astype(np.float64)
    return (1 - weight) * x + weight * edges


KINDS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotate,
    "translate": translate,
    "brightness": brightness,
    "fog": fog,
    "spatter": spatter,
    "stripe": stripe,
    "dotted_line": dotted_line,
    "zigzag": zigzag,
    "canny_edges": canny_edges,
    "contrast": contrast,
}


def generator(seed: int, kind: str, severity: int) -> np.random.Generator:
    """The generator of one set: a function of the seed, the kind's name and the severity only, so that adding or
    removing another set changes nothing here."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(kind.encode()), severity]))


def corrupt(images: np.ndarray, kind: str, severity: int, seed: int) -> np.ndarray:
    """`images` (uint8, N x 28 x 28) under one corruption at one severity (0: unchanged), as uint8."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r} (known: {', '.join(KINDS)})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity} of {kind} is not one of {SEVERITIES}")
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected uint8 images of shape N x {SIDE} x {SIDE}, got {images.dtype} {images.shape}")
    if severity == 0:
        return images.copy()
    out = KINDS[kind](_unit(images), severity, generator(seed, kind, severity))
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
