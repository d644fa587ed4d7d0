# The Python binding (python/): the vkv package with its C extension
# vkv._vkv, built against Debian's python3-dev for /usr/bin/python3 (not
# whatever python3 comes first on PATH) and libvkv.so.
#
#   make python          the package into build/python:
#                        PYTHONPATH=build/python /usr/bin/python3 -c 'import vkv'
#   make check-python    its pytest suite (python/tests), host and cuda
#                        backends (cuda over tests/fakecuda)
#   make bench-python    Python's per-step overhead against C, and the
#                        example's tokens/s against torch caches
#
# Not part of `make` (build-all): it needs scripts/setup.sh python first.
# The extension leaves Python's symbols undefined, as extensions do: the
# interpreter that loads it supplies them.

PYTHON ?= /usr/bin/python3
PY_DIR := $(B)/python
PY_PKG := $(PY_DIR)/vkv
# One interpreter start-up for all we ask it: headers, suffix, version.
PY_VARS := $(shell $(PYTHON) -c 'import sys, sysconfig; print(sysconfig.get_paths()["include"], sysconfig.get_config_var("EXT_SUFFIX"), "%d.%d" % sys.version_info[:2])' 2>/dev/null)
PY_INC := $(word 1,$(PY_VARS))
PY_EXT_SUFFIX := $(word 2,$(PY_VARS))
PY_VERSION := $(word 3,$(PY_VARS))
# Where Debian's /usr/bin/python3 looks: /usr/lib/python3/dist-packages for
# packages, /usr/local/lib/python3.X/dist-packages for local installs.
ifeq ($(PREFIX),/usr)
PY_SITEDIR ?= $(PREFIX)/lib/python3/dist-packages
else
PY_SITEDIR ?= $(PREFIX)/lib/python$(PY_VERSION)/dist-packages
endif

PY_CSRCS := $(sort $(wildcard python/vkv/*.c))
PY_OBJS := $(patsubst python/vkv/%.c,$(PY_DIR)/obj/%.o,$(PY_CSRCS))
PY_SRCS := $(sort $(wildcard python/vkv/*.py))
PY_EXT := $(PY_PKG)/_vkv$(PY_EXT_SUFFIX)
# The installed copy finds libvkv.so.0 in LIBDIR; the build tree's, two
# directories up, in build/.
PY_EXT_INST := $(PY_DIR)/install/_vkv$(PY_EXT_SUFFIX)

# Python's headers are -isystem: our warnings, not theirs, are errors.
PY_CFLAGS = $(ALL_CFLAGS) -fPIC -fvisibility=hidden -Iinclude -isystem $(PY_INC)

.PHONY: python check-python bench-python install-python uninstall-python \
	setup-python install-python-skipped
python: $(PY_EXT) $(PY_SRCS:python/vkv/%=$(PY_PKG)/%)

setup-python:
	@sh $(SETUP) python

$(PY_DIR)/obj/%.o: python/vkv/%.c $(PY_DIR)/obj/%.d
	@if [ ! -f "$(PY_INC)/Python.h" ]; then \
		echo "python: no Python.h for $(PYTHON): run sh $(SETUP) python as root" >&2; \
		exit 1; fi
	@mkdir -p $(@D)
	$(CC) $(PY_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(PY_EXT): $(PY_OBJS) $(B)/libvkv.so
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(PY_OBJS) -L$(B) -lvkv \
		-Wl,-rpath,'$$ORIGIN/../..' $(ALL_LDFLAGS)

$(PY_EXT_INST): $(PY_OBJS) $(B)/libvkv.so
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(PY_OBJS) -L$(B) -lvkv \
		-Wl,-rpath,$(LIBDIR) $(ALL_LDFLAGS)

$(PY_PKG)/%.py: python/vkv/%.py
	@mkdir -p $(@D)
	cp $< $@

DEP_FILES += $(PY_OBJS:.o=.d)

# pytest's cache and Python's bytecode would land in the source tree: the
# one is off, the other goes under build/.
PYTEST = $(PYTHON) -m pytest -q -p no:cacheprovider
check-python bench-python: export PYTHONPYCACHEPREFIX := $(abspath $(PY_DIR))/pycache

CHECK_TARGETS += check-python
ifeq ($(SANITIZE),)
check-python: setup-python
	@$(MAKE) --no-print-directory python $(FAKECUDA_LIB) $(SHIM_SO)
	PYTHONPATH=$(PY_DIR) VKV_TEST_FAKECUDA=$(FAKECUDA_DIR) \
		VKV_TEST_LIBDIR=$(B) $(PYTEST) python/tests
	@# The installed copy imports from where install-python puts it.
	@rm -rf $(PY_DIR)/root
	@$(MAKE) --no-print-directory install-python PREFIX=/usr/local \
		DESTDIR=$(abspath $(PY_DIR)/root) >/dev/null
	@cd / && LD_LIBRARY_PATH=$(abspath $(B)) \
		PYTHONPATH=$(abspath $(PY_DIR)/root)/usr/local/lib/python$(PY_VERSION)/dist-packages \
		$(PYTHON) -c 'import vkv, sys; assert "/root/usr/local/" in vkv.__file__, vkv.__file__; \
		vkv.Cache(1, 1, 16, "float16", 1, 16, backend="host").destroy()'
	@echo "check-python: passed"
else
# The sanitizers' runtimes must be loaded before the interpreter starts.
check-python:
	@echo "check-python: skipped under SANITIZE=$(SANITIZE): an instrumented" \
		"extension cannot load into an uninstrumented python3"
endif

# The C side of the step-overhead ratio: the same schedule as bench.py's.
PY_STEP_C := $(PY_DIR)/step_c
$(PY_STEP_C): python/bench/step_c.c $(B)/libvkv.so $(PY_STEP_C).d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Iinclude -o $@ $< -L$(B) -lvkv \
		-Wl,-rpath,'$$ORIGIN/..' $(ALL_LDFLAGS)
DEP_FILES += $(PY_STEP_C).d

bench-python: setup-python
	@$(MAKE) --no-print-directory python $(PY_STEP_C)
	PYTHONPATH=$(PY_DIR):python/examples $(PYTHON) python/examples/bench.py \
		--step-c $(PY_STEP_C)

# Without Python's headers `make install` leaves the binding out, saying so.
ifneq ($(wildcard $(PY_INC)/Python.h),)
install: install-python
else
install: install-python-skipped
endif
uninstall: uninstall-python
install-python-skipped:
	@echo "install: no Python.h for $(PYTHON): the Python binding is not installed"
install-python: $(PY_EXT_INST) $(PY_SRCS)
	install -d $(DESTDIR)$(PY_SITEDIR)/vkv
	install -m 644 $(PY_SRCS) $(DESTDIR)$(PY_SITEDIR)/vkv/
	install -m 755 $(PY_EXT_INST) $(DESTDIR)$(PY_SITEDIR)/vkv/

uninstall-python:
	rm -rf $(DESTDIR)$(PY_SITEDIR)/vkv
