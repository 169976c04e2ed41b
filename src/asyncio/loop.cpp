#include "concur/asyncio/loop.hpp"

#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "backend/backend.hpp"

#include "concur/asyncio/task.hpp"
#include "concur/core/error.hpp"

namespace concur::asyncio {

namespace detail {
/// The loop's file descriptors: who handles each, and for what.
struct FdTable {
  /// The handler behind add_reader/add_writer: a callback per direction.
  struct Callbacks final : IoHandler {
    concur::detail::unique_function on_read, on_write;
    void io_ready(std::uint32_t events) noexcept override {
      try {
        if ((events & io_readable) && on_read) on_read();
        if ((events & io_writable) && on_write) on_write();
      } catch (...) {
        report_unraisable("exception in an add_reader/add_writer callback", std::current_exception());
      }
    }
  };
  struct Entry {
    IoHandler* handler = nullptr;
    std::uint32_t interest = 0;
    std::unique_ptr<Callbacks> callbacks;  // set when the handler is add_reader/add_writer's
  };
  std::vector<Entry> entries;
  std::vector<IoEvent> events;  // reused by every poll
  // Callbacks replaced or removed, possibly by themselves while running: freed after dispatch.
  std::vector<concur::detail::unique_function> retired_fns;
  std::vector<std::unique_ptr<Callbacks>> retired;
  std::size_t watched = 0;
  // Transports with writes to send before the next poll (queue_flush), and the batch built
  // from them; both reused by every iteration.
  std::vector<Flushable*> flush, flushing;
  std::vector<BatchOp> batch;
  std::vector<std::size_t> batch_index;  // batch op -> entry of `flushing`
  bool batching = false;                 // the backend runs batches (io_uring)
  // Batched reads: one slice of the slab per recv, at most kReadBatch at once.
  static constexpr std::size_t kReadBatch = 32;
  static constexpr std::size_t kReadSlice = 64 * 1024;
  std::unique_ptr<char[]> slab;
  std::vector<BatchOp> reads;
  std::vector<std::pair<std::size_t, IoHandler*>> readers;  // event index, handler
  Entry& at(int fd) {
    if (fd < 0) throw std::invalid_argument("invalid file descriptor");
    if (static_cast<std::size_t>(fd) >= entries.size()) entries.resize(static_cast<std::size_t>(fd) + 64);
    return entries[static_cast<std::size_t>(fd)];
  }
};
}  // namespace detail

namespace {
thread_local EventLoop* tls_loop = nullptr;

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool env_debug() {
  const char* v = std::getenv("CONCUR_ASYNCIO_DEBUG");
  return v && *v && *v != '0';
}
/// CONCUR_ASYNCIO_BATCH_WRITES=0 turns write batching off (benchmarks compare both).
bool env_no_batching() {
  const char* v = std::getenv("CONCUR_ASYNCIO_BATCH_WRITES");
  return v && *v == '0';
}
}  // namespace

namespace detail {

// ---- TimerHeap ----------------------------------------------------------------------------

void TimerHeap::push(TimerNode* n) {
  heap_.push_back(n);
  n->heap_index = heap_.size() - 1;
  sift_up(heap_.size() - 1);
}

void TimerHeap::remove(TimerNode* n) noexcept {
  if (!n->scheduled()) return;
  std::size_t i = n->heap_index;
  TimerNode* last = heap_.back();
  heap_.pop_back();
  n->heap_index = static_cast<std::size_t>(-1);
  if (i == heap_.size()) return;
  place(i, last);
  sift_up(i);
  sift_down(last->heap_index);
}

TimerNode* TimerHeap::pop() noexcept {
  if (heap_.empty()) return nullptr;
  TimerNode* t = heap_.front();
  remove(t);
  return t;
}

void TimerHeap::sift_up(std::size_t i) noexcept {
  TimerNode* n = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!less(n, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, n);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
  TimerNode* n = heap_[i];
  const std::size_t size = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], n)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, n);
}

