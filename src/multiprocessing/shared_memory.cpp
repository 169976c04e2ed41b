#include "concur/multiprocessing/shared_memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace concur::multiprocessing {

namespace shared_memory {

namespace {

/// The first 64 bytes of every segment concur creates. Written with one pwrite() before the
/// segment is sized, so that a segment of non-zero size always carries a complete header.
struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t flags;
  std::int32_t creator_pid;
  std::uint32_t reserved0;
  std::uint64_t creator_start_time;  // clock ticks after boot (/proc/<pid>/stat field 22)
  std::uint64_t nonce;               // tells this segment from a later one with the same name
  std::uint64_t size;                // the usable size asked for
  std::uint64_t reserved1[2];
};
static_assert(sizeof(SegmentHeader) == 64);
constexpr std::size_t kHeaderSize = sizeof(SegmentHeader);
constexpr std::uint64_t kMagic = 0x4d53525543'4e4f43ULL;  // "CONCURSM" little-endian-ish tag
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kFlagTracked = 1;

std::string normalize_name(const std::string& name) {
  std::string n = name;
  if (!n.empty() && n.front() == '/') n.erase(0, 1);
  if (n.empty()) throw std::invalid_argument("SharedMemory: the name is empty; pass create=true for a fresh name");
  if (n.find('/') != std::string::npos) throw std::invalid_argument("SharedMemory: name '" + name + "' contains '/'");
  if (n.size() > 250) throw std::invalid_argument("SharedMemory: name '" + name + "' is longer than 250 characters");
  return n;
}

std::uint64_t random64() {
  std::uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    static std::atomic<std::uint64_t> counter{0};
    v = (static_cast<std::uint64_t>(getpid()) << 32) ^ counter.fetch_add(0x9e3779b97f4a7c15ULL) ^
        static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&v));
  }
  return v;
}

struct ProcStat {
  char state = '?';
  std::uint64_t start_time = 0;
};

/// State and start time of `pid` from /proc; nullopt-like (state '?') when it does not exist.
bool read_proc_stat(int pid, ProcStat& out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::array<char, 1024> buf{};
  ssize_t n = ::read(fd, buf.data(), buf.size() - 1);
  ::close(fd);
  if (n <= 0) return false;
  std::string_view s(buf.data(), static_cast<std::size_t>(n));
  auto close_paren = s.rfind(')');
  if (close_paren == std::string_view::npos || close_paren + 2 >= s.size()) return false;
  s.remove_prefix(close_paren + 2);  // now at field 3 (state)
  out.state = s.front();
  // field 22 (starttime) is the 19th after the state
  for (int i = 0; i < 19; ++i) {
    auto sp = s.find(' ');
    if (sp == std::string_view::npos) return false;
    s.remove_prefix(sp + 1);
  }
  out.start_time = std::strtoull(std::string(s.substr(0, s.find(' '))).c_str(), nullptr, 10);
  return true;
}

std::uint64_t self_start_time() {
  static std::atomic<int> cached_pid{0};
  static std::atomic<std::uint64_t> cached{0};
  int pid = getpid();
  if (cached_pid.load(std::memory_order_acquire) == pid) return cached.load(std::memory_order_relaxed);
  ProcStat st;
  std::uint64_t t = read_proc_stat(pid, st) ? st.start_time : 0;
  cached.store(t, std::memory_order_relaxed);
  cached_pid.store(pid, std::memory_order_release);
  return t;
}

bool creator_gone(int pid, std::uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  ProcStat st;
  if (!read_proc_stat(pid, st)) return ::kill(pid, 0) != 0 && errno == ESRCH;
  if (st.state == 'Z' || st.state == 'X') return true;
  return start_time != 0 && st.start_time != start_time;
}

bool read_header(int fd, SegmentHeader& h) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) < kHeaderSize) return false;
  if (::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return false;
  return h.magic == kMagic && h.version == kVersion && h.size + kHeaderSize <= static_cast<std::uint64_t>(st.st_size);
}

// ---- resource tracking: unlink this process's tracked segments at normal exit ----

struct Tracked {
  std::string name;
  std::uint64_t nonce;
  int pid;
};

struct Tracker {
  std::mutex mutex;
  std::vector<Tracked> segments;  // guarded by mutex
};

Tracker& tracker() {
  static auto* t = new Tracker;  // leaked: must outlive every static destructor
  return *t;
}

void unlink_tracked_at_exit() {
  Tracker& t = tracker();
  std::vector<Tracked> mine;
  {
    std::lock_guard g(t.mutex);
    int pid = getpid();
    for (auto& s : t.segments)
      if (s.pid == pid) mine.push_back(s);
    t.segments.clear();
  }
  for (const auto& s : mine) {
    std::string path = "/" + s.name;
    int fd = ::shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) continue;
    SegmentHeader h{};
    bool same = read_header(fd, h) && h.nonce == s.nonce;
    ::close(fd);
    if (same) ::shm_unlink(path.c_str());
  }
}

void track(const std::string& name, std::uint64_t nonce) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(unlink_tracked_at_exit); });
  Tracker& t = tracker();
  std::lock_guard g(t.mutex);
  t.segments.push_back({name, nonce, getpid()});
}

void untrack(const std::string& name) {
  Tracker& t = tracker();
  std::lock_guard g(t.mutex);
  int pid = getpid();
  std::erase_if(t.segments, [&](const Tracked& s) { return s.pid == pid && s.name == name; });
}

}  // namespace

