# umlutils — see README.md. `make check` is the test command CI runs.
GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
LIBDIR  := $(PREFIX)/lib/uml
MANDIR  := $(PREFIX)/share/man

CMDS := $(notdir $(wildcard cmd/*))
# Installed beside the kernel's helpers rather than on PATH (USERS.md).
LIBEXEC_CMDS := port-helper
BIN_CMDS := $(filter-out $(LIBEXEC_CMDS),$(CMDS))

E2E_TIMEOUT ?= 60m

.PHONY: all build test e2e provision check vet bench demo install clean fuzz

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -o bin/ ./cmd/...

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }

# Unit and in-process integration tests (fuzz targets run their seed corpora).
test:
	$(GO) test -count=1 ./...

# Real-kernel tests: provisions the test bed (root, Debian 12), then runs the
# tests named TestE2E* built with the e2e tag. A missing kernel fails them.
provision:
	bash internal/testbed/provision.sh >/dev/null

e2e: provision
	$(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -run '^TestE2E' ./...

check: vet test e2e

# Benchmarks: Go benchmarks, then every scripts/bench-*.sh, which run ours and
# the C original in the same run and print ratios.
bench: build provision
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	@for s in scripts/bench-*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s" || exit 1; done

# The main job: a working virtual lab, started and torn down.
demo: build provision
	bash scripts/demo.sh

install: build
	@for c in $(BIN_CMDS); do install -D -m 0755 bin/$$c $(DESTDIR)$(BINDIR)/$$c; done
	@for c in $(filter $(LIBEXEC_CMDS),$(CMDS)); do install -D -m 0755 bin/$$c $(DESTDIR)$(LIBDIR)/$$c; done
	@for m in $(wildcard man/*.[18]); do s=$${m##*.}; install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$m); done

clean:
	rm -rf bin
