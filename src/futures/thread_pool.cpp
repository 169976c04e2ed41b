#include "concur/futures/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "work_deque.hpp"

#include "concur/core/trace.hpp"
#include "concur/threading/thread.hpp"

namespace concur::futures {

namespace detail {

struct Worker {
  Pool* pool = nullptr;
  std::uint32_t index = 0;
  WorkDeque deque;
  core::ThreadWaiter parker;   // woken by the pool (work arrived) or by a future being waited on
  bool in_idle_stack = false;  // guarded by Pool::idle_m_
  std::uint64_t rng = 0;
  threading::Thread thread;
};

namespace {
thread_local Worker* tls_worker = nullptr;
std::atomic<std::uint32_t> g_pool_counter{0};

// A full fence between a push and the sleeper check in notify(). GCC rejects
// atomic_thread_fence under -fsanitize=thread (-Wtsan), and TSan does not model fences anyway,
// so sanitizer builds use a seq_cst read-modify-write instead.
inline void full_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
  static std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

class Pool {
 public:
  explicit Pool(ThreadPoolOptions options);
  ~Pool();
  void start(const std::shared_ptr<Pool>& self);
  void schedule(StateBase* task);
  void shutdown(bool wait, bool cancel_futures);
  bool help_until(Worker& me, concur::detail::function_ref<bool()> ready,
                  concur::detail::function_ref<bool(core::Waiter&)> arm,
                  concur::detail::function_ref<void(core::Waiter&)> disarm, core::Deadline deadline);
  int size() const noexcept { return static_cast<int>(workers_.size()); }
  bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }

 private:
  void worker_main(Worker& me);
  StateBase* find_work(Worker& me) noexcept;
  StateBase* steal_any(Worker* me) noexcept;
  bool has_work() const noexcept;
  bool spin(Worker& me);
  void park(Worker& me, core::Deadline deadline, concur::detail::function_ref<bool()> ready);
  void unregister_sleeper(Worker& me) noexcept;
  void notify() noexcept;
  void wake_all() noexcept;
  void run_task(Worker& me, StateBase* t) noexcept;
  void mark_broken(const std::string& why);
  void drain(const std::function<void(StateBase*)>& each);
  void wait_for_submitters() const noexcept;

  ThreadPoolOptions options_;
  std::uint32_t id_;
  std::vector<std::unique_ptr<Worker>> workers_;
  InjectionQueue inject_;

  // Parking. sleeping_ and searching_ are read by every submitter (cheap loads); they change
  // only when workers run out of work.
  alignas(64) std::atomic<int> sleeping_{0};   // workers registered in idle_stack_
  alignas(64) std::atomic<int> searching_{0};  // workers spinning for work
  int max_searching_ = 1;
  std::mutex idle_m_;
  std::vector<Worker*> idle_stack_;  // guarded by idle_m_

  // Lifecycle. submitters_ counts outside submitters between their shutdown check and their
  // push, so shutdown() knows when no more pushes can land.
  alignas(64) std::atomic<int> submitters_{0};
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> quiescing_{false};  // shutdown_ and no outside push can land any more
  std::atomic<bool> terminate_{false};
  std::atomic<bool> broken_{false};
  std::atomic<int> idle_{0};  // workers with nothing to do (for the shutdown quiescence check)
  std::mutex broken_m_;
  std::string broken_reason_;  // guarded by broken_m_
  std::mutex shutdown_m_;      // serialises shutdown() calls
};

Pool::Pool(ThreadPoolOptions options) : options_(std::move(options)), id_(g_pool_counter.fetch_add(1)) {
  int n = options_.max_workers ? *options_.max_workers : default_max_workers();
  if (n <= 0) throw std::invalid_argument("max_workers must be greater than 0");
  if (options_.thread_name_prefix.empty()) options_.thread_name_prefix = "ThreadPoolExecutor-" + std::to_string(id_);
  max_searching_ = std::max(1, n / 2);
  idle_stack_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->pool = this;
    w->index = static_cast<std::uint32_t>(i);
    w->rng = 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(i) + 1);
    workers_.push_back(std::move(w));
  }
}

Pool::~Pool() {
  // Anything still queued (only possible after shutdown(false) raced destruction) is released.
  drain([](StateBase* t) {
    t->cancel();
    t->release_ref();
  });
}

void Pool::start(const std::shared_ptr<Pool>& self) {
  for (auto& w : workers_) {
    Worker* raw = w.get();
    w->thread = threading::Thread(
        threading::ThreadOptions{.name = options_.thread_name_prefix + "_" + std::to_string(w->index), .daemon = true},
        [self, raw] { self->worker_main(*raw); });
    w->thread.start();
  }
}

