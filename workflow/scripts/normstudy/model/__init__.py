"""The network and its norms: the layer tables and receptive field (architecture), the normalization layers
(norms), the torch network built from them (network), and BatchNorm's statistics set after training (precise_bn,
adaptation).
"""
