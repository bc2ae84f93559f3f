"""Write-up 004's residual CIFAR-10 network: C1 C2 c3 P1 C4 C5 C6 c7 P2 C8 C9 C10 GAP c11 (c: 1x1), with its block
conv -> norm -> + x -> ReLU -> dropout on the layers that keep their input's shape."""

from normstudy.model.architecture import Conv, NetworkSpec, Pool

# The layer table is the write-up's receptive-field table (tests/test_model.py checks it row by row): 3x3 convolutions
# without padding to 28x28, a 1x1 transition, max-pool, three padded 3x3 at 14x14, a 1x1, max-pool, three padded 3x3
# at 7x7, a 7x7 average pool and a 1x1 classifier. The write-up prints no channel counts; these (16-32 wide) keep the
# network at 43,616 parameters with batch norm, under the 50,000 of the course assignment the write-up answers, and
# give every normalized layer 1, 2, 4 or 8 groups. The skips are where a layer keeps its input's shape: C5, C6, C9,
# C10 ("add one layer to another").
SPEC = NetworkSpec(
    "skipnet",
    "write-up 004's residual CIFAR-10 CNN",
    (
        Conv(3, 16, 3),
        Conv(16, 32, 3),
        Conv(32, 16, 1),
        Pool("max", 2),
        Conv(16, 24, 3, padding=1),
        Conv(24, 24, 3, padding=1, skip=True),
        Conv(24, 24, 3, padding=1, skip=True),
        Conv(24, 16, 1),
        Pool("max", 2),
        Conv(16, 32, 3, padding=1),
        Conv(32, 32, 3, padding=1, skip=True),
        Conv(32, 32, 3, padding=1, skip=True),
        Pool("avg", 7),
        Conv(32, 10, 1, normed=False),
    ),
    (3, 32, 32),
    10,
)
