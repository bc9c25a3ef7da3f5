# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Necks that turn backbone features into one stride-4 map (docs/method.md §2).

``P2SegDeepLabDecoder`` is the Panoptic-DeepLab semantic decoder used by the
ResNet variant (docs/method.md §2.2): ASPP on the stride-32 level, then
top-down fusion with the stride-16/8/4 levels. ``P2SegHRNetNeck`` picks HRNet's
stride-4 branch (docs/method.md §2.1: the last stage-4 module of HRNet-W48 runs
with ``multiscale_output=False`` and yields one 48-channel map).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig


class P2SegASPP(BaseModule):
    """Atrous spatial pyramid pooling (Panoptic-DeepLab flavour).

    Branches: one 1x1 conv, one dilated 3x3 conv per rate and an image
    pooling branch; their concatenation is projected by a 1x1 conv
    (+ norm + act) and dropout.

    Args:
        in_channels (int): Input channels.
        channels (int): Channels of every branch and of the output.
        dilations (Sequence[int]): Rates of the 3x3 branches.
            Defaults to (3, 6, 9).
        dropout_ratio (float): Dropout after the projection. Defaults to 0.5.
        norm_cfg (dict): Norm layer config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 dilations: Sequence[int] = (3, 6, 9),
                 dropout_ratio: float = 0.5,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        branches = [
            ConvModule(
                in_channels, channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        ]
        for rate in dilations:
            branches.append(
                ConvModule(
                    in_channels,
                    channels,
                    3,
                    padding=rate,
                    dilation=rate,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
        self.branches = nn.ModuleList(branches)
        # The pooled branch has no norm: BN on a 1x1 map fails with one
        # image per device and carries no useful statistics.
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(
                in_channels, channels, 1, norm_cfg=None, act_cfg=act_cfg))
        self.project = ConvModule(
            channels * (len(dilations) + 2),
            channels,
            1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, h, w) -> (B, channels, h, w)."""
        outs = [branch(x) for branch in self.branches]
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])
        outs.append(pooled)
        return self.dropout(self.project(torch.cat(outs, dim=1)))


@MODELS.register_module()
class P2SegDeepLabDecoder(BaseModule):
    """Panoptic-DeepLab decoder giving one stride-4 feature map.

    Implementation of the ResNet decoder of
    `P2Seg <https://arxiv.org/abs/2401.09709>`_ (docs/method.md §2.2).

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels at
            strides 4, 8, 16, 32 (any number >= 2 of levels, finest first).
        channels (int): Output (and fusion) channels. Defaults to 256.
        aspp_channels (int): ASPP channels. Defaults to 256.
        aspp_dilations (Sequence[int]): ASPP rates. Defaults to (3, 6, 9).
        proj_channels (Sequence[int]): Projection channels of the skip
            levels, coarse to fine (stride 16, 8, 4). Defaults to
            (128, 64, 32).
        dropout_ratio (float): ASPP dropout. Defaults to 0.5.
        fuse_kernel_size (int): Depthwise kernel of the fusion convs.
            Defaults to 5.
        align_corners (bool): Of the bilinear upsampling. Defaults to False.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict, optional): Defaults to conv weights N(0, 0.001^2)
            (docs/method.md §2.2).
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (256, 512, 1024, 2048),
        channels: int = 256,
        aspp_channels: int = 256,
        aspp_dilations: Sequence[int] = (3, 6, 9),
        proj_channels: Sequence[int] = (128, 64, 32),
        dropout_ratio: float = 0.5,
        fuse_kernel_size: int = 5,
        align_corners: bool = False,
        norm_cfg: ConfigType = dict(type='BN'),
        act_cfg: ConfigType = dict(type='ReLU'),
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.001, bias=0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError('P2SegDeepLabDecoder needs at least two levels, '
                             f'got in_channels={in_channels}.')
        if len(proj_channels) != len(in_channels) - 1:
            raise ValueError(
                f'proj_channels={tuple(proj_channels)} must give one value '
                f'per skip level ({len(in_channels) - 1} for '
                f'in_channels={in_channels}).')
        self.in_channels = in_channels
        self.channels = channels
        self.align_corners = align_corners
        self.aspp = P2SegASPP(in_channels[-1], aspp_channels, aspp_dilations,
                              dropout_ratio, norm_cfg, act_cfg)
        skip_channels = in_channels[-2::-1]  # stride 16, 8, 4
        self.projs = nn.ModuleList()
        self.fuses = nn.ModuleList()
        prev = aspp_channels
        for skip, proj in zip(skip_channels, proj_channels):
            self.projs.append(
                ConvModule(skip, proj, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.fuses.append(
                DepthwiseSeparableConvModule(
                    proj + prev,
                    channels,
                    fuse_kernel_size,
                    padding=fuse_kernel_size // 2,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
            prev = channels

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        """Fuse the levels top-down.

        Args:
            inputs (Sequence[Tensor]): Backbone levels, finest first, each
                (B, in_channels[i], H_i, W_i).

        Returns:
            tuple[Tensor]: One map (B, channels, H_0, W_0) at the finest
            level's resolution (stride 4).
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'P2SegDeepLabDecoder expects '
                             f'{len(self.in_channels)} levels, got '
                             f'{len(inputs)}.')
        x = self.aspp(inputs[-1])
        skips = list(inputs[-2::-1])
        for skip, proj, fuse in zip(skips, self.projs, self.fuses):
            x = F.interpolate(
                x,
                size=skip.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)
            x = fuse(torch.cat([proj(skip), x], dim=1))
        return (x, )


