"""Shared by the PyTorch step scripts of bench/: our Adam op by op, and the timing loop both report with."""
import time

import torch


class OursAdam:
    """Adam op by op as models/src/optim.rs does it (same in-place sequence), for the --adam ours variant."""

    def __init__(self, params, lr, betas, eps=1e-8):
        self.params = list(params)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.state = [(torch.zeros_like(p), torch.zeros_like(p), [0]) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.detach_()
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        b1, b2 = self.b1, self.b2
        for p, (m, v, st) in zip(self.params, self.state):
            g = p.grad
            if g is None:
                continue
            st[0] += 1
            t = st[0]
            m.lerp_(g, 1.0 - b1)
            v.mul_(b2)
            v.addcmul_(g * (1.0 - b2), g)
            bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
            denom = v.sqrt()
            denom.div_(bc2 ** 0.5)
            denom.add_(self.eps)
            p.addcdiv_(m * (-self.lr / bc1), denom)


def add_common_args(ap, warmup, steps):
    """The options both step scripts take (threads, timing, seed, Adam variant, parameter checks, profile)."""
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--adam", choices=["torch", "ours"], default="torch")
    ap.add_argument("--expect-g-params", type=int, default=None)
    ap.add_argument("--expect-d-params", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="print the profiler's top ops over the timed steps")


def time_steps(step, warmup, steps, profile):
    """Runs `step(i)` `warmup` times, then `steps` timed times (optionally under torch.profiler); prints the
    `ms_per_step:` and `cpu_ms_per_step:` lines the Rust harness reads, and returns the last step's result."""
    for i in range(warmup):
        step(i)
    prof = None
    if profile:
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        prof.__enter__()
    t0, c0 = time.perf_counter(), time.process_time()
    last = None
    for i in range(steps):
        last = step(warmup + i)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.__exit__(None, None, None)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print(f"ms_per_step: {dt / steps * 1000:.3f}")
    print(f"cpu_ms_per_step: {dc / steps * 1000:.3f}")
    return last
