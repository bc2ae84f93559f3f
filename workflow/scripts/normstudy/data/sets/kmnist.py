"""Kuzushiji-MNIST (Clanuwat et al. 2018): ten cursive hiragana, 28x28 grey, in MNIST's IDX format and split."""

from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DatasetSpec

SPEC = DatasetSpec(
    name="kmnist",
    title="Kuzushiji-MNIST (KMNIST)",
    short="KMNIST",
    folder="KMNIST",  # torchvision's: torchvision.datasets.KMNIST("results/data") reads it
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),  # romanized, as torchvision names them
    train_size=60000,
    test_size=10000,
    network="normnet",
    # The constants usually quoted for its 60,000 training images; not recomputed here, where its files could not be
    # fetched (set data.mean and data.std to override).
    mean=0.1918,
    std=0.3483,
    # Published by the MD5s of its gz files alone (torchvision.datasets.KMNIST.resources): they define it, and
    # provenance.json records the SHA-256 of each decompressed file.
    gz_md5={
        TRAIN_IMAGES: "bdb82020997e1d708af4cf47b453dcf7",
        TRAIN_LABELS: "e144d726b3acfaa3e44228e80efcd344",
        TEST_IMAGES: "5c965bf0a639b31b8f53240b1b52f4d7",
        TEST_LABELS: "7320c461ea6c1c855c0b718fb2a4b134",
    },
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    corruption_note=(
        "MNIST-C's kinds were chosen to keep a handwritten digit's class (Mu & Gilmer 2019); KMNIST's characters are"
        " strokes on black too, but its classes were not checked against them: read these shifts as this study's."
    ),
)
