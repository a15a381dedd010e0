"""timing.py: how bench.py measures, on the CPU or a GPU: the seconds and the peak memory of one
call (measure), and the FLOP/s of a large matmul, the peak that model-FLOPs utilisation is held
against (matmul_peak). Nothing to run: python -m studies.bench uses it.
"""

import ctypes
import time
from contextlib import suppress

import torch


def sync(device):
    """Waits for the work queued on a GPU; on the CPU there is none."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def proc(path, key, kib=True):
    """The 'key: value' field of a /proc file (in bytes if kib); None where there is no /proc."""
    with suppress(OSError, StopIteration):
        value = next(ln.split(":", 1)[1].strip() for ln in open(path) if ln.startswith(key))
        return int(value.split()[0]) * 1024 if kib else value


def measure(fn, device, trim=False):
    """Seconds of one call fn(), and the peak memory during it above that before, in bytes (None:
    not measured). CUDA: max_memory_allocated. CPU: the growth of the peak resident memory VmHWM,
    after malloc_trim if trim (so that memory freed before is not reused unseen)."""
    cuda, base = device.type == "cuda", None
    with suppress(OSError, AttributeError):
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        else:
            ctypes.CDLL("libc.so.6").malloc_trim(0) if trim else None
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current VmRSS
        base = torch.cuda.memory_allocated(device) if cuda else proc("/proc/self/status", "VmRSS")
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if cuda else proc("/proc/self/status", "VmHWM")
    return seconds, None if base is None else peak - base


def matmul_peak(device, dtype, n, seconds=1.0):
    """Measured FLOP/s of an n×n matmul in dtype: the peak that model-FLOPs utilisation uses."""
    a, b = [torch.randn(n, n, device=device, dtype=dtype) for _ in range(2)]
    measure(lambda: a @ b, device)  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync(device)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)
