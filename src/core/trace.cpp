#include "concur/core/trace.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

namespace concur::trace {

namespace detail {
std::atomic<bool> g_enabled{false};
}

namespace {

std::uint64_t clock_monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

const std::uint64_t g_epoch = clock_monotonic_ns();
std::atomic<std::uint64_t> g_next_task{1};

// Events go into blocks that double in size from 4 KiB to 1 MiB: nothing moves as a buffer
// grows, and each block is mapped with MAP_POPULATE, so its pages are faulted in by one system
// call instead of one page fault per 73 events. (A std::deque allocated every 8 Events and then
// page-faulted them in; that was most of what recording cost: 250 ns of a 270 ns Span.)
class Block {
 public:
  explicit Block(std::size_t bytes) : bytes_(bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    events_ = static_cast<Event*>(p);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  ~Block() { ::munmap(events_, bytes_); }
  [[nodiscard]] std::size_t capacity() const noexcept { return bytes_ / sizeof(Event); }
  Event& operator[](std::size_t i) noexcept { return events_[i]; }
  const Event& operator[](std::size_t i) const noexcept { return events_[i]; }

 private:
  std::size_t bytes_;
  Event* events_;
};

struct Buffer {
  static constexpr std::size_t kFirstBlock = 4096, kDoublings = 8;  // 4 KiB .. 1 MiB
  std::mutex m;  // uncontended except while collect() or clear() runs
  std::vector<std::unique_ptr<Block>> blocks;
  std::size_t used = 0;  // events in blocks.back()

  void push(const Event& e) {
    if (blocks.empty() || used == blocks.back()->capacity()) {
      blocks.push_back(std::make_unique<Block>(kFirstBlock << std::min(blocks.size(), kDoublings)));
      used = 0;
    }
    (*blocks.back())[used++] = e;
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const std::size_t n = b + 1 == blocks.size() ? used : blocks[b]->capacity();
      for (std::size_t i = 0; i < n; ++i) f((*blocks[b])[i]);
    }
  }
  void clear() {
    blocks.clear();
    used = 0;
  }
};
// Per-thread buffers are owned by a global registry (never destroyed, so threads that exit
// during static destruction can still record) and survive their thread.
struct Registry {
  std::mutex m;  // guards buffers and lanes
  std::vector<std::shared_ptr<Buffer>> buffers;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> lanes;
};
Registry& registry() {
  static auto* r = new Registry;  // intentionally leaked: see above
  return *r;
}
Buffer& local_buffer() {
  thread_local std::shared_ptr<Buffer> buf = [] {
    auto b = std::make_shared<Buffer>();
    std::lock_guard g(registry().m);
    registry().buffers.push_back(b);
    return b;
  }();
  return *buf;
}

// CONCUR_TRACE=<file>: tracing on from start-up, and the file written at a normal exit by the
// process that started with it (not by a forked child that later calls exit()).
const std::string* g_out_path = nullptr;  // leaked: read by the atexit hook
pid_t g_out_pid = 0;

void write_at_exit() {
  if (g_out_path == nullptr || ::getpid() != g_out_pid) return;
  if (!write_json_file(*g_out_path)) {
    std::fprintf(stderr, "concur: cannot write the trace to %s: %s\n", g_out_path->c_str(), std::strerror(errno));
  }
}

const bool g_env_init = [] {
  if (const char* p = std::getenv("CONCUR_TRACE"); p && *p) {
    detail::g_enabled.store(true);
    g_out_path = new std::string(p);
    g_out_pid = ::getpid();
    std::atexit(write_at_exit);
  }
  return true;
}();

// ---- JSON -----------------------------------------------------------------------------------

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped,
/// invalid UTF-8 replaced by U+FFFD (JSON must be UTF-8; lane names come from users).
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length from the lead byte, then continuation bytes, no
    // overlong forms, no surrogates, nothing above U+10FFFF.
    std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool ok = len != 0 && c <= 0xf4 && i + len <= s.size();
    std::uint32_t cp = ok ? (c & (0x7fu >> len)) : 0;
    for (std::size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (ok &&
        ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
      ok = false;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out.push_back('"');
}

void append_us(std::string& out, std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIu64 ".%03u", ns / 1000, static_cast<unsigned>(ns % 1000));
  out += buf;
}

std::string default_lane_name(const Event& e) {
  if (std::strcmp(e.source, "asyncio") == 0) return "asyncio loop (thread " + std::to_string(e.tid) + ")";
  std::string n = std::string(e.source) + "#" + std::to_string(e.source_id) + " worker " + std::to_string(e.worker);
  if (e.pid != static_cast<std::uint32_t>(::getpid())) n += " (pid " + std::to_string(e.pid) + ")";
  return n;
}

}  // namespace

void enable() noexcept { detail::g_enabled.store(true, std::memory_order_relaxed); }
void disable() noexcept { detail::g_enabled.store(false, std::memory_order_relaxed); }

std::uint64_t monotonic_ns() noexcept { return clock_monotonic_ns(); }
std::uint64_t now_ns() noexcept { return clock_monotonic_ns() - g_epoch; }
std::uint64_t from_monotonic_ns(std::uint64_t abs_ns) noexcept { return abs_ns > g_epoch ? abs_ns - g_epoch : 0; }

std::uint64_t next_task_id() noexcept { return g_next_task.fetch_add(1, std::memory_order_relaxed); }

std::uint32_t current_tid() noexcept {
  thread_local const auto tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  return tid;
}

void record(const Event& e) noexcept {
  try {
    Buffer& b = local_buffer();
    std::lock_guard g(b.m);
    b.push(e);
  } catch (...) {
    // Out of memory while tracing: drop the record rather than disturb the program.
  }
}

std::vector<Event> collect() {
  std::vector<Event> out;
  std::lock_guard g(registry().m);
  for (auto& b : registry().buffers) {
    std::lock_guard bg(b->m);
    b->for_each([&out](const Event& e) { out.push_back(e); });
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.begin_ns < b.begin_ns; });
  return out;
}

