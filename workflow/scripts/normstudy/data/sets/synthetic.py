"""Synthetic stroke digits in MNIST's format (data/stroke_digits.py): the test suite's dataset, generated."""

from normstudy.data.datasets import DatasetSpec

SPEC = DatasetSpec(
    name="synthetic",
    title="synthetic digits (test data, not MNIST)",
    short="synthetic",
    folder="synthetic",
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=tuple(str(digit) for digit in range(10)),
    train_size=None,  # set by the config's data.synthetic
    test_size=None,
    network="normnet",
    mean=0.1307,  # MNIST's constants: the generated images mimic its strokes on black
    std=0.3081,
    sources=(),
)