SharedMemory::SharedMemory(SharedMemoryOptions options) {
  if (options.create) {
    if (options.size == 0) throw std::invalid_argument("SharedMemory: 'size' must be a positive number when creating");
    bool anonymous = options.name.empty();
    int fd = -1;
    for (int attempt = 0;; ++attempt) {
      if (anonymous) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "concur_%d_%016llx", static_cast<int>(getpid()),
                      static_cast<unsigned long long>(random64()));
        name_ = buf;
      } else {
        name_ = normalize_name(options.name);
      }
      std::string path = "/" + name_;
      fd = ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
      if (fd >= 0) break;
      int err = errno;
      if (anonymous && err == EEXIST && attempt < 100) continue;
      throw_os_error(err, "create shared memory '" + name_ + "'");
    }
    SegmentHeader h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.flags = options.track ? kFlagTracked : 0;
    h.creator_pid = static_cast<std::int32_t>(getpid());
    h.creator_start_time = self_start_time();
    h.nonce = random64();
    h.size = options.size;
    auto fail = [&](const char* what) {
      int err = errno;
      ::close(fd);
      ::shm_unlink(("/" + name_).c_str());
      throw_os_error(err, std::string(what) + " shared memory '" + name_ + "'");
    };
    if (::pwrite(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) fail("write the header of");
    mapping_size_ = kHeaderSize + options.size;
    if (::ftruncate(fd, static_cast<off_t>(mapping_size_)) != 0) fail("size");
    void* p = ::mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) fail("map");
    ::close(fd);
    mapping_ = p;
    data_offset_ = kHeaderSize;
    size_ = options.size;
    if (options.track) track(name_, h.nonce);
    return;
  }
  name_ = normalize_name(options.name);
  std::string path = "/" + name_;
  int fd = ::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) throw_os_error(errno, "attach to shared memory '" + name_ + "'");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw_os_error(err, "stat shared memory '" + name_ + "'");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw std::invalid_argument("SharedMemory: '" + name_ + "' is empty (still being created?)");
  }
  mapping_size_ = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ::close(fd);
    throw_os_error(err, "map shared memory '" + name_ + "'");
  }
  SegmentHeader h{};
  bool ours = read_header(fd, h);
  ::close(fd);
  mapping_ = p;
  data_offset_ = ours ? kHeaderSize : 0;
  size_ = ours ? static_cast<std::size_t>(h.size) : mapping_size_;
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      size_(std::exchange(other.size_, 0)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      data_offset_(std::exchange(other.data_offset_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    size_ = std::exchange(other.size_, 0);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    data_offset_ = std::exchange(other.data_offset_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() { close(); }

std::span<std::byte> SharedMemory::buf() const {
  if (!mapping_) throw std::logic_error("SharedMemory '" + name_ + "' is closed");
  return {static_cast<std::byte*>(mapping_) + data_offset_, size_};
}

void SharedMemory::close() noexcept {
  if (mapping_) {
    ::munmap(mapping_, mapping_size_);
    mapping_ = nullptr;
  }
}

void SharedMemory::unlink() {
  if (name_.empty()) throw std::logic_error("SharedMemory::unlink: this object has no name (moved from)");
  untrack(name_);
  if (::shm_unlink(("/" + name_).c_str()) != 0) throw_os_error(errno, "unlink shared memory '" + name_ + "'");
}

std::vector<std::string> cleanup_leftovers() {
  std::vector<std::string> removed;
  DIR* dir = ::opendir("/dev/shm");
  if (!dir) return removed;
  int self = getpid();
  while (dirent* e = ::readdir(dir)) {
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    int fd = ::openat(::dirfd(dir), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    SegmentHeader h{};
    bool ours = read_header(fd, h);
    ::close(fd);
    if (!ours || !(h.flags & kFlagTracked) || h.creator_pid == self) continue;
    if (!creator_gone(h.creator_pid, h.creator_start_time)) continue;
    if (::shm_unlink(("/" + name).c_str()) == 0) removed.push_back(name);
  }
  ::closedir(dir);
  return removed;
}

}  // namespace shared_memory

namespace detail {

std::shared_ptr<Segment> Segment::create(std::size_t size) {
  shared_memory::SharedMemory shm({.create = true, .size = size, .track = true});
  return std::shared_ptr<Segment>(new Segment(std::move(shm), getpid()));
}

std::shared_ptr<Segment> Segment::attach(const std::string& name) {
  shared_memory::SharedMemory shm({.name = name});
  return std::shared_ptr<Segment>(new Segment(std::move(shm), 0));
}

Segment::~Segment() {
  if (owner_pid_ != 0 && owner_pid_ == getpid()) {
    try {
      shm_.unlink();
    } catch (...) {  // already unlinked (at exit, or by cleanup): nothing to do
    }
  }
}

void* Segment::at(const SharedHandle& handle, std::size_t size) const {
  if (handle.offset % 8 != 0 || handle.offset > shm_.size() || shm_.size() - handle.offset < size)
    throw std::invalid_argument("shared object handle {'" + handle.name + "', " + std::to_string(handle.offset) +
                                "} does not fit its segment");
  std::byte* p = data() + handle.offset;
  std::uint32_t kind = 0;
  std::memcpy(&kind, p, sizeof kind);
  if (kind != handle.kind)
    throw std::invalid_argument("shared object handle {'" + handle.name + "', " + std::to_string(handle.offset) +
                                "} does not point at an object of the expected type");
  return p;
}

}  // namespace detail

}  // namespace concur::multiprocessing
