# The README's two commands: `make run` (set up + main job) and `make test` (set up + tests).
# Each creates .venv/ inside the repo when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Main job arguments (override: make run RUN_ARGS="regime=biased_crowd").
RUN_ARGS ?=

.PHONY: run calibrate test lint format typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $(STAMP)

# Train the JAX PPO (5 min), evaluate it against every baseline, report, W&B offline.
run: $(STAMP)
	$(BIN)/python -m experiments.evaluate experiment=default $(RUN_ARGS)

# Calibrate the match engine and the market to a league (E0 report, ~6 min).
calibrate: $(STAMP)
	$(BIN)/python -m experiments.calibrate $(CALIBRATE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/sim_throughput.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .mypy_cache .ruff_cache
