# Partner Management for Foundational Trust Providers — developer entry points.
#   make run    build, start the services on SQLite under ./data/ (Ctrl-C stops them)
#   make test   formatting, lints (warnings are errors) and every test
# PostgreSQL-backed tests run when PMP_TEST_POSTGRES_URL names a server, e.g.
#   PMP_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres make test

CARGO ?= cargo

.PHONY: all build run demo test fmt lint check bench clean

all: build

build:
	$(CARGO) build --workspace --bins

run: build
	./deploy/local/run.sh

demo:
	$(CARGO) build -p pmpctl
	./deploy/local/demo.sh

test: fmt lint check

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The end-to-end tests start the real binaries: build them first.
check:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

bench:
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench -p certificate-store --bench verify
	$(CARGO) bench -p pmp-e2e --bench login_flood

clean:
	$(CARGO) clean
	rm -rf data
