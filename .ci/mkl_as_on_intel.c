/* Make MKL take the code path it takes on an Intel CPU, on an AMD one.
 *
 * MKL picks its kernels by CPU vendor first: on AMD it runs a generic path, on Intel the fastest one
 * the CPU supports (AVX-512 here, or what MKL_ENABLE_INSTRUCTIONS allows). torch links MKL into
 * libtorch_cpu.so and calls this vendor check through the PLT, so a preloaded library can answer it.
 * `make test-cpu-paths` runs the model-number tests with it, so that float tolerances are also checked
 * against the sums MKL forms on Intel machines. MKL still checks the CPU's features itself, so it never
 * runs an instruction the CPU lacks. Test use only.
 *
 *   cc -shared -fPIC -O2 -o mkl_as_on_intel.so .ci/mkl_as_on_intel.c
 *   LD_PRELOAD=$PWD/mkl_as_on_intel.so MKL_VERBOSE=1 python -c 'import torch; torch.ones(8, 8) @ torch.ones(8, 8)'
 */
int mkl_serv_intel_cpu_true(void) { return 1; }
int mkl_serv_intel_cpu(void) { return 1; }
