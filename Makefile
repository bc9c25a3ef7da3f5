# p2seg_mm: `make test` installs everything into .venv and runs the tests;
# `make demo` installs everything and runs the main job on the demo data.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.p2seg_installed
REQS := requirements/build.txt requirements/torch.txt \
        requirements/mminstall.txt requirements/runtime.txt \
        requirements/tests.txt setup.py
PYTEST_ARGS ?= -q -n 2

.PHONY: install test demo demo-data bench bench-quality clean

install: $(STAMP)

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q -r requirements/build.txt -r requirements/torch.txt
	$(PIP) install -q mmengine==0.10.7 -r requirements/runtime.txt \
		-r requirements/tests.txt
	# mmcv 2.1.0 with its compiled ops, built against the torch above
	# (about 10 minutes the first time; pip caches the wheel afterwards).
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(PIP) install -q \
		--no-build-isolation mmcv==2.1.0
	$(PIP) install -q mmdet==3.3.0
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import mmcv.ops, mmdet, p2seg_mm; print('p2seg_mm ready')"
	touch $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo-data: install
	$(PY) tools/dataset_converters/prepare_demo_data.py --overlays 4

# One torch thread per process: on 2 cores the data workers take the other
# core, and two OpenMP threads competing with them were up to 15x slower.
demo: install
	OMP_NUM_THREADS=1 $(PY) tools/run_pipeline.py --demo

bench: install
	$(PY) benchmarks/bench_affinity.py

# Pseudo-mask quality ladder on the demo cells, 3 seeds (about an hour on
# 2 cores; cached under work_dirs/bench_quality, a rerun resumes).
bench-quality: install
	$(PY) benchmarks/bench_quality.py

clean:
	rm -rf $(VENV) *.egg-info
