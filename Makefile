.PHONY: test demo build release bench emulator-start emulator-stop clean

## The whole test suite (lint, unit, integration against the local emulator).
test:
	scripts/test.sh

## Runs the daemon locally against the emulator and shows a sync and a purge.
demo:
	scripts/demo.sh

build:
	cargo build

release:
	cargo build --release

## Benchmarks against the emulator (see README, "Performance").
bench:
	scripts/bench.sh

emulator-start:
	scripts/emulator.sh start

emulator-stop:
	scripts/emulator.sh stop

clean:
	scripts/emulator.sh stop
	cargo clean
