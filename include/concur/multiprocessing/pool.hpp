#pragma once
/// \file multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor: worker processes
/// running plain functions on serialised arguments.
///
/// ```cpp
/// mp::Pool pool;                                        // processes = cpu_count()
/// std::vector<long> sums = pool.map(cpu_bound, nums);  // Python's default chunking
/// mp::AsyncResult<long> r = pool.apply_async(cpu_bound, 10);  r.get(1s);
/// ```
///
/// What runs in a worker: a plain function, a static member function or a captureless lambda
/// (sent as code identity: the worker is this same executable started again, so no
/// registration is needed), with arguments and a result that serialize.hpp can carry.
///
/// Workers are started with posix_spawn (a fresh process running this executable, not a fork
/// of this one), so pools are safe to create from a program that already runs threads and
/// allocates on them (Python's "spawn" start method, the default; "forkserver" is as safe and
/// starts workers faster, "fork" is not safe with threads: see set_start_method in
/// detail/worker.hpp). Before main() runs in a worker, the
/// program's static objects are constructed (as a Python worker imports the main module); then
/// the worker serves tasks and never enters main(). Workers die with their parent process (a
/// thread in each watches a pidfd of the parent) and are reaped: no orphans, no zombies.
///
/// Crash isolation (beyond Python): a task that kills its worker (segfault, abort, _exit,
/// SIGKILL from outside) fails only its own result with BrokenProcessPool naming the signal or
/// exit code; the pool starts a new worker and every other task completes (a task handed to a
/// worker in the moment it is killed from outside fails too: it cannot be told from one that
/// was running). A failing
/// initializer breaks the pool: every task then fails with BrokenProcessPool saying why (it is
/// not retried forever).
///
/// Thread safety: a Pool may be used from several threads at once. Results are set on the
/// pool's manager thread; AsyncResult::get may be called from any thread.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <ranges>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/futures/future.hpp"
#include "concur/multiprocessing/detail/pool_core.hpp"

namespace concur::multiprocessing {

/// os.cpu_count(): the CPUs this process may run on.
int cpu_count() noexcept;

/// The pending result of apply_async / map_async (Python's AsyncResult).
template <class T>
class AsyncResult {
 public:
  explicit AsyncResult(futures::Future<T> f) : f_(std::move(f)) {}
  /// The result; rethrows the task's exception; TimeoutError after `timeout`.
  decltype(auto) get() const { return f_.result(); }
  template <class Rep, class Period>
  decltype(auto) get(std::chrono::duration<Rep, Period> timeout) const {
    return f_.result(timeout);
  }
  /// Waits until ready (at most `timeout`).
  void wait() const { (void)f_.exception(); }
  template <class Rep, class Period>
  void wait(std::chrono::duration<Rep, Period> timeout) const {
    try {
      (void)f_.exception(timeout);
    } catch (const TimeoutError&) {
    }
  }
  [[nodiscard]] bool ready() const noexcept { return f_.done(); }
  /// True when it finished without an exception; std::logic_error (Python's ValueError) when
  /// not ready.
  [[nodiscard]] bool successful() const {
    if (!ready()) throw std::logic_error("AsyncResult.successful(): the result is not ready");
    return f_.exception() == nullptr;
  }
  [[nodiscard]] const futures::Future<T>& future() const noexcept { return f_; }

