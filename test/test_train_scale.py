"""Training past one process: devices, batches independent of workers and processes, mixed
precision, and real 2-process DistributedDataParallel (gloo) through ``torchrun`` and the CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _model_synth import write_clipset
from helpers import REPO_ROOT, subprocess_env

from sst_ros.cli import main as sst_main
from sst_ros.errors import ConfigError
from sst_ros.geometry import load_array
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.device import check_device_spec, resolve_device
from sst_ros.model.runtime import default_model_path, load_model
from sst_ros.train.batches import Batch, StepBatches, batch_loader
from sst_ros.train.loop import TrainConfig, Trainer, train

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    return write_clipset(d, load_array("respeaker_usb_v2"), [-150.0, -60.0, 20.0, 110.0, 75.0, -10.0], 20, seed=3)


def _cfg(clips: Path, **kw: object) -> TrainConfig:
    base = dict(
        data=[str(clips)], val_data=[str(clips)], preset="tiny", features={"phase_reference": True, "n_freq": 64},
        crop_s=1.0, batch_size=4, steps=6, lr=3e-3, val_every=3, num_threads=1, seed=0, augment_symmetry=True,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


# ---- devices ---------------------------------------------------------------------------------
def test_device_specs_are_checked() -> None:
    assert check_device_spec(" CUDA:1 ") == "cuda:1"
    for bad in ("gpu", "cuda:", "cuda:x", "cpu:0", ""):
        with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
            check_device_spec(bad)
    with pytest.raises(ConfigError, match="--device"):
        TrainConfig(device="gpu")
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig(amp="fp16")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error_and_auto_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match=r"sees no CUDA device.*--device cpu"):
            resolve_device(spec)
    with caplog.at_level(logging.INFO, logger="sst_ros.model.device"):
        assert resolve_device("auto") == torch.device("cpu")
    assert "--device auto" in caplog.text and "running on the CPU" in caplog.text
    # the default model on CUDA would be the checkpoint (an export runs on the CPU only): refused here
    with pytest.raises(ConfigError, match="sees no CUDA device"):
        load_model(None, device="cuda")
    assert load_model(default_model_path(onnx=True), device="auto").backend == "onnxruntime"  # auto: the CPU here


def test_an_onnx_export_on_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a GPU machine answers when asked to run an export on CUDA (the device resolution
    stands in for a GPU that is present)."""
    from sst_ros.model import runtime

    monkeypatch.setattr(runtime, "_accelerator", lambda spec: torch.device("cuda"))
    with pytest.raises(ConfigError, match="ONNX export, which runs on the CPU"):
        load_model(default_model_path(onnx=True), device="cuda")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_cli_device_cuda_without_cuda_exits_with_the_fix(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = sst_main(["train", "--data", str(clips), "--out", str(tmp_path / "r"), "--device", "cuda", "--steps", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "sst train: error: --device cuda:" in err and "--device cpu" in err
    assert not (tmp_path / "r").exists()  # nothing written
    wav = next(clips.glob("*.wav"))
    rc = sst_main(["predict", "--wav", str(wav), "--out", str(tmp_path / "p.csv"), "--device", "cuda:1"])
    assert rc == 2 and "--device cuda:1" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    rc = sst_main(["evaluate", "--clips", str(clips), "--out", str(tmp_path / "ev"), "--baselines", "none",
                   "--device", "cuda"])  # fmt: skip
    assert rc == 2 and "--device cuda" in capsys.readouterr().err
    # adaptation refuses before simulating its source clips or reading the target
    rc = sst_main(["adapt", "--target", str(tmp_path / "nothing_recorded"), "--out", str(tmp_path / "a.pt"),
                   "--device", "cuda"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "sst adapt: error: --device cuda:" in err and "--device cpu" in err


# ---- batches ---------------------------------------------------------------------------------
def _step_batches(trainer: Trainer, rank: int, world: int) -> StepBatches:
    sb = trainer.step_batches
    return StepBatches(sb.examples, sb.crop_frames, sb.symmetries, sb.gain_db_range, sb.feature_cfg, sb.grid,
                       sb.seed, sb.global_batch, rank, world, sb.interferer_weight)  # fmt: skip


def test_a_batch_depends_on_the_step_only(clips: Path, tmp_path: Path) -> None:
    """The same examples whether built here or in 2 worker processes, by one process or split
    over two ranks (without overlap); resuming continues with the same batches."""
    trainer = Trainer(_cfg(clips, batch_size=4), tmp_path / "run")
    one = _step_batches(trainer, 0, 1)
    halves = [_step_batches(trainer, r, 2) for r in (0, 1)]
    assert list(halves[0].example_indices(5)) == [20, 21] and list(halves[1].example_indices(5)) == [22, 23]
    in_process = list(batch_loader(one, 2, 5, workers=0, pin_memory=False))
    in_workers = list(batch_loader(one, 2, 5, workers=2, pin_memory=False))
    for step, (a, b) in enumerate(zip(in_process, in_workers, strict=True), start=2):
        split = [h[step] for h in halves]
        assert isinstance(a, Batch) and isinstance(b, Batch)  # kept through the worker processes
        for i in range(len(Batch._fields)):  # features, targets, activity, loss factors, interferer map targets
            torch.testing.assert_close(a[i], b[i], rtol=0, atol=0)
            torch.testing.assert_close(a[i], torch.cat([split[0][i], split[1][i]]), rtol=0, atol=0)
    assert not torch.equal(in_process[0][0], in_process[1][0])  # the steps differ
    with pytest.raises(ConfigError, match="cannot be split equally over 3 processes"):
        _step_batches(trainer, 0, 3)


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(clips: Path, tmp_path: Path) -> None:
    straight = train(_cfg(clips, steps=6, val_every=3), tmp_path / "a", progress=False)
    interrupted = Trainer(_cfg(clips, steps=6, val_every=3), tmp_path / "b")  # stopped after step 3
    for _ in range(3):
        interrupted.step()
    interrupted.validate_and_save()
    del interrupted
    resumed = train(_cfg(clips, steps=6, val_every=3), tmp_path / "b", resume=True, progress=False)
    assert resumed["last_val"]["loss"] == pytest.approx(straight["last_val"]["loss"], rel=1e-5)
    wa = load_checkpoint(tmp_path / "a" / "latest.pt").model.state_dict()
    wb = load_checkpoint(tmp_path / "b" / "latest.pt").model.state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_a_torchrun_restart_resumes_its_own_run_only(
    clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What torchrun --max-restarts does after a failure: the restarted job (same run id, restart
    count above 0) resumes from its own latest.pt; a folder another job wrote is still refused."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-a")
    train(_cfg(clips, steps=3, val_every=3), tmp_path / "r", progress=False)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-b")
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(clips, steps=6, val_every=3), tmp_path / "r", progress=False)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's default --rdzv-id names no job
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(clips, steps=6, val_every=3), tmp_path / "r", progress=False)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-a")
    with caplog.at_level(logging.WARNING):
        summary = train(_cfg(clips, steps=6, val_every=3), tmp_path / "r", progress=False)
    assert summary["steps"] == 6 and "torchrun restarted the run" in caplog.text


# ---- mixed precision -------------------------------------------------------------------------
def test_mixed_precision_steps_train_and_checkpoints_stay_float32(clips: Path, tmp_path: Path) -> None:
    """amp on (bfloat16 on a CPU; float16 with loss scaling on CUDA): finite steps that lower the
    loss, float32 weights in the checkpoint that load on a CPU."""
    summary = train(_cfg(clips, amp="on", steps=30, val_every=15, lr=1e-2), tmp_path / "amp", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "amp" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["loss"]) for x in lines) and lines[-1]["loss"] < lines[0]["loss"] * 1.5
    assert np.isfinite(summary["final_train_loss"])
    ck = load_checkpoint(tmp_path / "amp" / "best.pt")
    assert {v.dtype for v in ck.model.state_dict().values() if v.is_floating_point()} == {torch.float32}
    assert all(v.device.type == "cpu" for v in ck.model.state_dict().values())


# ---- DDP through torchrun --------------------------------------------------------------------
def _torchrun() -> str:
    exe = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(exe).exists():
        pytest.fail("torchrun is not installed beside this Python (it comes with torch)")
    return exe


def test_two_process_gloo_ddp_matches_one_process_on_the_same_global_batch(clips: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m sst_ros.cli train` (gloo on CPUs): each rank builds half
    of each global batch, BatchNorm uses the global batch's statistics, DDP averages the
    gradients, rank 0 alone writes. The validation loss equals the single process's up to float
    rounding: a hundredth of what a change of seed moves it."""
    common = [
        "train", "--data", str(clips), "--val", str(clips), "--preset", "tiny", "--batch-size", "4", "--steps", "6",
        "--threads", "1", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    cfg_yaml = tmp_path / "cfg.yaml"
    cfg_yaml.write_text("crop_s: 1.0\nval_every: 3\nlr: 0.003\nfeatures: {phase_reference: true, n_freq: 64}\n")
    env = subprocess_env({"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"})
    cmd = [_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "sst_ros.cli", *common,
           "--config", str(cfg_yaml), "--out", str(tmp_path / "ddp")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("summary:") == 1  # rank 0 alone prints
    assert "x 2 processes" in proc.stderr and "backend gloo" in proc.stderr
    ddp = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in ddp] == [3, 6]  # one writer: no duplicate lines
    ck = load_checkpoint(tmp_path / "ddp" / "latest.pt", with_train_state=True)
    assert ck.provenance["processes"] == 2 and ck.extra["train_state"]["step"] == 6

    single = {}
    for seed in (0, 1):
        out = tmp_path / f"single{seed}"
        rc = sst_main([*common, "--config", str(cfg_yaml), "--out", str(out), "--seed", str(seed)])
        assert rc == 0
        single[seed] = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]["loss"]
    gap = abs(ddp[-1]["loss"] - single[0])
    seed_spread = abs(single[1] - single[0])
    assert gap < 0.01 * seed_spread, (ddp[-1]["loss"], single)

    # the run folder continues from latest.pt with the same command and --resume (what follows
    # the failure of any rank: latest.pt is rank 0's, and every rank reads it)
    cmd_more = [x if x != "6" else "9" for x in cmd] + ["--resume"]
    proc = subprocess.run(cmd_more, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [json.loads(x)["step"] for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()] == [3, 6, 9]


def test_a_global_batch_the_processes_cannot_share_is_refused(clips: Path, tmp_path: Path) -> None:
    env = subprocess_env({"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"})
    cmd = [_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "sst_ros.cli", "train", "--data", str(clips),
           "--batch-size", "3", "--steps", "1", "--device", "cpu", "--threads", "1",
           "--out", str(tmp_path / "odd")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "batch_size 3 (the global batch) cannot be split equally over 2 processes" in proc.stderr
    assert not (tmp_path / "odd" / "latest.pt").exists()
    assert os.environ.get("WORLD_SIZE") is None  # the test process itself is not a rank


def test_float16_overflows_skip_steps_until_they_are_not_a_scale_problem() -> None:
    """The loss scaler's skip (float16 on CUDA) is taken at most MAX_SKIPPED_STEPS times in a
    row; then a non-finite gradient is reported like in float32 (the caller stops the run)."""
    from sst_ros.train.precision import MAX_SKIPPED_STEPS, MixedPrecision

    mp = MixedPrecision(torch.device("cpu"), "on")
    assert mp.enabled and mp.dtype == torch.bfloat16 and not mp.scaler.is_enabled()  # bfloat16: no scaling
    assert not mp.overflowed(torch.tensor(float("inf")))  # without scaling a non-finite norm is an error
    mp.scaler = torch.amp.GradScaler("cpu", enabled=True)  # what float16 on CUDA has
    inf, one = torch.tensor(float("inf")), torch.tensor(1.0)
    assert all(mp.overflowed(inf) for _ in range(MAX_SKIPPED_STEPS))
    assert not mp.overflowed(inf)  # one more in a row: not an overflow any more
    assert not mp.overflowed(one) and mp.skipped_in_a_row == 0 and mp.overflowed(inf)  # a finite step resets


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


def test_a_killed_rank_ends_the_run_and_resume_continues_it(clips: Path, tmp_path: Path) -> None:
    """Rank 1 is killed (SIGKILL) in the middle of a 2-process run: torchrun ends the group, the
    run folder keeps rank 0's last latest.pt, and the same command with --resume continues it."""
    import signal

    from helpers import wait_for

    run = tmp_path / "killed"
    cfg_yaml = tmp_path / "cfg.yaml"
    cfg_yaml.write_text("crop_s: 1.0\nval_every: 2\nval_clips: 1\nfeatures: {phase_reference: true, n_freq: 64}\n")
    env = subprocess_env({"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"})
    base = [_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "sst_ros.cli", "train", "--config",
            str(cfg_yaml), "--data", str(clips), "--preset", "tiny", "--batch-size", "4", "--threads", "1",
            "--device", "cpu", "--no-progress", "--out", str(run)]  # fmt: skip
    proc = subprocess.Popen([*base, "--steps", "100000"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        metrics = run / "metrics.jsonl"
        wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, 180, "two validations")
        rank1 = [p for p in _descendants(proc.pid) if _rank_of(p) == 1]
        assert rank1, "no process of rank 1 found under torchrun"
        os.kill(rank1[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, err[-2000:]
    saved = load_checkpoint(run / "latest.pt", with_train_state=True).extra["train_state"]["step"]
    assert saved >= 2 and saved % 2 == 0  # metrics.jsonl gets a step's line just before its latest.pt
    done = subprocess.run([*base, "--steps", str(saved + 4), "--resume"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines()]
    assert steps[-2:] == [saved + 2, saved + 4] and load_checkpoint(run / "latest.pt").provenance["step"] == saved + 4


def test_global_batchnorm_is_batchnorm_of_the_pooled_batch_in_any_precision() -> None:
    """GlobalBatchNorm2d's statistics, pooled over two halves as the ranks would, equal
    BatchNorm2d on the whole batch (output and running statistics); in bfloat16 with more than
    65504 values per channel (what overflowed a float16 count) they stay finite and close."""
    from sst_ros.train.distributed import GlobalBatchNorm2d

    torch.manual_seed(0)
    x = torch.randn(6, 3, 40, 30) * 2.0 + 1.5
    ref = torch.nn.BatchNorm2d(3)
    glob = GlobalBatchNorm2d(3)
    with torch.no_grad():
        for bn in (ref, glob):
            bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    halves = [x[:3], x[3:]]
    sums: list[torch.Tensor] = []

    def pooled(local: torch.Tensor) -> torch.Tensor:  # the all-reduce of two ranks, made here
        sums.append(local)
        other = halves[1] if len(sums) == 1 else halves[0]
        o = other.float()
        n = torch.tensor([float(o.numel() // 3)], dtype=torch.float32)
        return local + torch.cat([o.sum((0, 2, 3)), (o * o).sum((0, 2, 3)), n]).double()

    y = glob.normalise(halves[0], pooled)
    torch.testing.assert_close(y, ref(x)[:3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(glob.running_mean, ref.running_mean)
    torch.testing.assert_close(glob.running_var, ref.running_var)
    assert int(glob.num_batches_tracked) == int(ref.num_batches_tracked) == 1

    big = (torch.randn(4, 3, 128, 200) * 3.0 + 20.0).to(torch.bfloat16)  # 102400 values per channel
    out = GlobalBatchNorm2d(3).normalise(big, lambda t: t)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), torch.nn.functional.batch_norm(big.float(), None, None, training=True),
                               rtol=0.02, atol=0.02)  # fmt: skip
