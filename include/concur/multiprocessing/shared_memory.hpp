#pragma once
/// \file multiprocessing.shared_memory: named POSIX shared memory (shm_open + mmap).
///
/// Segments that concur creates start with a 64-byte header (magic, creator pid and start time,
/// requested size, a nonce, whether the segment is tracked); `buf()` begins after it, so `size()`
/// is exactly the size asked for. A segment made by another program (Python's `SharedMemory`, a
/// plain `shm_open`) has no header: attaching to it maps the whole object as `buf()`. A Python
/// program attaching to a concur segment sees the 64 header bytes first.
///
/// What survives a crash: a segment's name lives in /dev/shm until unlinked. A tracked segment
/// (`.track = true`, the default) is unlinked at normal exit of the creating process (like
/// Python's resource tracker); after a crash (SIGKILL, abort) `cleanup_leftovers()` removes the
/// tracked segments whose creator is gone.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>

#include "concur/core/error.hpp"

namespace concur::multiprocessing {

/// Where a shared object lives: the name of its segment and the offset of its state inside the
/// segment's buffer. `Value`, `Array`, `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`,
/// `Condition` and `Barrier` give one out with `handle()`, and take it back with `from_handle()` in
/// any process (a forked child, a spawned one, an unrelated one) while the segment is linked.
/// cereal-serialisable.
struct SharedHandle {
  std::string name;          ///< segment name, without the leading '/'
  std::uint64_t offset = 0;  ///< offset of the object's state in the segment's buffer
  std::uint32_t kind = 0;    ///< what lives there (checked by from_handle)

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, offset, kind);
  }
  friend bool operator==(const SharedHandle&, const SharedHandle&) = default;
};

namespace shared_memory {

/// Options of SharedMemory (Python's `name=`, `create=`, `size=`, `track=`).
struct SharedMemoryOptions {
  /// Segment name (with or without a leading '/'). Empty with `create`: a fresh unique name
  /// "concur_<pid>_<hex>" (Python's "psm_<hex>").
  std::string name;
  bool create = false;   ///< create a new segment; FileExistsError if the name is taken
  std::size_t size = 0;  ///< bytes, required (> 0) when creating; ignored when attaching
  /// Unlink the segment at normal exit of the creating process if it is still linked, and let
  /// cleanup_leftovers() remove it once the creator is gone. false: the segment outlives its
  /// creator until someone calls unlink().
  bool track = true;
};

/// A named shared-memory block (Python's `multiprocessing.shared_memory.SharedMemory`).
///
///     SharedMemory shm({.name = "frames", .create = true, .size = 1 << 20});
///     SharedMemory same({.name = "frames"});   // in this or any other process
///
/// Creating: FileExistsError if the name is taken; attaching: FileNotFoundError if it does not
/// exist; other failures: OSError (PermissionError, ...). The mapping is MAP_SHARED, so a child
/// forked after construction sees the same bytes. The file descriptor is closed once mapped.
/// Thread safety: distinct objects are independent; one object may be read (name, size, buf)
/// from many threads, but close() and moves must not race with other calls on it. The bytes of
/// buf() carry no synchronisation of their own: guard them with a Lock or another protocol.
/// Destruction closes (unmaps), it never unlinks.
class SharedMemory {
 public:
  explicit SharedMemory(SharedMemoryOptions options);
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  /// The name, without the leading '/' (as Python's `name`).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The usable size in bytes: the size requested at creation for a concur segment, the size of
  /// the object for a foreign one.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// The bytes. Throws std::logic_error after close().
  [[nodiscard]] std::span<std::byte> buf() const;
  /// True until close().
  [[nodiscard]] bool is_open() const noexcept { return mapping_ != nullptr; }
  /// Unmaps this process's view; the segment and other processes' views stay. Idempotent.
  void close() noexcept;
  /// Removes the name (Python's `unlink()`): new attaches fail, existing mappings stay valid,
  /// the memory goes when the last mapping does. Call it once, from one process. Allowed after
  /// close(). FileNotFoundError if the name is already gone.
  void unlink();

 private:
  std::string name_;
  std::size_t size_ = 0;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  std::size_t data_offset_ = 0;
};

/// Removes the tracked concur segments in /dev/shm whose creating process no longer exists
/// (killed, crashed, or exited without unlinking), and returns their names. Python relies on a
/// resource-tracker process for this; concur keeps no tracker process: call this at startup of a
/// program that may have crashed before (or from a cron job). A creator counts as gone when its
/// pid does not exist, is a zombie, or now belongs to a process started at another time (pid
/// reuse). Segments created with `.track = false` and foreign segments are never touched.
/// Only meaningful where every user of /dev/shm shares this process's pid namespace.
/// Thread safety: safe to call from any thread and process at any time.
std::vector<std::string> cleanup_leftovers();

}  // namespace shared_memory

namespace detail {

/// One mapped segment holding shared objects (a Value, a Lock, ...), shared by the copies of
/// those objects in one process. The process that created it unlinks its name when its last copy
/// goes (never a forked child, which inherits a copy); processes that attached only unmap.
class Segment {
 public:
  /// Creates a fresh tracked segment of `size` zeroed bytes with a unique name.
  static std::shared_ptr<Segment> create(std::size_t size);
  /// Attaches to an existing segment by name.
  static std::shared_ptr<Segment> attach(const std::string& name);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  [[nodiscard]] std::byte* data() const { return shm_.buf().data(); }
  [[nodiscard]] std::size_t size() const noexcept { return shm_.size(); }
  [[nodiscard]] const std::string& name() const noexcept { return shm_.name(); }

  /// The state at `handle.offset`, after checking that `size` bytes fit there and that the first
  /// four bytes hold `handle.kind` (std::invalid_argument otherwise).
  [[nodiscard]] void* at(const SharedHandle& handle, std::size_t size) const;

 private:
  Segment(shared_memory::SharedMemory shm, int owner_pid) : shm_(std::move(shm)), owner_pid_(owner_pid) {}
  shared_memory::SharedMemory shm_;
  int owner_pid_;  // pid of the creating process, 0 when attached
};

}  // namespace detail

}  // namespace concur::multiprocessing