/// A user timer (call_later/call_at).
struct CallbackTimer final : TimerNode {
  EventLoop* loop = nullptr;
  std::atomic<bool> cancelled{false};
  concur::detail::unique_function fn;
  std::shared_ptr<CallbackTimer> self;  // keeps itself alive while scheduled
  void fire() noexcept override {
    auto keep = std::move(self);
    if (cancelled.load(std::memory_order_acquire)) return;
    try {
      fn();
    } catch (...) {
      report_unraisable("Exception in callback scheduled with call_later/call_at", std::current_exception());
    }
  }
};

}  // namespace detail

// ---- handles ------------------------------------------------------------------------------

void TimerHandle::cancel() noexcept {
  if (!t_) return;
  t_->cancelled.store(true, std::memory_order_release);
  if (tls_loop == t_->loop && t_->scheduled()) {
    t_->loop->remove_timer(t_.get());
    t_->self.reset();
  }
}

bool TimerHandle::cancelled() const noexcept { return t_ && t_->cancelled.load(std::memory_order_acquire); }

double TimerHandle::when() const noexcept { return t_ ? static_cast<double>(t_->when_ns) * 1e-9 : 0.0; }

// ---- EventLoop ----------------------------------------------------------------------------

EventLoop::EventLoop(LoopOptions options) : options_(std::move(options)) {
  if (env_debug()) options_.debug = true;
  backend_ = detail::make_backend(options_.backend);
  fds_ = std::make_unique<detail::FdTable>();
  fds_->batching = backend_->batches() && !env_no_batching();
}

EventLoop::~EventLoop() {
  if (!closed_) {
    try {
      close();
    } catch (...) {
      report_unraisable("exception closing an event loop", std::current_exception());
    }
  }
}

const char* EventLoop::backend_name() const noexcept { return backend_->name(); }

std::int64_t EventLoop::now_ns() const noexcept { return monotonic_ns(); }

void EventLoop::push_ready(Ready r) { ready_.push(r); }

void EventLoop::watch(int fd, detail::IoHandler* h, std::uint32_t interest) {
  detail::FdTable::Entry& e = fds_->at(fd);
  interest &= detail::io_readable | detail::io_writable;
  if (interest != 0) {
    if (!h) throw std::invalid_argument("watch: a handler is needed");
    if (e.handler && e.handler != h)
      throw std::logic_error("file descriptor " + std::to_string(fd) + " is already watched by another handler");
  }
  if (interest == e.interest && (interest == 0 || e.handler == h)) return;
  backend_->set_interest(fd, e.interest, interest);
  if (e.interest == 0 && interest != 0) ++fds_->watched;
  if (e.interest != 0 && interest == 0) --fds_->watched;
  e.interest = interest;
  e.handler = interest ? h : nullptr;
}

std::size_t EventLoop::watched_fd_count() const noexcept { return fds_->watched; }

// Readable sockets of transports get their recv made here, many in one system call (io_uring),
// then each transport is handed what it received, in event order. What an earlier callback
// of the batch did is the handler's to respect: a transport paused meanwhile keeps the bytes
// for resume_reading, a closed one drops them.
void EventLoop::dispatch_io_batched() {
  detail::FdTable& t = *fds_;
  auto& evs = t.events;
  if (!t.slab) t.slab.reset(new char[detail::FdTable::kReadBatch * detail::FdTable::kReadSlice]);
  std::size_t start = 0;
  while (start < evs.size()) {
    // Collect up to kReadBatch reads from evs[start..end).
    t.reads.clear();
    t.readers.clear();
    std::size_t end = start;
    for (; end < evs.size() && t.reads.size() < detail::FdTable::kReadBatch; ++end) {
      detail::IoEvent ev = evs[end];
      if (static_cast<std::size_t>(ev.fd) >= t.entries.size()) continue;
      detail::FdTable::Entry& e = t.entries[static_cast<std::size_t>(ev.fd)];
      if (!e.handler || !(ev.events & e.interest & detail::io_readable) || !e.handler->batch_read()) continue;
      detail::BatchOp op;
      op.fd = ev.fd;
      op.send = false;
      op.data = t.slab.get() + t.reads.size() * detail::FdTable::kReadSlice;
      op.len = detail::FdTable::kReadSlice;
      t.reads.push_back(op);
      t.readers.emplace_back(end, e.handler);
    }
    if (!t.reads.empty()) backend_->run_batch(t.reads.data(), t.reads.size());
    std::size_t next_read = 0;
    for (std::size_t i = start; i < end; ++i) {
      detail::IoEvent ev = evs[i];
      if (static_cast<std::size_t>(ev.fd) >= t.entries.size()) continue;
      detail::FdTable::Entry& e = t.entries[static_cast<std::size_t>(ev.fd)];
      std::uint32_t mask = ev.events & (e.interest | detail::io_error);
      if (next_read < t.readers.size() && t.readers[next_read].first == i) {
        const detail::BatchOp& op = t.reads[next_read];
        detail::IoHandler* h = t.readers[next_read].second;
        ++next_read;
        // Even if an earlier callback stopped its watching (paused: it keeps the bytes; closed:
        // it drops them). Handlers that batch reads outlive the round (IoHandler::batch_read).
        h->read_done(op.data, op.res);
        // read_done may have changed the interest, or grown the table (a new fd): look again.
        detail::FdTable::Entry& now = t.entries[static_cast<std::size_t>(ev.fd)];
        mask &= ~static_cast<std::uint32_t>(detail::io_readable);
        mask &= now.interest | detail::io_error;
        if (!now.handler || (mask & detail::io_writable) == 0) continue;
        now.handler->io_ready(mask);
        continue;
      }
      if (!e.handler || (mask & (detail::io_readable | detail::io_writable)) == 0) continue;
      e.handler->io_ready(mask);
    }
    start = end;
  }
  evs.clear();
  t.retired_fns.clear();
  t.retired.clear();
}

