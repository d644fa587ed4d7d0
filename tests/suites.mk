# Every test suite, in one place: its program, its sources, what it needs to
# run and which check target runs it. The fragments that build and run the
# suites (mk/tests.mk, mk/tiers.mk, mk/cuda.mk, mk/kmod.mk) take their lists
# from here, so a new suite is registered by one line in this file.
# tests/README.md says how to run each one by hand.
#
# A suite is a program named after its source: tests/test_x.c builds
# test_x, unless <suite>_SRCS names more files.

# check-core: the library through its public API (tests/harness.h), run once
# per backend: VKV_BACKEND=host, then VKV_BACKEND=cuda with the fake
# libcuda.so.1 from tests/fakecuda on LD_LIBRARY_PATH. Programs in
# build/tests/.
CORE_SUITES := test_api test_integrity test_concurrency test_swap \
	test_swap_trace test_quant_swap test_regress test_abi

# check-core too (through check-model): the randomized model test, on both
# backends like the core suites, with the seeds and sizes of mk/tests.mk.
MODEL_SUITE := test_model
test_model_SRCS := tests/test_model.c $(sort $(wildcard tests/model/*.c))

# check-tiers: the tiers' building blocks (CRC32C, host tier, disk tier,
# quantizer) through lib/'s internal headers; no backend. Swap files go to
# the directories in VKV_TEST_SWAPDIRS (default: $TMPDIR, else /tmp).
# Programs in build/tests/.
TIERS_SUITES := test_tiers test_disk_tier test_tier_store

# check-cuda: the cuda backend and its test double, with the fake
# libcuda.so.1 on LD_LIBRARY_PATH (by hand: LD_LIBRARY_PATH=build/fakecuda).
# test_cuda_abi compares lib/cuda_drv.h with NVIDIA's cuda.h and is built
# only where one is installed. Programs in build/cuda-tests/.
CUDA_SUITES := test_fakecuda test_backend_cuda
CUDA_SUITES += test_fakecuda_exec test_fakecuda_graph
CUDA_ABI_SUITE := test_cuda_abi
test_backend_cuda_SRCS := tests/test_backend_cuda.c \
	tests/test_backend_cuda_faults.c tests/test_backend_cuda_hostreg.c

# check-vkvctl: vkvctl on the host against a fake sysfs tree; needs the
# vkvctl binary (VKVCTL, default build/vkvctl). Program in build/tests/.
VKVCTL_SUITES := test_vkvctl_metrics

# check-kmod: the guest suites (tests/vm/), linked statically, run as root in
# a qemu guest with vkv.ko loaded, in this order; `make check-kmod
# VM_SUITES="..."` runs a subset. test_kmod_client also links lib/kmod_client.c,
# test_lib links libvkv.a; test_shim_kmod runs mk/shim.mk's engine under
# libvkv-shim.so. The benchmark runs in a boot of its own.
# Programs in build/kmod/bin/.
GUEST_SUITES := test_ioctl test_kswap test_limits test_kmod_client test_vkvctl \
	test_lib test_users test_shrinker test_lockorder test_abuse test_shim_kmod
GUEST_BENCH := bench_kmod

# check-shim: libvkv-shim.so under test engines (tests/shim_engine.c, run
# with LD_PRELOAD by the suite) and vkvctl's process commands. Programs in
# build/tests/.
SHIM_SUITES := test_shim
# test_shim_cuda: the CUDA path under tests/shim_cuda_engine.c, on the fake
# libcuda.so.1 (LD_LIBRARY_PATH=build/fakecuda).
SHIM_SUITES += test_shim_cuda
# test_vkvctl_top, test_vkvctl_ps: vkvctl top against a fake sysfs tree,
# top and ps against the engines (tests/vkvctl_test.h).
SHIM_SUITES += test_vkvctl_top test_vkvctl_ps

# check-python (mk/python.mk): the Python binding's pytest suite,
# python/tests/, not a program of its own: `make check-python`.
