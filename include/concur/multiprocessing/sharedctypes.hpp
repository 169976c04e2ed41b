#pragma once
/// \file multiprocessing.sharedctypes: Value<T> and Array<T> in shared memory.
///
///     mp::Value<long> counter(0);
///     { std::scoped_lock g(counter.get_lock()); counter.value() += 1; }
///     mp::Array<double> arr(1000);  arr[3] = 1.5;
///
/// Each object owns a shared-memory segment ("concur_<pid>_<hex>") holding a small header, an
/// RLock (unless lock = false) and the elements. A child forked afterwards shares it through the
/// inherited MAP_SHARED mapping; any other process attaches with `from_handle(obj.handle())`, and
/// cereal serialises the object as its handle, so it can be a worker's argument. Copies in one
/// process share the same memory. Lifetime of the name, and what a crash leaves behind: as for
/// the synchronisation objects (see synchronize.hpp): the creator unlinks the name when its last
/// copy goes or at its normal exit; cleanup_leftovers() after a crash.
///
/// Process and thread safety: the elements are plain memory shared by every attached process;
/// reads and writes from several processes need get_lock() (or atomics of your own: a
/// std::atomic_ref on an element works across processes for lock-free types). get_lock() is a
/// robust RLock: if a holder dies, the next acquirer gets it, and the value may be half-written.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "concur/multiprocessing/detail/shared_serializable.hpp"
#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/multiprocessing/synchronize.hpp"

namespace concur::multiprocessing {

namespace detail {

inline constexpr std::uint32_t kValueKind = 0x554c4156U;  // "VALU"
inline constexpr std::uint32_t kArrayKind = 0x59415241U;  // "ARAY"

/// A Value's or Array's memory in this process.
struct CtypeBlock {
  std::shared_ptr<Segment> segment;
  std::byte* data = nullptr;
  std::uint64_t count = 0;
  std::shared_ptr<RLock> lock;  // null when made with lock = false
};
CtypeBlock create_ctype(std::uint32_t kind, std::size_t elem_size, std::size_t elem_align, std::uint64_t count,
                        std::uint64_t type_tag, bool lock);
CtypeBlock attach_ctype(const SharedHandle& h, std::uint32_t kind, std::size_t elem_size, std::uint64_t type_tag);

/// A tag for T that agrees between processes (FNV-1a of the mangled type name).
template <class T>
std::uint64_t type_tag() {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char* p = typeid(T).name(); *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ULL;
  return h;
}

[[noreturn]] inline void throw_no_lock(const char* what) {
  throw std::logic_error(std::string(what) + " was made with lock = false: it has no get_lock()");
}

}  // namespace detail

/// One T in shared memory (Python's `multiprocessing.Value`). Reading or writing value() from
/// several processes needs get_lock().
template <class T>
class Value : public detail::SharedSerializable<Value<T>> {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::Value<T> needs a trivially copyable T: it lives as raw bytes in shared memory "
                "(use a fixed-size struct or std::array instead of std::string or std::vector)");

 public:
  /// A zero-initialised value (Python's `Value(typecode)`).
  Value() : Value(T{}) {}
  /// A new value holding `init`; with `lock` (default) it has its own RLock.
  explicit Value(T init, bool lock = true)
      : block_(detail::create_ctype(detail::kValueKind, sizeof(T), alignof(T), 1, detail::type_tag<T>(), lock)) {
    ptr_ = ::new (static_cast<void*>(block_.data)) T(init);
  }

  [[nodiscard]] T& value() noexcept { return *ptr_; }
  [[nodiscard]] const T& value() const noexcept { return *ptr_; }
  /// The RLock that guards it. std::logic_error if made with lock = false.
  [[nodiscard]] RLock& get_lock() const {
    if (!block_.lock) detail::throw_no_lock("Value");
    return *block_.lock;
  }
  [[nodiscard]] SharedHandle handle() const { return {block_.segment->name(), 0, detail::kValueKind}; }

 private:
  friend class detail::SharedSerializable<Value>;
  explicit Value(const SharedHandle& h)
      : Value(detail::attach_ctype(h, detail::kValueKind, sizeof(T), detail::type_tag<T>())) {}
  explicit Value(detail::CtypeBlock b) : block_(std::move(b)), ptr_(std::launder(reinterpret_cast<T*>(block_.data))) {}
  detail::CtypeBlock block_;
  T* ptr_ = nullptr;
};

/// A fixed-size array of T in shared memory (Python's `multiprocessing.Array`).
template <class T>
class Array : public detail::SharedSerializable<Array<T>> {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::Array<T> needs a trivially copyable T: it lives as raw bytes in shared memory");

 public:
  /// `n` zero-initialised elements (Python's `Array(typecode, n)`).
  explicit Array(std::size_t n = 0, bool lock = true)
      : block_(detail::create_ctype(detail::kArrayKind, sizeof(T), alignof(T), n, detail::type_tag<T>(), lock)) {
    ptr_ = std::launder(reinterpret_cast<T*>(block_.data));
    for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(block_.data + i * sizeof(T))) T{};
  }
  /// A copy of `init` (Python's `Array(typecode, [1, 2, 3])`).
  explicit Array(const std::vector<T>& init, bool lock = true) : Array(init.size(), lock) {
    for (std::size_t i = 0; i < init.size(); ++i) ptr_[i] = init[i];
  }

  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(block_.count); }
  [[nodiscard]] T* data() const noexcept { return ptr_; }
  [[nodiscard]] std::span<T> span() const noexcept { return {ptr_, size()}; }
  /// Unchecked, as std::vector's.
  T& operator[](std::size_t i) const noexcept { return ptr_[i]; }
  [[nodiscard]] T* begin() const noexcept { return ptr_; }
  [[nodiscard]] T* end() const noexcept { return ptr_ + size(); }
  [[nodiscard]] RLock& get_lock() const {
    if (!block_.lock) detail::throw_no_lock("Array");
    return *block_.lock;
  }
  [[nodiscard]] SharedHandle handle() const { return {block_.segment->name(), 0, detail::kArrayKind}; }

 private:
  friend class detail::SharedSerializable<Array>;
  explicit Array(const SharedHandle& h)
      : Array(detail::attach_ctype(h, detail::kArrayKind, sizeof(T), detail::type_tag<T>())) {}
  explicit Array(detail::CtypeBlock b) : block_(std::move(b)), ptr_(std::launder(reinterpret_cast<T*>(block_.data))) {}
  detail::CtypeBlock block_;
  T* ptr_ = nullptr;
};

}  // namespace concur::multiprocessing
