# dbmanager: make run (quickstart on embedded SQLite), make test (all tests),
# make stress (the reliability and pool tests again and again, one core busy).
GO       ?= go
BENCH    ?= .
PKGS     ?= ./...
BENCHTIME ?= 1s
COUNT    ?= 6
# The race detector needs cgo and a C compiler; without one, tests run
# without it rather than not at all.
RACE     ?= $(shell CGO_ENABLED=1 $(GO) env CC >/dev/null 2>&1 && command -v "$$(CGO_ENABLED=1 $(GO) env CC)" >/dev/null 2>&1 && echo -race)
BENCHSTAT ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
FUZZTIME ?= 30s
FUZZ_LOG ?= $(CURDIR)/bench/out/fuzz-last.txt

.PHONY: run test vet fmt-check lint cover bench fuzz stress

## run: the quickstart on an embedded in-memory SQLite database (no setup).
run:
	$(GO) run ./examples/quickstart

## test: vet, formatting, then every test with the race detector.
## PostgreSQL tests skip with a reason when no server answers;
## DBM_REQUIRE_INTEGRATION=1 (set by .ci/run) turns such a skip into a failure.
## The bench/ module (peer comparisons) is vetted and its tests run too, which
## compiles every benchmark; no benchmark runs.
test: vet fmt-check
	$(GO) test $(RACE) -count=1 $(PKGS)
	cd bench && $(GO) test -count=1 ./...

## stress: the reliability and pool tests of ./dbm (STRESS_RUN), run
## STRESS_COUNT times in a row with the race detector while another process
## (dbm/internal/cpuhog) keeps one core busy: the load under which they must
## still pass. The test binary is built once; each run is one pass over the
## tests (its -v log, with the tests' figures, in STRESS_OUT/run-N.txt), and
## the target prints how many runs passed (and fails when one did not). The hog is started and stopped here; it also stops by itself after
## STRESS_HOG_MAX, or when make is gone.
STRESS_COUNT ?= 10
STRESS_RUN ?= ^(TestReliability|TestPostgresPool|TestPostgresStale|TestPostgresTerminatedBackends|TestPostgresSlowDial|TestPostgresLostReply|TestBrokenConnections|TestProbe|TestFairQueue|TestPostgresLostCommit|TestReplicasFailover|TestLifetimeJitter|TestValidateIdleAfter)
STRESS_HOG_MAX ?= 3h
STRESS_OUT ?= $(CURDIR)/bench/out/stress
stress:
	@mkdir -p $(STRESS_OUT)
	$(GO) test $(RACE) -c -o $(STRESS_OUT)/dbm.test ./dbm
	$(GO) build -o $(STRESS_OUT)/cpuhog ./dbm/internal/cpuhog
	@$(STRESS_OUT)/cpuhog -for $(STRESS_HOG_MAX) & hog=$$!; \
	trap 'kill $$hog 2>/dev/null' EXIT INT TERM; \
	pass=0; start=$$(date +%s); \
	for i in $$(seq $(STRESS_COUNT)); do \
		if (cd dbm && $(STRESS_OUT)/dbm.test -test.run '$(STRESS_RUN)' -test.count=1 -test.v) > $(STRESS_OUT)/run-$$i.txt 2>&1; then \
			pass=$$((pass+1)); echo "stress: run $$i of $(STRESS_COUNT) passed"; \
		else \
			echo "stress: run $$i of $(STRESS_COUNT) FAILED:"; grep -E -A12 -- '--- FAIL' $(STRESS_OUT)/run-$$i.txt | head -n 80; \
		fi; \
	done; \
	echo "stress: $$pass of $(STRESS_COUNT) runs passed, $$(( $(STRESS_COUNT) - pass )) failed, in $$(( $$(date +%s) - start ))s, one core kept busy (logs in $(STRESS_OUT))"; \
	test $$pass -eq $(STRESS_COUNT)

