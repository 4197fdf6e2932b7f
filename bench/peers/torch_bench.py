"""PyTorch CPU reference points for the peer benchmark (bench/peers/torch.ts runs this).

argv[1] is a JSON spec: {"threads", "reps", "warmup", "adamw": [{"name", "sizes"}], "matmul":
[{"name", "k"}], "mlp": [{"name", "sizes", "batch"}], "encoder": [{"name", "batch", "tokens",
"dim", "heads", "mlp"}], "vit": [{"name", "image", "patch", "dim", "depth", "heads", "classes",
"batch"}]}; each "name" is its row's workload. Prints one JSON line: {"torch", "threads", "blas",
"rows": [{"workload", "median", "min", "max", "runs"}]}, times in ms. Exits 3 when torch cannot be imported, so the
caller can tell "not installed" from a failure inside a workload.
"""

import json
import sys
import time
import warnings


def timed(run, reps, warmup):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    # The upper median, as bench/timing.ts takes it.
    return {"median": times[len(times) // 2], "min": times[0], "max": times[-1], "runs": len(times)}


def adamw_step(torch, sizes):
    params = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, foreach=True)
    return opt.step


def matmul(torch, k):
    a, b = torch.randn(k, k), torch.randn(k, k)
    return lambda: torch.mm(a, b)


def mlp_step(torch, sizes, batch):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    x = torch.rand(batch, sizes[0])
    y = torch.arange(batch) % sizes[-1]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, foreach=True)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # the loss read back each step, as the JS peers do

    return step


def encoder_layer(torch, dim, heads, mlp):
    """A pre-LN encoder block as grng's nn.encoderBlock: x + MHA(LN(x)), then x + fc2(gelu(fc1(LN(x))))
    with the exact (erf) GELU, LayerNorm eps 1e-5 and no dropout."""
    return torch.nn.TransformerEncoderLayer(
        d_model=dim, nhead=heads, dim_feedforward=mlp, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )


def encoder_block(torch, batch, tokens, dim, heads, mlp):
    """Value and gradients of sum(block(x)) with respect to the parameters (x needs none)."""
    block = encoder_layer(torch, dim, heads, mlp)
    x = torch.randn(batch, tokens, dim)

    def run():
        block.zero_grad(set_to_none=True)
        value = block(x).sum()
        value.backward()
        value.item()  # the value read back, as the JS peers do

    return run


def vit_step(torch, image, patch, dim, depth, heads, classes, batch):
    """One AdamW training step of the ViT nn.vit builds: a patch embedding (a convolution with
    kernel = stride = patch), a [CLS] token and position embeddings, pre-LN encoder blocks, a final
    LayerNorm and a linear head on the [CLS] token; inputs are flat NHWC rows like grng's."""
    height, width, channels = image
    tokens = (height // patch) * (width // patch)

    class ViT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = torch.nn.Conv2d(channels, dim, patch, stride=patch)
            self.cls = torch.nn.Parameter(torch.zeros(1, 1, dim))
            self.position = torch.nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
            self.blocks = torch.nn.ModuleList(encoder_layer(torch, dim, heads, 4 * dim) for _ in range(depth))
            self.norm = torch.nn.LayerNorm(dim)
            self.head = torch.nn.Linear(dim, classes)

        def forward(self, rows):
            images = rows.view(-1, height, width, channels).permute(0, 3, 1, 2)
            h = self.patch(images).flatten(2).transpose(1, 2)  # [B, tokens, dim]
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], 1) + self.position
            for block in self.blocks:
                h = block(h)
            return self.head(self.norm(h)[:, 0])

    model = ViT()
    x = torch.rand(batch, height * width * channels)
    y = torch.arange(batch) % classes
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return step


def main():
    try:
        import torch
    except ImportError as error:
        print(f"cannot import torch: {error}", file=sys.stderr)
        sys.exit(3)
    # The caller reports stderr's first line: keep warnings off it and errors to one line.
    warnings.filterwarnings("ignore")
    try:
        bench(torch, json.loads(sys.argv[1]))
    except Exception as error:  # noqa: BLE001 — any failure becomes the one reported line
        print(f"{type(error).__name__}: {error}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)


def bench(torch, spec):
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    reps, warmup = spec["reps"], spec["warmup"]
    workloads = [(a["name"], adamw_step(torch, a["sizes"])) for a in spec.get("adamw", [])]
    workloads += [(m["name"], matmul(torch, m["k"])) for m in spec.get("matmul", [])]
    workloads += [(m["name"], mlp_step(torch, m["sizes"], m["batch"])) for m in spec.get("mlp", [])]
    workloads += [
        (e["name"], encoder_block(torch, e["batch"], e["tokens"], e["dim"], e["heads"], e["mlp"]))
        for e in spec.get("encoder", [])
    ]
    workloads += [
        (v["name"], vit_step(torch, v["image"], v["patch"], v["dim"], v["depth"], v["heads"], v["classes"], v["batch"]))
        for v in spec.get("vit", [])
    ]
    rows = [{"workload": name, **timed(run, reps, warmup)} for name, run in workloads]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_in_use(torch), "rows": rows}))


def blas_in_use(torch):
    """The BLAS library the process has loaded (Debian's torch uses whichever libblas.so.3 the
    alternatives system points at: the reference one is ~30x slower than OpenBLAS)."""
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1]}
    return ", ".join(sorted(p.split("/")[-2] + "/" + p.split("/")[-1] for p in paths)) or "unknown"


if __name__ == "__main__":
    main()
