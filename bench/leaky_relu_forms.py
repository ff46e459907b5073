"""LeakyReLU(0.2) forms, forward + backward on the DCGAN discriminator's activation shapes, 1 thread: which one
tch could use (tch 0.24 has leaky_relu only with slope 0.01). Run: .venv/bin/python bench/leaky_relu_forms.py"""
import torch, time
torch.set_num_threads(1)
w = torch.full((1,), 0.2)
fs = {
 "leaky_relu": lambda x: torch.nn.functional.leaky_relu(x, 0.2),
 "prelu": lambda x: torch.prelu(x, w),
 "relu*0.8+x*0.2": lambda x: x.relu() * 0.8 + x * 0.2,
 "max(x,0.2x)": lambda x: torch.maximum(x, x * 0.2),
 "x*(0.6+0.4*sign)": lambda x: x * (x.sign() * 0.4 + 0.6).detach(),
 "rrelu(0.2,0.2)": lambda x: torch.nn.functional.rrelu(x, 0.2, 0.2, training=False),
}
for name, f in fs.items():
    ts = []
    for rep in range(3):
        t0 = time.perf_counter()
        for _ in range(10):
            for shape in [(128,64,14,14),(128,128,7,7)]:
                x = torch.randn(shape, requires_grad=True)
                y = f(x)
                y.backward(torch.ones_like(y))
        ts.append(time.perf_counter()-t0)
    print(f"{name:20s} {min(ts)*100:.1f} ms per (fwd+bwd of both shapes)")
