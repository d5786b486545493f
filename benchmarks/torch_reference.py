#!/usr/bin/env python3
"""PyTorch timings of the workloads of bench_gpu.cu / bench_models.cpp / bench_vit.cpp / bench_lora_merge.cpp, for
side-by-side figures (issue 6; issue 17: benchmarks/compare_pytorch.sh runs this beside the cpdiff programs).

The same architectures and sizes as the cpdiff benchmarks, built here in plain torch (the module definitions are
the parity fixtures' own, imported from tests/fixtures/, which mirror the C++ headers layer by layer):

  ae_medium_train_step        models::pdiff_autoencoder<pdiff_medium> (make_model_fixtures.PdiffAE), n = 73,728,
                              batch 16: forward_train (input noise a = 0.001, latent noise b = 0.1, clamp), MSE,
                              backward, AdamW over every parameter
  unet_paper_train_step       models::pdiff_unet<pdiff_unet_default, learned> (make_model_fixtures.PdiffUNet),
                              latent [4, 117] + condition 512, T = 1000: one DDPM training step (draw t and eps,
                              x_t, forward, MSE on eps, backward, AdamW), batch 16
  unet_paper_sampling_step    the same network: draw, x_t, one denoiser forward without gradients, batch 10
  style_ae_example_mlp_train_step / style_ae_example_vit_train_step
                              models::style_autoencoder<pipeline::generator_autoencoder> (channels 8, 16, 16, 8,
                              kernel 5, latent 64; make_appendix_fixtures.StyleAE plus the options the benchmark
                              sets: Tanh latent, clamp, linear skip), n = 3,688 / 24,576, batch 64, training mode
                              (BatchNorm on batch statistics): one step as ae_medium_train_step's
  lora_merge_48x768x768/r:R   W += (16 / R) B A on 48 matrices W [768, 768], B [768, R], A [R, 768], R = 1, 4, 16,
                              as W.addmm_(B, A, alpha=16 / R) in place (cpdiff: nn::lora_linear::merge, which
                              also copies A and B, a few KiB, so that unmerge() can subtract them later)
  vit_finetune_step           models::peft_classifier<models::vit<bench_vit_config>>: a Hugging Face-layout ViT
                              (make_layer_fixtures.HFViTForImageClassification: pre-LayerNorm blocks, exact-erf
                              GELU, LayerNorm eps 1e-12), 28x28x1 images in 7x7 patches, width 64, 6 layers,
                              4 heads, MLP 128, 10 classes; LoRA r = 16, alpha = 32, dropout 0.1 on query and
                              value (PEFT's formula); batch 128: forward, cross-entropy, backward (d input through
                              every layer, as cpdiff computes it: the images require grad), AdamW (lr 1e-3) on
                              lora_A / lora_B only

Steady state: each workload is built once, `--warmup` steps run untimed, then `--steps` steps are timed; the figure
is their mean (with --repeats R: the median of R such means). Prints one line per workload:
  torch <workload>[_bf16] <device> <ms per step>      (_bf16: under torch.autocast bfloat16, cuda only)
and, first, one line `torch-info version=... threads=... blas=...` (blas: the BLAS library torch's float matrix
products go to on the CPU, read from /proc/self/maps after a product: OpenBLAS's or BLIS's own library when one is
loaded, else the libblas.so.3 file, /usr/lib/x86_64-linux-gnu/blas/ being the reference BLAS of libblas3).
Usage: python3 benchmarks/torch_reference.py [--device cuda|cpu] [--steps 20] [--warmup 2] [--repeats 1]
                                             [--threads T] [--only all | --only NAME,NAME,...]
--only takes workload names, or a prefix of them ("lora_merge" selects the three ranks); the default is the three
p-diff workloads (ae_medium_train_step, unet_paper_train_step, unet_paper_sampling_step).
"""
import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

_default_threads = torch.get_num_threads()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures"))
from make_model_fixtures import PdiffAE, PdiffUNet  # noqa: E402  (the architectures, defined once)
from make_appendix_fixtures import StyleAE  # noqa: E402
from make_layer_fixtures import HFViTForImageClassification  # noqa: E402

# The fixture scripts set float64 as the default dtype (and a thread count, deterministic algorithms) when they
# are imported: the timings are float32, as cpdiff's, with the thread count given here.
torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(False)

