#include "concur/asyncio/task.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "concur/asyncio/sleep.hpp"
#include "concur/core/trace.hpp"

namespace concur::asyncio::detail {

namespace {
thread_local TaskBase* tls_current = nullptr;

// Python numbers its tasks from one shared counter (Task-1, Task-2, ...). Each thread takes
// its numbers from it in blocks, so creating a task does not touch a shared cache line.
constexpr std::uint64_t kNumberBlock = 256;
std::atomic<std::uint64_t> g_next_number{1};
std::uint64_t next_task_number() noexcept {
  thread_local std::uint64_t next = 0, end = 0;
  if (next == end) {
    next = g_next_number.fetch_add(kNumberBlock, std::memory_order_relaxed);
    end = next + kNumberBlock;
  }
  return next++;
}
}  // namespace

TaskBase* current_task_base() noexcept { return tls_current; }

TaskBase::TaskBase(EventLoop& loop, std::coroutine_handle<> root, std::string name)
    : root_(root), loop_(&loop), resume_(root) {
  name_ = (static_cast<std::uintptr_t>(next_task_number()) << 1U) | 1U;
  if (!name.empty()) set_name(std::move(name));
  loop.register_task(this);
}

std::string TaskBase::name() const {
  if ((name_ & 1U) != 0) return "Task-" + std::to_string(name_ >> 1U);
  return reinterpret_cast<const Named*>(name_)->name;
}

void TaskBase::set_name(std::string n) {
  if ((name_ & 1U) != 0) {
    name_ = reinterpret_cast<std::uintptr_t>(new Named{name_ >> 1U, std::move(n)});
  } else {
    reinterpret_cast<Named*>(name_)->name = std::move(n);
  }
}

TaskBase::~TaskBase() {
  if ((name_ & 1U) == 0) delete reinterpret_cast<Named*>(name_);
}

bool TaskBase::cancel() noexcept {
  if (finished_) return false;
  if (cancel_requests_ < UINT16_MAX) ++cancel_requests_;
  if (waiting_on_) {
    Suspension* s = std::exchange(waiting_on_, nullptr);
    switch (s->cancel()) {
      case CancelResult::detached:
        must_cancel_ = true;
        loop_->schedule(this);
        return true;
      case CancelResult::propagated:
        return true;  // the awaited task's outcome decides
      case CancelResult::too_late:
        break;
    }
  }
  must_cancel_ = true;
  return true;
}

std::string TaskBase::await_chain() const {
  std::string out;
  for (const PromiseBase* p = root_promise(); p; p = p->child) {
    if (!out.empty()) out += " -> ";
    out += p->function;
  }
  return out.empty() ? std::string("<not started or finished>") : out;
}

void TaskBase::step() noexcept {
  if (finished_) return;
  TaskBase* prev = std::exchange(tls_current, this);
  waiting_on_ = nullptr;
  if (must_cancel_) {
    must_cancel_ = false;
    cancel_delivered_ = true;
  }
  if (!started_) {
    started_ = true;
    if (cancel_delivered_) {
      // Cancelled before it ever ran: the coroutine body never starts.
      cancel_delivered_ = false;
      root_.destroy();
      root_ = {};
      state().set_cancelled();
      tls_current = prev;
      finish();
      return;
    }
  }
  auto h = std::exchange(resume_, nullptr);
  if (trace::enabled()) {
    trace::Span span("asyncio", 0, 0, number());  // one bar per step, on the loop's thread, named Task-N
    drive(h);
  } else {
    drive(h);
  }
  tls_current = prev;
  if (root_ && root_.done()) {
    complete_from_root();
    finish();
  }
}

void TaskBase::finish() noexcept {
  finished_ = true;
  loop_->unregister_task(this);
  state().release_ref();  // the loop's reference
}

void TaskBase::abandon() noexcept {
  if (finished_) return;
  if (root_) {
    // Destroy the chain of awaited coroutines from the deepest one up: destroying the root
    // first would recurse once per level (and overflow on a 100,000-deep chain).
    std::vector<PromiseBase*> chain;
    for (PromiseBase* p = root_promise(); p; p = p->child) chain.push_back(p);
    for (std::size_t i = chain.size(); i-- > 1;) {
      PromiseBase* leaf = chain[i];
      if (leaf->disown && leaf->owner) leaf->disown(leaf->owner);  // its Coro lets go
      chain[i - 1]->child = nullptr;
      std::coroutine_handle<>::from_address(leaf->frame).destroy();
    }
    root_.destroy();
    root_ = {};
  }
  retrieved_ = true;  // nothing to report: it never finished
  state().set_cancelled();
  finish();
}

void TaskBase::report_if_unretrieved() noexcept {
  auto& s = state();
  if (!retrieved_ && s.failed())
    report_unraisable("Task exception was never retrieved (task '" + name() + "')", s.exception_ptr());
}

bool StateAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = current_task_base();
  if (!task_) throw std::logic_error("co_await on a task or future outside of an asyncio task");
  if (task_->cancel_before_suspend()) return false;
  waiter_.emplace(task_);
  listener_.waiter = &*waiter_;
  if (!s_->add_listener(listener_)) return false;  // completed meanwhile
  registered_ = true;
  task_->suspended_at(h, this);
  return true;
}

StateAwaiter::~StateAwaiter() {
  if (registered_) s_->remove_listener(listener_);  // the frame dies while waiting (loop closing)
}

void StateAwaiter::resume_checks() {
  // Resumed: the listener has fired (or a cancellation already removed it).
  registered_ = false;
  if (task_) task_->check_cancelled();
}

CancelResult StateAwaiter::cancel() noexcept {
  if (awaited_task_) {
    // Python: cancelling a task that awaits another task cancels that one too.
    if (awaited_task_->cancel()) return CancelResult::propagated;
    return CancelResult::too_late;
  }
  // A concurrent future: ask it to cancel, stop listening, and leave at once.
  s_->cancel();
  return s_->remove_listener(listener_) ? CancelResult::detached : CancelResult::too_late;
}

}  // namespace concur::asyncio::detail

namespace concur::asyncio::detail {

bool SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = current_task_base();
  if (!task_) throw std::logic_error("asyncio::sleep() awaited outside of an asyncio task");
  if (task_->cancel_before_suspend()) return false;
  loop_ = &task_->loop();
  if (delay_ns_ <= 0) {
    loop_->schedule(task_);
  } else {
    when_ns = loop_->now_ns() + delay_ns_;
    loop_->add_timer(this);
  }
  task_->suspended_at(h, this);
  return true;
}

CancelResult SleepAwaiter::cancel() noexcept {
  if (scheduled()) {
    loop_->remove_timer(this);
    return CancelResult::detached;
  }
  return CancelResult::too_late;  // already due: CancelledError when it resumes
}

}  // namespace concur::asyncio::detail
