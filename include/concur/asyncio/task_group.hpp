#pragma once
/// \file asyncio.TaskGroup: structured concurrency.
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "concur/asyncio/wait.hpp"

namespace concur::asyncio {

/// Python's asyncio.TaskGroup. Children made with create_task(); `co_await tg.join()` waits for
/// all of them. The first child to fail (with anything but CancelledError) cancels all the
/// others; join() then throws an ExceptionGroup holding every failure. If the task awaiting
/// join() is cancelled, the children are cancelled and awaited, then CancelledError propagates.
/// Destroying a group that was never joined cancels its unfinished children.
/// Unlike Python, a failing child does not cancel the parent task's own body: C++ has no
/// `async with`, so a CancelledError thrown into the body would skip join() and lose the
/// ExceptionGroup; the failure is reported by join() instead.
/// Thread safety: loop thread only.
class TaskGroup {
 public:
  TaskGroup() : s_(std::make_shared<Shared>()) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    for (auto& c : s_->children)
      if (!c.state->done()) c.task->cancel();
  }

  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {}) {
    if (s_->joined) throw std::logic_error("TaskGroup is finished; cannot create tasks in it");
    if (s_->aborting) {
      // Python: creating a task in an aborting group closes the coroutine; here it starts cancelled.
      Task<T> t = asyncio::create_task(std::move(coro), std::move(name));
      t.cancel();
      track(t);
      return t;
    }
    Task<T> t = asyncio::create_task(std::move(coro), std::move(name));
    track(t);
    return t;
  }

  /// Waits for every child; throws ExceptionGroup if any failed.
  Coro<void> join();

  [[nodiscard]] std::size_t size() const noexcept { return s_->children.size(); }

 private:
  struct Child {
    futures::detail::StateBase* state;  // one reference held
    detail::TaskBase* task;
  };
  struct Shared {
    std::vector<Child> children;
    std::vector<std::exception_ptr> errors;
    bool aborting = false;
    bool joined = false;
    ~Shared() {
      for (auto& c : children) c.state->release_ref();
    }
    void abort() noexcept {
      if (aborting) return;
      aborting = true;
      for (auto& c : children)
        if (!c.state->done()) c.task->cancel();
    }
  };
  template <class T>
  void track(Task<T>& t) {
    auto* st = t.state();
    st->add_ref();
    s_->children.push_back(Child{st, st});
    std::weak_ptr<Shared> weak = s_;
    t.add_done_callback([weak](const Task<T>& done) {
      auto s = weak.lock();
      if (!s || done.cancelled()) return;
      if (auto e = done.state()->exception_ptr()) {
        done.state()->mark_retrieved();
        s->errors.push_back(e);
        s->abort();
      }
    });
  }
  std::shared_ptr<Shared> s_;
};

}  // namespace concur::asyncio
