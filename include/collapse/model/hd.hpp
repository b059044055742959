// One spelling for functions that both backends compile: the CPU backend
// includes these headers with g++, the CUDA backend with nvcc.
#pragma once

#if defined(__CUDACC__)
#define COLLAPSE_HD __host__ __device__
#else
#define COLLAPSE_HD
#endif
