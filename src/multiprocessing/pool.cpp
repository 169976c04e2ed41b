// PoolCore (detail/pool_core.hpp): the manager thread of a process pool.
//
// The manager polls an eventfd (new work, close, terminate) and every worker's socket. Each
// worker has a window of chunks in flight (one running, the others queued behind it, so that it
// never waits for the manager: see kMaxWindow). A worker whose socket reaches EOF has died: it
// is reaped, the chunk it was running fails with BrokenProcessPool naming the signal or exit
// code, the chunks queued behind it go back to the front of the queue, and a new worker takes
// its place.
#include "concur/multiprocessing/pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "concur/core/trace.hpp"
#include "concur/multiprocessing/detail/pool_core.hpp"

namespace concur::multiprocessing::detail {

namespace {

struct Chunk {
  std::uint64_t id = 0;
  std::vector<Job> jobs;
};

struct WorkerSlot {
  SpawnedWorker w;
  std::deque<Chunk> inflight;
  int tasks_done = 0, tasks_sent = 0;
  bool retiring = false;     // max_tasks_per_child reached (or unreachable): no more chunks
  std::uint32_t number = 0;  // the pool's n-th worker started (trace lanes)
  std::string out;           // framed requests not yet written (the socket is non-blocking here)
  std::string in;            // bytes read, not yet a whole reply
  /// How many chunks it may have in flight now (slow start, as TCP's congestion window): from
  /// kMinWindow, one more per reply while work is queued, back to kMinWindow whenever the pool
  /// runs out of work. A pool that ran many quick chunks therefore does not hand a worker a
  /// big window of the next map's chunks before any of them was seen to be quick.
  std::size_t cwnd = 2;
};

/// How many chunks a worker may have at once (its window): enough that it never waits for
/// the manager between two, and that requests and replies travel in batches (one system call
/// and one wake-up for many quick calls), but no more than about kQueuedWork of work each, so
/// that the rest stays in the shared queue for whichever worker frees up first, as in Python,
/// instead of piling up behind one busy worker. The workers measure each chunk's run time; the
/// manager keeps a moving average of it; until the first reply, the window is kMinWindow. A
/// worker's window also grows from kMinWindow one reply at a time (WorkerSlot::cwnd).
constexpr std::size_t kMinWindow = 2;
constexpr std::size_t kMaxWindow = 128;
constexpr std::chrono::nanoseconds kQueuedWork{std::chrono::microseconds(100)};

void fail_chunk(Chunk& c, const std::string& why) {
  Outcome o;
  o.ok = false;
  o.type = "concur::multiprocessing::BrokenProcessPool";
  o.payload = why;
  for (Job& j : c.jobs) {
    if (j.done) j.done(o);
  }
}

/// Waits for the worker to exit (ChildExit: whichever start method started it).
void reap(const SpawnedWorker& w, int* status) { *status = w.exit->wait().value_or(0); }

}  // namespace

struct PoolCore::State {
  PoolConfig cfg;
  mutable std::mutex m;
  std::deque<Chunk> queue;
  std::vector<std::unique_ptr<WorkerSlot>> workers;  // manager thread only (pids() locks m)
  bool closed = false, terminating = false;
  std::optional<std::string> broken;  // why the pool cannot run anything (initializer failed)
  std::uint64_t next_id = 1;
  int wake = -1;
  std::thread manager;
  bool joined = false;
  bool batching = false;                     // dispatch(): requests collect in the outboxes, flushed at its end
  std::int64_t chunk_ns_avg = 0;             // moving average of a chunk's run time in a worker (manager thread)
  std::uint32_t trace_id = next_trace_id();  // which pool, in trace events
  std::uint32_t started = 0;                 // workers started so far
  /// Chunks whose replies came in this round, with their outcomes: their callbacks run after
  /// the round's dispatch, so that the workers have new work while the callbacks run.
  std::vector<std::pair<Chunk, std::vector<Outcome>>> finished;

