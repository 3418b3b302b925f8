# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
# ingestd - see README.md. `make run` and `make test` are the two commands.
CC       ?= cc
PREFIX   ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
INSTALL  ?= install
# Units, sysusers.d and tmpfiles.d: under PREFIX/lib, which systemd searches
# for PREFIX=/usr/local (/usr/local/lib/systemd/system, ...); the
# distribution's own directories (pkg-config systemd, else /usr/lib/...) only
# for PREFIX=/usr, as a package installs.
ifeq ($(PREFIX),/usr)
SYSTEMD_PC := $(shell pkg-config --exists systemd 2>/dev/null && echo yes)
UNITDIR     ?= $(if $(SYSTEMD_PC),$(shell pkg-config --variable=systemdsystemunitdir systemd),/usr/lib/systemd/system)
SYSUSERSDIR ?= $(if $(SYSTEMD_PC),$(shell pkg-config --variable=sysusersdir systemd),/usr/lib/sysusers.d)
TMPFILESDIR ?= $(if $(SYSTEMD_PC),$(shell pkg-config --variable=tmpfilesdir systemd),/usr/lib/tmpfiles.d)
else
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
endif
BUILD    ?= build
# SAN=1: AddressSanitizer + UBSan; SAN=thread: ThreadSanitizer.
SAN      ?=
PKGS      = libuv sqlite3 libpq yaml-0.1 libcrypto libmicrohttpd libarchive libpcre2-8 libcurl
# The user's CPPFLAGS, CFLAGS and LDFLAGS are honoured as given (GNU
# conventions; dpkg-buildflags passes -D_FORTIFY_SOURCE=2 in CPPFLAGS). What
# the build needs lives apart in ING_* so that `make CFLAGS=-O1` still builds.
# WERROR=1 (the default, for development and CI) turns warnings into errors;
# a packager building a release says WERROR=0.
CFLAGS   ?= -O2 -g
WERROR   ?= 1
ING_CPPFLAGS = -D_GNU_SOURCE
ING_CFLAGS   = -std=gnu11 -MMD -MP -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wcast-qual -Wpointer-arith
ifeq ($(WERROR),1)
ING_CFLAGS  += -Werror
endif
ifeq ($(SAN),thread)
ING_CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
ING_LDFLAGS += -fsanitize=thread
else ifneq ($(SAN),)
ING_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ING_LDFLAGS += -fsanitize=address,undefined
endif
COMPILE   = $(CC) $(ING_CPPFLAGS) $(CPPFLAGS) $(ING_CFLAGS) $(CFLAGS) $(PKG_CFLAGS)
LINK      = $(CC) $(ING_CFLAGS) $(CFLAGS) $(ING_LDFLAGS) $(LDFLAGS)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS       = $(PKG_LIBS) -lcsv -lpthread -lm
VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

LIB_SRC  = $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ  = $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/%)

.PHONY: all deps test-deps run test test-fast check dist asan tsan analyze format format-check \
	check-units clean bench bench-http install uninstall fuzz fuzz-short fuzz-build test-pg
all: $(BUILD)/ingestd $(UNIT_BIN)

deps:
	@scripts/deps.sh

# What the tests run beside the build: sshd and its clients, chromium, wrk,
# systemd-analyze, mandoc, strace, PostgreSQL, LibreOffice, zstd, xz, bzip2,
# zip (scripts/test-deps.sh).
test-deps:
	@scripts/test-deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(COMPILE) -DINGESTD_VERSION='"$(VERSION)"' -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(COMPILE) -Isrc -c -o $@ $<

$(BUILD)/ingestd: $(BUILD)/obj/main.o $(LIB_OBJ)
	$(LINK) -o $@ $^ $(LIBS)

$(BUILD)/test_%: $(BUILD)/obj/tests/test_%.o $(LIB_OBJ)
	$(LINK) -o $@ $^ $(LIBS) -lcmocka

# The main job on the embedded default configuration.
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/ingestd
	@mkdir -p var
	@echo "ingestd: drop CSV files into $(CURDIR)/var/drop/inbox/ ; status appears in $(CURDIR)/var/drop/status/ ; rows in $(CURDIR)/var/ingestd.db"
	@echo "ingestd: try  cp examples/products.csv var/drop/inbox/   (Ctrl-C stops)"
	$(BUILD)/ingestd -c config/local.yaml

# Everything: normal build, then the whole suite again under ASan/UBSan.
test: test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all
	@tests/run build build-asan

# One build, no sanitizers (quick local loop); E2E_PG=0 skips the
# PostgreSQL pass of the suites, E2E_PG=only runs only it.
test-fast: all
	@tests/run $(BUILD)

# The suites on PostgreSQL only (tests/run's second pass).
test-pg: all
	@E2E_PG=only tests/run $(BUILD)

# What the Debian package's test step (dh_auto_test) runs: the unit tests and
# the e2e tests that need nothing beyond the package's build dependencies (no
# sshd, chromium, wrk, PostgreSQL, LibreOffice, reuse, lintian, git checkout;
# the tests that need root only as root). See tests/e2e/run.py, --self-contained.
check: all
	@E2E_SELF_CONTAINED=1 tests/run $(BUILD)

asan: test-deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all
	@tests/run build-asan

# The suite under ThreadSanitizer (a report fails the test that logged it).
tsan: test-deps
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread all
	@tests/run build-tsan

