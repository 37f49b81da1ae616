"""Training throughput: our trainer step vs a plain torchvision-reference loop, same model and data.

The reference follows torchvision's ``references/detection`` (train.py / engine.py / coco_utils.py):
pycocotools rasterises every polygon to a full-image mask at load time, random horizontal flip,
``tuple(zip(*batch))`` collate, then ``loss = sum(model(images, targets).values())``, backward, SGD
step (autocast + GradScaler with ``--amp``). Ours: :class:`workbench.train.loop.Trainer`'s loader and
step (albumentations pipeline, grouped batches, pinned memory, gradient clipping).

Each phase runs in its own subprocess so that peak memory (GPU: max allocated; CPU: peak RSS) is its
own. Prints a table with images/s and peak memory, and the ratio ours / reference.

    python bench/train_throughput.py                      # CPU, tiny model, small images
    python bench/train_throughput.py --backbone resnet50_fpn_v2 --size 800x600 --batch 4 --amp --device cuda
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


def _peak_mb(device) -> float:  # noqa: ANN001
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------- reference
class RefDataset:
    """torchvision references/detection style: CocoDetection + ConvertCocoPolysToMask + flip."""

    def __init__(self, coco_path: Path, images_dir: Path, flip_prob: float = 0.5) -> None:
        from pycocotools.coco import COCO

        self.coco = COCO(str(coco_path))
        self.ids = sorted(self.coco.imgs)
        self.images_dir = images_dir
        self.flip_prob = flip_prob
        self.cat_to_label = {c: i + 1 for i, c in enumerate(sorted(self.coco.cats))}
        self.num_keypoints = max((len(c.get("keypoints", [])) for c in self.coco.cats.values()), default=0)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, idx: int):  # noqa: ANN204
        import numpy as np
        import torch
        from PIL import Image
        from pycocotools import mask as coco_mask

        img_id = self.ids[idx]
        info = self.coco.imgs[img_id]
        image = Image.open(self.images_dir / info["file_name"]).convert("RGB")
        w, h = image.size
        anns = [a for a in self.coco.imgToAnns[img_id] if a.get("iscrowd", 0) == 0]
        boxes = torch.as_tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2].clamp_(min=0, max=w)
        boxes[:, 1::2].clamp_(min=0, max=h)
        labels = torch.tensor([self.cat_to_label[a["category_id"]] for a in anns], dtype=torch.int64)
        masks = []
        for a in anns:
            rles = coco_mask.frPyObjects(a["segmentation"], h, w)
            m = coco_mask.decode(rles)
            masks.append(m.any(axis=2) if m.ndim == 3 else m)
        masks_t = torch.as_tensor(np.stack(masks), dtype=torch.uint8) if masks else torch.zeros((0, h, w), dtype=torch.uint8)
        k = self.num_keypoints
        kps = torch.zeros((len(anns), k, 3))
        for i, a in enumerate(anns):
            if a.get("keypoints"):
                kps[i, : len(a["keypoints"]) // 3] = torch.tensor(a["keypoints"], dtype=torch.float32).view(-1, 3)
        keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
        target = {"boxes": boxes[keep], "labels": labels[keep], "masks": masks_t[keep], "image_id": img_id}
        if k:
            target["keypoints"] = kps[keep]
        img = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
        if torch.rand(1) < self.flip_prob:  # references/detection/transforms.py RandomHorizontalFlip
            img = img.flip(-1)
            target["boxes"][:, [0, 2]] = w - target["boxes"][:, [2, 0]]
            target["masks"] = target["masks"].flip(-1)
            if k:
                kp = target["keypoints"]
                kp[..., 0] = torch.where(kp[..., 2] > 0, w - kp[..., 0], kp[..., 0])
        return img, target


def _ref_collate(batch):  # noqa: ANN001, ANN202
    return tuple(zip(*batch, strict=True))


def _ref_loader(run_dir: Path, batch: int, workers: int, device):  # noqa: ANN001, ANN202
    import torch

    ds = RefDataset(run_dir / "dataset" / "coco_train.json", run_dir / "dataset" / "images")
    sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(0))
    batch_sampler = torch.utils.data.BatchSampler(sampler, batch, drop_last=True)
    return torch.utils.data.DataLoader(ds, batch_sampler=batch_sampler, num_workers=workers, collate_fn=_ref_collate)


# ----------------------------------------------------------------------------------------- phases
def _repeat(loader, n_batches: int):  # noqa: ANN001, ANN202
    done = 0
    while True:
        for batch in loader:
            yield batch
            done += 1
            if done >= n_batches:
                return


def phase(args: argparse.Namespace) -> dict:
    import torch

    from workbench.train.loop import Trainer
    from workbench.train.model import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run_dir = Path(args.run_dir)
    trainer = Trainer(run_dir)
    device = trainer.device
    total = args.warmup + args.iters
    if args.phase in ("ours", "ours_loader"):
        trainer._setup_data()
        loader = trainer.train_loader
        trainer.sampler.set_epoch(0)
    else:
        loader = _ref_loader(run_dir, args.batch, args.workers, device)
    if args.phase.endswith("loader"):
        n = 0
        for i, (images, _) in enumerate(_repeat(loader, total)):
            if i == args.warmup:
                t0, n = time.perf_counter(), 0
            n += len(images)
        return {"images_per_s": n / (time.perf_counter() - t0), "peak_mb": _peak_mb(device)}

    if args.phase == "ours":
        trainer._setup_model()
        trainer.model.train()
        trainer.state.total_steps = total

        def step(images, targets):  # noqa: ANN001, ANN202
            trainer._set_lr()
            trainer._step(images, targets)
            trainer.state.global_step += 1
    else:
        schema_k = loader.dataset.num_keypoints
        model = build_model(args.backbone, num_classes=len(loader.dataset.cat_to_label) + 1, num_keypoints=schema_k,
                            weights="none", min_size=args.min_size, max_size=args.max_size).to(device)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.02 * args.batch / 16, momentum=0.9, weight_decay=1e-4)
        scaler = torch.amp.GradScaler("cuda") if args.amp and device.type == "cuda" else None

        def step(images, targets):  # noqa: ANN001, ANN202 - engine.py train_one_epoch
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in targets]
            with torch.autocast(device_type=device.type, enabled=scaler is not None):
                loss_dict = model(images, targets)
                losses = sum(loss for loss in loss_dict.values())
            opt.zero_grad()
            if scaler is not None:
                scaler.scale(losses).backward()
                scaler.step(opt)
                scaler.update()
            else:
                losses.backward()
                opt.step()

    n = 0
    for i, (images, targets) in enumerate(_repeat(loader, total)):
        if i == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
        step(images, targets)
        n += len(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"images_per_s": n / (time.perf_counter() - t0), "peak_mb": _peak_mb(device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--size", default="256x192", help="image size WxH of the synthetic data")
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--min-size", type=int, default=None)
    p.add_argument("--max-size", type=int, default=None)
    p.add_argument("--augmentation", default="light", help="our pipeline (the reference always flips)")
    p.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    from workbench.train.config import TrainConfig
    from workbench.train.synthetic import write_shapes_run

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            backbone=args.backbone, weights="none", batch_size=args.batch, num_workers=args.workers, device=args.device,
            amp=args.amp, augmentation=args.augmentation, min_size=args.min_size, max_size=args.max_size,
            warmup_iters=0, epochs=1000,
        )
        run_dir = write_shapes_run(Path(tmp) / "run", cfg, n_train=args.images, size_wh=(w, h))
        results = {}
        for ph in ("ref_loader", "ours_loader", "ref", "ours"):
            cmd = [sys.executable, __file__, "--phase", ph, "--run-dir", str(run_dir)] + [
                a for a in sys.argv[1:] if not a.startswith("--phase")
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if out.returncode:
                sys.exit(f"phase {ph} failed:\n{out.stderr[-3000:]}")
            results[ph] = json.loads(out.stdout.strip().splitlines()[-1])

    import torch

    dev = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    print(f"\nbackbone={args.backbone} images={w}x{h} batch={args.batch} iters={args.iters} workers={args.workers} "
          f"threads={args.threads} amp={args.amp} device={dev}")
    print(f"{'what':<28}{'ours img/s':>12}{'ref img/s':>12}{'ratio':>8}{'ours MB':>10}{'ref MB':>10}")
    for label, o, r in (("train step (loader+model)", "ours", "ref"), ("loader only", "ours_loader", "ref_loader")):
        ro, rr = results[o], results[r]
        print(f"{label:<28}{ro['images_per_s']:>12.2f}{rr['images_per_s']:>12.2f}{ro['images_per_s'] / rr['images_per_s']:>8.2f}"
              f"{ro['peak_mb']:>10.0f}{rr['peak_mb']:>10.0f}")
    fed = results["ours_loader"]["images_per_s"] / results["ours"]["images_per_s"]
    print(f"our loader delivers {fed:.1f}x what our training step consumes")


if __name__ == "__main__":
    main()
