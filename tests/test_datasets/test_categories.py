# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one category <-> label rule (issue #10, faults 1 and 5)."""
import pytest

from p2seg_mm.datasets.categories import (category_to_label,
                                          label_to_category_id)


def test_by_name_in_class_order_extra_categories_unlabelled():
    cats = [dict(id=0, name='_background_'), dict(id=5, name='ecoli'),
            dict(id=2, name='hela')]
    assert category_to_label(cats, ['ecoli', 'hela']) == {5: 0, 2: 1}
    assert category_to_label(cats, ['hela']) == {2: 0}
    assert label_to_category_id({5: 0, 2: 1}) == [5, 2]
    # None: every json category in json order
    assert category_to_label(cats, None) == {0: 0, 5: 1, 2: 2}


def test_other_order_missing_and_duplicates_are_errors():
    cats = [dict(id=1, name='dog'), dict(id=2, name='cat')]
    with pytest.raises(ValueError, match='order') as err:
        category_to_label(cats, ['cat', 'dog'], 'val.json')
    assert 'val.json' in str(err.value) and 'Fix' in str(err.value)
    with pytest.raises(ValueError, match=r"\['bird'\]"):
        category_to_label(cats, ['dog', 'bird'], 'val.json')
    with pytest.raises(ValueError, match='ids'):
        category_to_label(cats + [dict(id=1, name='cow')], None)
    with pytest.raises(ValueError, match='names'):
        category_to_label(cats + [dict(id=3, name='cat')], None)