bool EventLoop::batches_writes() const noexcept { return fds_->batching && !closed_; }

void EventLoop::queue_flush(detail::Flushable* f) { fds_->flush.push_back(f); }

void EventLoop::unqueue_flush(detail::Flushable* f) noexcept {
  for (auto& q : fds_->flush)
    if (q == f) q = nullptr;
  for (auto& q : fds_->flushing)
    if (q == f) q = nullptr;
}

void EventLoop::flush_writes() {
  detail::FdTable& t = *fds_;
  if (t.flush.empty()) return;
  t.flushing.swap(t.flush);  // flush_done may queue again (into the emptied t.flush)
  t.batch.clear();
  t.batch_index.clear();
  for (std::size_t i = 0; i < t.flushing.size(); ++i) {
    if (!t.flushing[i]) continue;
    detail::BatchOp op;
    t.flushing[i]->flush_take(op.fd, op.data, op.len);
    if (op.len == 0) {
      t.flushing[i]->flush_done(0);
      t.flushing[i] = nullptr;
      continue;
    }
    t.batch.push_back(op);
    t.batch_index.push_back(i);
  }
  if (!t.batch.empty()) backend_->run_batch(t.batch.data(), t.batch.size());
  for (std::size_t k = 0; k < t.batch.size(); ++k) {
    detail::Flushable* f = t.flushing[t.batch_index[k]];
    if (f) {  // an earlier flush_done may have destroyed it (unqueue_flush)
      t.flushing[t.batch_index[k]] = nullptr;
      f->flush_done(t.batch[k].res);
    }
  }
  t.flushing.clear();
}

void EventLoop::add_resource(detail::LoopResource* r) noexcept {
  r->res_prev = nullptr;
  r->res_next = resources_;
  if (resources_) resources_->res_prev = r;
  resources_ = r;
}

void EventLoop::remove_resource(detail::LoopResource* r) noexcept {
  if (r->res_prev) {
    r->res_prev->res_next = r->res_next;
  } else if (resources_ == r) {
    resources_ = r->res_next;
  } else {
    return;  // not registered
  }
  if (r->res_next) r->res_next->res_prev = r->res_prev;
  r->res_prev = r->res_next = nullptr;
}

void EventLoop::set_fd_callback(int fd, std::uint32_t direction, concur::detail::unique_function fn) {
  if (closed_) throw std::logic_error("the event loop is closed");
  detail::FdTable::Entry& e = fds_->at(fd);
  if (e.handler && !e.callbacks)
    throw std::logic_error("file descriptor " + std::to_string(fd) + " is used by a transport");
  if (!e.callbacks) e.callbacks = std::make_unique<detail::FdTable::Callbacks>();
  auto& slot = direction == detail::io_readable ? e.callbacks->on_read : e.callbacks->on_write;
  if (slot) fds_->retired_fns.push_back(std::move(slot));
  slot = std::move(fn);
  watch(fd, e.callbacks.get(), e.interest | direction);
}

