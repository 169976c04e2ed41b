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
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
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
/// An output stream buffer that appends to a std::string someone else owns (no copy at the
/// end, as ostringstream::str() makes).
class StringSink : public std::streambuf {
 public:
  void target(std::string* s) noexcept { s_ = s; }

 protected:
  std::streamsize xsputn(const char* p, std::streamsize n) override {
    s_->append(p, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) s_->push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

 private:
  std::string* s_ = nullptr;
};
/// Per-thread streams, reused: constructing a stream costs more than serialising a small value.
/// A nested dumps/loads on the same thread (a serialize() that calls dumps) gets fresh ones.
struct StreamCache {
  StringSink sink;
  std::ostream out{&sink};
  std::istream in{nullptr};
  int out_depth = 0, in_depth = 0;
};
inline StreamCache& stream_cache() {
  thread_local StreamCache c;
  return c;
}

/// Appends what `write(archive)` writes to `out`, through a cereal binary archive.
template <class Write>
void write_into(std::string& out, Write&& write) {
  StreamCache& c = stream_cache();
  if (c.out_depth > 0) {
    StringSink sink;
    sink.target(&out);
    std::ostream os(&sink);
    cereal::BinaryOutputArchive ar(os);
    write(ar);
    return;
  }
  ++c.out_depth;
  struct Leave {
    StreamCache& c;
    ~Leave() {
      --c.out_depth;
      c.sink.target(nullptr);
    }
  } leave{c};
  c.sink.target(&out);
  c.out.clear();
  cereal::BinaryOutputArchive ar(c.out);
  write(ar);
}

/// Appends one frame to `out`: an 8-byte little-endian length, then what `write(archive)`
/// writes (the framing of the pool's requests and replies).
template <class Write>
void write_framed(std::string& out, Write&& write) {
  const std::size_t at = out.size();
  out.append(8, '\0');
  write_into(out, std::forward<Write>(write));
  auto n = static_cast<std::uint64_t>(out.size() - at - 8);
  for (int i = 0; i < 8; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
}
}  // namespace detail

/// T's bytes. A T that cannot be serialised does not compile (see the file comment).
template <class T>
std::string dumps(const T& value) {
  static_assert(serialisable_v<T>,
                "concur::multiprocessing: this type cannot cross a process boundary. Give it a cereal "
                "`template <class Archive> void serialize(Archive& ar) { ar(members...); }` member, or make it a "
                "trivially copyable aggregate.");
  std::string out;
  detail::write_into(out, [&](cereal::BinaryOutputArchive& ar) { ar(value); });
  return out;
}

/// The T that dumps() wrote. UnpicklingError when the bytes are not one.
template <class T>
T loads(std::string_view data) {
  static_assert(serialisable_v<T>, "concur::multiprocessing: this type cannot cross a process boundary (see dumps)");
  detail::ViewBuf buf(data.data(), data.size());
  detail::StreamCache& c = detail::stream_cache();
  std::optional<std::istream> fresh;  // only when nested: constructing a stream is not free
  if (c.in_depth > 0) fresh.emplace(nullptr);
  std::istream& is = c.in_depth > 0 ? *fresh : c.in;
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
