"""What adaptation measures: the task loss per clip, label-free target diagnostics, oracle metrics."""

from __future__ import annotations

import math

import numpy as np
import torch

from sst_ros.adapt.batches import PaddedBatch, make_batch, valid_frames
from sst_ros.data.clip_reader import ClipReader
from sst_ros.errors import DataError
from sst_ros.model.crnn import CRNN
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.features import FeatureConfig
from sst_ros.train.losses import TaskLoss

__all__ = ["evaluate_oracle", "masked_entropy", "spectrum_entropy", "task_loss_per_clip"]


def task_loss_per_clip(model: CRNN, h: torch.Tensor, batch: PaddedBatch, loss: TaskLoss) -> torch.Tensor:
    """Task loss of each clip: ``loss`` (source training's settings, :class:`TaskLoss`)
    against Gaussian-bump targets (``AzimuthGrid.targets``, zero on inactive frames), averaged over
    each clip's valid (unpadded) output frames.

    Args:
        model: the CRNN (its ``head_logits`` and ``cfg.grid`` are used).
        h: (B, T, H) embeddings from ``model.extract`` (T may exceed the batch's label length).
        batch: labelled batch with true lengths.
        loss: the task loss's kind and weights.
    Returns:
        (B,) loss per clip.
    """
    if batch.azimuth_deg is None or batch.active is None:
        raise DataError("task loss needs a labelled batch")
    grid = model.cfg.grid
    B = batch.size
    T = min(h.shape[1], batch.azimuth_deg.shape[1])
    h = h[:, :T]
    az = np.nan_to_num(batch.azimuth_deg[:, :T], nan=0.0)  # (B, T, S)
    act = batch.active[:, :T]
    n_src = az.shape[-1]
    tgt = grid.targets(az.reshape(B * T, n_src), act.reshape(B * T, n_src)).reshape(B, T, -1)
    logits = model.head_logits(h)  # the talker map (the synthetic batches label no interferer)
    spec_logit, act_logit = logits.spectrum, logits.activity
    any_active = torch.from_numpy(act.any(axis=-1)).to(h)  # (B, T): a talker is active (h's dtype and device)
    per_frame = loss.per_frame(spec_logit, act_logit, torch.from_numpy(tgt).to(h), any_active)  # (B, T)
    mask = valid_frames(batch.lengths, T, h.device).to(h.dtype)
    return (per_frame * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def spectrum_entropy(spec: torch.Tensor) -> torch.Tensor:
    """Normalised entropy (0..1) of each frame's spectrum (B, T, bins) as a distribution over
    the bins, (B, T); differentiable (the adaptation's entropy term trains on it)."""
    p = spec.clamp_min(1e-8)
    p = p / p.sum(-1, keepdim=True)
    return -(p * p.log()).sum(-1) / math.log(spec.shape[-1])


def masked_entropy(spec: torch.Tensor, lengths: torch.Tensor) -> float:
    """Mean :func:`spectrum_entropy` of the spectrum (B, T, bins) over each clip's valid frames
    (``lengths`` (B,) frames); NaN without any."""
    ent = spectrum_entropy(spec)
    mask = valid_frames(lengths, spec.shape[1], spec.device)
    return float(ent[mask].mean()) if mask.any() else float("nan")


def evaluate_oracle(
    model: CRNN,
    clips: ClipReader,
    feature_cfg: FeatureConfig,
    device: torch.device | None = None,
    prior: DirectionPrior | None = None,
) -> dict[str, float]:
    """DOA metrics of ``model`` on whole labelled clips (MAE in degrees, ACC within 5 and 10 degrees;
    reporting only, never for choosing), its spectrum weighted by ``prior`` when given (the
    written model's direction prior). Azimuths are folded into the model grid's identifiable
    range before comparison."""
    from sst_ros.train.metrics import doa_metrics  # model layer; imported lazily

    grid = model.cfg.grid
    fpo = model.cfg.frames_per_output
    preds, trues, acts = [], [], []
    model.eval()
    with torch.no_grad():
        for i in range(len(clips)):
            audio, _, labels = clips.load(i)
            x = make_batch([audio], feature_cfg, fpo).x.to(device or torch.device("cpu"))
            spec, _ = model.head(model.extract(x))
            n = min(spec.shape[1], len(labels))
            s = spec[0, :n].cpu().numpy()
            pred = model.decode(prior.apply(s) if prior is not None else s)
            true_az, active = labels.nearest_talker(pred)  # several talkers: the one nearest the estimate
            preds.append(pred)
            trues.append(true_az)
            acts.append(active)
    m = doa_metrics(np.concatenate(preds), np.concatenate(trues), np.concatenate(acts), identifiable=grid)
    return {"mae_deg": float(m["mae_deg"]), "acc10": float(m["acc10"]), "acc5": float(m["acc5"])}