namespace {
bool remove_fd_callback(EventLoop& loop, detail::FdTable& t, int fd, std::uint32_t direction) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= t.entries.size()) return false;
  detail::FdTable::Entry& e = t.entries[static_cast<std::size_t>(fd)];
  if (!e.callbacks || !(e.interest & direction)) return false;
  // The callback may be the one running now: it is freed after this round of dispatch.
  t.retired_fns.push_back(std::move(direction == detail::io_readable ? e.callbacks->on_read : e.callbacks->on_write));
  std::uint32_t rest = e.interest & ~direction;
  loop.watch(fd, rest ? e.callbacks.get() : nullptr, rest);
  if (!rest) t.retired.push_back(std::move(e.callbacks));
  return true;
}
}  // namespace

bool EventLoop::remove_reader(int fd) { return remove_fd_callback(*this, *fds_, fd, detail::io_readable); }
bool EventLoop::remove_writer(int fd) { return remove_fd_callback(*this, *fds_, fd, detail::io_writable); }

void EventLoop::dispatch_io() {
  auto& evs = fds_->events;
  if (fds_->batching && evs.size() > 1) {
    dispatch_io_batched();
    return;
  }
  for (std::size_t i = 0; i < evs.size(); ++i) {
    detail::IoEvent ev = evs[i];
    if (static_cast<std::size_t>(ev.fd) >= fds_->entries.size()) continue;
    detail::FdTable::Entry& e = fds_->entries[static_cast<std::size_t>(ev.fd)];
    // Only what is still wanted: an earlier handler in this batch may have changed it.
    std::uint32_t mask = ev.events & (e.interest | detail::io_error);
    if (!e.handler || (mask & (detail::io_readable | detail::io_writable)) == 0) continue;
    e.handler->io_ready(mask);
  }
  evs.clear();
  fds_->retired_fns.clear();
  fds_->retired.clear();
}

void EventLoop::ReadyQueue::grow() {
  Chunk* c = spare_ ? std::exchange(spare_, nullptr) : static_cast<Chunk*>(detail::frame_alloc(sizeof(Chunk)));
  c->next = nullptr;
  if (tail_) {
    tail_->next = c;
  } else {
    head_ = c;
    head_pos_ = 0;
  }
  tail_ = c;
  tail_pos_ = 0;
}

void EventLoop::ReadyQueue::advance() noexcept {
  // Called only with entries left, so the head chunk has a successor.
  Chunk* old = head_;
  head_ = old->next;
  head_pos_ = 0;
  if (spare_) detail::frame_free(spare_, sizeof(Chunk));
  spare_ = old;
}

EventLoop::ReadyQueue::~ReadyQueue() {
  for (Chunk* c = head_; c;) {
    Chunk* n = c->next;
    detail::frame_free(c, sizeof(Chunk));
    c = n;
  }
  if (spare_) detail::frame_free(spare_, sizeof(Chunk));
}

Handle EventLoop::call_soon_impl(concur::detail::unique_function fn) {
  if (closed_) throw std::logic_error("the event loop is closed");
  auto* s = new detail::CallbackState;
  s->fn = std::move(fn);
  s->add_ref();  // one for the ready queue
  push_ready({&EventLoop::run_callback, s});
  return Handle(s);
}

Handle EventLoop::call_soon_threadsafe_impl(concur::detail::unique_function fn) {
  if (closed_) throw std::logic_error("the event loop is closed");
  auto* s = new detail::CallbackState;
  s->fn = std::move(fn);
  s->add_ref();  // one for the queue
  {
    // The wake-up is sent under the lock: once this thread lets go, the loop may drain the
    // queue, finish, and be destroyed; nothing here may touch the loop after that.
    std::lock_guard g(ts_m_);
    ts_callbacks_.push_back(s);
    if (!ts_pending_.exchange(true, std::memory_order_acq_rel)) backend_->wakeup();
  }
  return Handle(s);
}

