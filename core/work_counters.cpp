#include "core/work_counters.h"

namespace livernet::detail {
std::atomic<std::int64_t> g_host_syncs{0};
std::atomic<std::int64_t> g_launches{0};
}  // namespace livernet::detail