DEFAULT = ["ae_medium_train_step", "unet_paper_train_step", "unet_paper_sampling_step"]


def timed(fn, steps, warmup, device, repeats=1):
    """ms per step: the mean over `steps` timed steps after `warmup` untimed ones; with repeats > 1, the median of
    that many such means."""
    for _ in range(warmup):
        fn()
    means = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        means.append(1e3 * (time.perf_counter() - t0) / steps)
    return statistics.median(means)


def blas_library():
    """The BLAS shared library this process has mapped after a float matrix product, or 'none found'."""
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    real = sorted({os.path.realpath(p) for p in libs})
    # an optimised BLAS behind the libblas.so.3 name (OpenBLAS, BLIS) maps its own library too: name that one
    best = [p for p in real if "openblas" in os.path.basename(p) or "blis" in os.path.basename(p)] or real
    return best[0] if best else "none found"


# ---------------------------------------------------------------- p-diff autoencoder and U-Net


def ae_medium(dev):
    ae = PdiffAE(73728, 5, 5, [4, 4, 4, 4], [4, 256, 256, 8]).to(dev)  # pdiff_medium
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3)
    x = torch.randn(16, 73728, device=dev)

    def forward_train(x):  # the training pass with both noises, as forward_train
        xp = F.pad(x, (0, ae.padded - ae.n)).unsqueeze(1)
        xp = 0.999 * xp + 0.001 * torch.randn_like(xp)
        z = ae.encoder(xp)
        z = (0.9 * z + 0.1 * torch.randn_like(z)).clamp(-1, 1)
        return ae.decoder(z)[:, 0, : ae.n]

    def step():
        opt.zero_grad()
        loss = ((forward_train(x) - x) ** 2).mean()
        loss.backward()
        opt.step()

    return step


def unet(dev, batch, train):
    net = PdiffUNet((4, 117), 512, 1000).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    betas = torch.linspace(1e-4, 0.02, 1000, device=dev)
    acp = torch.cumprod(1 - betas, 0)
    z0 = torch.rand(batch, 4, 117, device=dev) * 2 - 1
    c = torch.randn(batch, 512, device=dev)

    def step():
        t = torch.randint(0, 1000, (batch,), device=dev)
        eps = torch.randn_like(z0)
        a_ = acp[t].view(-1, 1, 1)
        xt = a_.sqrt() * z0 + (1 - a_).sqrt() * eps
        if train:
            opt.zero_grad()
            loss = ((net(xt, t, c) - eps) ** 2).mean()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                net(xt, t, c)

    return step


# ---------------------------------------------------------------- the appendix (style) autoencoder


class StyleAETrain(StyleAE):
    """make_appendix_fixtures.StyleAE with the options bench_models' style AE sets (model_steps.hpp
    style_ae_train_step): z = Tanh(encoder_fc(...)), z~ = clamp((1 - b) z + b eps, -1, 1), and the decoder's linear
    skip x^ = crop(convs(z~)) + decoder_skip(z~)."""

    def __init__(self, n, channels, k, latent):
        super().__init__(n, channels, k, latent)
        self.decoder_skip = nn.Linear(latent, n)

    def forward_train(self, x, a=0.001, b=0.1):
        xp = F.pad(x, (0, self.padded - self.n)).unsqueeze(1)
        xp = (1 - a) * xp + a * torch.randn_like(xp)
        z = torch.tanh(self.encoder_fc(self.encoder(xp).flatten(1)))
        z = ((1 - b) * z + b * torch.randn_like(z)).clamp(-1, 1)
        h = self.decoder_fc(z).reshape(z.shape[0], *self.bottom)
        return self.decoder(h)[:, 0, : self.n] + self.decoder_skip(z)


def style_ae(dev, n, batch):
    ae = StyleAETrain(n, (8, 16, 16, 8), 5, 64).to(dev)  # pipeline::generator_autoencoder
    ae.train()
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3)
    x = torch.randn(batch, n, device=dev)

    def step():
        opt.zero_grad()
        loss = ((ae.forward_train(x) - x) ** 2).mean()
        loss.backward()
        opt.step()

    return step


# ---------------------------------------------------------------- LoRA merge


