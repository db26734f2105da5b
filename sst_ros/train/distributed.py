"""Data-parallel training under ``torchrun`` (PyTorch DistributedDataParallel).

``torchrun --nproc-per-node N -m sst_ros.cli train ...`` starts N copies of ``sst train``
and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the rendezvous) in each one's
environment; :func:`join` reads them and joins the process group: NCCL when the run is on
CUDA (each process on GPU ``LOCAL_RANK``), gloo on CPUs. Without those variables (plain ``sst
train``) nothing is joined and the run is a single process (:data:`SINGLE`).

What each rank does is in :class:`~sst_ros.train.loop.Trainer`: the global batch is split
without overlap (:class:`~sst_ros.train.batches.StepBatches`), BatchNorm normalises with the
statistics of the global batch (:class:`GlobalBatchNorm2d`), gradients are averaged by DDP, and
only rank 0 validates and writes checkpoints, metrics and the progress bar. So N processes take
the step one process takes on the same global batch, up to float rounding. Process
management (start, failure, restart) is torchrun's; after a failure of any rank, the same
command with ``--resume`` continues from ``latest.pt``, and under ``torchrun --max-restarts``
a restarted group resumes by itself from the ``latest.pt`` this job wrote (:func:`restarted`,
:func:`torchrun_job_id`); rank 0 takes that decision for all, and a resume whose ranks read
different files (``--out`` not on shared storage) is refused.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sst_ros.errors import ConfigError

__all__ = [
    "SINGLE",
    "GlobalBatchNorm2d",
    "Ranks",
    "all_ranks_mean",
    "any_rank",
    "global_batchnorm",
    "join",
    "leave",
    "rank0_flag",
    "restarted",
    "same_on_all_ranks",
    "torchrun_job_id",
]

log = logging.getLogger(__name__)

# Rank 0 validates while the others wait in the next step's all-reduce: allow a long validation.
_TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run.

    Attributes:
        rank: global rank (0 = the one that writes).
        world_size: processes in the run.
        local_rank: rank on this machine (its GPU index on CUDA).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, metrics and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether gradients are averaged across processes."""
        return self.world_size > 1


SINGLE = Ranks()
"""A run of one process."""


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as err:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from err


def join(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun set up, if any.

    Args:
        device: the device ``--device`` resolved to (:func:`~sst_ros.model.device.resolve_device`).
    Returns:
        this process's :class:`Ranks` and its device (on CUDA: GPU ``LOCAL_RANK``).
    Raises:
        ConfigError: torchrun's variables are malformed, or a CUDA run with more local
            processes than GPUs.
    """
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)  # pinned-memory and cuDNN work on this GPU, not GPU 0
        return SINGLE, device
    rank, local = _env_int("RANK") or 0, _env_int("LOCAL_RANK") or 0
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if local >= n:
            raise ConfigError(
                f"torchrun started local rank {local} but this machine has {n} GPUs; use --nproc-per-node {n} or less"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
    log.info("rank %d of %d (local %d) on %s, backend %s", rank, world, local, device, backend)
    return Ranks(rank, world, local), device


def leave(finished: bool = False) -> None:
    """Leave the process group, if this process joined one (end of a run, or its failure).

    Args:
        finished: the run ended normally on this rank, so every rank reaches this call: wait
            for all of them first (a barrier), so that none tears its group down while another
            still exchanges with it. After a failure there is no barrier (a dead rank would
            never arrive; torchrun ends the others).
    """
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        # DDP's reducer and finished gloo work objects hold the group; freeing them now, while
        # the interpreter is whole, keeps gloo's threads from being torn down at its exit
        # (an intermittent "terminate called without an active exception", SIGABRT, on a rank).
        gc.collect()
        dist.destroy_process_group()


def all_ranks_mean(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of a scalar over all ranks (itself in a single process); a detached copy."""
    v = value.detach().clone()
    if ranks.distributed:
        dist.all_reduce(v, op=dist.ReduceOp.SUM)
        v /= ranks.world_size
    return v


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (so every rank takes the same decision)."""
    if not ranks.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def rank0_flag(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (a decision only rank 0 can take, e.g. to resume)."""
    if not ranks.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item() > 0)