  static std::uint32_t next_trace_id() {
    static std::atomic<std::uint32_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  void wake_up() const {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(wake, &one, sizeof one);
  }

  /// Starts a worker and runs the initializer in it first (its reply is awaited in the loop).
  void start_worker() {
    auto slot = std::make_unique<WorkerSlot>();
    slot->w = spawn_worker();
    slot->number = started++;
    int fd = slot->w.conn.fileno();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (cfg.initializer) {
      Request init;
      init.kind = RequestKind::initialize;
      init.id = 0;
      init.calls.push_back(*cfg.initializer);
      send_request(*slot, init);
      slot->inflight.push_back(Chunk{0, {}});  // the initializer's reply
    }
    std::lock_guard g(m);
    workers.push_back(std::move(slot));
  }

  /// Frames `r` into the worker's outbox and writes what the socket takes now. The manager
  /// never blocks on a worker: a worker blocked writing a big reply while the manager blocked
  /// writing a big request to it would deadlock them both.
  void send_request(WorkerSlot& s, const Request& r) {
    write_framed(s.out, [&](cereal::BinaryOutputArchive& ar) { ar(r); });
    if (!batching) flush(s);
  }

  void flush(WorkerSlot& s) {
    std::size_t off = 0;
    while (off < s.out.size()) {
      ssize_t w = ::send(s.w.conn.fileno(), s.out.data() + off, s.out.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // The worker is gone: nothing more reaches it; its EOF fails or requeues its chunks.
      s.retiring = true;
      off = s.out.size();
    }
    s.out.erase(0, off);
  }

  /// Sends the chunk as a Request of its calls. The calls (a map chunk's arguments may be
  /// megabytes) are moved into the Request for serialising and back, not copied: they stay
  /// with the chunk in case the worker dies.
  void send_chunk(WorkerSlot& s, Chunk c) {
    Request r{.kind = RequestKind::run, .id = c.id, .trace = trace::enabled()};
    r.calls.reserve(c.jobs.size());
    for (Job& j : c.jobs) r.calls.push_back(std::move(j.call));
    send_request(s, r);
    for (std::size_t i = 0; i < c.jobs.size(); ++i) c.jobs[i].call = std::move(r.calls[i]);
    s.tasks_sent += static_cast<int>(c.jobs.size());
    s.inflight.push_back(std::move(c));
  }

  /// Tops the workers' windows up, one chunk per worker per round, least loaded first, so that
  /// a few chunks spread over every worker rather than filling the first one's window. Each
  /// worker's new requests go out in one write.
  void dispatch() {
    batching = true;
    const std::size_t window =
        chunk_ns_avg <= 0
            ? kMinWindow
            : std::clamp(static_cast<std::size_t>(kQueuedWork.count() / chunk_ns_avg), kMinWindow, kMaxWindow);
    bool empty = false;
    for (std::size_t level = 0; level < window && !empty; ++level) {
      for (auto& sp : workers) {
        WorkerSlot& s = *sp;
        if (s.retiring || s.inflight.size() > level || s.inflight.size() >= std::min(window, s.cwnd) ||
            (cfg.max_tasks_per_child > 0 && s.tasks_sent >= cfg.max_tasks_per_child))
          continue;
        Chunk c;
        {
          std::lock_guard g(m);
          if (queue.empty()) {
            empty = true;
            break;
          }
          c = std::move(queue.front());
          queue.pop_front();
        }
        send_chunk(s, std::move(c));
      }
    }
    batching = false;
    for (auto& sp : workers) {
      if (!sp->out.empty()) flush(*sp);
    }
  }

  /// The worker died (EOF on its socket): reap it, fail the chunk it was running, requeue the
  /// others.
  void on_death(WorkerSlot& s) {
    int status = 0;
    reap(s.w, &status);
    std::string why = "a worker process (pid " + std::to_string(s.w.pid) +
                      ") died while running the task: " + describe_status(status);
    {
      std::lock_guard g(m);
      if (broken) why = *broken;  // it exited because its initializer failed
    }
    // Which chunk killed it: the one its progress word names, unless it had finished that one
    // (then it died between tasks, e.g. killed from outside while idle, and none failed). The
    // others go back to the queue, including any it had finished whose replies were lost
    // (they run again: at-least-once for a worker killed from outside).
    const std::uint64_t progress = s.w.running != nullptr ? *s.w.running : kIdle;
    const bool idle = (progress & kIdle) != 0;
    const std::uint64_t running_id = progress & ~kIdle;
    std::deque<Chunk> again;
    for (Chunk& c : s.inflight) {
      if (c.jobs.empty()) continue;  // an initializer's placeholder
      if (!idle && c.id == running_id) {
        fail_chunk(c, why);
      } else {
        again.push_back(std::move(c));
      }
    }
    s.inflight.clear();
    std::lock_guard g(m);
    for (auto it = again.rbegin(); it != again.rend(); ++it) queue.push_front(std::move(*it));
  }

  /// A worker's socket is readable: replies, or EOF (it died or retired). False: remove it.
  bool on_readable(WorkerSlot& s) {
    bool eof = false;
    char buf[64 * 1024];
    for (;;) {
      ssize_t r = ::recv(s.w.conn.fileno(), buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) {
        s.in.append(buf, static_cast<std::size_t>(r));
        if (static_cast<std::size_t>(r) < sizeof buf) break;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      eof = true;  // 0, or ECONNRESET
      break;
    }
    std::size_t off = 0;
    while (s.in.size() - off >= 8) {
      std::uint64_t n = 0;
      for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(s.in[off + i])) << (8 * i);
      if (s.in.size() - off - 8 < n) break;
      Reply reply;
      try {
        reply = loads<Reply>(std::string_view(s.in).substr(off + 8, static_cast<std::size_t>(n)));
      } catch (const std::exception&) {
        eof = true;  // garbage from a worker: treat it as dead
        break;
      }
      off += 8 + static_cast<std::size_t>(n);
      on_reply(s, reply);
    }
    s.in.erase(0, off);
    if (eof) {
      on_death(s);
      return false;
    }
    return true;
  }

  /// One trace event per call the worker timed, in the worker process's lane.
  void record_trace(const WorkerSlot& s, const Reply& reply) const {
    const auto pid = static_cast<std::uint32_t>(s.w.pid);
    if (trace::lane_name(pid, pid).empty()) {
      trace::name_lane(pid, pid,
                       std::string(cfg.trace_lane) + "#" + std::to_string(trace_id) + " worker " +
                           std::to_string(s.number) + " (pid " + std::to_string(pid) + ")");
    }
    for (std::size_t i = 0; i + 1 < reply.times.size(); i += 2) {
      trace::Event e;
      e.begin_ns = trace::from_monotonic_ns(reply.times[i]);
      e.end_ns = trace::from_monotonic_ns(reply.times[i + 1]);
      e.task_id = trace::next_task_id();
      e.pid = pid;
      e.tid = pid;
      e.source = cfg.trace_source;
      e.source_id = trace_id;
      e.worker = s.number;
      trace::record(e);
    }
  }

  void on_reply(WorkerSlot& s, Reply& reply) {
    if (s.inflight.empty()) return;
    Chunk c = std::move(s.inflight.front());
    s.inflight.pop_front();
    // A moving average of the chunks' run times (the worker's own measure) picks the
    // dispatch window.
    if (!c.jobs.empty()) {  // not the initializer's reply
      const auto took = std::max<std::int64_t>(static_cast<std::int64_t>(reply.busy_ns), 1);
      chunk_ns_avg = chunk_ns_avg == 0 ? took : (chunk_ns_avg * 7 + took) / 8;
    }
    if (reply.init_failed) {
      std::string why =
          "the pool's initializer failed in a worker: " +
          (reply.outcomes.empty() ? std::string("?") : reply.outcomes[0].type + ": " + reply.outcomes[0].payload);
      s.retiring = true;
      std::lock_guard g(m);
      broken = why;
      return;  // it exits by itself; its EOF removes it
    }
    if (!reply.times.empty()) record_trace(s, reply);
    s.tasks_done += static_cast<int>(c.jobs.size());
    finished.emplace_back(std::move(c), std::move(reply.outcomes));
    bool out_of_work = s.inflight.empty();
    if (out_of_work) {
      std::lock_guard g(m);
      out_of_work = queue.empty();
    }
    s.cwnd = out_of_work ? kMinWindow : std::min(s.cwnd + 1, kMaxWindow);
    if (cfg.max_tasks_per_child > 0 && s.tasks_done >= cfg.max_tasks_per_child && !s.retiring) {
      s.retiring = true;  // nothing more was sent to it (dispatch stops at the limit)
      Request bye;
      bye.kind = RequestKind::exit;
      send_request(s, bye);
    }
  }

  void fail_everything(const std::string& why) {
    std::deque<Chunk> q;
    {
      std::lock_guard g(m);
      q.swap(queue);
    }
    for (Chunk& c : q) fail_chunk(c, why);
  }

  void run() {
    for (;;) {
      bool term, done;
      std::optional<std::string> why_broken;
      {
        std::lock_guard g(m);
        term = terminating;
        why_broken = broken;
      }
      if (term) {
        for (auto& s : workers) ::kill(s->w.pid, SIGKILL);
        for (auto& s : workers) {
          int st = 0;
          reap(s->w, &st);
          for (Chunk& c : s->inflight) fail_chunk(c, "the pool was terminated");
        }
        {
          std::lock_guard g(m);
          workers.clear();
        }
        fail_everything("the pool was terminated");
        return;
      }
      if (why_broken) fail_everything(*why_broken);
      // Replace workers that are gone (not after close() once nothing is left to do).
      {
        bool need;
        {
          std::lock_guard g(m);
          need = !broken && (!closed || !queue.empty());
        }
        int live = 0;
        for (auto& s : workers) live += s->retiring ? 0 : 1;
        while (need && live < cfg.processes) {
          try {
            start_worker();
            ++live;
          } catch (const std::exception& e) {
            std::lock_guard g(m);
            broken = std::string("cannot start a worker process: ") + e.what();
            break;
          }
        }
      }
      dispatch();
      {
        std::lock_guard g(m);
        bool idle = queue.empty();
        for (auto& s : workers) idle = idle && s->inflight.empty();
        done = closed && idle;
      }
      if (done) {
        Request bye;
        bye.kind = RequestKind::exit;
        for (auto& s : workers) {
          int fd = s->w.conn.fileno();
          ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // the last words may block
          try {
            s->w.conn.send(bye);
          } catch (const std::exception&) {
          }
        }
        for (auto& s : workers) {
          int st = 0;
          reap(s->w, &st);
        }
        std::lock_guard g(m);
        workers.clear();
        return;
      }
      std::vector<pollfd> fds;
      fds.push_back({wake, POLLIN, 0});
      for (auto& s : workers) {
        auto ev = static_cast<short>(POLLIN | (s->out.empty() ? 0 : POLLOUT));
        fds.push_back({s->w.conn.fileno(), ev, 0});
      }
      int r = ::poll(fds.data(), fds.size(), -1);
      if (r < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t n = ::read(wake, &v, sizeof v);
      }
      std::vector<WorkerSlot*> dead;
      for (std::size_t i = 0; i < workers.size(); ++i) {
        if ((fds[i + 1].revents & POLLOUT) != 0) flush(*workers[i]);
        if ((fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !on_readable(*workers[i])) {
          dead.push_back(workers[i].get());
        }
      }
      if (!dead.empty()) {  // pids() reads `workers` under the lock from other threads
        std::lock_guard g(m);
        std::erase_if(workers, [&](const std::unique_ptr<WorkerSlot>& w) {
          return std::find(dead.begin(), dead.end(), w.get()) != dead.end();
        });
      }
      if (!finished.empty()) {
        dispatch();  // new work out first, then the callbacks of what came back
        settle_finished();
      }
    }
  }

  void settle_finished() {
    for (auto& [c, outcomes] : finished) {
      for (std::size_t i = 0; i < c.jobs.size() && i < outcomes.size(); ++i) {
        if (c.jobs[i].done) c.jobs[i].done(outcomes[i]);
      }
    }
    finished.clear();
  }
};

PoolCore::PoolCore(PoolConfig config) : s_(std::make_shared<State>()) {
  if (config.processes < 1) throw std::invalid_argument("Pool: processes must be at least 1");
  ensure_worker_entry();
  s_->cfg = std::move(config);
  s_->wake = ::eventfd(0, EFD_CLOEXEC);
  if (s_->wake < 0) throw_os_error(errno, "Pool: eventfd");
  auto st = s_;
  s_->manager = std::thread([st] { st->run(); });
}

PoolCore::~PoolCore() {
  terminate();
  join();
  if (s_->wake >= 0) ::close(s_->wake);
}

void PoolCore::submit(std::vector<Job> jobs) {
  std::optional<std::string> broken;
  bool wake = false;
  {
    std::lock_guard g(s_->m);
    if (s_->closed) throw std::logic_error("Pool not running (closed): submit before close()");
    if (s_->terminating) {
      broken = "the pool was terminated";
    } else if (s_->broken) {
      broken = s_->broken;
    } else {
      wake = s_->queue.empty();  // else the manager gets to it anyway: it sleeps only while
                                 // every worker's window is full, and a reply wakes it
      s_->queue.push_back(Chunk{s_->next_id++, std::move(jobs)});
    }
  }
  if (broken) {
    Chunk c{0, std::move(jobs)};
    fail_chunk(c, *broken);
    return;
  }
  if (wake) s_->wake_up();
}

void PoolCore::cancel_queued() {
  std::deque<Chunk> q;
  {
    std::lock_guard g(s_->m);
    q.swap(s_->queue);
  }
  Outcome o;
  o.type = "concur::CancelledError";
  o.payload = "cancelled by shutdown(cancel_futures=true)";
  for (Chunk& c : q) {
    for (Job& j : c.jobs) {
      if (j.done) j.done(o);
    }
  }
}

void PoolCore::close() {
  {
    std::lock_guard g(s_->m);
    s_->closed = true;
  }
  s_->wake_up();
}

void PoolCore::terminate() {
  {
    std::lock_guard g(s_->m);
    s_->closed = true;
    s_->terminating = true;
  }
  s_->wake_up();
}

void PoolCore::join() {
  if (s_->manager.joinable()) {
    if (s_->manager.get_id() == std::this_thread::get_id()) {
      s_->manager.detach();  // a result callback destroying the pool: the thread ends by itself
    } else {
      s_->manager.join();
    }
  }
}

int PoolCore::processes() const noexcept { return s_->cfg.processes; }

std::vector<pid_t> PoolCore::pids() const {
  std::lock_guard g(s_->m);
  std::vector<pid_t> out;
  for (const auto& w : s_->workers) out.push_back(w->w.pid);
  return out;
}

}  // namespace concur::multiprocessing::detail

namespace concur::multiprocessing {

int cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {
detail::PoolConfig make_config(std::optional<int> processes, void (*initializer)(), int max_tasks,
                               const char* trace_source, const char* trace_lane) {
  detail::PoolConfig c;
  c.processes = processes.value_or(cpu_count());
  if (initializer != nullptr) c.initializer = detail::pack(initializer);
  c.max_tasks_per_child = max_tasks;
  c.trace_source = trace_source;
  c.trace_lane = trace_lane;
  return c;
}
}  // namespace

Pool::Pool(PoolOptions o)
    : core_(std::make_unique<detail::PoolCore>(
          make_config(o.processes, o.initializer, o.maxtasksperchild, "multiprocessing.Pool", "Pool"))) {}

Pool::~Pool() {
  core_->terminate();
  core_->join();
}

}  // namespace concur::multiprocessing

namespace concur::futures {

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolOptions o)
    : core_(std::make_unique<multiprocessing::detail::PoolCore>(multiprocessing::make_config(
          o.max_workers, o.initializer, o.max_tasks_per_child, "ProcessPoolExecutor", "ProcessPoolExecutor"))) {}

void ProcessPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  if (cancel_futures) core_->cancel_queued();
  if (!shut_) {
    shut_ = true;
    core_->close();
  }
  if (wait) core_->join();
}

}  // namespace concur::futures
