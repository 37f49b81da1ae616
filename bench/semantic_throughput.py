"""Semantic training throughput: our trainer's step vs a plain loop in the style of torchvision's
``references/segmentation``, same network, batch, image size and loss, in the same run.

The reference (train.py / transforms.py / utils.py there): a VOC-like dataset of images and index
PNGs (written once from the run's COCO before timing, as a user's VOC folder would be), transforms
resize to S x S (mask nearest), random horizontal flip p=0.5, to tensor, ImageNet normalise;
``DataLoader(shuffle=True)`` with ``cat_list`` collate; ``criterion = cross_entropy(ignore_index=255)``
(+ 0.5 x aux when the net has one); SGD step; autocast + GradScaler with ``--amp``. Ours:
:class:`workbench.train.loop.Trainer`'s semantic loader (label maps from the annotations, cache of
resized images and maps, the flip pipeline) and step (gradient clipping as configured).

Loader-only phases run several epochs (the first decodes, later ones are what training sees from
epoch 2 on); every phase runs in its own subprocess for its own peak memory, twice in turn with the
reference, best of two (the machine may be shared).

    python bench/semantic_throughput.py                         # CPU, U-Net resnet18, 128 px
    python bench/semantic_throughput.py --device cuda --size 512 --batch 8 --amp --arch deeplabv3 --encoder resnet50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLIP = [{"name": "HorizontalFlip", "params": {"p": 0.5}}]


def _peak_mb(device) -> float:  # noqa: ANN001
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RefDataset:
    """references/segmentation style: image + index PNG, resize, flip, normalise."""

    def __init__(self, root: Path, size: int) -> None:
        self.items = sorted((root / "index").glob("*.png"))
        self.images = root / "images"
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):  # noqa: ANN204
        import random

        import numpy as np
        import torch
        from PIL import Image
        from torchvision.transforms import functional as F

        img = Image.open(self.images / self.items[i].name).convert("RGB")
        target = Image.open(self.items[i])
        img = F.resize(img, [self.size, self.size])
        target = F.resize(target, [self.size, self.size], interpolation=F.InterpolationMode.NEAREST)
        if random.random() < 0.5:
            img, target = F.hflip(img), F.hflip(target)
        image = F.normalize(F.to_tensor(img), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
        return image, torch.as_tensor(np.array(target), dtype=torch.int64)


def _cat_list(batch):  # noqa: ANN001, ANN202 - references/segmentation's collate_fn
    import torch

    images, targets = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(targets)


def _ref_root(run_dir: Path) -> Path:
    """The run's training images as a VOC-like folder (images/ + index/ PNGs): the reference's input."""
    import numpy as np
    from PIL import Image

    from workbench.formats.labelmaps import semantic_index_map
    from workbench.train.dataset import load_coco_split

    root = run_dir / "ref"
    if root.exists():
        return root
    (root / "index").mkdir(parents=True)
    (root / "images").mkdir()
    ds = load_coco_split(run_dir / "dataset" / "coco_train.json", run_dir / "dataset" / "images")
    for i, item in enumerate(ds.items):
        name = f"{i:05d}.png"
        Image.fromarray(np.asarray(Image.open(item.image.path).convert("RGB"))).save(root / "images" / name)
        Image.fromarray(semantic_index_map(item, ds.categories)).save(root / "index" / name)
    return root


def phase(args: argparse.Namespace) -> dict:
    import torch

    from workbench.train.loop import Trainer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run_dir = Path(args.run_dir)
    trainer = Trainer(run_dir)
    device = trainer.device
    total = args.warmup + args.iters
    if args.phase.startswith("ours"):
        trainer._setup_data()
        loader = trainer.train_loader
    else:
        ds = RefDataset(_ref_root(run_dir), args.size)
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                             collate_fn=_cat_list, drop_last=True, pin_memory=device.type == "cuda")
    if "loader" in args.phase:
        rates = []
        for epoch in range(args.loader_epochs):
            if hasattr(loader, "batch_sampler") and hasattr(loader.batch_sampler, "set_epoch"):
                loader.batch_sampler.set_epoch(epoch)
            t0, n = time.perf_counter(), 0
            for images, _ in loader:
                n += len(images)
            rates.append(n / (time.perf_counter() - t0))
        later = sorted(rates[1:])
        return {"images_per_s": later[len(later) // 2], "cold_images_per_s": rates[0], "peak_mb": _peak_mb(device)}
    if args.phase == "ours":
        trainer._setup_model()
        trainer.model.train()
        trainer.state.total_steps = total

        def step(images, targets):  # noqa: ANN001, ANN202
            trainer._set_lr()
            trainer._step(images, targets)
            trainer.state.global_step += 1
    else:
        from workbench.train.tasks.semantic_models import build_semantic_model

        cfg = trainer.config
        net = build_semantic_model(cfg.arch, num_classes=3, encoder=cfg.encoder, weights="none", mode="ce").net.to(device)
        net.train()
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg.base_lr, momentum=0.9, weight_decay=1e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=args.amp)
        amp = args.amp and device.type == "cuda"

        def criterion(out, target):  # noqa: ANN001, ANN202 - the reference's
            losses = {k: torch.nn.functional.cross_entropy(x, target, ignore_index=255) for k, x in out.items()}
            return losses["out"] + 0.5 * losses["aux"] if "aux" in losses else losses["out"]

        def step(image, target):  # noqa: ANN001, ANN202
            image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                out = net(image)
                loss = criterion(out if isinstance(out, dict) else {"out": out}, target)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    done, t0 = 0, None
    while done < total:
        for images, targets in loader:
            if done == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            step(images, targets)
            done += 1
            if done >= total:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"images_per_s": args.iters * args.batch / (time.perf_counter() - t0), "peak_mb": _peak_mb(device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="unet")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--size", type=int, default=128, help="square training size (a multiple of 32)")
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--loader-epochs", type=int, default=4)
    p.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    from workbench.train.config import TrainConfig
    from workbench.train.synthetic import write_shapes_run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            task="semantic", arch=args.arch, encoder=args.encoder, image_size=args.size, seg_loss="ce",
            weights="none", batch_size=args.batch, num_workers=args.workers, device=args.device, amp=args.amp,
            augmentation=FLIP, warmup_iters=0, epochs=1000, grad_clip_norm=None, aux_loss_weight=0.5,
        )
        run_dir = write_shapes_run(Path(tmp) / "run", cfg, n_train=args.images, size_wh=(256, 192))
        results: dict[str, dict] = {}
        for _ in range(2):
            for ph in ("ref_loader", "ours_loader", "ref", "ours"):
                cmd = [sys.executable, __file__, "--phase", ph, "--run-dir", str(run_dir)] + sys.argv[1:]
                out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if out.returncode:
                    sys.exit(f"phase {ph} failed:\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                best = results.setdefault(ph, r)
                for key in ("images_per_s", "cold_images_per_s"):
                    if key in r:
                        best[key] = max(best[key], r[key])
                best["peak_mb"] = max(best["peak_mb"], r["peak_mb"])

    import torch

    dev = "cuda: " + torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"cpu ({args.threads} threads)"
    print(f"\n{args.arch} {args.encoder} images={args.images} of 256x192 -> {args.size}^2 batch={args.batch} "
          f"iters={args.iters} amp={args.amp} workers={args.workers} on {dev}; loss CE(ignore 255) + 0.5 aux where present; flip p=0.5 both sides")
    print(f"{'':22}{'ours':>10}{'reference':>11}{'ratio':>8}{'peak MB ours/ref':>20}")
    for label, o, r in (("train step images/s", "ours", "ref"), ("loader images/s", "ours_loader", "ref_loader")):
        a, b = results[o], results[r]
        print(f"{label:22}{a['images_per_s']:10.1f}{b['images_per_s']:11.1f}{a['images_per_s'] / b['images_per_s']:8.2f}"
              f"{a['peak_mb']:12.0f} / {b['peak_mb']:.0f}")
    print(f"loader cold (epoch 1)  {results['ours_loader']['cold_images_per_s']:10.1f}{results['ref_loader']['cold_images_per_s']:11.1f}")
    feeds = results["ours_loader"]["images_per_s"] / results["ours"]["images_per_s"]
    print(f"our loader supplies {feeds:.1f}x what our step consumes")


if __name__ == "__main__":
    main()