def same_on_all_ranks(value: int, ranks: Ranks, device: torch.device) -> bool:
    """Whether every rank holds the same integer ``value`` (e.g. the step a resume reached)."""
    if not ranks.distributed:
        return True
    lo = torch.tensor([float(value)], device=device)
    hi = lo.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(lo.item() == hi.item())


def restarted() -> bool:
    """Whether torchrun restarted this group after a failure (``TORCHELASTIC_RESTART_COUNT`` > 0)."""
    return (_env_int("TORCHELASTIC_RESTART_COUNT") or 0) > 0


def torchrun_job_id() -> str | None:
    """The id of this torchrun job (``TORCHELASTIC_RUN_ID``: ``--rdzv-id``, or a fresh one with
    ``--standalone``), the same over its restarts; None outside torchrun and when it names no job
    (torchrun's default ``--rdzv-id`` is the literal ``none``, shared by every such job)."""
    rid = os.environ.get("TORCHELASTIC_RUN_ID", "").strip()
    return None if rid in ("", "none") else rid


class _AllRanksSum(torch.autograd.Function):
    """The sum of a tensor over all ranks; its gradient is the sum of the ranks' gradients
    (every rank's loss depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that, in training under a process group, normalises with the mean and
    variance of the *global* batch (every rank's examples), as one process holding the whole
    batch would; in eval mode, or in a single process, it is ``BatchNorm2d``.

    Without it each rank normalises with its own share's statistics, and the step is no longer
    the single-process step: on the default recipe the gradient's cosine to the single-process
    gradient was 0.92 at the first step, and after 150 steps the validation loss 0.76 against
    0.60 (``training/ddp_check.py``, before this class). PyTorch's ``SyncBatchNorm`` does this
    on GPUs only; this one sums per-channel counts, sums and sums of squares with one
    differentiable all-reduce (its backward sums the gradients over the ranks too), so it runs
    on gloo and NCCL alike. The state dict is ``BatchNorm2d``'s: checkpoints do not change.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        return self.normalise(x, _AllRanksSum.apply)

    def normalise(self, x: torch.Tensor, sum_over_ranks: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Training-mode BatchNorm of ``x`` (B, C, H, W) with the statistics that ``sum_over_ranks``
        pools, running statistics updated.

        The statistics are float32 sums, pooled and combined in float64, whatever ``x``'s dtype:
        under float16 autocast a count or a sum of squares above 65504 would overflow, and
        E[x^2] - E[x]^2 cancels. The output has ``x``'s dtype.
        """
        c = x.shape[1]
        dims = (0, 2, 3)
        xf = x.float()
        count = torch.full((1,), float(x.numel() // c), dtype=torch.float32, device=x.device)
        total = sum_over_ranks(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]).double())
        n = total[-1]
        mean64 = total[:c] / n
        var64 = (total[c : 2 * c] / n - mean64 * mean64).clamp_min(0.0)  # biased, as BatchNorm normalises
        mean, var = mean64.float(), var64.float()
        rm, rv, nb = self.running_mean, self.running_var, self.num_batches_tracked
        if self.track_running_stats and rm is not None and rv is not None and nb is not None:
            with torch.no_grad():  # as BatchNorm2d: momentum (None: cumulative), unbiased running variance
                nb.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(nb)
                rm.mul_(1 - m).add_(mean.detach(), alpha=m)
                rv.mul_(1 - m).add_((var64 * (n / (n - 1).clamp_min(1.0))).float().detach(), alpha=m)
        shape = (1, c, 1, 1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape).float() + self.bias.view(shape).float()
        return y.to(x.dtype)


def global_batchnorm(model: nn.Module) -> nn.Module:
    """Turn every ``BatchNorm2d`` of ``model`` into a :class:`GlobalBatchNorm2d` in place (same
    parameters and buffers); returns ``model``."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GlobalBatchNorm2d  # same attributes and state: only forward changes
    return model