## fuzz: every fuzz target of both modules, each for $(FUZZTIME), one after
## another (go test -fuzz takes one target at a time). Targets are found by
## their declarations, so a new one is picked up. A failure stops the run
## and leaves the input in the package's testdata/fuzz/<Target>/; committed
## there, it runs with every `make test`. `make test` already runs each
## target's seed corpus. A target that fails with "context deadline
## exceeded" and writes no failing input hit Go 1.26's own -fuzztime race
## (go.dev/issue/75804, fixed in Go 1.27): it is run once more, and fails the
## run only if it fails again.
fuzz:
	@mkdir -p $(dir $(FUZZ_LOG))
	@set -e; n=0; start=$$(date +%s); \
	for loc in $$(grep -rEo --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]+' . | sed 's/:func /:/' | sort -u); do \
		dir=$$(dirname "$${loc%%:*}"); name=$${loc##*:}; mod=$$dir; \
		while [ ! -f "$$mod/go.mod" ]; do mod=$$(dirname "$$mod"); done; \
		pkg=./$${dir#"$$mod"}; pkg=$${pkg#./}; pkg=./$${pkg#/}; \
		echo "fuzz: $$name in $$dir for $(FUZZTIME)"; \
		corpus="$$dir/testdata/fuzz/$$name"; before=$$(ls "$$corpus" 2>/dev/null | wc -l); \
		if (cd "$$mod" && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg") > $(FUZZ_LOG) 2>&1; then \
			cat $(FUZZ_LOG); \
		else \
			cat $(FUZZ_LOG); \
			if [ "$$(ls "$$corpus" 2>/dev/null | wc -l)" = "$$before" ] && tail -n 5 $(FUZZ_LOG) | grep -q 'context deadline exceeded'; then \
				echo "fuzz: $$name stopped on Go's own -fuzztime deadline race (go.dev/issue/75804, fixed in Go 1.27) and wrote no failing input; running it once more"; \
				(cd "$$mod" && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"); \
			else exit 1; fi; \
		fi; \
		n=$$((n+1)); \
	done; \
	echo "fuzz: $$n targets passed in $$(( $$(date +%s) - start ))s"

vet:
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## lint: vet + gofmt + staticcheck (a pinned version, fetched through the
## module proxy the first time).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: vet fmt-check
	$(GO) run $(STATICCHECK) $(PKGS)

## cover: tests with coverage; writes coverage.out and prints the total.
cover:
	$(GO) test -count=1 -coverprofile=coverage.out -covermode=atomic $(PKGS)
	$(GO) tool cover -func=coverage.out | tail -n 1

## bench: the benchmarks of both modules (the library's in ./dbm and
## ./dbm/dbmotel, and the peer comparisons in bench/, which has its own
## go.mod), summarised with
## benchstat; then docs/benchmarks.md is rewritten from the results. The test
## binaries are built once and run $(COUNT) times in turn, each run going
## through every implementation, so that load from other work on the machine
## spreads over all of them instead of favouring whichever ran first. The
## Postgres* benchmarks skip without a server.
BENCH_OUT ?= $(CURDIR)/bench/out
BENCHFLAGS = -test.run '^$$' -test.bench '$(BENCH)' -test.benchmem -test.benchtime=$(BENCHTIME)
bench:
	@mkdir -p $(BENCH_OUT)
	$(GO) test -c -o $(BENCH_OUT)/dbm.test ./dbm
	$(GO) test -c -o $(BENCH_OUT)/dbmotel.test ./dbm/dbmotel
	cd bench && $(GO) test -c -o $(BENCH_OUT)/bench.test .
	: > $(BENCH_OUT)/dbm.txt; : > $(BENCH_OUT)/bench.txt
	for i in $$(seq $(COUNT)); do \
		(cd dbm && $(BENCH_OUT)/dbm.test $(BENCHFLAGS)) | tee -a $(BENCH_OUT)/dbm.txt && \
		(cd dbm/dbmotel && $(BENCH_OUT)/dbmotel.test $(BENCHFLAGS)) | tee -a $(BENCH_OUT)/dbm.txt && \
		(cd bench && $(BENCH_OUT)/bench.test $(BENCHFLAGS)) | tee -a $(BENCH_OUT)/bench.txt || exit 1; \
	done
	$(GO) run $(BENCHSTAT) -col /impl $(BENCH_OUT)/dbm.txt > $(BENCH_OUT)/benchstat.txt
	$(GO) run $(BENCHSTAT) -col /impl $(BENCH_OUT)/bench.txt >> $(BENCH_OUT)/benchstat.txt
	cat $(BENCH_OUT)/benchstat.txt
	cd bench && $(GO) run ./cmd/benchdoc -o ../docs/benchmarks.md \
		-cmd "make bench COUNT=$(COUNT) BENCHTIME=$(BENCHTIME) BENCH='$(BENCH)'" \
		-benchstat $(BENCH_OUT)/benchstat.txt $(BENCH_OUT)/dbm.txt $(BENCH_OUT)/bench.txt