void clear() {
  std::lock_guard g(registry().m);
  for (auto& b : registry().buffers) {
    std::lock_guard bg(b->m);
    b->clear();
  }
}

void name_lane(std::uint32_t pid, std::uint32_t tid, std::string name) {
  std::lock_guard g(registry().m);
  registry().lanes[{pid, tid}] = std::move(name);
}

std::string lane_name(std::uint32_t pid, std::uint32_t tid) {
  std::lock_guard g(registry().m);
  auto it = registry().lanes.find({pid, tid});
  return it == registry().lanes.end() ? std::string() : it->second;
}

std::string to_json(const std::vector<Event>& events) {
  std::string out;
  out.reserve(200 + events.size() * 170);
  out += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"concur\"},\"traceEvents\":[";
  bool first = true;
  auto sep = [&] {
    if (!first) out += ",\n";
    first = false;
  };
  // Metadata first: a name for every process and every lane.
  std::set<std::uint32_t> pids;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> lanes;
  const auto self = static_cast<std::uint32_t>(::getpid());
  for (const Event& e : events) {
    pids.insert(e.pid);
    auto key = std::make_pair(e.pid, e.tid);
    if (lanes.count(key) == 0) {
      std::string n = lane_name(e.pid, e.tid);
      lanes.emplace(key, n.empty() ? default_lane_name(e) : std::move(n));
    }
  }
  for (std::uint32_t p : pids) {
    sep();
    out += "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + std::to_string(p) + ",\"tid\":0,\"args\":{\"name\":";
    append_json_string(out, p == self ? "concur program (pid " + std::to_string(p) + ")"
                                      : "worker process (pid " + std::to_string(p) + ")");
    out += "}}";
  }
  for (const auto& [key, name] : lanes) {
    sep();
    out += "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":" + std::to_string(key.first) +
           ",\"tid\":" + std::to_string(key.second) + ",\"args\":{\"name\":";
    append_json_string(out, name);
    out += "}}";
  }
  for (const Event& e : events) {
    sep();
    out += "{\"ph\":\"X\",\"name\":";
    append_json_string(out, e.parent_task ? "Task-" + std::to_string(e.parent_task) : std::string(e.source));
    out += ",\"cat\":";
    append_json_string(out, e.source);
    out += ",\"ts\":";
    append_us(out, e.begin_ns);
    out += ",\"dur\":";
    append_us(out, e.end_ns >= e.begin_ns ? e.end_ns - e.begin_ns : 0);
    out += ",\"pid\":" + std::to_string(e.pid) + ",\"tid\":" + std::to_string(e.tid) +
           ",\"args\":{\"id\":" + std::to_string(e.task_id) + ",\"source_id\":" + std::to_string(e.source_id) +
           ",\"worker\":" + std::to_string(e.worker);
    if (e.parent_task) out += ",\"task\":" + std::to_string(e.parent_task);
    out += "}}";
  }
  out += "]}\n";
  return out;
}

bool write_json_file(const std::string& path) {
  const std::string json = to_json(collect());
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  int saved = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok && errno == 0) errno = saved;
  return ok;
}

void Span::start(const char* source, std::uint32_t source_id, std::uint32_t worker,
                 std::uint64_t parent_task) noexcept {
  active_ = true;
  ev_.source = source;
  ev_.source_id = source_id;
  ev_.worker = worker;
  ev_.tid = current_tid();
  thread_local const auto pid = static_cast<std::uint32_t>(::getpid());
  ev_.pid = pid;
  ev_.parent_task = parent_task;
  ev_.task_id = next_task_id();
  ev_.begin_ns = now_ns();
}

void Span::finish() noexcept {
  ev_.end_ns = now_ns();
  record(ev_);
}

}  // namespace concur::trace
