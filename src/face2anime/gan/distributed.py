"""Data-parallel GAN training across processes, on the engine PyTorch ships: torch.distributed + DDP,
started by `torchrun` (one process per GPU, or per share of a CPU host).

Why: at FFHQ size (70,000 photos) one GPU is too slow. Each process (a "rank") computes the gradient of
its slice of every global batch, DDP averages the gradients, and every rank applies the same update, so
the weights stay identical everywhere. This module is only the plumbing (start/stop, who is rank 0,
barriers, broadcasts, sums, each rank's slice of a batch, the DDP wrapper); the loop (`gan/train.py`)
and the models' losses and update order (`gan/objectives.py`) stay generic.

With one process (plain `python`, or `torchrun --nproc-per-node 1`) nothing is started and nothing is
wrapped, so the single-process path runs unchanged, to the byte. See docs/scaling.md.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from face2anime.errors import UserError

TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class Dist:
    """This process's place among the ranks. `share` is its part of the current global batch (the loop
    sets it before every step; the gradient average weights each rank by it)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, device: torch.device | None = None,
                 started: bool = False):
        self.rank, self.world, self.local_rank = int(rank), int(world), int(local_rank)
        self.device = device if device is not None else torch.device("cpu")
        self.started = started          # a process group is up (then G and D get DDP wrappers)
        self.share = 1.0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, curves, samples and outputs."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Dist(rank={self.rank}, world={self.world}, device={self.device}, started={self.started})"


def env_rank() -> int:
    """torchrun's RANK (0 without torchrun): known before the process group starts (quiet non-main ranks)."""
    return int(os.environ.get("RANK", "0") or 0)


def free_port() -> int:
    """A free TCP port on localhost, for single-node starts without torchrun (tests, benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launched() -> bool:
    """True inside a process that torchrun (or `launch`) started: it already is one of the ranks."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def launch(nprocs: int, argv: list[str], timeout_s: float) -> None:
    """Run `python argv...` as `nprocs` ranks on this node, as `torchrun --standalone` would, from inside
    the stage, so that a failure stays one line (no launcher traceback or failure report): rank 0 prints
    its error, the other ranks stay quiet (they read the same inputs and fail alike)."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)   # its failure log is a report
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=int(nprocs), run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          rdzv_configs={"timeout": int(timeout_s)})
    try:
        elastic_launch(config, sys.executable)(*argv)
    except ChildFailedError as err:
        failed = {int(f.local_rank): f.exitcode for f in err.failures.values()}
        if 0 in failed:
            raise SystemExit(1) from None   # rank 0 printed the one line (the other ranks stay quiet)
        ranks = ", ".join(f"{r} (exit code {c})" for r, c in sorted(failed.items()))
        raise UserError(f"rank {ranks} of {nprocs} failed but rank 0 did not: its message is not shown "
                        f"(ranks other than 0 stay quiet); re-run with gan.common.processes: 1 to see it") from None


def from_env(device: torch.device, timeout_s: float = 1800.0) -> Dist:
    """The ranks torchrun started (its RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* variables); with one
    process nothing is started, so the run is the plain single-process one."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist(device=device)
    missing = [k for k in TORCHRUN_ENV if not os.environ.get(k)]
    if missing:
        raise UserError(f"WORLD_SIZE is {world} but {', '.join(missing)} unset: start the processes with torchrun "
                        f"(docs/scaling.md)")
    return start(device, int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]), "env://", timeout_s)


def start(device: torch.device, rank: int, world: int, local_rank: int, init_method: str,
          timeout_s: float = 1800.0) -> Dist:
    """Start the process group: nccl with each rank on cuda:LOCAL_RANK, gloo on CPU. Also for one process
    (the GPU check runs DDP with world size 1)."""
    if device.type == "cuda":
        if world > 1 and device.index is not None:
            raise UserError(f"gan.common.device is {device} but {world} processes run: use auto or cuda "
                            f"(each process takes cuda:LOCAL_RANK)")
        n = torch.cuda.device_count()
        index = local_rank if device.index is None else device.index
        if index >= n:
            raise UserError(f"process {rank} wants cuda:{index} but this node has {n} GPU(s): "
                            f"lower --nproc-per-node")
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=timedelta(seconds=float(timeout_s)))
    return Dist(rank, world, local_rank, device, started=True)


def cleanup(d: Dist) -> None:
    """End the process group (a process that exits without it leaves warnings and, on nccl, leaks)."""
    if d.started and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    """Every rank waits here until all arrive (the others wait for rank 0's writes)."""
    if d.started:
        dist.barrier(device_ids=[d.device.index] if d.device.type == "cuda" else None)


def broadcast_object(d: Dist, obj: Any) -> Any:
    """Rank 0's `obj` (picklable; keep tensors on the CPU) on every rank."""
    if not d.started:
        return obj
    box = [obj if d.is_main else None]
    dist.broadcast_object_list(box, src=0, device=d.device if d.device.type == "cuda" else None)
    return box[0]


def to_cpu(obj: Any) -> Any:
    """Tensors anywhere in nested dicts/lists moved to the CPU (for a broadcast that any rank can unpickle)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def all_reduce_sum(d: Dist, values: list[float]) -> list[float]:
    """Element-wise sums over the ranks, in float64 (per-epoch loss sums)."""
    if not d.started:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.tolist()


def local_rows(d: Dist, m: int) -> tuple[slice, int]:
    """This rank's positions in a global batch of `m` rows, and how many of them are real.

    Rows are split in contiguous, near-equal parts (sizes differ by at most one: an epoch's short last
    batch need not divide evenly). A rank left with nothing still steps on one row with share 0, since
    DDP needs every rank in every gradient average.
    """
    base, extra = divmod(int(m), d.world)
    first = d.rank * base + min(d.rank, extra)
    count = base + (1 if d.rank < extra else 0)
    return (slice(first, first + count), count) if count else (slice(0, 1), 0)


def _share_average(state, bucket):   # no annotations: DDP compares them to the classes (not to strings)
    """DDP's gradient average with each rank weighted by its share of the global batch: the sum over
    ranks of share x (gradient of the rank's mean loss) is the gradient of the global batch's mean loss,
    also for an uneven last batch. With equal shares it is DDP's own average (x 1/world, then sum).
    `state` is the Dist, `bucket` a dist.GradBucket; returns a Future of the averaged bucket."""
    buf = bucket.buffer()
    buf.mul_(state.share)
    return dist.all_reduce(buf, async_op=True).get_future().then(lambda fut: fut.value()[0])


def wrap(d: Dist, module: nn.Module) -> nn.Module:
    """`module` in DDP (gradients averaged by share). Buffers are not broadcast at every forward: ours
    (spectral norm's power-iteration vectors) follow from the weights, which DDP keeps equal."""
    ddp = nn.parallel.DistributedDataParallel(
        module, device_ids=[d.device.index] if d.device.type == "cuda" else None, forward_sync_buffers=False)
    ddp.register_comm_hook(d, _share_average)
    return ddp
