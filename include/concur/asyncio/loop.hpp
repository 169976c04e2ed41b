#pragma once
/// \file asyncio.EventLoop: one per thread; ready queue, timers, cross-thread wake-ups.
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "concur/asyncio/coro.hpp"
#include "concur/core/detail/unique_function.hpp"

namespace concur::futures {
class Executor;
}

namespace concur::asyncio {

class EventLoop;
template <class T>
class Task;
struct DatagramOptions;
struct SocketAddress;
struct AddrInfo;
struct GetaddrinfoOptions;

namespace detail {
class Backend;
class TaskBase;
struct FdTable;
struct SignalHandlers;

/// Something the loop must release when it closes before it (open transports, servers):
/// loop_closing() closes its file descriptors without calling back into user code.
class LoopResource {
 public:
  virtual void loop_closing() noexcept = 0;
  LoopResource* res_prev = nullptr;
  LoopResource* res_next = nullptr;

 protected:
  virtual ~LoopResource() = default;
};

/// A socket transport whose small writes the loop sends together, once per iteration, just
/// before it polls (EventLoop::queue_flush). Loop thread.
class Flushable {
 public:
  /// The bytes to send now (`len` 0: nothing, no call is made).
  virtual void flush_take(int& fd, char*& data, std::size_t& len) noexcept = 0;
  /// What the send did: bytes sent, or -errno (-EAGAIN: not ready; wait for writability).
  virtual void flush_done(long res) noexcept = 0;

 protected:
  ~Flushable() = default;
};

/// Readiness of a watched file descriptor (EventLoop::watch).
enum IoReady : std::uint32_t { io_readable = 1, io_writable = 2, io_error = 4 };

/// What a watched file descriptor calls when ready: transports, servers, awaiters. Loop thread.
class IoHandler {
 public:
  /// `events`: io_readable / io_writable (only those watched for), io_error on error/hang-up
  /// (then both directions are reported; the handler's next system call tells what happened).
  virtual void io_ready(std::uint32_t events) noexcept = 0;
  /// Batched reads (io_uring backend): true if, when readable, this handler wants the loop to
  /// make its recv (with other handlers' in one system call) and pass the outcome to
  /// read_done() instead of calling io_ready(io_readable). Such a handler must stay alive until
  /// the loop's dispatch round ends, even if a callback of that round stops its watching.
  virtual bool batch_read() noexcept { return false; }
  /// `res`: bytes received into `data` (valid during the call only), 0 at EOF, or -errno.
  virtual void read_done(const char* data, long res) noexcept {
    (void)data;
    (void)res;
  }

 protected:
  ~IoHandler() = default;
};

/// A callback scheduled with call_soon/call_later; shared by the loop and the user's handle.
struct CallbackState {
  std::atomic<int> refs{1};
  std::atomic<bool> cancelled{false};
  concur::detail::unique_function fn;
  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

/// A node in the loop's timer heap; lives wherever its owner puts it (a sleeping coroutine's
/// frame, a TimerHandle's state). Loop thread only.
struct TimerNode {
  std::int64_t when_ns = 0;
  std::uint64_t seq = 0;
  std::size_t heap_index = static_cast<std::size_t>(-1);
  [[nodiscard]] bool scheduled() const noexcept { return heap_index != static_cast<std::size_t>(-1); }
  virtual void fire() noexcept = 0;

 protected:
  ~TimerNode() = default;
};

/// An indexed binary min-heap of timers: O(log n) insert, pop and removal, so 1e5+ pending
/// timers (most of them cancelled before they fire, as timeouts are) stay cheap.
class TimerHeap {
 public:
  void push(TimerNode* n);
  void remove(TimerNode* n) noexcept;
  [[nodiscard]] TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }
  TimerNode* pop() noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

 private:
  static bool less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->seq < b->seq);
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, TimerNode* n) noexcept {
    heap_[i] = n;
    n->heap_index = i;
  }
  std::vector<TimerNode*> heap_;
};

struct CallbackTimer;
}  // namespace detail

