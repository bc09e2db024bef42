# libFuzzer targets: every tests/fuzz/fuzz_<name>.c is one fuzzer, linked
# against the monitor's sources (src/core, src/cpu, src/vmm) and the virtqueue test
# helper (tests/unit/virtq_fake.c), as a static archive so only what a
# target uses is pulled in; built with clang, ASan and UBSan.
#   make fuzz        builds $(BUILD)/fuzz/fuzz_<name>
#   make fuzz-smoke  runs each one briefly; a crash fails the make
#   make fuzz-run-<name> FUZZ_TIME=600   fuzzes one target for longer
# Seeds: tests/fuzz/corpus/<name>/ when present (read only); what the
# fuzzers find goes to $(BUILD)/fuzz/corpus/<name>/, crashes to
# $(BUILD)/fuzz/artifacts/.

FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
# The library is warned about but not -Werror here: gcc's build enforces
# that, and clang's extra warnings in someone else's file must not stop
# the fuzzers.
FUZZ_CFLAGS := $(CFLAGS_COMMON) -Wno-error -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Itests
FUZZ_TFLAGS := $(CFLAGS_COMMON) -O1 $(FUZZ_SAN) -fsanitize=fuzzer -Itests

FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES  := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_BINS   := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
FUZZ_LIB    := $(BUILD)/fuzz/libember.a
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) $(BUILD)/fuzz/obj/tests/unit/virtq_fake.o

# Smoke run per fuzzer: whichever limit comes first.
FUZZ_RUNS   ?= 20000
FUZZ_TIME   ?= 15
FUZZ_ARGS    = -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
               $(if $(FUZZ_MAX_LEN_$*),-max_len=$(FUZZ_MAX_LEN_$*))
# Per-target input size limit (libFuzzer's default otherwise: 4096 or the
# largest seed): fuzz_virtq's input is a queue header plus guest RAM.
FUZZ_MAX_LEN_fuzz_virtq := 16384
# fuzz_cpu's input is a 4-byte header plus code run on the software CPU.
FUZZ_MAX_LEN_fuzz_cpu := 1024

.PHONY: fuzz fuzz-smoke $(FUZZ_NAMES:%=fuzz-smoke-%) $(FUZZ_NAMES:%=fuzz-run-%)

fuzz: $(FUZZ_BINS)

$(BUILD)/fuzz/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_TFLAGS) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-smoke: $(FUZZ_NAMES:%=fuzz-smoke-%)

# One fuzzer: fresh libFuzzer log in $(BUILD)/fuzz/<name>.log, its tail
# (and the crash report) on failure, the final counts on success.
$(FUZZ_NAMES:%=fuzz-smoke-%): fuzz-smoke-%: $(BUILD)/fuzz/%
	@mkdir -p $(BUILD)/fuzz/corpus/$* $(BUILD)/fuzz/artifacts
	@echo "fuzz: $* ($(FUZZ_RUNS) runs or $(FUZZ_TIME) s)"
	@if $< $(FUZZ_ARGS) -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_TIME) \
		-artifact_prefix=$(BUILD)/fuzz/artifacts/$*- \
		$(BUILD)/fuzz/corpus/$* $(wildcard tests/fuzz/corpus/$*) \
		>$(BUILD)/fuzz/$*.log 2>&1; then \
		echo "fuzz: $*: $$(grep '^Done' $(BUILD)/fuzz/$*.log)"; \
	else \
		tail -60 $(BUILD)/fuzz/$*.log; echo "fuzz: $* FAILED (log: $(BUILD)/fuzz/$*.log)"; \
		exit 1; \
	fi

$(FUZZ_NAMES:%=fuzz-run-%): fuzz-run-%: $(BUILD)/fuzz/%
	@mkdir -p $(BUILD)/fuzz/corpus/$* $(BUILD)/fuzz/artifacts
	$< $(FUZZ_ARGS) -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(BUILD)/fuzz/artifacts/$*- \
		$(BUILD)/fuzz/corpus/$* $(wildcard tests/fuzz/corpus/$*)
