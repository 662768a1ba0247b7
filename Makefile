# umlutils — see README.md. `make check` is the test command CI runs.
GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
LIBDIR  := $(PREFIX)/lib/uml
MANDIR  := $(PREFIX)/share/man

CMDS := $(notdir $(wildcard cmd/*))
# Installed beside the kernel's helpers rather than on PATH: port-helper,
# which UML kernels exec from there, and umlab-guest, which only runs inside
# lab guests and which umlab finds there.
LIBEXEC_CMDS := port-helper umlab-guest
BIN_CMDS := $(filter-out $(LIBEXEC_CMDS),$(CMDS))
# Netkit's command names: links to umlab, which picks its command by the
# name it runs as (packaging.UmlabAliases holds the same list).
UMLAB_ALIASES := lstart lhalt lcrash lclean linfo

E2E_TIMEOUT ?= 60m

.PHONY: all build test e2e provision check vet bench demo install clean fuzz

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -o bin/ ./cmd/...

# staticcheck is pinned in tools/go.mod and run from it, as nfpm is from
# packaging/tools/go.mod, so its dependencies stay out of go.mod
# (docs/design.md §5).
STATICCHECK ?= $(GO) run -modfile=tools/go.mod honnef.co/go/tools/cmd/staticcheck

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./...
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

# The main job: the OSPF failover lesson on a real lab, started and torn
# down; provisions only what labs need (the full test bed is for check).
demo: build
	bash internal/testbed/provision.sh --lab >/dev/null
	bash scripts/demo.sh

install: build
	@for c in $(BIN_CMDS); do install -D -m 0755 bin/$$c $(DESTDIR)$(BINDIR)/$$c; done
	@for c in $(filter $(LIBEXEC_CMDS),$(CMDS)); do install -D -m 0755 bin/$$c $(DESTDIR)$(LIBDIR)/$$c; done
	@for m in $(wildcard man/*.[18]); do s=$${m##*.}; install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$m); done
	@if [ -d cmd/umlab ]; then for a in $(UMLAB_ALIASES); do ln -sfn umlab $(DESTDIR)$(BINDIR)/$$a; \
		if [ -f man/umlab.1 ]; then ln -sfn umlab.1 $(DESTDIR)$(MANDIR)/man1/$$a.1; fi; done; fi

clean:
	rm -rf bin dist

# Packages (packaging/): `make rpm` and `make deb` build them with nfpm, run
# from its own modfile so its dependencies stay out of go.mod; `make dist`
# writes the source tarball with vendored modules and the spec for an offline
# `rpmbuild -bb`. Contents are whatever cmd/* and man/* hold, laid out by
# packaging/stage for nfpm and the spec alike.
NFPM        ?= $(GO) run -modfile=packaging/tools/go.mod github.com/goreleaser/nfpm/v2/cmd/nfpm
PKG_VERSION  = $(shell sh packaging/version.sh)
PKG_ARCH     = $(shell $(GO) env GOARCH)
PKG_BIN     ?= dist/bin
# Static binaries run on every distribution; the GNU build id is what RPM
# tooling expects of ELF files.
PKG_LDFLAGS ?= -s -w -B gobuildid

.PHONY: rpm deb dist pkg-bin pkg-root

pkg-bin:
	@test -n "$(CMDS)" || { echo "no commands under cmd/: nothing to package" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(PKG_LDFLAGS)' -o $(PKG_BIN)/ ./cmd/...

pkg-root:
	$(GO) run ./packaging/stage -packager '$(PKG_PACKAGER)' -bin '$(PKG_BIN)' -dest '$(PKG_ROOT)' \
		-libexec '$(LIBEXEC_CMDS)' $(if $(PKG_RPMFILES),-rpm-files '$(PKG_RPMFILES)') $(if $(PKG_NFPM),-nfpm '$(PKG_NFPM)')

rpm deb: pkg-bin
	rm -rf dist/$@ dist/umlutils*.$@
	$(MAKE) --no-print-directory pkg-root PKG_PACKAGER=$@ PKG_ROOT=dist/$@/root PKG_NFPM=dist/$@/nfpm.yaml
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' $(NFPM) package -f dist/$@/nfpm.yaml -p $@ -t dist/

dist:
	@mkdir -p dist
	sh packaging/dist.sh '$(GO)' '$(PKG_VERSION)'
