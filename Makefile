GO ?= go

.PHONY: build test soak deps lint bench bench-replica bench-micro bench-decode bench-nats bench-snapshot fuzz demo

build:
	$(GO) build -o bin/sluice ./cmd/sluice

# The tests start throwaway mariadbd and NATS servers of their own; deps only
# installs the packages when they are missing. Every package runs under the
# race detector: the tests mostly wait on those servers, so -race costs
# little time next to them (the first run also builds nats-server with
# -race, once). RACE= (empty) runs without it. internal/difftest's random
# differential test runs for DIFFTEST_SECONDS (60 by default) within it.
RACE ?= -race
test: deps
	DIFFTEST_SECONDS=$${DIFFTEST_SECONDS:-60} $(GO) test $(RACE) -timeout 30m ./...

# The random differential test alone, for DIFFTEST_SECONDS (default 1800).
# DIFFTEST_SEED=N replays from a seed, DIFFTEST_FEATURES=a,b or -a picks
# the generator's features (internal/difftest/feature.go).
soak: deps
	DIFFTEST_SECONDS=$${DIFFTEST_SECONDS:-1800} $(GO) test ./internal/difftest -run 'TestDiff$$' -count=1 -v \
		-timeout $$(( $${DIFFTEST_SECONDS:-1800} + 900 ))s

deps:
	@./scripts/deps.sh

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

# sluice against MariaDB's own parallel replica, measured in one run on
# this machine (internal/bench): sysbench catch-up, a large UPDATE, peak
# RSS on a 1M-row transaction, lag at a steady rate. Each prints its
# figures and the ratio sluice/native. Sizes from BENCH_TXNS, BENCH_RUNS,
# ... (see internal/bench/bench_test.go); the defaults are issue 11's.
# make bench runs it and every other ratio benchmark below.
bench: bench-replica bench-decode bench-nats bench-snapshot

bench-replica: deps
	$(GO) test ./internal/bench -run '^$$' -bench . -benchtime 1x -timeout 120m

# Micro-benchmarks of the hot paths.
bench-micro: deps
	$(GO) test $$($(GO) list ./... | grep -v /internal/bench) -run '^$$' -bench . -benchmem

# sluice dump against mariadb-binlog -v on the same 200+ MB binlog.
bench-decode: deps
	$(GO) test ./cmd/sluice -run '^$$' -bench DumpVsMariadbBinlog -benchtime 1x

# The NATS sink's transaction mode against a plain async JetStream publish
# loop of the same messages, in the same run: medians of 9 rounds
# (BENCH_NATS_ROUNDS), the ratio and the CPU ratio; runs of 512 transactions
# (BENCH_NATS_RUN), slices of 1,024 (BENCH_NATS_SLICE). BENCH_NATS_CPUPROFILE=FILE
# profiles the sink's slices in every round.
bench-nats:
	$(GO) test ./sinks/nats -run '^$$' -bench 'PublishVsPlain/transaction' -benchtime 1x -count 1 -timeout 20m

# sluice's snapshot against mariadb-dump | mariadb and mydumper + myloader
# (4 threads), same tables, same servers, rounds alternating; prints the
# medians and ratios. SNAPSHOT_BENCH_ROWS (default 1000000) and
# SNAPSHOT_BENCH_ROUNDS (default 3).
bench-snapshot: deps
	$(GO) test ./snapshot -run '^$$' -bench SnapshotVsDump -benchtime 1x -timeout 60m -v

# A source and a target MariaDB on throwaway ports, a pipeline, a write
# load, a kill -9 of sluice, and sluice verify. DEMO_SECONDS=N sets the load's
# length (default 30), DEMO_KEEP=1 keeps everything running until Ctrl-C.
# It is a test (so that make test keeps it true) run as a program: only its
# narration is printed, not go test's.
demo: deps
	$(GO) test -c -o bin/demo.test ./internal/demo
	cd internal/demo && DEMO_SECONDS=$${DEMO_SECONDS:-30} ../../bin/demo.test -test.run '^TestDemo$$' -test.count=1 -test.timeout 30m

# Each fuzz target for a number of executions, not a duration: Go 1.26's
# coordinator can fail a duration-bounded run at its deadline with no
# finding on a loaded machine (go.dev/issue/75804, fixed in Go 1.27).
FUZZ_EXECS ?= 100000x
fuzz:
	for f in FuzzDecodeFile FuzzRowDecoder FuzzTableMap FuzzGTIDEvent; do \
		$(GO) test ./binlog -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_EXECS) -parallel 1 || exit 1; \
	done
