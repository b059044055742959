// Measures the FP32 (and FP64) fused multiply-add peak of the cores this
// process may use: every thread runs chains of independent vector FMAs on
// registers, with the widest vector ISA the build targets (AVX-512, else AVX2,
// else SSE with separate multiply and add). Twelve chains per thread hide the
// FMA latency (4 cycles on current x86 cores) at two FMA pipes per core.
// A multiply-add counts as 2 FLOP. docs/performance.md explains its use.
//
//   fma_peak [--threads T] [--seconds S]     prints one table and RESULT lines
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#define ISA "avx512"
struct Float { using Vec = __m512; using Real = float;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); } static Vec set(Real v) { return _mm512_set1_ps(v); } };
struct Double { using Vec = __m512d; using Real = double;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_pd(a, b, c); } static Vec set(Real v) { return _mm512_set1_pd(v); } };
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ISA "avx2+fma"
struct Float { using Vec = __m256; using Real = float;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); } static Vec set(Real v) { return _mm256_set1_ps(v); } };
struct Double { using Vec = __m256d; using Real = double;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_pd(a, b, c); } static Vec set(Real v) { return _mm256_set1_pd(v); } };
#else
#include <immintrin.h>
#define ISA "sse2 (no fma: mul+add)"
struct Float { using Vec = __m128; using Real = float;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); } static Vec set(Real v) { return _mm_set1_ps(v); } };
struct Double { using Vec = __m128d; using Real = double;
    static Vec fma(Vec a, Vec b, Vec c) { return _mm_add_pd(_mm_mul_pd(a, b), c); } static Vec set(Real v) { return _mm_set1_pd(v); } };
#endif

namespace {

constexpr int chains = 12;
constexpr long inner_iterations = 1 << 20;

// `rounds` x inner_iterations x chains vector FMAs; returns a value that
// depends on all of them so nothing is optimised away.
template <class T>
__attribute__((noinline)) double fma_chains(long rounds) {
    using Vec = typename T::Vec;
    using Real = typename T::Real;
    Vec acc[chains];
    for (int c = 0; c < chains; ++c) acc[c] = T::set(Real(1) + Real(c) * Real(1e-3));
    // x -> x * a + b with a just below 1 stays bounded for any number of steps.
    const Vec a = T::set(Real(0.999999)), b = T::set(Real(1e-7));
    for (long r = 0; r < rounds; ++r)
        for (long i = 0; i < inner_iterations; ++i)
#pragma GCC unroll 12
            for (int c = 0; c < chains; ++c) acc[c] = T::fma(acc[c], a, b);
    Real sum = 0;
    for (int c = 0; c < chains; ++c) {
        Real lanes[sizeof(Vec) / sizeof(Real)];
        std::memcpy(lanes, &acc[c], sizeof(Vec));
        for (Real v : lanes) sum += v;
    }
    return static_cast<double>(sum);
}

struct Measurement {
    double gflops = 0;
    double checksum = 0;
};

// All threads run the same number of rounds at once; the rate is total FLOP
// over the wall time of the parallel region.
template <class T>
Measurement measure(int threads, double seconds) {
    constexpr double flop_per_round = 2.0 * (sizeof(typename T::Vec) / sizeof(typename T::Real)) * chains * inner_iterations;
    // Calibrate on one round, then size the run to about `seconds`.
    auto start = std::chrono::steady_clock::now();
    double checksum = fma_chains<T>(1);
    const double one_round = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const long rounds = std::max(1L, static_cast<long>(seconds / std::max(one_round, 1e-6)));
    start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
    checksum += fma_chains<T>(rounds);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {flop_per_round * static_cast<double>(rounds) * threads / elapsed * 1e-9, checksum};
}

} // namespace

int main(int argc, char** argv) {
    int threads = omp_get_max_threads();
    double seconds = 1.0;
    int repeats = 5;
    for (int a = 1; a + 1 < argc; a += 2) {
        const std::string flag = argv[a];
        if (flag == "--threads") threads = std::atoi(argv[a + 1]);
        else if (flag == "--seconds") seconds = std::atof(argv[a + 1]);
        else if (flag == "--repeats") repeats = std::max(1, std::atoi(argv[a + 1]));
        else {
            std::fprintf(stderr, "usage: fma_peak [--threads T] [--seconds S] [--repeats R]\n");
            return 2;
        }
    }
    std::printf("%-8s %-24s %8s %12s %12s\n", "threads", "isa", "precision", "best GF/s", "median GF/s");
    for (int t : {1, threads}) {
        for (int precision = 0; precision < 2; ++precision) {
            std::vector<double> rates;
            for (int r = 0; r < repeats; ++r)
                rates.push_back(precision == 0 ? measure<Float>(t, seconds).gflops : measure<Double>(t, seconds).gflops);
            std::sort(rates.begin(), rates.end());
            const char* name = precision == 0 ? "float32" : "float64";
            std::printf("%-8d %-24s %8s %12.1f %12.1f\n", t, ISA, name, rates.back(), rates[rates.size() / 2]);
            std::printf("RESULT {\"threads\":%d,\"isa\":\"%s\",\"precision\":\"%s\",\"best_gflops\":%.2f,"
                        "\"median_gflops\":%.2f}\n",
                        t, ISA, name, rates.back(), rates[rates.size() / 2]);
        }
        if (threads == 1) break;
    }
    return 0;
}
