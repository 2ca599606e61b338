"""The normalisation-free architectures as timm defines them (``timm/models/nfnet.py``,
``model_cfgs``): one :class:`NFSpec` per name, the fields of timm's ``NfCfg`` that these
architectures use. Keras-free, so configs and the converter's key mapping can read them.
"""

from __future__ import annotations

from dataclasses import dataclass


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """timm's ``make_divisible``: round to the nearest multiple of ``divisor`` (at least
    ``divisor``), never more than ``1 - round_limit`` below ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < round_limit * value else new


@dataclass(frozen=True)
class NFSpec:
    depths: tuple[int, int, int, int]
    channels: tuple[int, int, int, int]
    stem_type: str                 # "deep_quad" (NFNet), "3x3" (RegNet), "7x7_pool" (ResNet)
    act: str                       # relu | silu | gelu (its gamma goes into the next conv)
    stem_chs: int | None = None    # None: channels[0] x width_factor
    group_size: int | None = None  # channels per group of the 3x3 convs; None: no groups
    attn: str | None = None        # "se" | "eca" | None
    attn_rd_ratio: float = 1 / 16  # SE bottleneck width / channels
    attn_rd_divisor: int = 8
    attn_gain: float = 2.0         # the attention output is doubled (NF variance correction)
    alpha: float = 0.2             # residual branch scale
    width_factor: float = 1.0
    bottle_ratio: float = 0.5
    num_features: int = 0          # channels of the final 1x1 conv; 0: none
    ch_div: int = 8
    reg: bool = False              # RegNet block: width from the input, attention mid-block
    extra_conv: bool = False       # NFNet block: a second 3x3 conv
    std_conv_eps: float = 1e-5
    timm_name: str = ""

    @property
    def stem_channels(self) -> int:
        return make_divisible((self.stem_chs or self.channels[0]) * self.width_factor,
                              self.ch_div)

    @property
    def stem_stride(self) -> int:
        return 2 if self.stem_type == "3x3" else 4

    @property
    def stem_conv(self) -> str:
        """Name of the first convolution (the one the stem strides and channel count change)."""
        return "stem_conv1" if self.stem_type.startswith("deep") else "stem_conv"


def _nf_resnet(name: str, depths) -> NFSpec:
    # timm _nfres_cfg: pre-activation ResNet, 7x7 stem + max pool, bottleneck 1/4, ReLU.
    return NFSpec(depths=depths, channels=(256, 512, 1024, 2048), stem_type="7x7_pool",
                  stem_chs=64, bottle_ratio=0.25, act="relu", timm_name=name)


def _nf_regnet(name: str, depths, channels=(48, 104, 208, 440)) -> NFSpec:
    # timm _nfreg_cfg: EfficientNet-like RegNet, group width 8, SE (1/2) mid-block, 1280-wide
    # (scaled) final conv, SiLU. timm rounds channels to multiples of 8 (ch_div), as here.
    return NFSpec(depths=depths, channels=channels, stem_type="3x3", group_size=8,
                  width_factor=0.75, bottle_ratio=2.25, num_features=1280 * channels[-1] // 440,
                  reg=True, attn="se", attn_rd_ratio=0.5, act="silu", timm_name=name)


def _eca_nfnet(name: str, depths, feat_mult: float) -> NFSpec:
    # timm _nfnet_cfg with the "light" settings: deep 4-conv stem, group width 64, bottleneck
    # 1/4, an extra 3x3 conv per block, ECA attention after the block, SiLU.
    channels = (256, 512, 1536, 1536)
    return NFSpec(depths=depths, channels=channels, stem_type="deep_quad", stem_chs=128,
                  group_size=64, bottle_ratio=0.25, extra_conv=True,
                  num_features=int(channels[-1] * feat_mult), attn="eca", act="silu",
                  timm_name=name)


NF_SPECS: dict[str, NFSpec] = {
    "nf_resnet26": _nf_resnet("nf_resnet26", (2, 2, 2, 2)),
    "nf_resnet50": _nf_resnet("nf_resnet50", (3, 4, 6, 3)),
    "nf_regnet_b0": _nf_regnet("nf_regnet_b0", (1, 3, 6, 6)),
    "nf_regnet_b1": _nf_regnet("nf_regnet_b1", (2, 4, 7, 7)),
    "nf_regnet_b2": _nf_regnet("nf_regnet_b2", (2, 4, 8, 8), (56, 112, 232, 488)),
    "nf_regnet_b3": _nf_regnet("nf_regnet_b3", (2, 5, 9, 9), (56, 128, 248, 528)),
    "eca_nfnet_l0": _eca_nfnet("eca_nfnet_l0", (1, 2, 6, 3), feat_mult=1.5),
    "eca_nfnet_l1": _eca_nfnet("eca_nfnet_l1", (2, 4, 12, 6), feat_mult=2.0),
    "eca_nfnet_l2": _eca_nfnet("eca_nfnet_l2", (3, 6, 18, 9), feat_mult=2.0),
}
