#include "concur/asyncio/coro.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

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
// Coroutine frames and Task objects come from per-thread free lists, one per 16-byte size
// class up to 1 KiB. Empty lists are refilled from 64 KiB chunks carved out of 2 MiB slabs
// mapped (and pre-faulted) at once. Memory is kept for reuse for the life of the process:
// a block freed on another thread joins that thread's list; a thread that exits hands its
// lists and the rest of its chunk to a global depot that the next refill draws from.
// Peak coroutine memory is therefore retained, as in most allocators; sanitizer builds use
// plain operator new instead.
constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxSmall = 1024;
constexpr std::size_t kClasses = kMaxSmall / kGranule;
constexpr std::size_t kSlab = std::size_t(2) << 20;
constexpr std::size_t kChunk = std::size_t(64) << 10;

struct FreeBlock {
  FreeBlock* next;
};

struct Region {
  char* begin = nullptr;
  char* end = nullptr;
};

struct Depot {
  std::mutex mu;
  FreeBlock* heads[kClasses] = {};
  std::vector<Region> partial;  // leftovers of chunks of exited threads
  Region slab;                  // the slab chunks are cut from
};

Depot& depot() {
  static Depot* d = new Depot;  // never destroyed: threads may exit after static destruction
  return *d;
}

/// A region of at least `min_size` bytes to carve blocks from: the rest of a chunk an exited
/// thread left (too small ones become free blocks of the largest class they can hold), or a
/// fresh chunk.
Region take_chunk(std::size_t min_size) {
  Depot& d = depot();
  std::lock_guard<std::mutex> g(d.mu);
  while (!d.partial.empty()) {
    Region r = d.partial.back();
    d.partial.pop_back();
    auto size = static_cast<std::size_t>(r.end - r.begin);
    if (size >= min_size) return r;
    if (size >= kGranule) {
      std::size_t c = std::min(size / kGranule, kClasses) - 1;
      auto* b = reinterpret_cast<FreeBlock*>(r.begin);
      b->next = d.heads[c];
      d.heads[c] = b;
    }
  }
  if (d.slab.begin == d.slab.end) {
    void* p = ::mmap(nullptr, kSlab, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    d.slab.begin = static_cast<char*>(p);
    d.slab.end = d.slab.begin + kSlab;
  }
  Region r{d.slab.begin, d.slab.begin + kChunk};
  d.slab.begin += kChunk;
  return r;
}

struct Pool {
  FreeBlock* heads[kClasses] = {};
  Region bump;

  void* refill(std::size_t c) {
    {
      Depot& d = depot();
      std::lock_guard<std::mutex> g(d.mu);
      if (FreeBlock* b = d.heads[c]) {  // take the whole list
        d.heads[c] = nullptr;
        heads[c] = b->next;
        return b;
      }
    }
    std::size_t size = (c + 1) * kGranule;
    if (static_cast<std::size_t>(bump.end - bump.begin) < size) {
      // The rest of the old chunk is smaller than this block; file it under its own class.
      give_rest();
      bump = take_chunk(size);
    }
    void* p = bump.begin;
    bump.begin += size;
    return p;
  }

  void give_rest() noexcept {
    auto rest = static_cast<std::size_t>(bump.end - bump.begin);
    if (rest >= kGranule) {
      std::size_t c = std::min(rest / kGranule, kClasses) - 1;
      auto* b = reinterpret_cast<FreeBlock*>(bump.begin);
      b->next = heads[c];
      heads[c] = b;
    }
    bump = {};
  }

  ~Pool() {
    Depot& d = depot();
    std::lock_guard<std::mutex> g(d.mu);
    if (bump.begin != bump.end) d.partial.push_back(bump);
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = heads[c]) {
        heads[c] = b->next;
        b->next = d.heads[c];
        d.heads[c] = b;
      }
    }
  }
};
thread_local Pool tls_pool;

inline std::size_t size_class(std::size_t n) noexcept { return (n + kGranule - 1) / kGranule - 1; }
}  // namespace

void* frame_alloc(std::size_t n) {
  if (n == 0 || n > kMaxSmall) return ::operator new(n);
  std::size_t c = size_class(n);
  Pool& p = tls_pool;
  if (FreeBlock* b = p.heads[c]) {
    FreeBlock* next = b->next;
    p.heads[c] = next;
    return b;
  }
  return p.refill(c);
}

void frame_free(void* ptr, std::size_t n) noexcept {
  if (n == 0 || n > kMaxSmall) {
    ::operator delete(ptr);
    return;
  }
  std::size_t c = size_class(n);
  Pool& p = tls_pool;
  auto* b = static_cast<FreeBlock*>(ptr);
  b->next = p.heads[c];
  p.heads[c] = b;
}
#endif

}  // namespace concur::asyncio::detail
