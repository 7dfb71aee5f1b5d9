# The two commands: `make run` (the demo server) and `make test` (everything, under ASan+UBSan).
# Both install missing Debian packages first (scripts/deps.sh). CMake does the real work.
MAKEFLAGS += --no-print-directory
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_RELEASE = cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
CMAKE_ASAN = cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTLSR_SANITIZE=ON

.PHONY: deb deps-deb bench deps-bench all build build-asan deps-build deps-test deps-run run test unit install format \
	format-check fuzz valgrind clean

all: build

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-run:
	@scripts/deps.sh run
deps-bench:
	@scripts/deps.sh bench
deps-deb:
	@scripts/deps.sh deb

# The Debian packages (tlsresume, libtlsresume0, libtlsresume-dev) in build-deb/.
deb: deps-deb
	@scripts/deb.sh build-deb

build: deps-build
	@$(CMAKE_RELEASE) >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps-test
	@$(CMAKE_ASAN) >/dev/null
	@cmake --build build-asan -j $(JOBS)

# Unit tests, fuzz corpora and integration tests, all under AddressSanitizer + UBSan.
test: build-asan build
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure --timeout 300 -j $(JOBS)

run: deps-run build
	@scripts/demo.sh

# The benchmark suite against nginx, HAProxy, hitch and stunnel; rewrites docs/BENCHMARKS.md.
bench: deps-bench build
	@bench/suite.sh --write
	@bench/suite.sh --all-cores --write
	@bench/fleet.sh --write
	@bench/upstream.sh --write
	@bench/redis_ops.sh --write

install: build
	cmake --install build --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

# libFuzzer builds (clang), then every target for FUZZ_SECONDS (default 60) on its corpus.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
fuzz:
	@scripts/deps.sh fuzz
	CC=clang cmake -S . -B build-fuzz -DTLSR_SANITIZE=ON -DTLSR_LIBFUZZER=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The unit tests, then these `serve` scenarios with serve (master and workers) under valgrind's
# memcheck (release build; ASan covers `make test`).
VALGRIND_SCENARIOS = s_client_tls12 s_client_tls13 python curl node gnutls rotation sni sighup \
	proxy_protocol backend_down backend_reset early_answer ticket_flood chain fleet_unix
empty :=
bar := |
VALGRIND_REGEX = $(subst $(empty) $(empty),$(bar),$(strip $(VALGRIND_SCENARIOS)))
valgrind: build
	@for t in build/test_*; do \
		valgrind -q --error-exitcode=1 --leak-check=full $$t >/dev/null || exit 1; \
		echo "valgrind: $$t clean"; done
	@cd build && TLSR_VALGRIND=1 ctest --output-on-failure --timeout 300 \
		-R '^serve_($(VALGRIND_REGEX))$$'

clean:
	rm -rf build build-asan build-fuzz
