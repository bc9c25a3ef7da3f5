# Copyright (c) p2seg_mm contributors. All rights reserved.
from p2seg_mm.apis.pipeline import pick_images


def test_pick_images_covers_every_class_crowded_first():
    labels = [
        [1, 1, 1],  # 0: class 1, 3 instances
        [0] * 10,  # 1: class 0, 10
        [0] * 20 + [1],  # 2: class 0, 21
        [],  # 3: nothing to draw
        [1, 1, 0],  # 4: class 1, 3
        [1] * 5,  # 5: class 1, 5
    ]
    assert pick_images(labels, 2) == [2, 5]  # one crowded image per class
    assert pick_images(labels, 4) == [2, 5, 1, 0]
    assert pick_images(labels, 10) == [2, 5, 1, 0, 4]  # empty image never
    assert pick_images(labels, 0) == []
    assert pick_images([[], []], 3) == []
