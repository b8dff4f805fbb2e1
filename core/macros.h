// Compiler portability macros shared by host and device code.
#pragma once

#if defined(__CUDACC__)
#define LN_HD __host__ __device__
#define LN_HD_INLINE __host__ __device__ __forceinline__
#else
#define LN_HD
#define LN_HD_INLINE inline
#endif
