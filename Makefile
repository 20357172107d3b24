# rollout — `make` builds ./rollout (musl, static); `make test` runs every test.
#
# Dependencies (third_party/deps.lock) are built once into a cache outside the
# clone, keyed by the recipe's content: ROLLOUT_DEPS_CACHE (default
# ~/.cache/rollout-build). Air-gapped hosts: ROLLOUT_DEPS_ARCHIVES=DIR.

CC := musl-gcc
CLANG ?= clang
DEPS_CACHE ?= $(or $(ROLLOUT_DEPS_CACHE),$(HOME)/.cache/rollout-build)
DEPS_KEY := $(shell cat third_party/deps.lock third_party/build-deps.sh | sha256sum | cut -c1-12)
DEPS_MUSL := $(DEPS_CACHE)/$(DEPS_KEY)/musl
DEPS_HOST := $(DEPS_CACHE)/$(DEPS_KEY)/host
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wformat=2
COMMON := -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) -MMD -MP \
	-DROLLOUT_VERSION='"$(VERSION)"'
CFLAGS ?= -O2 -g
REL_CFLAGS := $(COMMON) $(CFLAGS) -ffunction-sections -fdata-sections -isystem $(DEPS_MUSL)/include
REL_LDFLAGS := -static -Wl,--gc-sections
DEP_LIBS := -lyaml -lcjson -lseccomp -lz -lzstd -lmbedtls -lmbedx509 -lmbedcrypto
REL_LIBS := -L$(DEPS_MUSL)/lib $(DEP_LIBS)

# Sanitizer and fuzz builds use clang against the host libc (ASan needs it).
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CFLAGS := $(COMMON) -O1 -g $(SAN) -isystem $(DEPS_HOST)/include -Wno-unknown-warning-option
HOST_LIBS := -L$(DEPS_HOST)/lib $(DEP_LIBS)

LIB_SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
ITEST_SRCS := $(sort $(wildcard tests/integration/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
# Static programs the integration tests copy into environments (no librollout).
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))

REL_OBJS := $(LIB_SRCS:%.c=build/rel/%.o)
ASAN_OBJS := $(LIB_SRCS:%.c=build/asan/%.o)
UNIT_REL := $(UNIT_SRCS:tests/unit/%.c=build/rel/tests/%)
UNIT_ASAN := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=build/rel/itests/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=build/rel/bench/%)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=build/rel/helpers/%)

.PHONY: all deps deps-host test unit-tests test-bins fuzz bench bench-bins clean format check-format demo
.DELETE_ON_ERROR:

all: rollout

deps: $(DEPS_MUSL)/.done
deps-host: $(DEPS_HOST)/.done

$(DEPS_MUSL)/.done: third_party/deps.lock third_party/build-deps.sh
	third_party/build-deps.sh musl $(DEPS_MUSL)

$(DEPS_HOST)/.done: third_party/deps.lock third_party/build-deps.sh
	third_party/build-deps.sh host $(DEPS_HOST)

build/rel/%.o: %.c | $(DEPS_MUSL)/.done
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

build/asan/%.o: %.c | $(DEPS_HOST)/.done
	@mkdir -p $(dir $@)
	$(CLANG) $(ASAN_CFLAGS) -c $< -o $@

build/rel/librollout.a: $(REL_OBJS)
	@rm -f $@
	ar rcs $@ $^

build/asan/librollout.a: $(ASAN_OBJS)
	@rm -f $@
	ar rcs $@ $^

rollout: build/rel/src/main.o build/rel/librollout.a
	$(CC) $(REL_LDFLAGS) -o build/rel/rollout.debug $^ $(REL_LIBS)
	strip -o $@ build/rel/rollout.debug

build/rel/tests/%: tests/unit/%.c tests/unit/harness.c build/rel/librollout.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -Itests/unit $(REL_LDFLAGS) -o $@ $< tests/unit/harness.c build/rel/librollout.a $(REL_LIBS)

build/asan/tests/%: tests/unit/%.c tests/unit/harness.c build/asan/librollout.a
	@mkdir -p $(dir $@)
	$(CLANG) $(ASAN_CFLAGS) -Itests/unit -o $@ $< tests/unit/harness.c build/asan/librollout.a $(HOST_LIBS)

build/rel/itests/%: tests/integration/%.c tests/unit/harness.c build/rel/librollout.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -Itests/unit $(REL_LDFLAGS) -o $@ $< tests/unit/harness.c build/rel/librollout.a $(REL_LIBS)

build/rel/helpers/%: tests/helpers/%.c | $(DEPS_MUSL)/.done
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) $(REL_LDFLAGS) -o $@ $<

build/rel/bench/%: bench/%.c build/rel/librollout.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) $(REL_LDFLAGS) -o $@ $< build/rel/librollout.a $(REL_LIBS)

FUZZ_CFLAGS := $(COMMON) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-isystem $(DEPS_HOST)/include -Wno-unknown-warning-option
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c | $(DEPS_HOST)/.done
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/librollout.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/%: tests/fuzz/%.c build/fuzz/librollout.a
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/librollout.a $(HOST_LIBS)

test-bins: rollout $(UNIT_REL) $(UNIT_ASAN) $(ITEST_BINS) $(FUZZ_BINS) $(HELPER_BINS)

# The whole suite: unit tests (musl and ASan+UBSan), fuzz smoke runs and the
# black-box tests of ./rollout. Ends with "N passed, N failed, N skipped".
test: test-bins
	@tests/run.sh

unit-tests: $(UNIT_REL) $(UNIT_ASAN)
	@tests/run.sh --unit

# Build everything and run the demo job (test-dataset with the oracle) end to end.
# DEMO_FLAGS go to `rollout run` (DEMO_FLAGS='-e docker': on the Docker daemon).
demo: rollout
	@tests/demo.sh $(DEMO_FLAGS)

fuzz: $(FUZZ_BINS)

# bench-bins builds what `make bench` runs, without running it.
bench-bins: rollout $(BENCH_BINS)

bench: bench-bins
	@bench/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build rollout

-include $(shell find build -name '*.d' 2>/dev/null)
