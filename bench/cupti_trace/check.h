// CHECK(cond) for the tracer's CUPTI-free self-tests (selftest.cpp, mock/e2e_test.cpp): counts passes and
// failures, prints each failure with its line; the program reports the counts at the end.
#pragma once

#include <cstdio>

inline int g_failed = 0, g_passed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      ++g_passed;                                                          \
    } else {                                                               \
      ++g_failed;                                                          \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)
