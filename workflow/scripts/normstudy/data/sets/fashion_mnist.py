"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): Zalando's 28x28 grey garment images in MNIST's IDX format and split."""

from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DatasetSpec

SPEC = DatasetSpec(
    name="fashion_mnist",
    title="Fashion-MNIST",
    short="Fashion-MNIST",
    folder="FashionMNIST",  # torchvision's: torchvision.datasets.FashionMNIST("results/data") reads it
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    train_size=60000,
    test_size=10000,
    network="normnet",
    # The constants usually quoted for its 60,000 training images; not recomputed here, where its files could not be
    # fetched (set data.mean and data.std to override).
    mean=0.2860,
    std=0.3530,
    # Published by the MD5s of its gz files alone (torchvision.datasets.FashionMNIST.resources): they define it, and
    # provenance.json records the SHA-256 of each decompressed file.
    gz_md5={
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    corruption_note=(
        "MNIST-C's kinds were chosen to keep a handwritten digit's class (Mu & Gilmer 2019). They are pixel operations"
        " that run unchanged on any 28×28 grey image, and run here on Fashion-MNIST's filled, textured garments, which"
        " they were not chosen for: read these shifts as this study's, not as a published benchmark's."
    ),
)
