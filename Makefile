# SPDX-License-Identifier: GPL-2.0
# vantage: builds every BPF object, its skeleton and one binary, build/vantage.
#
#   make            build everything into build/
#   make deps       install what is missing from Debian's packages (idempotent, quiet)
#   make check      deps + build + every test (needs root)
#   make run        deps + build + the main job (the agent; Ctrl-C stops it)
#   make bench      deps + build + benchmarks (B=GLOB picks some: make bench B=policy*)
#   make clean      remove build/
#   make man-records  regenerate vantage-export(8)'s record tables from loader/export/schema
#   V=1             show full commands;  CLANG=clang-19  use another clang for BPF

BUILD     ?= build
CLANG     ?= clang
BPFTOOL   ?= bpftool
CC        ?= gcc
PREFIX    ?= /usr/local
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
VERSION   := 0.1.0

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(BUILD) -Ibpf -Imaps
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Werror -Wno-missing-field-initializers -std=gnu11 -D_GNU_SOURCE= -DVANTAGE_VERSION='"$(VERSION)"' \
	-MMD -MP

# The arrows, checked by the compiler: each part sees only what it may include.
# maps/ includes nothing of ours; bpf/ sees maps/ and bpf/lib; loader/ sees maps/,
# loader/ (as "part/vtg_part.h") and the skeletons; tools/ sees maps/, loader/ and
# tools/ (no skeleton: loading is the library's business); only selftests/
# sees selftests/lib and the testbed. (test_arrows checks what the paths cannot: relative
# includes, a part's internals used from outside it, cycles between parts.)
INC_LOADER    := -I$(BUILD)/skel -Imaps -Iloader
INC_TOOLS     := -Imaps -Iloader -Itools
INC_SELFTESTS := $(INC_LOADER) -Itools -Iselftests/lib -Iselftests/testbed -Iselftests
$(BUILD)/obj/loader/%.o: INC := $(INC_LOADER)
$(BUILD)/obj/tools/%.o: INC := $(INC_TOOLS)
$(BUILD)/obj/selftests/%.o: INC := $(INC_SELFTESTS)
$(BUILD)/bench/%: INC := $(INC_SELFTESTS)
LDLIBS  := -lbpf -lelf -lz -lpthread -lm

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS   := $(wildcard bpf/lib/*.h maps/*.h)

LOADER_SRCS := $(wildcard loader/*/*.c)
TOOLS_SRCS  := $(wildcard tools/*.c)
LOADER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LOADER_SRCS))
TOOLS_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(TOOLS_SRCS))

TESTBED_LIB_SRCS := selftests/testbed/testbed.c selftests/testbed/relay.c selftests/lib/netns.c
TEST_SRCS   := selftests/runner.c $(wildcard selftests/test_*.c) \
	$(filter-out selftests/lib/netns.c,$(wildcard selftests/lib/*.c)) $(TESTBED_LIB_SRCS)
TEST_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRCS))
TESTBED_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,selftests/testbed/main.c $(TESTBED_LIB_SRCS))

# Stand-alone helpers of the benchmarks (selftests/bench/NAME.c -> build/bench/NAME).
BENCH_SRCS  := $(wildcard selftests/bench/*.c)
BENCH_TOOLS := $(patsubst selftests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

MANS := $(wildcard tools/man/*.8)

.PHONY: all deps check run bench clean install bpf clang19-bpf fallback-bpf man-records
.DELETE_ON_ERROR:

all: $(BUILD)/vantage $(BUILD)/vantage.bash-completion $(BUILD)/selftests/test_runner $(BUILD)/vantage-testbed \
	$(BUILD)/vantage-mplsemu $(BENCH_TOOLS)

bpf: $(BPF_OBJS) $(SKELS)

# vmlinux.h from the running kernel's BTF; the committed copy (bpf/vmlinux/vmlinux.h,
# dumped from Debian's 6.18 kernel) is used only where the kernel exposes no BTF.
# CO-RE relocates field offsets at load time, so either works on any BTF kernel.
$(BUILD)/vmlinux.h: $(wildcard $(VMLINUX_BTF)) | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)if [ -r "$(VMLINUX_BTF)" ]; then \
		$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@; \
	else \
		echo "  note: $(VMLINUX_BTF) missing, using committed bpf/vmlinux/vmlinux.h"; \
		cp bpf/vmlinux/vmlinux.h $@; \
	fi

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(BPF_HDRS)
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/obj/%.o: %.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INC) -c $< -o $@

$(BUILD)/vantage: $(LOADER_OBJS) $(TOOLS_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# The bash completion, generated from the option tables by the binary itself.
$(BUILD)/vantage.bash-completion: $(BUILD)/vantage
	$(call msg,GEN,$@)
	$(Q)$(BUILD)/vantage completion bash > $@

# The runner links the option layer too (cli.o, cli_doc.o: no main): test_cli checks its
# parser and its table checks on tables of its own.
$(BUILD)/selftests/test_runner: $(TEST_OBJS) $(LOADER_OBJS) $(BUILD)/obj/tools/cli.o $(BUILD)/obj/tools/cli_doc.o
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/vantage-testbed: $(TESTBED_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ -lpthread

$(BUILD)/bench/%: selftests/bench/%.c $(BUILD)/obj/selftests/lib/netns.o
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INC) $< $(BUILD)/obj/selftests/lib/netns.o -o $@ $(LDLIBS)

# The MPLS network emulator as a program of its own (the tests link it in directly).
$(BUILD)/vantage-mplsemu: $(patsubst %.c,$(BUILD)/obj/%.o,selftests/mpls/emu.c selftests/mpls/main.c)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ -lm

# The same BPF objects built with clang-19, loaded by the tests next to clang's.
clang19-bpf:
	$(Q)if command -v clang-19 >/dev/null; then \
		$(MAKE) --no-print-directory BUILD=$(BUILD)/clang-19 CLANG=clang-19 bpf; \
	else echo "  note: clang-19 not installed, skipping the clang-19 build"; fi

# The BPF objects built as on a machine without kernel BTF (from the committed
# vmlinux.h); the tests load them too, so the fallback is known to work.
fallback-bpf:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/nobtf VMLINUX_BTF=/nonexistent bpf

$(BUILD):
	$(Q)mkdir -p $@

# Debian packages the build, the tests and the benchmarks need.
DEB_PKGS := make gcc clang llvm clang-19 libbpf-dev bpftool libelf-dev zlib1g-dev python3 \
	iproute2 nftables iputils-ping procps util-linux jq bpftrace yamllint curl \
	scamper bc time perl gawk iperf3 sockperf netsniff-ng \
	nfdump tshark prometheus gnuplot-nox xdp-tools python3 python3-jsonschema

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "  DEPS     installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: must be root to install:$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq >/dev/null && \
		apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
		{ echo "make deps: apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi

check: deps
	$(Q)$(MAKE) --no-print-directory all clang19-bpf fallback-bpf
	$(Q)$(BUILD)/selftests/test_runner $(if $(T),-t $(T)) $(if $(TV),-v)

# The main job: the agent with its embedded default (latency of every container,
# counters on the uplink, metrics on 127.0.0.1:9464), after the feature report.
run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/vantage
	$(Q)$(BUILD)/vantage features
	$(Q)exec $(BUILD)/vantage agent

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)selftests/bench/run $(BUILD) $(if $(B),$(B))

install: $(BUILD)/vantage $(BUILD)/vantage.bash-completion
	install -D -m 0755 $(BUILD)/vantage $(DESTDIR)$(PREFIX)/sbin/vantage
	install -D -m 0644 $(BUILD)/vantage.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/vantage
	install -D -m 0644 $(BUILD)/bpf/policy.bpf.o $(DESTDIR)$(PREFIX)/share/vantage/policy.bpf.o
	for m in $(MANS); do install -D -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man8/$$(basename $$m); done
	install -D -m 0644 tools/vantage-agent.conf $(DESTDIR)/etc/vantage/agent.conf
	install -D -m 0644 tools/deploy/vantage-agent.service $(DESTDIR)/etc/systemd/system/vantage-agent.service

# The record schemas are the one description of -j output; the page's tables follow them
# (test_records checks that they do).
man-records:
	$(call msg,GEN,tools/man/vantage-export.8)
	$(Q)python3 tools/man/gen-records.py --write

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d $(BUILD)/obj/*/*/*/*.d)
