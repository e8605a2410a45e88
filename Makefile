# Ember has exactly two set-up commands: `make run` and `make test`. Both install what is missing.
.PHONY: run test setup build

CARGO ?= cargo
PORT ?= 6379

setup:
	bash ci/setup.sh

build: setup
	$(CARGO) build --release --bin ember --bin ember-bench

run: build
	bash ci/run.sh --port $(PORT)

test: setup
	bash ci/test.sh
