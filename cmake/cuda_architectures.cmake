# The default CUDA targets (docs/cuda-backend.md, "GPUs and architectures"),
# included before enable_language(CUDA) by the top-level and the standalone
# CMakeLists. A binary that runs on every NVIDIA part researchers' clusters
# have, from Ampere on: machine code for sm_80 (A100; also runs on A30),
# sm_86 (A40, A10, RTX 30xx/A6000; also sm_87), sm_89 (L40S, L4, RTX 40xx),
# sm_90 (H100, H200, GH200), sm_100 (B200, GB200; also sm_103) and sm_120
# (RTX 50xx, RTX PRO 6000 Blackwell; also sm_121), plus compute_120 PTX that
# the driver compiles for parts newer than all of them. Not `native`: a
# binary built on one node of a cluster often runs on another kind. A build
# for one machine can say -DCMAKE_CUDA_ARCHITECTURES=native (or 90-real),
# which compiles in a sixth of the time.
set(COLLAPSE_CUDA_ARCHITECTURES_DEFAULT 80-real 86-real 89-real 90-real 100-real 120-real 120-virtual)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES ${COLLAPSE_CUDA_ARCHITECTURES_DEFAULT})
endif()
