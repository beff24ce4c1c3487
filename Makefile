# The README's two commands: `make demo` (set up + a real sweep) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; on a GPU machine install your own torch build into .venv first.
TORCH_SPEC ?= torch==2.13.0
DEMO_TRIALS ?= 30

.PHONY: demo test bench lint clean-records

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/tuner search --task forecasting --trials $(DEMO_TRIALS)

test: $(VENV)/.installed
	$(PY) -m pytest

# NeuralForecast (the AutoLSTM comparison) lives in its own venv: it pulls ray and pins
# its own versions. Without it the comparison row is left out and RESULTS.md says so.
# AUTOLSTM=no leaves it out on purpose: its seeds can take 25 minutes each (benchmarks/JOURNAL.md), and
# lstm-tuner then runs 6 more sweeps at AutoLSTM's walls: hours on 2 cores.
# Ray Tune (the ASHA comparison) gets its own venv too: ray pins its own versions; it
# runs lstm-tuner's model, so it holds this package as well. RAYTUNE=no leaves it out.
NF_VENV ?= .venv-bench
RAY_VENV ?= .venv-ray
AUTOLSTM ?= yes
RAYTUNE ?= yes
bench: $(VENV)/.installed
	test "$(AUTOLSTM)" != yes || test -x $(NF_VENV)/bin/python || ($(PYTHON) -m venv $(NF_VENV) && \
	  $(NF_VENV)/bin/pip install -q "$(TORCH_SPEC)" && $(NF_VENV)/bin/pip install -q neuralforecast) \
	  || echo "no NeuralForecast venv: the AutoLSTM row is skipped"
	test "$(RAYTUNE)" != yes || test -x $(RAY_VENV)/bin/python || ($(PYTHON) -m venv $(RAY_VENV) && \
	  $(RAY_VENV)/bin/pip install -q "$(TORCH_SPEC)" && $(RAY_VENV)/bin/pip install -q -e . "ray[tune]") \
	  || echo "no Ray Tune venv: the Ray Tune row is skipped"
	NF_PYTHON=$$(test "$(AUTOLSTM)" = yes && test -x $(NF_VENV)/bin/python && \
	  echo $(abspath $(NF_VENV))/bin/python) \
	RAY_PYTHON=$$(test "$(RAYTUNE)" = yes && test -x $(RAY_VENV)/bin/python && \
	  echo $(abspath $(RAY_VENV))/bin/python) $(PY) -m benchmarks.run_all

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tuner tasks tests benchmarks

clean-records:
	find mlruns -mindepth 1 ! -name README.md -exec rm -rf {} +