TimerHandle EventLoop::call_at_ns(std::int64_t when_ns, concur::detail::unique_function fn) {
  if (closed_) throw std::logic_error("the event loop is closed");
  auto t = std::make_shared<detail::CallbackTimer>();
  t->loop = this;
  t->fn = std::move(fn);
  t->when_ns = when_ns;
  t->self = t;
  add_timer(t.get());
  return TimerHandle(t);
}

void EventLoop::add_timer(detail::TimerNode* n) {
  n->seq = ++timer_seq_;
  timers_.push(n);
}

void EventLoop::run_callback(void* arg) {
  auto* s = static_cast<detail::CallbackState*>(arg);
  if (!s->cancelled.load(std::memory_order_acquire)) {
    try {
      s->fn();
    } catch (...) {
      report_unraisable("Exception in callback scheduled with call_soon", std::current_exception());
    }
  }
  s->release();
}

void EventLoop::run_task_step(void* arg) { static_cast<detail::TaskBase*>(arg)->step(); }

void EventLoop::schedule(detail::TaskBase* t) { push_ready({&EventLoop::run_task_step, t}); }

void EventLoop::schedule_threadsafe(detail::TaskBase* t) {
  if (tls_loop == this) {
    schedule(t);
    return;
  }
  // Under the lock (see call_soon_threadsafe_impl): the woken task may finish and its loop be
  // destroyed as soon as the loop thread can drain the queue.
  std::lock_guard g(ts_m_);
  ts_tasks_.push_back(t);
  if (!ts_pending_.exchange(true, std::memory_order_acq_rel)) backend_->wakeup();
}

void EventLoop::drain_threadsafe() {
  if (!ts_pending_.load(std::memory_order_acquire)) return;
  std::vector<detail::CallbackState*> callbacks;
  std::vector<detail::TaskBase*> tasks;
  {
    std::lock_guard g(ts_m_);
    ts_pending_.store(false, std::memory_order_release);
    callbacks.swap(ts_callbacks_);
    tasks.swap(ts_tasks_);
  }
  for (auto* t : tasks) schedule(t);
  for (auto* cb : callbacks) push_ready({&EventLoop::run_callback, cb});
}

void EventLoop::register_task(detail::TaskBase* t) noexcept {
  t->next_in_loop = tasks_head_;
  t->prev_in_loop = nullptr;
  if (tasks_head_) tasks_head_->prev_in_loop = t;
  tasks_head_ = t;
  ++tasks_count_;
}

void EventLoop::unregister_task(detail::TaskBase* t) noexcept {
  if (t->prev_in_loop)
    t->prev_in_loop->next_in_loop = t->next_in_loop;
  else
    tasks_head_ = t->next_in_loop;
  if (t->next_in_loop) t->next_in_loop->prev_in_loop = t->prev_in_loop;
  t->next_in_loop = t->prev_in_loop = nullptr;
  --tasks_count_;
}

std::string EventLoop::dump_tasks() const {
  std::ostringstream out;
  std::size_t i = 0;
  for (auto* t = tasks_head_; t; t = t->next_in_loop)
    out << "Task " << ++i << ": name='" << t->name() << "' state=pending cancelling=" << t->cancelling()
        << "\n    awaiting: " << t->await_chain() << "\n";
  return out.str();
}