def lora_merge(dev, r, layers=48, width=768, alpha=16.0):
    g = torch.Generator(device="cpu").manual_seed(r)
    ws = [torch.randn(width, width, generator=g).mul_(width ** -0.5).to(dev) for _ in range(layers)]
    As = [torch.randn(r, width, generator=g).mul_(width ** -0.5).to(dev) for _ in range(layers)]
    Bs = [torch.randn(width, r, generator=g).mul_(0.01).to(dev) for _ in range(layers)]
    s = alpha / r

    def step():  # W drifts by s B A per step: harmless for a timing
        with torch.no_grad():
            for w, a, b in zip(ws, As, Bs):
                w.addmm_(b, a, alpha=s)

    return step


# ---------------------------------------------------------------- ViT LoRA fine-tuning


class LoraLinear(nn.Module):
    """PEFT's LoRA Linear: y = base(x) + s * lora_B(lora_A(dropout(x))), s = alpha / r, base frozen, B = 0."""

    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=5 ** 0.5)
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling


def vit_finetune(dev, batch=128):
    # bench_vit_config: channels 1, image 28, patch 7, dim 64, depth 6, heads 4, mlp_dim 128, classes 10
    m = HFViTForImageClassification(1, 28, 7, 64, 6, 4, 128, 10)
    for p in m.parameters():
        p.requires_grad_(False)
    for layer in m.vit.encoder.layer:  # target_modules {"query", "value"}, r = 16, alpha = 32, dropout 0.1
        att = layer.attention.attention
        att.query = LoraLinear(att.query, 16, 32.0, 0.1)
        att.value = LoraLinear(att.value, 16, 32.0, 0.1)
    m = m.to(dev).train()
    lora = [p for n, p in m.named_parameters() if "lora_" in n]
    opt = torch.optim.AdamW(lora, lr=1e-3)
    x = torch.rand(batch, 1, 28, 28, device=dev, requires_grad=True)
    y = (torch.arange(batch, device=dev) % 10).long()

    def step():
        opt.zero_grad()
        x.grad = None
        F.cross_entropy(m(x), y).backward()
        opt.step()

    return step


def workloads(dev):
    """name -> a function building the workload and returning its step (built only when selected)."""
    w = {
        "ae_medium_train_step": lambda: ae_medium(dev),
        "unet_paper_train_step": lambda: unet(dev, 16, True),
        "unet_paper_sampling_step": lambda: unet(dev, 10, False),
        "style_ae_example_mlp_train_step": lambda: style_ae(dev, 3688, 64),
        "style_ae_example_vit_train_step": lambda: style_ae(dev, 24576, 64),
    }
    for r in (1, 4, 16):
        w[f"lora_merge_48x768x768/r:{r}"] = lambda r=r: lora_merge(dev, r)
    w["vit_finetune_step"] = lambda: vit_finetune(dev)
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="report the median of this many timings of --steps steps")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--only", default=",".join(DEFAULT), help="'all', or workload names / prefixes, comma-separated")
    a = ap.parse_args()
    dev = a.device
    torch.set_num_threads(a.threads if a.threads else _default_threads)
    torch.manual_seed(0)

    table = workloads(dev)
    wanted = [s for s in a.only.split(",") if s]
    if wanted == ["all"]:
        names = list(table)
    else:
        names = [n for n in table if any(n == s or n.startswith(s) for s in wanted)]
        unknown = [s for s in wanted if not any(n == s or n.startswith(s) for n in table)]
        if unknown:
            sys.exit(f"torch_reference.py: unknown workload(s) {', '.join(unknown)}; known: {', '.join(table)}")

    print(f"torch-info version={torch.__version__} threads={torch.get_num_threads()} blas={blas_library()}",
          flush=True)
    for name in names:
        step = table[name]()
        print(f"torch {name} {dev} {timed(step, a.steps, a.warmup, dev, a.repeats):.3f}", flush=True)
        if dev == "cuda" and name in DEFAULT:  # mixed precision: bf16 autocast, as cpdiff's matmul_precision::bf16
            with torch.autocast("cuda", dtype=torch.bfloat16):
                print(f"torch {name}_bf16 {dev} {timed(step, a.steps, a.warmup, dev, a.repeats):.3f}", flush=True)
        del step


if __name__ == "__main__":
    main()