 private:
  futures::Future<T> f_;
};

struct PoolOptions {
  std::optional<int> processes;  // default: cpu_count()
  /// Run in each worker before its first task (a plain function without arguments).
  void (*initializer)() = nullptr;
  /// A worker is replaced after this many tasks (0: never).
  int maxtasksperchild = 0;
};

namespace detail {

/// The exception a failed Outcome stands for (BrokenProcessPool included).
inline std::exception_ptr outcome_exception(const Outcome& o) {
  return o.type == "concur::multiprocessing::BrokenProcessPool" ? std::make_exception_ptr(BrokenProcessPool(o.payload))
                                                                : outcome_error(o);
}

/// Sets a promise from an Outcome (on the manager thread).
template <class T>
void settle(futures::Promise<T>& p, const Outcome& o) {
  try {
    if (!o.ok) {
      p.set_exception(outcome_exception(o));
    } else if constexpr (std::is_void_v<T>) {
      p.set_result();
    } else {
      p.set_result(loads<T>(o.payload));
    }
  } catch (const InvalidStateError&) {  // cancelled meanwhile
  } catch (...) {
    try {
      p.set_exception(std::current_exception());
    } catch (...) {
    }
  }
}

/// map's items, as the function's argument (sized up front when the range knows its size).
template <class Arg, class Range>
std::vector<Arg> map_items(const Range& xs) {
  std::vector<Arg> items;
  if constexpr (std::ranges::sized_range<const Range>) items.reserve(static_cast<std::size_t>(std::ranges::size(xs)));
  for (const auto& x : xs) items.emplace_back(x);
  return items;
}

/// Python's default map chunksize: ceil(n / (4 * processes)).
inline std::size_t default_chunksize(std::size_t n, int processes) {
  std::size_t per = static_cast<std::size_t>(processes) * 4;
  std::size_t c = n / per;
  if (n % per != 0) ++c;
  return c == 0 ? 1 : c;
}

/// Submits f over `items` (see dumps_chunk) in chunks of `chunksize` (one message, one batch call in the
/// worker per chunk); a future per chunk.
template <class F, class Items>
auto submit_chunks(PoolCore& core, F f, const Items& items, std::size_t chunksize) {
  auto fp = to_function_pointer(f);
  using Traits = fn_traits<decltype(fp)>;
  using R = typename Traits::result;
  const CodeRef tramp = code_ref(reinterpret_cast<const void*>(Traits::batch()));
  const CodeRef fn = code_ref(reinterpret_cast<const void*>(fp));
  std::vector<futures::Future<std::vector<R>>> out;
  const std::size_t n = items.size();
  const std::size_t cs = chunksize == 0 ? 1 : chunksize;
  out.reserve(n / cs + 1);
  for (std::size_t i = 0; i < n; i += cs) {
    auto p = std::make_shared<futures::Promise<std::vector<R>>>();
    out.push_back(p->get_future());
    std::vector<Job> jobs;
    jobs.push_back(Job{PackedCall{tramp, fn, dumps_chunk<typename Traits::args>(items, i, std::min(n, i + cs))},
                       [p](const Outcome& o) { settle(*p, o); }});
    core.submit(std::move(jobs));
  }
  return out;
}

/// Submits the chunks and gathers them into one future: the chunks' callbacks fill their slots
/// and the last one sets the result, so a waiter wakes once, not once per chunk.
template <class F, class Items>
auto submit_gathered(PoolCore& core, F f, const Items& items, std::size_t chunksize) {
  auto fp = to_function_pointer(f);
  using Traits = fn_traits<decltype(fp)>;
  using R = typename Traits::result;
  struct Gather {
    std::vector<std::vector<R>> parts;
    std::vector<std::exception_ptr> errors;
    std::atomic<std::size_t> left{0};
    futures::Promise<std::vector<R>> promise;
  };
  const CodeRef tramp = code_ref(reinterpret_cast<const void*>(Traits::batch()));
  const CodeRef fn = code_ref(reinterpret_cast<const void*>(fp));
  const std::size_t n = items.size();
  const std::size_t cs = chunksize == 0 ? 1 : chunksize;
  const std::size_t chunks = (n + cs - 1) / cs;
  auto g = std::make_shared<Gather>();
  g->parts.resize(chunks);
  g->errors.resize(chunks);
  g->left = chunks;
  futures::Future<std::vector<R>> result = g->promise.get_future();
  if (chunks == 0) g->promise.set_result(std::vector<R>{});
  for (std::size_t k = 0; k < chunks; ++k) {
    const std::size_t i = k * cs;
    std::vector<Job> jobs;
    jobs.push_back(Job{PackedCall{tramp, fn, dumps_chunk<typename Traits::args>(items, i, std::min(n, i + cs))},
                       [g, k](const Outcome& o) {
                         if (!o.ok) {
                           g->errors[k] = outcome_exception(o);
                         } else {
                           try {
                             g->parts[k] = loads<std::vector<R>>(o.payload);
                           } catch (...) {
                             g->errors[k] = std::current_exception();
                           }
                         }
                         if (g->left.fetch_sub(1) != 1) return;
                         for (auto& e : g->errors) {
                           if (e) {
                             g->promise.set_exception(e);
                             return;
                           }
                         }
                         std::size_t total = 0;
                         for (const auto& part : g->parts) total += part.size();
                         std::vector<R> all;
                         all.reserve(total);
                         for (auto& part : g->parts) {
                           all.insert(all.end(), std::make_move_iterator(part.begin()),
                                      std::make_move_iterator(part.end()));
                         }
                         g->promise.set_result(std::move(all));
                       }});
    core.submit(std::move(jobs));
  }
  return result;
}

/// The chunks' results, flattened in order (the first failing chunk's exception is thrown).
template <class R>
std::vector<R> collect(const std::vector<futures::Future<std::vector<R>>>& chunks) {
  std::vector<R> out;
  for (const auto& c : chunks) {
    std::vector<R> part = c.result();
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return out;
}

}  // namespace detail

/// Python's multiprocessing.Pool.
class Pool {
 public:
  Pool() : Pool(PoolOptions{}) {}
  explicit Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
  explicit Pool(PoolOptions o);
  /// terminate() (as Python's __exit__), then join().
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// f(args...) in a worker; the result when it is ready.
  template <class F, class... A>
  auto apply_async(F f, A&&... args) {
    using R = detail::result_t<F>;
    auto p = std::make_shared<futures::Promise<R>>();
    AsyncResult<R> r(p->get_future());
    std::vector<detail::Job> jobs;
    jobs.push_back(detail::Job{detail::pack(f, std::forward<A>(args)...),
                               [p](const detail::Outcome& o) { detail::settle(*p, o); }});
    core_->submit(std::move(jobs));
    return r;
  }
  /// f(args...) in a worker, waited for.
  template <class F, class... A>
  auto apply(F f, A&&... args) {
    return apply_async(f, std::forward<A>(args)...).get();
  }

