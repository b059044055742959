// Measures the GPU's FP32 and FP64 fused multiply-add peak (no tensor
// cores): every thread runs eight independent FMA chains on registers, with
// enough blocks to fill every multiprocessor several times. The %-of-peak
// columns of bench_backends on a GPU divide by this figure, measured on the
// card as it runs (its clocks, its power limit), not a datasheet number.
// A multiply-add counts as 2 FLOP.
//
//   gpu_fma_peak [--device D] [--iterations I=65536]   prints a table and RESULT lines
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr int chains = 8;
constexpr int threads_per_block = 256;

template <class Real>
__global__ void fma_chains(Real* out, Real a, Real b, int iterations) {
    Real value[chains];
    // Start values the compiler cannot know, so nothing folds.
    for (int c = 0; c < chains; ++c) value[c] = static_cast<Real>(threadIdx.x + c) * b;
    for (int i = 0; i < iterations; ++i) {
#pragma unroll
        for (int c = 0; c < chains; ++c) value[c] = fma(value[c], a, b);
    }
    Real sum = 0;
    for (int c = 0; c < chains; ++c) sum += value[c];
    out[blockIdx.x * blockDim.x + threadIdx.x] = sum; // keeps every chain alive
}

void check(cudaError_t error, const char* what) {
    if (error == cudaSuccess) return;
    std::fprintf(stderr, "gpu_fma_peak: %s: %s (%s)\n", what, cudaGetErrorName(error), cudaGetErrorString(error));
    std::exit(1);
}

template <class Real>
double measure_gflops(const cudaDeviceProp& properties, int iterations, const char* name) {
    int blocks_per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, fma_chains<Real>, threads_per_block, 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    const int blocks = std::max(1, blocks_per_sm) * properties.multiProcessorCount * 4;
    Real* out = nullptr;
    check(cudaMalloc(&out, sizeof(Real) * static_cast<std::size_t>(blocks) * threads_per_block), "cudaMalloc");
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    // a, b near 1 and 0 keep the chains finite over any iteration count.
    const Real a = static_cast<Real>(0.999999), b = static_cast<Real>(1e-7);
    fma_chains<Real><<<blocks, threads_per_block>>>(out, a, b, 256); // warm-up: module load, clocks up
    check(cudaGetLastError(), "launch");
    check(cudaDeviceSynchronize(), "warm-up");
    std::vector<double> rates;
    for (int repeat = 0; repeat < 7; ++repeat) {
        check(cudaEventRecord(start), "cudaEventRecord");
        fma_chains<Real><<<blocks, threads_per_block>>>(out, a, b, iterations);
        check(cudaEventRecord(stop), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "kernel");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        const double flop = 2.0 * chains * iterations * static_cast<double>(blocks) * threads_per_block;
        rates.push_back(flop / (ms * 1e-3) / 1e9);
    }
    std::sort(rates.begin(), rates.end());
    const double median = rates[rates.size() / 2];
    std::printf("%-5s %12.1f GFLOP/s (median of %zu; min %.1f, max %.1f) %d blocks x %d threads\n", name, median,
                rates.size(), rates.front(), rates.back(), blocks, threads_per_block);
    std::printf("RESULT {\"precision\":\"%s\",\"device\":\"%s\",\"peak_gflops\":%.6g,\"multiprocessors\":%d}\n", name,
                properties.name, median, properties.multiProcessorCount);
    check(cudaFree(out), "cudaFree");
    check(cudaEventDestroy(start), "cudaEventDestroy");
    check(cudaEventDestroy(stop), "cudaEventDestroy");
    return median;
}

} // namespace

int main(int argc, char** argv) {
    int device = 0, iterations = 65536;
    for (int a = 1; a + 1 < argc; a += 2) {
        const std::string flag = argv[a];
        if (flag == "--device") device = std::atoi(argv[a + 1]);
        else if (flag == "--iterations") iterations = std::max(1, std::atoi(argv[a + 1]));
        else {
            std::fprintf(stderr, "usage: gpu_fma_peak [--device D] [--iterations I]\n");
            return 2;
        }
    }
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("gpu_fma_peak: no CUDA device\n");
        return 1;
    }
    check(cudaSetDevice(device), "cudaSetDevice");
    cudaDeviceProp properties{};
    check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
    std::printf("%s, %d multiprocessors, compute capability %d.%d\n", properties.name, properties.multiProcessorCount,
                properties.major, properties.minor);
    measure_gflops<float>(properties, iterations, "fp32");
    measure_gflops<double>(properties, std::max(1, iterations / 2), "fp64");
    return 0;
}
