"""A small plain-torch U-Net for 2-D fields ``(batch, channels, H, W)``, time-conditioned.

Residual blocks with GroupNorm and SiLU, the time embedding added after the first
convolution, strided-convolution downsampling and nearest-neighbour upsampling. It is
deliberately small (about 1-2 M parameters) so that a checkpoint is a few MB and sampling
runs on a CPU; packages like ``diffusers`` offer larger U-Nets, but they are heavy
dependencies for this size.
"""

from __future__ import annotations

import torch
from torch import nn

from neuralsde.diffusion.nets import TimeEmbedding


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.c1(nn.functional.silu(self.n1(x)))
        h = h + self.t(emb)[:, :, None, None]
        h = self.c2(nn.functional.silu(self.n2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """U-Net ``(x, t) -> (batch, channels, H, W)``; H and W divisible by ``2^(len(mults)-1)``.

    Example:
        >>> import torch
        >>> net = UNet(2, base=8, mults=(1, 2))
        >>> net(torch.zeros(3, 2, 8, 8), torch.rand(3)).shape
        torch.Size([3, 2, 8, 8])
    """

    def __init__(
        self,
        channels: int = 2,
        base: int = 32,
        mults=(1, 2, 2, 2),
        blocks: int = 1,
        embed_dim: int = 128,
    ):
        super().__init__()
        self.config = {
            "kind": "unet",
            "channels": channels,
            "base": base,
            "mults": list(mults),
            "blocks": blocks,
            "embed_dim": embed_dim,
        }
        self.embed = nn.Sequential(
            TimeEmbedding(embed_dim),
            nn.Linear(embed_dim, embed_dim),
            nn.SiLU(),
            nn.Linear(embed_dim, embed_dim),
        )
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        chans = [base * m for m in mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, c = [], base
        for i, ch in enumerate(chans):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c, ch, embed_dim))
                c = ch
                skips.append(c)
            self.down.append(level)
            last = i == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, 2, 1))
        self.mid = nn.ModuleList([ResBlock(c, c, embed_dim), ResBlock(c, c, embed_dim)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c + skips.pop(), ch, embed_dim))
                c = ch
            self.up.append(level)
            self.upsample.append(
                nn.Identity()
                if i == 0
                else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)
                )
            )
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))
        self.levels = len(chans)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        f = 2 ** (self.levels - 1)
        if x.dim() != 4 or x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(
                f"x must be (batch, channels, H, W) with H, W divisible by {f}; got "
                f"{tuple(x.shape)}"
            )
        emb = self.embed(t)
        h = self.inp(x)
        hs = []
        for level, down in zip(self.down, self.downsample, strict=True):
            for block in level:
                h = block(h, emb)
                hs.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, emb)
        for level, up in zip(self.up, self.upsample, strict=True):
            for block in level:
                h = block(torch.cat([h, hs.pop()], 1), emb)
            h = up(h)
        return self.out(h)
