# wray: two commands do all the set-up.
#   make run    installs the wasm target, builds wray and the guests, runs the demo
#   make test   builds the guests and runs every test (installs Chromium for
#               the dashboard's browser tests if it is missing)
#
# Other targets: setup (the wasm target), browser (Chromium for the tests),
# guests, build, bench, lint, doc, clean.

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
# Every guest crate of the workspace (each is built for wasm32-wasip1 only).
GUESTS := hello pi batch-get put-once nested counter param-server actor-pool demo testkit wray-bench

.PHONY: all run test guests build bench lint doc setup browser clean

all: build

setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# The dashboard's browser tests drive a headless Chromium: $WRAY_CHROMIUM,
# else the first of these on PATH, else Debian's package, installed here.
browser:
	@[ -n "$$WRAY_CHROMIUM" ] || command -v chromium >/dev/null || \
	  command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
	  { echo "installing chromium for the browser tests"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

guests: setup
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(GUESTS))

build: guests
	$(CARGO) build --release -p wray-cli

run: build
	target/release/wray run --dashboard target/$(WASM_TARGET)/release/demo.wasm

test: guests browser
	$(CARGO) test

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
