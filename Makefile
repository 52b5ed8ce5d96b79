# The two quick-start commands: `make demo` and `make test`. Both set everything up first.
.PHONY: setup build demo test bench

setup:
	bash scripts/setup.sh

build:
	npx tsc -p tsconfig.build.json

demo: setup
	bin/sandtrace analyze examples/dropper.sh --out analysis --force

test: setup
	npx tsc -p tsconfig.json --noEmit
	node scripts/run-tests.mjs

bench: setup
	bin/sandtrace bench capture