void Pool::wait_for_submitters() const noexcept {
  while (submitters_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

void Pool::schedule(StateBase* task) {
  Worker* me = tls_worker;
  if (me && me->pool == this) {
    // A task of this pool submitting more work: its own deque, no shutdown check (the pool
    // drains nested work before its workers exit).
    if (broken_.load(std::memory_order_acquire)) {
      std::lock_guard g(broken_m_);
      throw BrokenThreadPool(broken_reason_);
    }
    me->deque.push(task);
    full_fence();  // the push before the sleeper check
    notify();
    return;
  }
  submitters_.fetch_add(1, std::memory_order_seq_cst);
  if (broken_.load(std::memory_order_seq_cst)) {
    submitters_.fetch_sub(1, std::memory_order_seq_cst);
    std::lock_guard g(broken_m_);
    throw BrokenThreadPool(broken_reason_);
  }
  if (shutdown_.load(std::memory_order_seq_cst)) {
    submitters_.fetch_sub(1, std::memory_order_seq_cst);
    throw std::logic_error("cannot schedule new futures after shutdown");
  }
  inject_.push(task);
  submitters_.fetch_sub(1, std::memory_order_seq_cst);
  notify();
}

void Pool::notify() noexcept {
  // A spinning worker will find the new work; otherwise wake a sleeper, if any.
  if (searching_.load(std::memory_order_seq_cst) > 0) return;
  if (sleeping_.load(std::memory_order_seq_cst) == 0) return;
  Worker* w = nullptr;
  {
    std::lock_guard g(idle_m_);
    if (idle_stack_.empty()) return;
    w = idle_stack_.back();
    idle_stack_.pop_back();
    w->in_idle_stack = false;
    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
    w->parker.wake();  // under idle_m_: the worker cannot leave park() and vanish meanwhile
  }
}

void Pool::wake_all() noexcept {
  std::lock_guard g(idle_m_);
  for (Worker* w : idle_stack_) {
    w->in_idle_stack = false;
    w->parker.wake();
  }
  sleeping_.fetch_sub(static_cast<int>(idle_stack_.size()), std::memory_order_seq_cst);
  idle_stack_.clear();
}

StateBase* Pool::steal_any(Worker* me) noexcept {
  const std::size_t n = workers_.size();
  std::size_t start = 0;
  if (me) {
    me->rng ^= me->rng << 13;
    me->rng ^= me->rng >> 7;
    me->rng ^= me->rng << 17;
    start = static_cast<std::size_t>(me->rng % n);
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool contended = false;
    for (std::size_t k = 0; k < n; ++k) {
      Worker* v = workers_[(start + k) % n].get();
      if (v == me) continue;
      if (StateBase* t = v->deque.steal()) {
        // More left behind (perhaps by a worker now blocked in a task): wake another worker
        // for it, so a burst fanned out by one notify() reaches every sleeper in turn.
        if (v->deque.size() > 0) notify();
        return t;
      }
      if (v->deque.size() > 0) contended = true;
    }
    if (!contended) break;
  }
  return nullptr;
}

StateBase* Pool::find_work(Worker& me) noexcept {
  if (StateBase* t = me.deque.take()) return t;
  if (StateBase* t = inject_.take_all_lifo()) {
    // Newest first: queue all but the oldest, so that take() returns them oldest first and
    // thieves can share them; run the oldest now.
    if (!t->next_task) return t;
    while (t->next_task) {
      StateBase* n = t->next_task;
      t->next_task = nullptr;
      me.deque.push(t);
      t = n;
    }
    full_fence();
    notify();
    return t;
  }
  return steal_any(&me);
}

bool Pool::has_work() const noexcept {
  if (!inject_.empty()) return true;
  for (const auto& w : workers_)
    if (w->deque.size() > 0) return true;
  return false;
}

void Pool::run_task(Worker& me, StateBase* t) noexcept {
  if (trace::enabled()) {
    trace::Span span("ThreadPoolExecutor", id_, me.index);
    t->run();
  } else {
    t->run();
  }
  t->release_ref();
}

bool Pool::spin(Worker& me) {
  if (searching_.load(std::memory_order_relaxed) >= max_searching_) return false;
  searching_.fetch_add(1, std::memory_order_seq_cst);
  for (int i = 0; i < 64; ++i) {
    if (StateBase* t = find_work(me)) {
      // The last searcher found work: let another worker search, in case more is coming.
      if (searching_.fetch_sub(1, std::memory_order_seq_cst) == 1 && has_work()) notify();
      run_task(me, t);
      return true;
    }
    if (terminate_.load(std::memory_order_relaxed) || broken_.load(std::memory_order_relaxed)) break;
    if (i < 16) {
      for (int p = 0; p < 32; ++p) cpu_relax();
    } else {
      std::this_thread::yield();  // on an oversubscribed machine, let the submitter run
    }
  }
  searching_.fetch_sub(1, std::memory_order_seq_cst);
  return false;
}

void Pool::unregister_sleeper(Worker& me) noexcept {
  std::lock_guard g(idle_m_);
  if (me.in_idle_stack) {
    std::erase(idle_stack_, &me);
    me.in_idle_stack = false;
    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void Pool::park(Worker& me, core::Deadline deadline, concur::detail::function_ref<bool()> ready) {
  me.parker.reset();
  {
    std::lock_guard g(idle_m_);
    idle_stack_.push_back(&me);
    me.in_idle_stack = true;
    sleeping_.fetch_add(1, std::memory_order_seq_cst);
  }
  // Re-check after registering: a submitter that pushed before our registration did not see
  // us, so we must see its work (both sides are seq_cst).
  if (!has_work() && !ready() && !terminate_.load(std::memory_order_seq_cst) &&
      !broken_.load(std::memory_order_seq_cst))
    me.parker.park(deadline);
  unregister_sleeper(me);
}

void Pool::worker_main(Worker& me) {
  tls_worker = &me;
  if (options_.initializer) {
    try {
      options_.initializer();
    } catch (...) {
      mark_broken("A thread initializer failed, the thread pool is not usable anymore: " +
                  describe(std::current_exception()));
      tls_worker = nullptr;
      return;
    }
  }
  auto never = [] { return false; };
  bool woken = false;  // just back from park(): one notify() may have been meant for several tasks
  for (;;) {
    if (broken_.load(std::memory_order_acquire)) break;
    if (StateBase* t = find_work(me)) {
      // A woken worker that found work passes the wake-up on if more is queued (as the last
      // searcher does in spin()); otherwise a burst of blocking tasks can strand one in the
      // deque of a worker that is blocked, while another worker sleeps.
      if (std::exchange(woken, false) && has_work()) notify();
      run_task(me, t);
      continue;
    }
    woken = false;
    if (spin(me)) continue;
    // Idle. During shutdown, the last worker to go idle with nothing queued ends the pool.
    int idle_now = idle_.fetch_add(1, std::memory_order_seq_cst) + 1;
    if (quiescing_.load(std::memory_order_seq_cst) && idle_now == static_cast<int>(workers_.size()) && !has_work()) {
      terminate_.store(true, std::memory_order_seq_cst);
      wake_all();
    }
    if (terminate_.load(std::memory_order_seq_cst)) {
      if (StateBase* t = find_work(me)) {  // a straggler of our own
        idle_.fetch_sub(1, std::memory_order_seq_cst);
        run_task(me, t);
        continue;
      }
      break;
    }
    park(me, std::nullopt, never);
    idle_.fetch_sub(1, std::memory_order_seq_cst);
    woken = true;
  }
  if (broken_.load(std::memory_order_acquire)) {
    std::string reason;
    {
      std::lock_guard g(broken_m_);
      reason = broken_reason_;
    }
    while (StateBase* t = me.deque.take()) {
      t->try_set_exception(std::make_exception_ptr(BrokenThreadPool(reason)));
      t->release_ref();
    }
  }
  tls_worker = nullptr;
}

bool Pool::help_until(Worker& me, concur::detail::function_ref<bool()> ready,
                      concur::detail::function_ref<bool(core::Waiter&)> arm,
                      concur::detail::function_ref<void(core::Waiter&)> disarm, core::Deadline deadline) {
  if (!arm(me.parker)) return ready();
  bool ok = false;
  for (;;) {
    if (ready()) {
      ok = true;
      break;
    }
    if (StateBase* t = find_work(me)) {
      run_task(me, t);
      continue;
    }
    if (deadline && core::Clock::now() >= *deadline) break;
    // The awaited task is probably running on another worker: look again for a little while
    // (for work or completion) before sleeping.
    bool progressed = false;
    for (int i = 0; i < 256 && !progressed; ++i) {
      for (int p = 0; p < 8; ++p) cpu_relax();
      progressed = ready() || has_work();
    }
    if (progressed) continue;
    park(me, deadline, ready);
  }
  disarm(me.parker);
  return ok || ready();
}

void Pool::drain(const std::function<void(StateBase*)>& each) {
  for (StateBase* t = inject_.take_all(); t;) {
    StateBase* n = t->next_task;
    t->next_task = nullptr;
    each(t);
    t = n;
  }
  for (auto& w : workers_)
    while (StateBase* t = w->deque.steal()) each(t);
}

void Pool::mark_broken(const std::string& why) {
  {
    std::lock_guard g(broken_m_);
    if (broken_.load()) return;
    broken_reason_ = why;
    broken_.store(true, std::memory_order_seq_cst);
  }
  wait_for_submitters();
  drain([&](StateBase* t) {
    t->try_set_exception(std::make_exception_ptr(BrokenThreadPool(why)));
    t->release_ref();
  });
  wake_all();
}

void Pool::shutdown(bool wait, bool cancel_futures) {
  std::lock_guard g(shutdown_m_);
  shutdown_.store(true, std::memory_order_seq_cst);
  wait_for_submitters();
  if (cancel_futures) {
    // Cancel what has not started; keep what could not be cancelled (it will run).
    std::vector<StateBase*> keep;
    drain([&](StateBase* t) {
      if (t->cancel())
        t->release_ref();
      else
        keep.push_back(t);
    });
    for (StateBase* t : keep) inject_.push(t);
  }
  // Workers that are asleep must notice the shutdown to run the quiescence check.
  quiescing_.store(true, std::memory_order_seq_cst);
  wake_all();
  if (idle_.load(std::memory_order_seq_cst) == static_cast<int>(workers_.size()) && !has_work()) {
    terminate_.store(true, std::memory_order_seq_cst);
    wake_all();
  }
  // From one of our own tasks, waiting would wait for ourselves: behave as wait=false.
  if (!wait || (tls_worker && tls_worker->pool == this)) return;
  for (auto& w : workers_) {
    if (w->thread.valid() && w->thread.is_alive()) w->thread.join();
  }
}

}  // namespace detail

// ---- public API ------------------------------------------------------------------------------

namespace {
// Pools alive at exit are shut down (waiting), as Python's interpreter exit does.
struct LivePools {
  std::mutex m;
  std::vector<std::weak_ptr<detail::Pool>> pools;
};
LivePools& live_pools() {
  static auto* p = new LivePools;  // leaked: used from atexit
  return *p;
}
void shutdown_live_pools() {
  std::vector<std::shared_ptr<detail::Pool>> pools;
  {
    std::lock_guard g(live_pools().m);
    for (auto& w : live_pools().pools)
      if (auto p = w.lock()) pools.push_back(std::move(p));
  }
  for (auto& p : pools) p->shutdown(true, false);
}
}  // namespace

int default_max_workers() noexcept {
  unsigned cpus = std::thread::hardware_concurrency();
  if (cpus == 0) cpus = 1;
  return static_cast<int>(std::min(32u, cpus + 4));
}

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolOptions options)
    : pool_(std::make_shared<detail::Pool>(std::move(options))) {
  {
    static std::once_flag once;
    std::call_once(once, [] { std::atexit(shutdown_live_pools); });
    std::lock_guard g(live_pools().m);
    std::erase_if(live_pools().pools, [](const auto& w) { return w.expired(); });
    live_pools().pools.push_back(pool_);
  }
  pool_->start(pool_);
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  try {
    shutdown(true, false);
  } catch (...) {
    report_unraisable("exception in ThreadPoolExecutor destructor", std::current_exception());
  }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) { pool_->shutdown(wait, cancel_futures); }

int ThreadPoolExecutor::max_workers() const noexcept { return pool_->size(); }

bool ThreadPoolExecutor::broken() const noexcept { return pool_->broken(); }

void ThreadPoolExecutor::schedule(detail::StateBase* task) { pool_->schedule(task); }

namespace detail {

bool block_until(concur::detail::function_ref<bool()> ready, concur::detail::function_ref<bool(core::Waiter&)> arm,
                 concur::detail::function_ref<void(core::Waiter&)> disarm, core::Deadline deadline) {
  if (ready()) return true;
  if (Worker* w = tls_worker) return w->pool->help_until(*w, ready, arm, disarm, deadline);
  core::ThreadWaiter tw;
  if (!arm(tw)) return ready();
  for (;;) {
    if (ready()) break;
    if (!tw.park(deadline)) break;
    tw.reset();
  }
  disarm(tw);
  return ready();
}

}  // namespace detail
}  // namespace concur::futures