# Static analysis as a gate: the clang analyzer over a fresh build (any
# report fails) and cppcheck (inline suppressions carry their reason).
# Needs clang-tools and cppcheck (scripts/test-deps.sh).
ANALYZE_BUILD = build-analyze
analyze: test-deps
	rm -rf $(ANALYZE_BUILD)
	scan-build --status-bugs -o $(ANALYZE_BUILD)/report \
		$(MAKE) --no-print-directory BUILD=$(ANALYZE_BUILD) all
	cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
		--enable=warning,performance,portability -D_GNU_SOURCE \
		-DINGESTD_VERSION='"0"' $(PKG_CFLAGS) -Isrc src tests/unit

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang under ASan and
# UBSan into build-fuzz/. `make fuzz` runs each for FUZZ_SECONDS (default
# 60); `make fuzz-short` for 20 s each (CI). Each run starts from the seed
# corpus tests/fuzz/corpus/<target>/ and keeps what it finds in
# build-fuzz/corpus/<target>/ (never in the repo); a crash leaves its input
# in build-fuzz/crash-<target>-* and fails the run.
FUZZ_CC      ?= clang
FUZZ_BUILD    = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
# -Wno-string-concatenation: store.c's migrations list one step of two
# statements as adjacent literals on purpose.
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -std=gnu11 -Wall \
	-Wextra -Werror -Wno-string-concatenation -D_GNU_SOURCE -DINGESTD_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
FUZZ_SRC      = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN      = $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ  = $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_LIB_OBJ) $(LIBS)

.SECONDARY: $(FUZZ_LIB_OBJ)
fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_BIN); do n=$$(basename $$t); \
		mkdir -p $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
			$(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
			2>$(FUZZ_BUILD)/$$n.log || { tail -50 $(FUZZ_BUILD)/$$n.log; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|new_units_added)' $(FUZZ_BUILD)/$$n.log \
			| tr '\n' ' '; echo; done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# One layout for the C sources (.clang-format).
FORMAT_SRC = $(wildcard src/*.c src/*.h tests/unit/*.c tests/unit/*.h \
	tests/fuzz/*.c tests/fuzz/*.h)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

# Side by side with sqlite3 .import (issue 6); not part of make test.
bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/ingestd
	@python3 bench/run.py

# The HTTP API under wrk while a large file ingests (issue 4); not part of
# make test. Needs wrk (scripts/test-deps.sh).
bench-http: test-deps
	@$(MAKE) --no-print-directory $(BUILD)/ingestd
	@python3 bench/http.py

# Binary, default configuration (never over an existing one), systemd units
# (paths rewritten for SBINDIR, SYSCONFDIR and TMPFILESDIR), sysusers.d and tmpfiles.d
# entries, man pages. Nothing is started: see the README, "Deployment (systemd)".
CONF = $(DESTDIR)$(SYSCONFDIR)/ingestd/ingestd.yaml
install: $(BUILD)/ingestd
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/ingestd \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BUILD)/ingestd $(DESTDIR)$(SBINDIR)/ingestd
	@if [ -e $(CONF) ]; then echo "install: keeping $(CONF)"; \
	else echo "$(INSTALL) -m 0644 config/ingestd.yaml $(CONF)"; \
		$(INSTALL) -m 0644 config/ingestd.yaml $(CONF); fi
	sed -e 's|/usr/local/sbin/ingestd|$(SBINDIR)/ingestd|g' \
	    -e 's|/usr/local/lib/tmpfiles.d/ingestd.conf|$(TMPFILESDIR)/ingestd.conf|g' \
	    -e 's|/etc/ingestd/|$(SYSCONFDIR)/ingestd/|g' systemd/ingestd.service \
		> $(DESTDIR)$(UNITDIR)/ingestd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/ingestd.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/ingestd.service.tmp $(DESTDIR)$(UNITDIR)/ingestd.service
	$(INSTALL) -m 0644 systemd/ingestd.socket $(DESTDIR)$(UNITDIR)/ingestd.socket
	$(INSTALL) -m 0644 systemd/ingestd.sysusers $(DESTDIR)$(SYSUSERSDIR)/ingestd.conf
	$(INSTALL) -m 0644 systemd/ingestd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/ingestd.conf
	$(INSTALL) -m 0644 man/ingestd.8 $(DESTDIR)$(MANDIR)/man8/ingestd.8
	$(INSTALL) -m 0644 man/ingestd.yaml.5 $(DESTDIR)$(MANDIR)/man5/ingestd.yaml.5

# Reverses install; a configuration that differs from the default stays.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ingestd $(DESTDIR)$(UNITDIR)/ingestd.service \
		$(DESTDIR)$(UNITDIR)/ingestd.socket $(DESTDIR)$(SYSUSERSDIR)/ingestd.conf \
		$(DESTDIR)$(TMPFILESDIR)/ingestd.conf $(DESTDIR)$(MANDIR)/man8/ingestd.8 \
		$(DESTDIR)$(MANDIR)/man5/ingestd.yaml.5
	@if [ -e $(CONF) ] && ! cmp -s config/ingestd.yaml $(CONF); then \
		echo "uninstall: keeping the modified $(CONF)"; \
	else rm -f $(CONF); rmdir $(DESTDIR)$(SYSCONFDIR)/ingestd 2>/dev/null || true; fi

# The release tarball: the committed tree of HEAD (git archive), under
# ingestd-$(VERSION)/. A release is the commit tagged v$(VERSION) (README,
# "Releases"); debian/watch follows those tags.
DIST    = ingestd-$(VERSION)
DISTDIR ?= .
dist:
	git archive --format=tar.gz --prefix=$(DIST)/ -o $(DISTDIR)/$(DIST).tar.gz HEAD
	@echo "dist: $(DISTDIR)/$(DIST).tar.gz"

clean:
	rm -rf build build-asan build-tsan build-analyze build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
