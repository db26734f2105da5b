"""Sequence domain discriminator: a GRU over per-frame features, packed by true clip length.

Tracking clips have different lengths; the discriminator needs one fixed-size summary per
clip. A 1-layer GRU runs over each clip's per-frame feature sequence ``h (T_i, H)`` **only up to
its true length T_i** (``pack_padded_sequence``, ``enforce_sorted=False``), so the output does
not depend on how much padding the batch added (the reference code used the padded length,
which lets a discriminator separate domains by padding alone). The final hidden state goes
through a small MLP (``H_gru -> hidden (ReLU) -> 1``) to one logit per clip.

Domain label convention used everywhere in :mod:`sst_ros.adapt`: **target (real) = 1,
source (synthetic) = 0**, so ``sigmoid(logit)`` estimates P(target | features).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from sst_ros.errors import DataError

__all__ = [
    "DIRECTION_DIM",
    "SOURCE_LABEL",
    "TARGET_LABEL",
    "SequenceDiscriminator",
    "check_lengths",
    "direction_features",
    "discriminator_loss",
]

TARGET_LABEL = 1.0
SOURCE_LABEL = 0.0
DIRECTION_DIM = 3  # per-frame size of :func:`direction_features`


def direction_features(spectrum: torch.Tensor, activity: torch.Tensor, bin_centers_rad: torch.Tensor) -> torch.Tensor:
    """Per-frame direction summary ``[cos(az) a, sin(az) a, a]`` of a model's head output.

    Args:
        spectrum: (B, T, K) spatial spectrum over the K azimuth bins.
        activity: (B, T) activity probability in [0, 1].
        bin_centers_rad: (K,) azimuth of each bin, radians (REP-103, counter-clockwise from +x).
    Returns:
        (B, T, 3): the highest peak's direction as a unit vector scaled by the activity, and the
        activity itself; silent frames are near the origin whatever their spectrum.
    """
    az = bin_centers_rad.to(spectrum)[spectrum.argmax(dim=-1)]  # (B, T), on the spectrum's device
    return torch.stack([torch.cos(az) * activity, torch.sin(az) * activity, activity], dim=-1)


def check_lengths(lengths: torch.Tensor, batch: int, max_len: int) -> torch.Tensor:
    """Validate per-clip lengths (frames) against a padded batch; returns int64 CPU lengths."""
    lengths = torch.as_tensor(lengths).to(device="cpu", dtype=torch.int64).reshape(-1)
    if lengths.numel() != batch:
        raise DataError(f"got {lengths.numel()} lengths for a batch of {batch} clips; give one length per clip")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > max_len):
        raise DataError(
            f"clip lengths must lie in [1, {max_len}] frames (the padded length), got "
            f"min {int(lengths.min())}, max {int(lengths.max())}; crop clips to at least one output frame"
        )
    return lengths


class SequenceDiscriminator(nn.Module):
    """Domain discriminator over variable-length feature sequences.

    Args:
        in_dim: feature size H of the per-frame features.
        gru_hidden: GRU hidden size (reference: 256).
        mlp_hidden: hidden units of the MLP (reference: 128).

    ``forward(h, lengths)`` takes ``h`` (B, T, H) padded features and ``lengths`` (B,) true
    lengths in frames and returns logits (B,); ``sigmoid(logit)`` = P(target | clip).
    """

    def __init__(self, in_dim: int, gru_hidden: int = 256, mlp_hidden: int = 128) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.gru = nn.GRU(self.in_dim, gru_hidden, num_layers=1, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(gru_hidden, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, 1))

    def summary(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final GRU hidden state at each clip's true last frame, (B, gru_hidden)."""
        if h.ndim != 3 or h.shape[-1] != self.in_dim:
            raise DataError(f"discriminator expects features (B, T, {self.in_dim}), got shape {tuple(h.shape)}")
        lengths = check_lengths(lengths, h.shape[0], h.shape[1])
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)  # (1, B, hidden), in the original batch order
        return h_n[-1]

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for P(target | clip)."""
        return self.mlp(self.summary(h, lengths)).squeeze(-1)

    def probability(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """P(target | clip), (B,) in (0, 1)."""
        return torch.sigmoid(self.forward(h, lengths))


def discriminator_loss(
    disc: SequenceDiscriminator,
    h_source: torch.Tensor,
    len_source: torch.Tensor,
    h_target: torch.Tensor,
    len_target: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE of ``disc`` on *detached* features (trains the discriminator only).

    ``0.5 * (BCE(D(h_s), 0) + BCE(D(h_t), 1))``. Returns (loss, logits of the source clips);
    ``sigmoid`` of the latter gives P(target | source clip), the input of the importance weights.
    """
    logit_s = disc(h_source.detach(), len_source)
    logit_t = disc(h_target.detach(), len_target)
    loss = 0.5 * (
        F.binary_cross_entropy_with_logits(logit_s, torch.full_like(logit_s, SOURCE_LABEL))
        + F.binary_cross_entropy_with_logits(logit_t, torch.full_like(logit_t, TARGET_LABEL))
    )
    return loss, logit_s