  /// [f(x) for x in xs], in order, computed in chunks of `chunksize` (default: Python's,
  /// about four chunks per worker). The first exception (in order) is rethrown.
  template <class F, class Range>
  auto map(F f, const Range& xs, std::optional<std::size_t> chunksize = std::nullopt) {
    return map_async(f, xs, chunksize).get();
  }
  template <class F, class Range>
  auto map_async(F f, const Range& xs, std::optional<std::size_t> chunksize = std::nullopt) {
    using Arg = std::tuple_element_t<0, typename detail::fn_traits<detail::fn_pointer_t<F>>::args>;
    std::vector<Arg> items = detail::map_items<Arg>(xs);
    std::size_t cs = chunksize.value_or(detail::default_chunksize(items.size(), processes()));
    return AsyncResult(detail::submit_gathered(*core_, f, items, cs));
  }
  /// Like map, but each argument is a tuple unpacked into f's parameters.
  template <class F, class Range>
  auto starmap(F f, const Range& tuples, std::optional<std::size_t> chunksize = std::nullopt) {
    return starmap_async(f, tuples, chunksize).get();
  }
  template <class F, class Range>
  auto starmap_async(F f, const Range& tuples, std::optional<std::size_t> chunksize = std::nullopt) {
    std::vector<typename detail::fn_traits<detail::fn_pointer_t<F>>::args> ts(std::begin(tuples), std::end(tuples));
    std::size_t cs = chunksize.value_or(detail::default_chunksize(ts.size(), processes()));
    return AsyncResult(detail::submit_gathered(*core_, f, ts, cs));
  }
  /// Results in order as they come (an input range of R; iterating waits for each; an
  /// exception is thrown when its item is reached). chunksize default 1, as Python.
  template <class F, class Range>
  auto imap(F f, const Range& xs, std::size_t chunksize = 1) {
    return Results<detail::result_t<F>>(map_chunks(f, xs, chunksize), false);
  }
  /// Results in completion order (of chunks).
  template <class F, class Range>
  auto imap_unordered(F f, const Range& xs, std::size_t chunksize = 1) {
    return Results<detail::result_t<F>>(map_chunks(f, xs, chunksize), true);
  }

  /// No more tasks; workers exit when the queued ones are done.
  void close() { core_->close(); }
  /// Stops the workers now; unfinished results fail with BrokenProcessPool.
  void terminate() { core_->terminate(); }
  /// Waits for the workers to exit (after close() or terminate()).
  void join() { core_->join(); }
  [[nodiscard]] int processes() const noexcept { return core_->processes(); }
  /// The worker pids now (tests kill workers with it).
  [[nodiscard]] std::vector<pid_t> pids() const { return core_->pids(); }

  /// The results of imap / imap_unordered: an input range; iterating waits for each chunk.
  template <class R>
  class Results {
   public:
    Results(std::vector<futures::Future<std::vector<R>>> chunks, bool unordered)
        : chunks_(std::move(chunks)), unordered_(unordered) {}
    class iterator {
     public:
      using value_type = R;
      using difference_type = std::ptrdiff_t;
      iterator() = default;
      explicit iterator(Results* r) : r_(r) { r_->fill(); }
      R operator*() const { return r_->current_[r_->pos_]; }
      iterator& operator++() {
        ++r_->pos_;
        r_->fill();
        return *this;
      }
      void operator++(int) { ++*this; }
      bool operator==(const iterator& o) const {
        bool a_end = r_ == nullptr || r_->at_end();
        bool b_end = o.r_ == nullptr || o.r_->at_end();
        return a_end && b_end;
      }

