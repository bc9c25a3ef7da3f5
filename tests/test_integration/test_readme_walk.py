# Copyright (c) p2seg_mm contributors. All rights reserved.
"""README "Your own data", run as written: labelme folder -> import_points
-> make_pseudo_maps -> train -> infer.

The commands and the config are read from that README section (its first
``bash`` and ``python`` blocks) and run in-process (each tool's
``main(argv)``) in a scratch folder holding the fabricated ``my_cells/``
labelme folder and a link to the repository's ``configs/``, so that the
README's relative paths hold. What the test changes, as the README says:
the training command gets :data:`SHORT` appended (3 iterations of 2
crops, no dataloader workers) and infer then reads the checkpoint of the
last iteration (``iter_3.pth`` instead of ``iter_1000.pth``). The
checkpoint is the one ``tools/train.py`` wrote.

About 10 s on one core (the demo's ResNet-18 at 16 channels).
"""
import json
import os
import os.path as osp
import re
import shlex

import numpy as np

from tests.tool_loader import REPO, load_tool

README = osp.join(REPO, 'README.md')
# The README's training runs 1000 iterations of 4 crops; the test 3 of 2.
ITERS, README_ITERS = 3, 1000
SHORT = [
    '--cfg-options', f'train_cfg.max_iters={ITERS}',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False'
]
TOOLS = ('tools/dataset_converters/import_points.py',
         'tools/dataset_converters/make_pseudo_maps.py', 'tools/train.py',
         'tools/infer.py')
# The fabricated folder: 40 x 48 images, a bright disc (radius 5) on a dark
# background at each labelme point, three classes.
CLASSES = ('cell', 'nucleus', 'bead')
CLICKS = {
    'f1.png': [('cell', [10.0, 12.0]), ('nucleus', [30.5, 20.5])],
    'f2.png': [('bead', [8.25, 8.75]), ('cell', [36.5, 28.5])],
}


def readme_section(title='## Your own data'):
    """The text of one README section (up to the next ``## `` heading)."""
    with open(README, encoding='utf-8') as f:
        text = f.read()
    start = text.index(title + '\n')
    end = text.find('\n## ', start + len(title))
    return text[start:end if end >= 0 else len(text)]


def code_block(section, language):
    """The first fenced block of ``language`` in ``section``."""
    match = re.search(rf'```{language}\n(.*?)```', section, re.S)
    assert match, f'no ```{language} block in README "Your own data"'
    return match.group(1)


def readme_commands(section):
    """``[(tool path, argv), ...]`` of the section's bash block."""
    script = code_block(section, 'bash').replace('\\\n', ' ')
    commands = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == 'python', line
            commands.append((words[1], words[2:]))
    return commands


def fabricate_labelme_folder(folder):
    """Images and labelme 5.x files (point shapes, ``imageData`` null)."""
    import cv2
    folder.mkdir()
    for name, clicks in CLICKS.items():
        image = np.full((40, 48, 3), 30, np.uint8)
        for _, (x, y) in clicks:
            cv2.circle(image, (int(x), int(y)), 5, (220, 220, 220), -1)
        cv2.imwrite(str(folder / name), image)
        (folder / name.replace('.png', '.json')).write_text(
            json.dumps(
                dict(version='5.4.1', flags={}, imagePath=name,
                     imageData=None, imageHeight=40, imageWidth=48,
                     shapes=[
                         dict(label=label, points=[xy], group_id=None,
                              description='', shape_type='point', flags={},
                              mask=None) for label, xy in clicks
                     ])))


def test_readme_commands_are_the_walk():
    """The section's commands are the four tools, the config its block."""
    section = readme_section()
    commands = readme_commands(section)
    assert [tool for tool, _ in commands] == list(TOOLS)
    train_argv, infer_argv = commands[2][1], commands[3][1]
    assert infer_argv[0] == train_argv[0]  # infer with the trained config
    assert f'iter_{README_ITERS}.pth' in infer_argv[1]
    from mmengine.config import Config
    demo = Config.fromfile(
        osp.join(REPO, 'configs', 'p2seg', 'p2seg_r18_demo-cells.py'))
    assert demo.train_cfg.max_iters == README_ITERS
    assert demo.default_hooks.checkpoint.interval == README_ITERS
    assert '_base_' in code_block(section, 'python')


