.PHONY: test demo build release man bench soak plants emulator-start emulator-stop clean

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

## The man page and shell completions, generated from the command line's definition
## (NO_BUILD=1: from the binary already built, as make test does).
man:
	[ -n "$(NO_BUILD)" ] || cargo build --quiet
	mkdir -p target/man target/completions
	target/debug/s3-reconciler man --dir target/man
	for shell in bash zsh fish; do \
		target/debug/s3-reconciler completions $$shell > target/completions/s3-reconciler.$$shell; \
	done

## Benchmarks against the emulator (docs/performance.md).
bench:
	scripts/bench.sh

## The safety simulation over many seeds (SEEDS, default 2000; FROM, default 1), then the
## sync simulation (SYNC_SEEDS, default 200; SYNC_FROM, default 1).
soak:
	scripts/lab.sh build
	S3R_SIM_SEEDS=$${SEEDS:-2000} S3R_SIM_FROM=$${FROM:-1} S3R_SIM_PARALLEL=$${PARALLEL:-8} \
		cargo test --release --test simulation -- --nocapture
	S3R_SYNC_SIM_SEEDS=$${SYNC_SEEDS:-200} S3R_SYNC_SIM_FROM=$${SYNC_FROM:-1} \
		S3R_SYNC_SIM_PARALLEL=$${PARALLEL:-4} \
		cargo test --release --test sync_simulation -- --nocapture

## Plants each known safety defect back (tests/plants/) and shows the seeds that catch it.
plants:
	scripts/plants.sh

emulator-start:
	scripts/emulator.sh start

emulator-stop:
	scripts/emulator.sh stop

clean:
	scripts/emulator.sh stop
	cargo clean
