# Copyright (c) p2seg_mm contributors. All rights reserved.
from .deeplab_decoder import P2SegDeepLabDecoder, P2SegHRNetNeck

__all__ = ['P2SegDeepLabDecoder', 'P2SegHRNetNeck']
