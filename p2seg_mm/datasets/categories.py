# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one rule that maps json categories to 0-based labels.

Label ``i`` is ``classes[i]``, matched to a json category **by name**; the
json must list those categories **in the same order** as ``classes`` (the
order mmdet's ``CocoDataset`` and ``CocoMetric`` use to map labels back to
``category_id``; pseudo-map value ``i + 1`` is class ``i`` too). Json
categories that are not classes (e.g. ``_background_``) get no label.
Category ids and names must be unique.

Every place that turns a ``category_id`` into a label or back uses
:func:`category_to_label`, so a json that would be read differently by two
of them is rejected with one message.
"""
from collections import Counter
from typing import Dict, List, Optional, Sequence


def category_to_label(categories: Sequence[dict],
                      classes: Optional[Sequence[str]],
                      source: str = '<json>') -> Dict[int, int]:
    """Map json ``category_id`` to 0-based labels in ``classes`` order.

    Args:
        categories (Sequence[dict]): The json ``categories`` (``id``,
            ``name``), in json order.
        classes (Sequence[str], optional): Class names in label order (the
            config's ``metainfo['classes']``). None takes every json
            category in json order.
        source (str): Json path, for messages. Defaults to '<json>'.

    Returns:
        dict[int, int]: ``category_id -> label`` for the classes only,
        ordered by label.

    Raises:
        ValueError: Duplicated category ids or names, a class missing from
            the json, or the classes in another order than the json's.
            The message names ``source`` and the fix.
    """
    ids = [cat.get('id') for cat in categories]
    names = [cat.get('name') for cat in categories]
    for what, values in (('ids', ids), ('names', names)):
        repeated = sorted(
            (str(v) for v, n in Counter(values).items() if n > 1))
        if repeated:
            raise ValueError(
                f'{source}: category {what} {repeated} are used more than '
                f'once in "categories". Fix: give every category a unique '
                '"id" and "name".')
    if classes is None:
        classes = names
    classes = list(classes)
    name2id = dict(zip(names, ids))
    missing = [name for name in classes if name not in name2id]
    if missing:
        raise ValueError(
            f'{source}: classes {missing} of the config are not among the '
            f'json categories {names}. Fix: set metainfo=dict(classes=...) '
            'to the json category names (or add those categories).')
    wanted = set(classes)
    json_order = [name for name in names if name in wanted]
    if json_order != classes:
        raise ValueError(
            f'{source}: the json lists the categories {json_order} but the '
            f'config classes are {classes}: labels would be assigned in '
            'another order by mmdet (CocoDataset / CocoMetric) than by the '
            'pseudo-maps and the class names. Fix: list the classes in the '
            'json category order, or reorder the json "categories" (the '
            'ids may stay).')
    return {name2id[name]: label for label, name in enumerate(classes)}


def label_to_category_id(cat2label: Dict[int, int]) -> List[int]:
    """Inverse of :func:`category_to_label`: ``category_id`` per label."""
    out = [0] * len(cat2label)
    for cat_id, label in cat2label.items():
        out[label] = cat_id
    return out
