"""Retrain the joint [a; u] Darcy score models shipped as ``models/darcy_score_*.pt``.

Generates ``--samples`` Darcy pairs with ``neuralsde.pde`` (thresholded GRF coefficient in
{3, 12}, finite-difference solution), normalises ``a -> (a - 7.5) / 4.5`` and
``u -> (u - mean) / std``, and trains a small U-Net with ``neuralsde.diffusion.train_score``
(EMA 0.999) for a wall-clock budget: a noise predictor on the VP SDE (``--precond noise``) or
EDM's preconditioned denoiser on the VE SDE with sigma in [0.002, 80] (``--precond edm``, as
DiffusionPDE trains). Writes the checkpoint (float16 weights) and a JSON training record.

    python models/train_darcy_score.py --n 64 --samples 20000 --minutes 7 --device cuda
    python models/train_darcy_score.py --n 32 --samples 50000 --minutes 45 --precond edm \
        --base 16 --mults 1 2 2 2 --blocks 1 --batch 64 --lr 1e-3 --out models/darcy_score_32.pt
    python models/train_darcy_score.py --n 32 --samples 2000 --minutes 2   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from neuralsde.diffusion import (
    VESDE,
    VPSDE,
    ScoreModel,
    UNet,
    dsm_loss,
    edm_loss,
    save_checkpoint,
    train_score,
)
from neuralsde.pde import darcy_dataset


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--val", type=int, default=500)
    p.add_argument("--minutes", type=float, default=7.0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 2, 2])
    p.add_argument("--precond", choices=["noise", "edm"], default="noise")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="models/darcy_score_64.pt")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    t0 = time.time()
    a, u = darcy_dataset(args.samples + args.val, n=args.n, seed=args.seed, workers=args.workers)
    gen_s = time.time() - t0
    u_mean, u_std = float(u[: args.samples].mean()), float(u[: args.samples].std())
    meta = {
        "problem": "darcy",
        "resolution": args.n,
        "channels": ["a", "u"],
        "a_center": 7.5,
        "a_scale": 4.5,
        "u_mean": u_mean,
        "u_std": u_std,
        "grf": {"alpha": 2.0, "tau": 3.0, "threshold": 0.0, "values": [3.0, 12.0]},
        "samples": args.samples,
        "data_seed": args.seed,
    }
    x = np.stack([(a - 7.5) / 4.5, (u - u_mean) / u_std], 1).astype(np.float32)
    data = torch.from_numpy(x[: args.samples]).to(args.device)
    val = torch.from_numpy(x[args.samples :]).to(args.device)

    edm = args.precond == "edm"
    # EDM's noise levels: sigma from 0.002 (at eps, where sqrt(sigma_ve^2 - sigma_min^2) = 0.002)
    # to 80; the normalised fields have unit scale, so sigma_data = 1
    sde = VESDE(0.002, 80.0, eps=math.log(2) / (2 * math.log(40000))) if edm else VPSDE()
    sigma_data = 1.0
    meta["sigma_data"] = sigma_data
    mults = tuple(args.mults)
    net = UNet(2, base=args.base, mults=mults, blocks=args.blocks).to(args.device)
    n_params = sum(q.numel() for q in net.parameters())

    # time a few steps to turn the wall-clock budget into a number of epochs
    probe = UNet(2, base=args.base, mults=mults, blocks=args.blocks).to(args.device)
    opt = torch.optim.AdamW(probe.parameters(), lr=args.lr)
    pm = ScoreModel(probe, sde, args.precond, sigma_data)
    loss = edm_loss if edm else dsm_loss
    probes = 25 if args.device != "cpu" else 6
    for i in range(probes):
        if i == probes // 5:
            if args.device != "cpu":
                torch.cuda.synchronize()
            ts = time.time()
        opt.zero_grad()
        loss(pm, sde, data[: args.batch]).backward()
        opt.step()
    if args.device != "cpu":
        torch.cuda.synchronize()
    step_s = (time.time() - ts) / (probes - probes // 5) * 1.1
    steps_per_epoch = math.ceil(args.samples / args.batch)
    budget = args.minutes * 60 - (time.time() - t0)
    epochs = max(1, int(budget / (step_s * steps_per_epoch)))
    print(f"data {gen_s:.1f}s, {n_params} params, {step_s * 1e3:.1f} ms/step -> {epochs} epochs")

    t1 = time.time()

    def stop_late(epoch, model, history):  # a hard wall-clock stop if the estimate was off
        return time.time() - t0 > 1.15 * args.minutes * 60

    model, hist = train_score(
        data,
        sde,
        net,
        epochs=epochs,
        batch_size=args.batch,
        lr=args.lr,
        ema_decay=0.999,
        generator=torch.Generator().manual_seed(args.seed),
        verbose=True,
        callback=stop_late,
        preconditioning=args.precond,
        sigma_data=sigma_data,
    )
    train_s = time.time() - t1
    with torch.no_grad():
        vals = [float(loss(model, sde, val)) for _ in range(20)]
    record = {
        **meta,
        "params": n_params,
        "epochs": len(hist.train_loss),
        "batch": args.batch,
        "lr": args.lr,
        "optimizer_steps": len(hist.train_loss) * steps_per_epoch,
        "train_seconds": train_s,
        "data_seconds": gen_s,
        "device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu",
        "train_loss_first": hist.train_loss[0],
        "train_loss_last": hist.train_loss[-1],
        "train_loss": hist.train_loss,
        "val_loss_ema": float(np.mean(vals)),
        "loss": "edm" if edm else "dsm",
    }
    model = model.cpu()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        out,
        model,
        meta={
            **meta,
            "training": {k: v for k, v in record.items() if k not in meta and k != "train_loss"},
        },
        half=True,
    )
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "train_loss"}, indent=1))


if __name__ == "__main__":
    main()
