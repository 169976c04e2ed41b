#pragma once
/// \file What crosses a process boundary: arguments and results of tasks run in worker
/// processes, and what Connection::send / Queue::put carry. Serialised with cereal's binary
/// archive (Debian's libcereal-dev).
///
/// Serialisable: arithmetic types, enums, std::string, vector, deque, list, array, map,
/// unordered_map, set, unordered_set, optional, pair, tuple, variant, chrono durations of those,
/// trivially copyable aggregates (copied as raw bytes: same binary on both sides), and user
/// types that opt in with cereal's `template <class Archive> void serialize(Archive& ar)`
/// member (`ar(x, y, z);`). Anything else is a compile-time error naming the type.
///
/// Thread safety: stateless functions, safe from any thread.
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "concur/core/error.hpp"

namespace concur::multiprocessing {

namespace detail {
template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

/// Trivially copyable aggregates without a serialize() of their own travel as raw bytes.
template <class T>
concept RawAggregate =
    std::is_class_v<T> && std::is_trivially_copyable_v<T> && std::is_aggregate_v<T> && !is_std_array<T>::value &&
    !cereal::traits::has_member_serialize<T, cereal::BinaryOutputArchive>::value &&
    !cereal::traits::has_member_save<T, cereal::BinaryOutputArchive>::value;
}  // namespace detail

/// Data that could not be turned back into the type asked for (a truncated or foreign message:
/// Python's UnpicklingError).
class UnpicklingError : public Error {
 public:
  using Error::Error;
};

/// True when T can cross a process boundary.
template <class T>
inline constexpr bool serialisable_v =
    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value || detail::RawAggregate<T>;

namespace detail {
/// An input stream buffer over bytes that someone else owns (no copy).
class ViewBuf : public std::streambuf {
 public:
  ViewBuf(const char* p, std::size_t n) {
    char* b = const_cast<char*>(p);
    setg(b, b, b + n);
  }
};
/// Per-thread streams, reused: constructing a stream costs more than serialising a small value.
/// A nested dumps/loads on the same thread (a serialize() that calls dumps) gets fresh ones.
struct StreamCache {
  std::ostringstream out{std::ios::binary};
  std::istream in{nullptr};
  int out_depth = 0, in_depth = 0;
};
inline StreamCache& stream_cache() {
  thread_local StreamCache c;
  return c;
}
}  // namespace detail

/// T's bytes. A T that cannot be serialised does not compile (see the file comment).
template <class T>
std::string dumps(const T& value) {
  static_assert(serialisable_v<T>,
                "concur::multiprocessing: this type cannot cross a process boundary. Give it a cereal "
                "`template <class Archive> void serialize(Archive& ar) { ar(members...); }` member, or make it a "
                "trivially copyable aggregate.");
  detail::StreamCache& c = detail::stream_cache();
  if (c.out_depth > 0) {
    std::ostringstream os(std::ios::binary);
    {
      cereal::BinaryOutputArchive ar(os);
      ar(value);
    }
    return std::move(os).str();
  }
  ++c.out_depth;
  struct Leave {
    int& d;
    ~Leave() { --d; }
  } leave{c.out_depth};
  c.out.str(std::string());
  c.out.clear();
  {
    cereal::BinaryOutputArchive ar(c.out);
    ar(value);
  }
  return c.out.str();
}

/// The T that dumps() wrote. UnpicklingError when the bytes are not one.
template <class T>
T loads(std::string_view data) {
  static_assert(serialisable_v<T>, "concur::multiprocessing: this type cannot cross a process boundary (see dumps)");
  detail::ViewBuf buf(data.data(), data.size());
  detail::StreamCache& c = detail::stream_cache();
  std::istream fresh(nullptr);
  std::istream& is = c.in_depth > 0 ? fresh : c.in;
  ++c.in_depth;
  struct Leave {
    int& d;
    std::istream& s;
    ~Leave() {
      --d;
      s.rdbuf(nullptr);
    }
  } leave{c.in_depth, is};
  is.rdbuf(&buf);
  is.clear();
  T value{};
  try {
    cereal::BinaryInputArchive ar(is);
    ar(value);
  } catch (const cereal::Exception& e) {
    throw UnpicklingError(std::string("cannot read the serialised data: ") + e.what());
  }
  return value;
}

}  // namespace concur::multiprocessing

namespace cereal {
/// concur: trivially copyable aggregates (`struct Point { double x, y; };`) as raw bytes, also
/// inside containers.
template <class Archive, concur::multiprocessing::detail::RawAggregate T>
void serialize(Archive& ar, T& value) {
  ar(binary_data(&value, sizeof value));
}
}  // namespace cereal