@MODELS.register_module()
class P2SegHRNetNeck(BaseModule):
    """Select HRNet's stride-4 output, optionally fusing all branches.

    mmdet's ``HRNet`` with ``multiscale_output=False`` returns a one-element
    list holding the stride-4 branch (48 channels for W48), already fused
    with the lower branches as in the release (docs/method.md §2.1). With
    ``concat=True`` a multi-scale output is upsampled to stride 4 and
    concatenated instead (HRNetV2 style).

    Args:
        in_channels (int | Sequence[int]): Channels of the selected level,
            or of every level when ``concat`` is True. Defaults to 48.
        out_channels (int, optional): If given, a 1x1 conv (+ norm + act)
            maps the feature to this many channels. Defaults to None.
        in_index (int): Level to select. Defaults to 0.
        concat (bool): Concatenate all levels at stride 4. Defaults to False.
        norm_cfg (dict): Norm of the optional 1x1 conv. Defaults to BN.
        act_cfg (dict): Activation of the optional conv. Defaults to ReLU.
        init_cfg (dict, optional): Defaults to conv weights N(0, 0.001^2).
    """

    def __init__(
        self,
        in_channels=48,
        out_channels: Optional[int] = None,
        in_index: int = 0,
        concat: bool = False,
        norm_cfg: ConfigType = dict(type='BN'),
        act_cfg: ConfigType = dict(type='ReLU'),
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.001, bias=0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_index = in_index
        self.concat = concat
        total = sum(in_channels) if concat else (in_channels if isinstance(
            in_channels, int) else in_channels[in_index])
        self.conv = None
        if out_channels is not None:
            self.conv = ConvModule(
                total, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, inputs: List[Tensor]) -> Tuple[Tensor]:
        """List of HRNet levels -> one-tuple (B, C, H/4, W/4)."""
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        if self.concat:
            size = inputs[0].shape[-2:]
            x = torch.cat(
                [inputs[0]] + [
                    F.interpolate(
                        level, size=size, mode='bilinear', align_corners=False)
                    for level in inputs[1:]
                ],
                dim=1)
        else:
            x = inputs[self.in_index]
        if self.conv is not None:
            x = self.conv(x)
        return (x, )
