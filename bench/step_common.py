"""Shared by the PyTorch step scripts of bench/: our Adam op by op, device / memory-format / autocast setup,
and the timing loop all of them report with. No numpy (the GPU machines' python3 may lack it)."""
import contextlib
import time
import warnings

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
    """The options every step script takes (threads, timing, seed, Adam variant, parameter checks, profile,
    device, memory format, autocast)."""
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--adam", choices=["torch", "ours"], default="torch")
    ap.add_argument("--expect-g-params", type=int, default=None)
    ap.add_argument("--expect-d-params", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="print the profiler's top ops over the timed steps")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (CUDA: cudnn.benchmark = True)")
    ap.add_argument("--channels-last", action="store_true",
                    help="model.to(memory_format=torch.channels_last) and 4-D inputs likewise")
    ap.add_argument("--amp", choices=["off", "bf16"], default="off", help="torch.autocast with bfloat16")
    ap.add_argument("--amp-scope", choices=["forward", "step"], default="forward",
                    help="autocast around the forward passes and losses only (documented usage), or around the "
                         "whole step (the region ganzoo's bench can wrap: forward, backward, optimizer)")


def _flag(get):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return get()
        except Exception as e:  # noqa: BLE001  (an API that moved: say so instead of failing the run)
            return f"n/a ({type(e).__name__})"


class Setup:
    """Device, threads, cuDNN benchmark, memory format and autocast from the common arguments."""

    def __init__(self, args):
        torch.set_num_threads(args.threads)
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        if self.cuda:
            if self.dev.index is None:  # "cuda" -> "cuda:N" (set_device and friends want an index)
                self.dev = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.dev)
            torch.backends.cudnn.benchmark = True
        self.channels_last = args.channels_last
        self.amp = args.amp
        self.scope = args.amp_scope

    def describe(self):
        """One `setup:` line (the Rust harness prints it): what this side runs with."""
        if self.cuda:
            parts = [f"device {self.dev} ({torch.cuda.get_device_name(self.dev)}, torch {torch.__version__}, "
                     f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"]
            parts.append(f"cudnn.benchmark {torch.backends.cudnn.benchmark}")
            parts.append(f"cudnn.allow_tf32 {_flag(lambda: torch.backends.cudnn.allow_tf32)}")
            parts.append(f"cuda.matmul.allow_tf32 {_flag(lambda: torch.backends.cuda.matmul.allow_tf32)}")
            parts.append(f"float32_matmul_precision {_flag(torch.get_float32_matmul_precision)}")
        else:
            parts = [f"device cpu (torch {torch.__version__}, {torch.get_num_threads()} thread(s))"]
        parts.append("channels_last" if self.channels_last else "contiguous (NCHW)")
        parts.append(f"autocast bf16 around the {'whole step' if self.scope == 'step' else 'forward passes'}"
                     if self.amp == "bf16" else "fp32")
        return "setup: " + "; ".join(parts)

    def model(self, m):
        """Moves a module to the device (and channels-last); call before building its optimizer."""
        m = m.to(self.dev)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def input(self, x):
        """A CPU batch onto the device (as ganzoo's feed does: a plain synchronous copy), channels-last if asked."""
        x = x.to(self.dev)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        return torch.autocast(self.dev.type, dtype=torch.bfloat16)

    def fwd(self):
        """Context for forward passes and losses (autocast when --amp bf16 --amp-scope forward)."""
        return self._autocast() if self.amp == "bf16" and self.scope == "forward" else contextlib.nullcontext()

    def step_ctx(self):
        """Context around one whole step (autocast when --amp bf16 --amp-scope step)."""
        return self._autocast() if self.amp == "bf16" and self.scope == "step" else contextlib.nullcontext()

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.dev)


def time_steps(step, warmup, steps, profile, setup=None):
    """Runs `step(i)` `warmup` times, then `steps` timed times (optionally under torch.profiler); each call inside
    `setup.step_ctx()`; the device is synchronized before each clock read. Prints the `ms_per_step:` and
    `cpu_ms_per_step:` lines the Rust harness reads, and returns the last step's result."""
    sync = setup.sync if setup is not None else (lambda: None)
    ctx = setup.step_ctx if setup is not None else contextlib.nullcontext

    def run(i):
        with ctx():
            return step(i)

    for i in range(warmup):
        run(i)
    prof = None
    if profile:
        acts = [torch.profiler.ProfilerActivity.CPU]
        if setup is not None and setup.cuda:
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        prof = torch.profiler.profile(activities=acts)
        prof.__enter__()
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    last = None
    for i in range(steps):
        last = run(warmup + i)
    sync()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.__exit__(None, None, None)
        sort = "self_cuda_time_total" if setup is not None and setup.cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=25))
    if setup is not None:
        print(setup.describe())
    print(f"ms_per_step: {dt / steps * 1000:.3f}")
    print(f"cpu_ms_per_step: {dc / steps * 1000:.3f}")
    return last


class LeakyFactor(torch.nn.Module):
    """LeakyReLU(0.2) as x · ([x > 0]·0.8 + 0.2) with the factor outside autograd (models/src/base.rs
    leaky_relu): bit-equal to F.leaky_relu, a multiplication in the backward."""

    def forward(self, h):
        return h * ((h > 0).to(h.dtype) * 0.8 + 0.2)