void EventLoop::run_once() {
  ++iterations_;
  drain_threadsafe();
  // Writes queued by the last iteration go out together, before the poll (whose timeout
  // counts what their completions schedule).
  flush_writes();
  // Poll I/O: without blocking when work is ready (then only every 64 iterations, so a busy
  // loop does not pay a system call per step), else until the next timer.
  std::int64_t timeout = -1;
  if (ready_.size() > 0 || stopping_) {
    timeout = 0;
  } else if (auto* t = timers_.top()) {
    timeout = std::max<std::int64_t>(0, t->when_ns - now_ns());
  }
  if (timeout != 0 || (iterations_ & 63) == 0 || fds_->watched > 0 || ts_pending_.load(std::memory_order_relaxed)) {
    if (timeout != 0) sleeping_.store(true, std::memory_order_relaxed);
    backend_->poll(timeout, fds_->events);
    sleeping_.store(false, std::memory_order_relaxed);
    drain_threadsafe();
    if (!fds_->events.empty()) dispatch_io();
  }
  // Due timers become ready, in deadline order.
  if (timers_.size() > 0) {
    std::int64_t now = now_ns();
    while (auto* t = timers_.top()) {
      if (t->when_ns > now) break;
      timers_.pop();
      t->fire();
    }
  }
  // Run what is ready now; what they schedule runs next iteration.
  if (!fds_->retired.empty() || !fds_->retired_fns.empty()) {
    fds_->retired_fns.clear();
    fds_->retired.clear();
  }
  std::size_t n = ready_.size();
  const bool debug = options_.debug;
  for (std::size_t i = 0; i < n; ++i) {
    Ready r = ready_.pop();
    if (ready_.size() > 0) __builtin_prefetch(ready_.peek().arg);
    if (!debug) {
      r.fn(r.arg);
      continue;
    }
    std::int64_t t0 = now_ns();
    r.fn(r.arg);
    std::int64_t took = now_ns() - t0;
    if (took > options_.slow_callback_duration.count()) {
      std::fprintf(stderr, "concur.asyncio: %s took %.3f seconds\n",
                   r.fn == &EventLoop::run_task_step
                       ? ("a step of task '" + static_cast<detail::TaskBase*>(r.arg)->name() + "'").c_str()
                       : "a callback",
                   static_cast<double>(took) * 1e-9);
    }
  }
}

void EventLoop::enter() {
  if (closed_) throw std::logic_error("the event loop is closed");
  if (running_) throw std::logic_error("this event loop is already running");
  if (tls_loop) throw std::logic_error("cannot run an event loop while another loop is running on this thread");
  previous_ = tls_loop;
  tls_loop = this;
  running_ = true;
  stopping_ = false;
}

void EventLoop::leave() noexcept {
  running_ = false;
  stopping_ = false;
  tls_loop = previous_;
}

void EventLoop::run_forever() {
  enter();
  try {
    while (!stopping_) run_once();
  } catch (...) {
    leave();
    throw;
  }
  leave();
}

void EventLoop::run_until_done(detail::TaskBase* t) {
  enter();
  try {
    while (!t->state().done() && !stopping_) run_once();
  } catch (...) {
    leave();
    throw;
  }
  bool stopped_early = !t->state().done();
  leave();
  if (stopped_early) throw std::logic_error("Event loop stopped before the task completed");
}

void EventLoop::cancel_all_tasks() {
  if (closed_ || tasks_count_ == 0) return;
  for (auto* t = tasks_head_; t; t = t->next_in_loop) t->cancel();
  enter();
  // Bounded: a task that refuses to die must not hang the program's exit.
  for (int i = 0; i < 10000 && tasks_count_ > 0; ++i) run_once();
  leave();
}

void EventLoop::close() {
  if (running_) throw std::logic_error("cannot close a running event loop");
  if (closed_) return;
  closed_ = true;
  // Pending tasks are destroyed (their frames' destructors run), like Python's "Task was
  // destroyed but it is pending".
  EventLoop* prev = tls_loop;
  tls_loop = this;
  while (tasks_head_) tasks_head_->abandon();
  // Transports and servers still open close their file descriptors (each unregisters itself).
  while (resources_) {
    detail::LoopResource* r = resources_;
    remove_resource(r);
    r->loop_closing();
  }
  tls_loop = prev;
  // Callbacks never run are released.
  while (ready_.size() > 0) {
    Ready r = ready_.pop();
    if (r.fn == &EventLoop::run_callback) static_cast<detail::CallbackState*>(r.arg)->release();
  }
  while (auto* t = timers_.pop()) {
    if (auto* ct = dynamic_cast<detail::CallbackTimer*>(t)) ct->self.reset();
  }
  std::lock_guard g(ts_m_);
  for (auto* cb : ts_callbacks_) cb->release();
  ts_callbacks_.clear();
  ts_tasks_.clear();
}

EventLoop& get_running_loop() {
  if (!tls_loop) throw std::logic_error("no running event loop");
  return *tls_loop;
}

EventLoop* running_loop() noexcept { return tls_loop; }

std::unique_ptr<EventLoop> new_event_loop(LoopOptions options) {
  return std::make_unique<EventLoop>(std::move(options));
}

}  // namespace concur::asyncio