     private:
      Results* r_ = nullptr;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

   private:
    [[nodiscard]] bool at_end() const { return next_ >= chunks_.size() && pos_ >= current_.size(); }
    /// Makes current_[pos_] the next result (waiting for its chunk), unless at the end.
    void fill() {
      while (pos_ >= current_.size() && next_ < chunks_.size()) {
        if (unordered_) {  // the next chunk to complete
          for (;;) {
            std::size_t k = next_;
            for (; k < chunks_.size() && !chunks_[k].done(); ++k) {
            }
            if (k < chunks_.size()) {
              std::swap(chunks_[next_], chunks_[k]);
              break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(50));
          }
        }
        current_ = chunks_[next_++].result();
        pos_ = 0;
      }
    }
    std::vector<futures::Future<std::vector<R>>> chunks_;
    bool unordered_;
    std::size_t next_ = 0, pos_ = 0;
    std::vector<R> current_;
  };

 private:
  template <class F, class Range>
  auto map_chunks(F f, const Range& xs, std::optional<std::size_t> chunksize) {
    using Arg = std::tuple_element_t<0, typename detail::fn_traits<detail::fn_pointer_t<F>>::args>;
    std::vector<Arg> items = detail::map_items<Arg>(xs);
    std::size_t cs = chunksize.value_or(detail::default_chunksize(items.size(), processes()));
    return detail::submit_chunks(*core_, f, items, cs);
  }

  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace concur::multiprocessing

namespace concur::futures {

struct ProcessPoolOptions {
  std::optional<int> max_workers;  // default: cpu_count()
  void (*initializer)() = nullptr;
  int max_tasks_per_child = 0;
};

/// Python's concurrent.futures.ProcessPoolExecutor, on the same engine as mp::Pool, with the
/// thread pool's interface: submit → Future, map, shutdown(wait, cancel_futures). A task that
/// kills its worker fails only its own future with BrokenProcessPool (Python's executor breaks
/// for good instead); the others complete. Thread safety: any thread may submit.
class ProcessPoolExecutor {
 public:
  ProcessPoolExecutor() : ProcessPoolExecutor(ProcessPoolOptions{}) {}
  explicit ProcessPoolExecutor(ProcessPoolOptions o);
  ~ProcessPoolExecutor() { shutdown(true); }
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;

  template <class F, class... A>
  auto submit(F f, A&&... args) {
    using R = multiprocessing::detail::result_t<F>;
    auto p = std::make_shared<Promise<R>>();
    Future<R> fut = p->get_future();
    std::vector<multiprocessing::detail::Job> jobs;
    jobs.push_back(multiprocessing::detail::Job{multiprocessing::detail::pack(f, std::forward<A>(args)...),
                                                [p](const multiprocessing::detail::Outcome& o) {
                                                  if (o.type == "concur::CancelledError") {
                                                    p->get_future().cancel();
                                                  } else if (p->set_running_or_notify_cancel()) {
                                                    multiprocessing::detail::settle(*p, o);
                                                  }
                                                }});
    core_->submit(std::move(jobs));
    return fut;
  }
  /// [f(x) for x in xs] in order (chunksize items per message to a worker).
  template <class F, class Range>
  auto map(F f, const Range& xs, std::size_t chunksize = 1) {
    using Arg = std::tuple_element_t<
        0, typename multiprocessing::detail::fn_traits<multiprocessing::detail::fn_pointer_t<F>>::args>;
    std::vector<Arg> items = multiprocessing::detail::map_items<Arg>(xs);
    return multiprocessing::detail::submit_gathered(*core_, f, items, chunksize).result();
  }
  /// No more submissions; `wait`: until every task is done and the workers exited.
  /// `cancel_futures`: pending futures that have not started are cancelled.
  void shutdown(bool wait = true, bool cancel_futures = false);
  [[nodiscard]] std::vector<pid_t> pids() const { return core_->pids(); }

 private:
  std::unique_ptr<multiprocessing::detail::PoolCore> core_;
  bool shut_ = false;
};

}  // namespace concur::futures
