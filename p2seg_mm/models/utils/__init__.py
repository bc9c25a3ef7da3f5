# Copyright (c) p2seg_mm contributors. All rights reserved.
