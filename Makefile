# kvx: convenience targets around CMake/CTest. See README.md.
#
#   make demo         install deps, build, run the two-process demos (engine, then KV cache)
#   make test         install deps, build, run ctest; then the same under ASan/UBSan
#   make install      install the release build (PREFIX=/usr/local by default)
#   make docs         API reference from include/kvx with doxygen (BUILD/docs/api/html)
#   make fuzz         build the libFuzzer targets with clang, run each FUZZ_SECONDS on its corpus

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# Steps run in order even under make -j (cmake --build is parallel itself).
.NOTPARALLEL:

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 10
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

CTEST_ARGS := --output-on-failure -j2 --no-tests=error
SAN_ENV    := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# deps.sh runs again only when its content changes (or after make clean).
DEPS_SCRIPT := scripts/deps.sh
DEPS_SUM    := $(firstword $(shell sha256sum $(DEPS_SCRIPT) 2>/dev/null))
DEPS_STAMP  := $(BUILD)/.deps-$(DEPS_SUM).stamp

FORMAT_DIRS  := $(wildcard include src tests examples tools)
FORMAT_FILES  = $(if $(FORMAT_DIRS),$(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' \) | sort))

.PHONY: all deps build build-asan test demo docs format format-check install clean fuzz

all: build

deps: $(DEPS_STAMP)

$(DEPS_STAMP): $(DEPS_SCRIPT)
	bash $(DEPS_SCRIPT)
	mkdir -p $(BUILD)
	rm -f $(BUILD)/.deps-*.stamp
	touch $@

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	cmake -S . -B $(BUILD_ASAN) -DKVX_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_ASAN) -j$(JOBS)

# Fails at the first failing step: a failing ctest run fails make test.
test: deps build
	ctest --test-dir $(BUILD) $(CTEST_ARGS)
	$(MAKE) --no-print-directory build-asan
	$(SAN_ENV) ctest --test-dir $(BUILD_ASAN) $(CTEST_ARGS)

demo: deps build
	scripts/demo.sh $(BUILD)

# Seconds per target; fails on any crash, leak or timeout (see scripts/fuzz.sh).
fuzz: deps
	scripts/fuzz.sh --seconds $(FUZZ_SECONDS) --build $(BUILD_FUZZ)

# Doxyfile names build/docs/api; the output follows BUILD when it is changed.
docs:
	@if ! command -v doxygen >/dev/null 2>&1; then \
	    echo "docs: doxygen not found; install it with 'bash scripts/deps.sh'" \
	         "(or: apt-get install doxygen)" >&2; \
	    exit 1; \
	fi
	mkdir -p $(BUILD)/docs/api
	{ cat Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD)/docs/api"; } | doxygen -
	@echo "docs: $(BUILD)/docs/api/html/index.html"

format:
	$(if $(FORMAT_FILES),clang-format -i $(FORMAT_FILES),@echo "no sources to format")

format-check:
	$(if $(FORMAT_FILES),clang-format --dry-run --Werror $(FORMAT_FILES),@echo "no sources to check")

install:
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j$(JOBS)
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