def test_readme_walk_labelme_to_trained_masks(tmp_path, monkeypatch):
    """Every command of README "Your own data" on a fabricated folder."""
    import cv2
    import torch
    from pycocotools.coco import COCO

    section = readme_section()
    commands = readme_commands(section)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')  # restored after the test
    os.symlink(osp.join(REPO, 'configs'), tmp_path / 'configs')
    fabricate_labelme_folder(tmp_path / 'my_cells')

    (_, import_argv), (_, maps_argv), (_, train_argv), (_, infer_argv) = \
        commands
    load_tool(TOOLS[0]).main(import_argv)
    points = json.loads((tmp_path / 'my_cells' / 'points.json').read_text())
    assert [c['name'] for c in points['categories']] == list(CLASSES)
    load_tool(TOOLS[1]).main(maps_argv)
    seg = cv2.imread('my_cells/pseudo_maps/f2.png', cv2.IMREAD_UNCHANGED)
    assert seg.shape == (40, 48)
    assert seg[8, 8] == 3 and seg[28, 36] == 1  # bead, cell (+ 1)

    # the config of the README, saved where the training command reads it
    with open(train_argv[0], 'w', encoding='utf-8') as f:
        f.write(code_block(section, 'python'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_tool(TOOLS[2]).main(train_argv + SHORT)
    finally:
        torch.set_num_threads(threads)
    ckpt_path = infer_argv[1].replace(f'iter_{README_ITERS}.pth',
                                      f'iter_{ITERS}.pth')
    assert osp.isfile(ckpt_path), os.listdir(osp.dirname(ckpt_path))
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == ITERS
    assert tuple(ckpt['meta']['dataset_meta']['classes']) == CLASSES
    # C + 1 semantic logits for the three classes (the demo has 2)
    weights = [v for k, v in ckpt['state_dict'].items()
               if k.startswith('semantic_head.') and v.dim() == 4]
    assert weights[-1].shape[0] == len(CLASSES) + 1

    coco = load_tool(TOOLS[3]).main([infer_argv[0], ckpt_path] +
                                    infer_argv[2:])
    got = {(im['file_name'], tuple(a['point']), a['category_id'])
           for im in coco['images'] for a in coco['annotations']
           if a['image_id'] == im['id']}
    assert got == {(name, tuple(xy), CLASSES.index(label) + 1)
                   for name, clicks in CLICKS.items()
                   for label, xy in clicks}
    out = tmp_path / 'my_cells' / 'masks'
    api = COCO(str(out / 'p2seg_predictions.json'))
    for ann in api.loadAnns(api.getAnnIds()):
        assert api.annToMask(ann).shape == (40, 48)
    assert (out / 'f1_overlay.png').is_file()


def test_readme_config_takes_num_classes_from_classes(tmp_path):
    """The README config sets the class count from ``classes`` in every
    place the demo config hard-codes 2."""
    from mmengine.config import Config
    os.symlink(osp.join(REPO, 'configs'), tmp_path / 'configs')
    (tmp_path / 'my_cells').mkdir()
    path = tmp_path / 'my_cells' / 'c.py'
    path.write_text(code_block(readme_section(), 'python'))
    cfg = Config.fromfile(str(path))
    num = len(cfg.classes)
    assert num != 2  # differs from the demo's, so every place is checked
    assert cfg.model.semantic_head.num_classes == num
    assert cfg.model.center_offset_head.num_classes == num
    assert cfg.model.semantic_head.class_weight is None
    # the pipeline's class counts follow the dataset's classes
    from p2seg_mm.datasets.coco_point import _with_num_classes
    steps, _ = _with_num_classes(list(cfg.train_dataloader.dataset.pipeline),
                                 num)
    with_num = [s['type'] for s in steps if 'num_classes' in s]
    assert with_num == ['LoadP2SegAnnotations', 'GenerateS2ITargets']
    assert all(s['num_classes'] == num for s in steps if 'num_classes' in s)
    from p2seg_mm.datasets.config_checks import check_model_classes
    assert not check_model_classes(cfg)
    cfg.model.semantic_head.class_weight = [1.0, 5.0, 1.0]  # the demo's
    assert 'class_weight has 3 values' in str(check_model_classes(cfg)[0])
    cfg.model.semantic_head.class_weight = None
    cfg.model.semantic_head.num_classes = 2  # the demo's count
    assert 'semantic_head.num_classes=2' in str(check_model_classes(cfg)[0])
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == \
        tuple(cfg.classes)
    assert cfg.val_dataloader is None and cfg.val_cfg is None


def code_blocks(section, language):
    """Every fenced block of ``language`` in ``section``, in order."""
    return re.findall(rf'```{language}\n(.*?)```', section, re.S)


def test_readme_val_dataloader_for_own_data(tmp_path, monkeypatch):
    """The section's second ``python`` block replaces the config's
    ``val_* = None`` line: a validation on held-out images of one's own,
    whose dataset dict is new (``_delete_=True``: none of the demo's keys
    merged in), checked and built as training would."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from PIL import Image

    from mmdet.registry import DATASETS
    from p2seg_mm.datasets.config_checks import check_config_data
    section = readme_section()
    blocks = code_blocks(section, 'python')
    assert len(blocks) >= 2, 'no val_dataloader snippet in "Your own data"'
    config, snippet = blocks[0], blocks[1]
    none_line = 'val_cfg = val_dataloader = val_evaluator = None\n'
    assert none_line in config and '_delete_=True' in snippet
    os.symlink(osp.join(REPO, 'configs'), tmp_path / 'configs')
    (tmp_path / 'my_cells').mkdir()
    path = tmp_path / 'my_cells' / 'p2seg_my_cells.py'
    path.write_text(config.replace(none_line, snippet))
    # the held-out folder the snippet names, as import_points --keep-masks
    # writes it: a point and a polygon per object
    val = tmp_path / 'my_cells_val'
    val.mkdir()
    Image.fromarray(np.full((40, 48, 3), 30, np.uint8)).save(val / 'v1.png')
    categories = [dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]
    (val / 'val.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='v1.png', height=40, width=48)],
        categories=categories,
        annotations=[dict(id=1, image_id=1, category_id=2,
                          point=[10.5, 12.5], iscrowd=0, area=36.0,
                          bbox=[7.0, 9.0, 6.0, 6.0],
                          segmentation=[[7, 9, 13, 9, 13, 15, 7, 15]])])))
    monkeypatch.chdir(tmp_path)  # the README's paths: from the root
    cfg = Config.fromfile(str(path))
    dataset = cfg.val_dataloader.dataset
    # a new dict: nothing of the demo's dataset (its backend_args ...)
    assert sorted(dataset) == sorted([
        'type', 'data_root', 'metainfo', 'ann_file', 'data_prefix',
        'test_mode', 'pipeline'])
    assert dataset.data_prefix == dict(img='')
    assert tuple(dataset.metainfo.classes) == CLASSES
    assert cfg.val_dataloader.batch_size == 1  # the demo's, merged
    assert [m.ann_file for m in cfg.val_evaluator] == [
        'my_cells_val/val.json'] * 2
    assert cfg.val_cfg.type == 'ValLoop' and cfg.test_dataloader is None
    problems = check_config_data(cfg, ['val'])
    assert not [p for p in problems if p.level == 'error'], problems
    with DefaultScope.overwrite_default_scope('mmdet'):
        sample = DATASETS.build(dataset)[0]
    assert tuple(sample['inputs'].shape[-2:]) == (40, 48)
    assert sample['data_samples'].gt_instances.labels.tolist() == [1]
