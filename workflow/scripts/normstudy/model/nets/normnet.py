"""The write-ups' network: seven 3x3/1x1 convolutions in two blocks around a max-pool, under 8,000 parameters."""

from normstudy.model.architecture import Conv, NetworkSpec, Pool

# Write-ups 000/001: conv 1->8 3x3 (26x26), 8->8, 8->8, max-pool 2, 8->12, 12->14, 14->8 1x1, 8->26,
# 26->50 1x1, average-pool 5, 50->10 1x1, log-softmax.
SPEC = NetworkSpec(
    "normnet",
    "the write-ups' 7,652-parameter CNN",
    (
        Conv(1, 8, 3),
        Conv(8, 8, 3),
        Conv(8, 8, 3),
        Pool("max", 2),
        Conv(8, 12, 3),
        Conv(12, 14, 3),
        Conv(14, 8, 1),
        Conv(8, 26, 3),
        Conv(26, 50, 1),
        Pool("avg", 5),
        Conv(50, 10, 1, normed=False),
    ),
    (1, 28, 28),
    10,
)
