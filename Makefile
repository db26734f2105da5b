# The two commands of the README:
#   make demo   set up (idempotent) and run the end-to-end demo
#   make test   set up (idempotent) and run the test suite
SHELL := /bin/bash
ACT := source ./activate.sh

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(ACT) && sst demo $(DEMO_ARGS)

test: setup
	$(ACT) && ruff check sst_ros test training bench launch && mypy && bash scripts/run_tests.sh $(PYTEST_ARGS)

lint: setup
	$(ACT) && ruff check sst_ros test training bench launch && mypy

clean:
	rm -rf .venv .ros_ws .ros_ws_mgonzs13 build install log .pytest_cache