/// A scheduled callback (Python's `asyncio.Handle`). cancel() from the loop's thread (or any
/// thread: it only marks the callback, which the loop then skips).
class Handle {
 public:
  Handle() = default;
  explicit Handle(detail::CallbackState* s) noexcept : s_(s) {}
  Handle(const Handle& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Handle(Handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Handle& operator=(Handle o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Handle() {
    if (s_) s_->release();
  }
  void cancel() noexcept {
    if (s_) s_->cancelled.store(true, std::memory_order_release);
  }
  [[nodiscard]] bool cancelled() const noexcept { return s_ && s_->cancelled.load(std::memory_order_acquire); }

 private:
  detail::CallbackState* s_ = nullptr;
};

/// A callback scheduled at a time (Python's `asyncio.TimerHandle`). cancel() on the loop's
/// thread removes it from the timer heap at once.
class TimerHandle {
 public:
  TimerHandle() = default;
  explicit TimerHandle(std::shared_ptr<detail::CallbackTimer> t) noexcept : t_(std::move(t)) {}
  void cancel() noexcept;
  [[nodiscard]] bool cancelled() const noexcept;
  /// When it fires, in loop.time() seconds.
  [[nodiscard]] double when() const noexcept;

 private:
  std::shared_ptr<detail::CallbackTimer> t_;
};

/// Options of an EventLoop.
struct LoopOptions {
  /// "epoll" or "io_uring"; empty: the CONCUR_ASYNCIO_BACKEND environment variable, else the
  /// default (io_uring, the faster here), falling back to epoll where io_uring is unavailable.
  std::string backend;
  /// Debug mode (Python's `loop.set_debug`): callbacks slower than `slow_callback_duration`
  /// are reported. Also on when CONCUR_ASYNCIO_DEBUG=1.
  bool debug = false;
  std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
};

/// The event loop (Python's `asyncio` event loop). One runs per thread at a time.
///
/// Which thread runs what: every callback and every task step runs on the thread that runs the
/// loop. Thread safety: only call_soon_threadsafe() (and Handle::cancel) may be called from
/// other threads; everything else belongs to the loop's thread.
class EventLoop {
 public:
  explicit EventLoop(LoopOptions options = {});
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  /// Runs `fn` on the next iteration, after callbacks already scheduled (FIFO).
  template <class F>
  Handle call_soon(F&& fn) {
    return call_soon_impl(concur::detail::unique_function(std::forward<F>(fn)));
  }
  /// Runs `fn` after `delay` (sub-millisecond resolution).
  template <class Rep, class Period, class F>
  TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& fn) {
    return call_at_ns(now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count(),
                      concur::detail::unique_function(std::forward<F>(fn)));
  }
  /// Runs `fn` at loop time `when` (seconds, as time()).
  template <class F>
  TimerHandle call_at(double when, F&& fn) {
    return call_at_ns(static_cast<std::int64_t>(when * 1e9), concur::detail::unique_function(std::forward<F>(fn)));
  }
  /// Thread-safe call_soon: wakes the loop (eventfd) if it sleeps.
  template <class F>
  Handle call_soon_threadsafe(F&& fn) {
    return call_soon_threadsafe_impl(concur::detail::unique_function(std::forward<F>(fn)));
  }

  /// The loop's monotonic clock, in seconds.
  [[nodiscard]] double time() const noexcept { return static_cast<double>(now_ns()) * 1e-9; }
  [[nodiscard]] std::int64_t now_ns() const noexcept;

  /// Runs the loop until `coro` (wrapped in a task) is done; returns its result or rethrows.
  template <class T>
  T run_until_complete(Coro<T> coro);
  template <class T>
  T run_until_complete(Task<T> task);
  /// Runs until stop() is called.
  void run_forever();
  /// Makes run_forever()/run_until_complete() return after the current iteration. From
  /// another thread, prefer call_soon_threadsafe([&] { loop.stop(); }) so a sleeping loop wakes.
  void stop() noexcept { stopping_.store(true, std::memory_order_release); }
  /// Closes the loop; pending tasks are destroyed. std::logic_error while running.
  void close();
  /// Any thread may ask.
  [[nodiscard]] bool is_running() const noexcept { return running_.load(std::memory_order_acquire); }
  [[nodiscard]] bool is_closed() const noexcept { return closed_; }
  [[nodiscard]] const char* backend_name() const noexcept;

  /// Python's loop.run_in_executor: awaits `fn(args...)` run on `executor` (threads.hpp).
  template <class F, class... Args>
  auto run_in_executor(futures::Executor& executor, F&& fn, Args&&... args);

  /// Python's loop.create_task.
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {});

  // ---- networking (transports.hpp; streams in streams.hpp) ----
  /// Python's loop.create_connection / create_server / create_unix_connection /
  /// create_unix_server / create_datagram_endpoint (see transports.hpp). Loop thread.
  template <class F>
  auto create_connection(F factory, std::string host, int port);
  template <class F>
  auto create_server(F factory, std::string host, int port);
  template <class F>
  auto create_unix_connection(F factory, std::string path);
  template <class F>
  auto create_unix_server(F factory, std::string path);
  template <class F>
  auto create_datagram_endpoint(F factory, DatagramOptions options);

  // ---- DNS (dns.hpp: asynchronous and cancellable, on c-ares) ----
  /// Python's loop.getaddrinfo(host, port, family=, type=, proto=, flags=): the addresses of
  /// `host` (numeric hosts without a lookup). GaiError naming the host. Loop thread.
  Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, int port);
  Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, int port, GetaddrinfoOptions options);
  /// Python's loop.getnameinfo(sockaddr, flags): (host, service). GaiError. Loop thread.
  Coro<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags = 0);

  // ---- file descriptors (Python's add_reader / add_writer) ----
  /// Calls `fn()` on the loop's thread whenever `fd` is readable, until remove_reader(fd).
  /// Replaces an earlier reader callback. The fd must support polling (not a regular file).
  template <class F>
  void add_reader(int fd, F&& fn) {
    set_fd_callback(fd, detail::io_readable, concur::detail::unique_function(std::forward<F>(fn)));
  }
  /// Stops watching `fd` for reading; false if it was not watched.
  bool remove_reader(int fd);
  /// As add_reader, for writability.
  template <class F>
  void add_writer(int fd, F&& fn) {
    set_fd_callback(fd, detail::io_writable, concur::detail::unique_function(std::forward<F>(fn)));
  }
  bool remove_writer(int fd);

  // ---- Unix signals (Python's add_signal_handler / remove_signal_handler) ----
  /// Calls `fn()` on the loop's thread (as a call_soon callback) each time signal `sig` is
  /// delivered to the process, until remove_signal_handler(sig) or close(); replaces an earlier
  /// handler of `sig` on this loop. Several loops may handle one signal: each is called.
  /// The process-wide handler only writes the signal number to the loop's non-blocking
  /// self-pipe (async-signal-safe); signals that arrive while the pipe is full are dropped, and
  /// the kernel merges repeats of a pending standard signal. The previous disposition of `sig`
  /// is restored when no loop handles it any more. std::invalid_argument for SIGKILL, SIGSTOP,
  /// signals out of range or reserved by the C library. Loop thread (or before the loop runs).
  template <class F>
  void add_signal_handler(int sig, F&& fn) {
    add_signal_handler_impl(sig, concur::detail::unique_function(std::forward<F>(fn)));
  }
  /// Stops handling `sig` on this loop; false if it had no handler here. A delivery already
  /// read from the self-pipe but not yet run is dropped.
  bool remove_signal_handler(int sig);

  /// Tasks not done yet (Python's asyncio.all_tasks).
  [[nodiscard]] std::size_t pending_task_count() const noexcept { return tasks_count_; }
  /// Debug aid: one line per pending task with its name and state. Loop thread only.
  [[nodiscard]] std::string dump_tasks() const;
  [[nodiscard]] bool debug() const noexcept { return options_.debug; }

  // ---- for awaitables and tasks (not for users) ----
  /// Loop thread: runs `t`'s next step soon.
  void schedule(detail::TaskBase* t);
  /// Any thread: as schedule(), waking the loop if needed.
  void schedule_threadsafe(detail::TaskBase* t);
  void add_timer(detail::TimerNode* n);
  void remove_timer(detail::TimerNode* n) noexcept { timers_.remove(n); }
  void register_task(detail::TaskBase* t) noexcept;
  void unregister_task(detail::TaskBase* t) noexcept;
  /// Cancels every pending task and runs until they finish (asyncio.run's clean-up).
  void cancel_all_tasks();
  /// Watches `fd` for `interest` (io_readable|io_writable) with `h`; interest 0 stops watching
  /// (h may then be null). One handler per fd; std::logic_error if another one holds it.
  /// Stop watching before closing the fd.
  void watch(int fd, detail::IoHandler* h, std::uint32_t interest);
  /// Registers / unregisters something to release at close() (see LoopResource).
  void add_resource(detail::LoopResource* r) noexcept;
  void remove_resource(detail::LoopResource* r) noexcept;
  /// Number of file descriptors watched (tests, debugging).
  [[nodiscard]] std::size_t watched_fd_count() const noexcept;
  /// Whether this loop's backend sends queued writes of many sockets with one system call
  /// (io_uring); transports queue small writes only then.
  [[nodiscard]] bool batches_writes() const noexcept;
  /// Queues `f` (once) to send its buffered bytes before the next poll; unqueue_flush removes
  /// it (a transport going away). Loop thread.
  void queue_flush(detail::Flushable* f);
  void unqueue_flush(detail::Flushable* f) noexcept;

 private:
  struct Ready {
    void (*fn)(void*);
    void* arg;
  };
  /// FIFO of ready entries in 1 KiB chunks from the per-thread frame pool: no copying when it
  /// grows, and the memory of one loop's burst is reused by the next loop on the thread.
  class ReadyQueue {
   public:
    ReadyQueue() = default;
    ReadyQueue(const ReadyQueue&) = delete;
    ReadyQueue& operator=(const ReadyQueue&) = delete;
    ~ReadyQueue();
    void push(Ready r) {
      if (tail_pos_ == kPerChunk) grow();
      tail_->items[tail_pos_++] = r;
      ++count_;
    }
    Ready pop() noexcept {
      if (head_pos_ == kPerChunk) advance();
      --count_;
      return head_->items[head_pos_++];
    }
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    /// The next entry (size() > 0).
    [[nodiscard]] const Ready& peek() const noexcept {
      return head_pos_ == kPerChunk ? head_->next->items[0] : head_->items[head_pos_];
    }

   private:
    static constexpr std::size_t kPerChunk = 63;
    struct Chunk {
      Chunk* next;
      Ready items[kPerChunk];
    };
    void grow();
    void advance() noexcept;
    Chunk* head_ = nullptr;
    Chunk* tail_ = nullptr;
    Chunk* spare_ = nullptr;
    std::size_t head_pos_ = kPerChunk, tail_pos_ = kPerChunk, count_ = 0;
  };
  Handle call_soon_impl(concur::detail::unique_function fn);
  Handle call_soon_threadsafe_impl(concur::detail::unique_function fn);
  TimerHandle call_at_ns(std::int64_t when_ns, concur::detail::unique_function fn);
  void push_ready(Ready r);
  void set_fd_callback(int fd, std::uint32_t direction, concur::detail::unique_function fn);
  void add_signal_handler_impl(int sig, concur::detail::unique_function fn);
  void dispatch_io();
  void dispatch_io_batched();
  void flush_writes();
  void run_once();
  void drain_threadsafe();
  void enter();
  void leave() noexcept;
  void run_until_done(detail::TaskBase* t);
  static void run_callback(void* arg);
  static void run_task_step(void* arg);

  LoopOptions options_;
  std::unique_ptr<detail::Backend> backend_;
  ReadyQueue ready_;
  std::unique_ptr<detail::FdTable> fds_;
  detail::LoopResource* resources_ = nullptr;
  detail::TimerHeap timers_;
  std::uint64_t timer_seq_ = 0;
  // Cross-thread submissions, guarded by ts_m_.
  std::mutex ts_m_;
  std::vector<detail::CallbackState*> ts_callbacks_;  // each holds one reference
  std::vector<detail::TaskBase*> ts_tasks_;
  std::atomic<bool> ts_pending_{false};
  std::atomic<bool> sleeping_{false};
  // Tasks not done (intrusive list through TaskBase), loop thread only.
  detail::TaskBase* tasks_head_ = nullptr;
  std::size_t tasks_count_ = 0;
  std::uint64_t iterations_ = 0;
  std::atomic<bool> running_{false};  // atomic: is_running() and stop() from any thread
  std::atomic<bool> stopping_{false};
  bool closed_ = false;
  EventLoop* previous_ = nullptr;
  detail::SignalHandlers* signals_ = nullptr;  // signals.cpp; freed when it is empty or at close()
};

/// The loop running on this thread; std::logic_error if none (Python's RuntimeError).
EventLoop& get_running_loop();
/// The loop running on this thread, or null.
EventLoop* running_loop() noexcept;
/// A new loop (Python's asyncio.new_event_loop).
std::unique_ptr<EventLoop> new_event_loop(LoopOptions options = {});

}  // namespace concur::asyncio
