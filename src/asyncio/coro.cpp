#include "concur/asyncio/coro.hpp"

#include <cstdlib>
#include <new>

namespace concur::asyncio::detail {

thread_local std::coroutine_handle<> tls_next;

void drive(std::coroutine_handle<> h) {
  auto saved = std::exchange(tls_next, nullptr);
  while (h) {
    h.resume();
    h = std::exchange(tls_next, nullptr);
  }
  tls_next = saved;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
void* frame_alloc(std::size_t n) { return ::operator new(n); }
void frame_free(void* p, std::size_t n) noexcept { ::operator delete(p, n); }
#else
namespace {
// Size classes of 64 bytes up to 1 KiB; each thread keeps up to kKeep free frames per class.
constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 16;
constexpr std::size_t kKeep = 4096;
struct FreeBlock {
  FreeBlock* next;
};
struct Pool {
  FreeBlock* heads[kClasses] = {};
  std::size_t counts[kClasses] = {};
  ~Pool() {
    for (auto& h : heads) {
      while (h) {
        FreeBlock* n = h->next;
        ::operator delete(static_cast<void*>(h));
        h = n;
      }
    }
  }
};
thread_local Pool tls_pool;
}  // namespace

void* frame_alloc(std::size_t n) {
  std::size_t c = (n + kGranule - 1) / kGranule;
  if (c == 0 || c > kClasses) return ::operator new(n);
  Pool& p = tls_pool;
  if (FreeBlock* b = p.heads[c - 1]) {
    p.heads[c - 1] = b->next;
    --p.counts[c - 1];
    return b;
  }
  return ::operator new(c* kGranule);
}

void frame_free(void* ptr, std::size_t n) noexcept {
  std::size_t c = (n + kGranule - 1) / kGranule;
  if (c == 0 || c > kClasses) {
    ::operator delete(ptr);
    return;
  }
  Pool& p = tls_pool;
  if (p.counts[c - 1] >= kKeep) {
    ::operator delete(ptr);
    return;
  }
  auto* b = static_cast<FreeBlock*>(ptr);
  b->next = p.heads[c - 1];
  p.heads[c - 1] = b;
  ++p.counts[c - 1];
}
#endif

}  // namespace concur::asyncio::detail
