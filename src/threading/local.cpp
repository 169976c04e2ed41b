#include "concur/threading/local.hpp"

#include <atomic>
#include <unordered_map>

namespace concur::threading::detail {

namespace {
std::atomic<std::uint64_t> g_next{1};
// Keyed by a never-reused id (not by address), so a new local at a dead one's address never
// sees the dead one's values.
thread_local std::unordered_map<std::uint64_t, std::shared_ptr<void>> tls_values;
}  // namespace

std::uint64_t next_local_id() noexcept { return g_next.fetch_add(1, std::memory_order_relaxed); }

void* local_find(std::uint64_t id) noexcept {
  auto it = tls_values.find(id);
  return it == tls_values.end() ? nullptr : it->second.get();
}

void local_store(std::uint64_t id, std::shared_ptr<void> value) { tls_values[id] = std::move(value); }

void local_erase(std::uint64_t id) noexcept { tls_values.erase(id); }

}  // namespace concur::threading::detail
