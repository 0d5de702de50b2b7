# The front door. `make run` builds and starts one node on the embedded default;
# `make test` installs what the tests need, builds with -Werror and runs every suite,
# once plainly and once under AddressSanitizer + UndefinedBehaviorSanitizer.
BUILD_DIR      ?= build
SAN_BUILD_DIR  ?= build-asan
JOBS           ?= $(shell nproc)
CMAKE_FLAGS    ?=
RUN_ARGS       ?=
SHARDS         ?= 3
ARGS           ?= -s 10000 -k 1000 -r 4000 -d 5
REDIS_MODE     ?= single

.PHONY: all deps test-deps build run test check check-asan format-check bench bench-cluster cluster cluster-demo cluster-stop format clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/wsgate $(RUN_ARGS)

check: test-deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

$(SAN_BUILD_DIR)/build.ninja:
	cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWSGATE_WERROR=ON -DWSGATE_SANITIZE=ON $(CMAKE_FLAGS)

check-asan: test-deps $(SAN_BUILD_DIR)/build.ninja
	cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(SAN_BUILD_DIR) --output-on-failure -j $(JOBS)

test: format-check check check-asan

# Formatting is settled once, by .clang-format; CI refuses drift.
format-check: test-deps
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

bench: build
	scripts/bench.sh

# Two gateways through a Redis Cluster of $(SHARDS) masters; ARGS go to `wsgate-bench fanout`.
bench-cluster: build
	scripts/bench-cluster.sh $(SHARDS) $(ARGS)

# Three nodes, Redis and an nginx load balancer on loopback (scripts/cluster.sh). Redis is one
# server, or with REDIS_MODE=cluster a Redis Cluster of three masters; demo and stop find the
# mode in the cluster's state directory.
cluster: build
	@scripts/install-deps.sh cluster
	REDIS_MODE=$(REDIS_MODE) scripts/cluster.sh start

cluster-demo:
	scripts/cluster.sh demo

cluster-stop:
	scripts/cluster.sh stop

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR)
