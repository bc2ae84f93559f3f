"""CIFAR-10 (Krizhevsky 2009): 32x32 colour images of ten classes, the dataset of write-up 004's study, published as one
archive of pickled batches (its python version)."""

from normstudy.data.datasets import Archive, DatasetSpec

SPEC = DatasetSpec(
    name="cifar10",
    title="CIFAR-10",
    short="CIFAR-10",
    # Its four IDX files ([N, 3, 32, 32] images) and provenance.json: written by the fetch out of the archive, which is
    # not kept (torchvision's CIFAR10 reads the archive's own folder, cifar-10-batches-py, and not these).
    folder="CIFAR10",
    file_format="idx",
    image_shape=(3, 32, 32),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    train_size=50000,
    test_size=10000,
    network="skipnet",  # write-up 004's residual network
    # One mean and std for the three channels (the input normalization here is one constant): the pooled values of
    # the per-channel constants usually quoted for its 50,000 training images, (0.4914, 0.4822, 0.4465) and
    # (0.2470, 0.2435, 0.2616): the mean of the means, and the root of the mean variance about it. Not recomputed
    # here, where the archive could not be fetched (set data.mean and data.std to override).
    mean=0.4734,
    std=0.2516,
    # The archive's MD5 and each batch's, as torchvision.datasets.CIFAR10 lists them: they define the dataset, and
    # provenance.json records the archive's MD5 and the SHA-256 of each IDX file read out of it.
    archive=Archive(
        filename="cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ),
        test=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    corruption_note=(
        "MNIST-C's kinds are drawn on 28×28 grey images, and CIFAR-10's are 32×32 in colour: this study has no"
        " corrupted sets of them (CIFAR-10-C, Hendrycks & Dietterich 2019, is the published benchmark)."
    ),
)
