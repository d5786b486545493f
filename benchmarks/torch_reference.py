#!/usr/bin/env python3
"""PyTorch timings of the workloads of bench_gpu.cu / bench_models.cpp, for side-by-side figures (issue 6).

The same architectures as cpdiff's models::pdiff_autoencoder<pdiff_medium> and models::pdiff_unet<default>
(see tests/fixtures/make_model_fixtures.py for the layer-by-layer definitions they mirror), built here in
plain torch: one AE training step (n = 73,728, batch 16), one U-Net DDPM training step (batch 16) and one
sampling step (batch 10) at latent [4, 117] + condition 512. Prints one line per workload:
  torch <workload>[_bf16] <device> <ms per step>      (_bf16: under torch.autocast bfloat16, cuda only)
Usage: python3 benchmarks/torch_reference.py [--device cuda|cpu] [--steps 20]
"""
import argparse
import sys
import time

import torch
from torch import nn

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/fixtures")
from make_model_fixtures import PdiffAE, PdiffUNet  # noqa: E402  (the architectures, defined once)
import torch.nn.functional as F  # noqa: E402


def timed(fn, steps, device):
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    dev = a.device
    torch.manual_seed(0)

    ae = PdiffAE(73728, 5, 5, [4, 4, 4, 4], [4, 256, 256, 8]).to(dev)  # pdiff_medium
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3)
    x = torch.randn(16, 73728, device=dev)

    def ae_train_forward(x):  # the training pass with both noises, as forward_train
        xp = F.pad(x, (0, ae.padded - ae.n)).unsqueeze(1)
        xp = 0.999 * xp + 0.001 * torch.randn_like(xp)
        z = ae.encoder(xp)
        z = (0.9 * z + 0.1 * torch.randn_like(z)).clamp(-1, 1)
        return ae.decoder(z)[:, 0, : ae.n]

    def ae_step():
        opt.zero_grad()
        loss = ((ae_train_forward(x) - x) ** 2).mean()
        loss.backward()
        opt.step()

    print(f"torch ae_medium_train_step {dev} {timed(ae_step, a.steps, dev):.2f}")

    net = PdiffUNet((4, 117), 512, 1000).to(dev)
    opt2 = torch.optim.AdamW(net.parameters(), lr=1e-3)
    betas = torch.linspace(1e-4, 0.02, 1000, device=dev)
    acp = torch.cumprod(1 - betas, 0)

    def unet_step(batch, train):
        z0 = torch.rand(batch, 4, 117, device=dev) * 2 - 1
        c = torch.randn(batch, 512, device=dev)
        t = torch.randint(0, 1000, (batch,), device=dev)
        eps = torch.randn_like(z0)
        a_ = acp[t].view(-1, 1, 1)
        xt = a_.sqrt() * z0 + (1 - a_).sqrt() * eps
        if train:
            opt2.zero_grad()
            loss = ((net(xt, t, c) - eps) ** 2).mean()
            loss.backward()
            opt2.step()
        else:
            with torch.no_grad():
                net(xt, t, c)

    print(f"torch unet_paper_train_step {dev} {timed(lambda: unet_step(16, True), a.steps, dev):.2f}")
    print(f"torch unet_paper_sampling_step {dev} {timed(lambda: unet_step(10, False), a.steps, dev):.2f}")
    if dev == "cuda":  # mixed precision: bf16 autocast, as cpdiff's matmul_precision::bf16 (float weights)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            print(f"torch ae_medium_train_step_bf16 {dev} {timed(ae_step, a.steps, dev):.2f}")
            print(f"torch unet_paper_train_step_bf16 {dev} {timed(lambda: unet_step(16, True), a.steps, dev):.2f}")
            print(f"torch unet_paper_sampling_step_bf16 {dev} {timed(lambda: unet_step(10, False), a.steps, dev):.2f}")


if __name__ == "__main__":
    main()
