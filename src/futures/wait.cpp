#include "concur/futures/wait.hpp"

#include <deque>
#include <mutex>
#include <string>

namespace concur::futures::detail {

namespace {

struct WaitShared {
  std::size_t n = 0;
  ReturnWhen when = ALL_COMPLETED;
  std::atomic<std::size_t> done{0};
  std::atomic<bool> failed{false};
  std::atomic<core::Waiter*> waiter{nullptr};

  [[nodiscard]] bool satisfied() const noexcept {
    std::size_t d = done.load(std::memory_order_acquire);
    switch (when) {
      case FIRST_COMPLETED:
        return d >= 1 || n == 0;
      case FIRST_EXCEPTION:
        return failed.load(std::memory_order_acquire) || d >= n;
      case ALL_COMPLETED:
        return d >= n;
    }
    return true;
  }
  void on_done(const StateBase& s) noexcept {
    if (s.failed()) failed.store(true, std::memory_order_release);
    done.fetch_add(1, std::memory_order_acq_rel);
    if (satisfied())
      if (core::Waiter* w = waiter.load(std::memory_order_acquire)) w->wake();
  }
};

struct WaitNode final : Listener {
  WaitShared* shared = nullptr;
  void fire(StateBase& s) noexcept override { shared->on_done(s); }
};

}  // namespace

void wait_states(StateBase* const* states, std::size_t n, ReturnWhen when, core::Deadline deadline) {
  WaitShared shared;
  shared.n = n;
  shared.when = when;
  std::vector<WaitNode> nodes(n);
  for (std::size_t i = 0; i < n; ++i) nodes[i].shared = &shared;
  bool armed = false;
  auto arm = [&](core::Waiter& w) {
    shared.waiter.store(&w, std::memory_order_release);
    for (std::size_t i = 0; i < n; ++i) {
      if (!states[i]->add_listener(nodes[i])) shared.on_done(*states[i]);  // already done
    }
    armed = true;
    return true;
  };
  auto disarm = [&](core::Waiter&) {
    for (std::size_t i = 0; i < n; ++i) states[i]->remove_listener(nodes[i]);
    shared.waiter.store(nullptr, std::memory_order_release);
  };
  // Fast path: the condition may already hold.
  {
    std::size_t done = 0;
    bool failed = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (states[i]->done()) ++done;
      if (states[i]->failed()) failed = true;
    }
    bool ok = when == FIRST_COMPLETED   ? (done >= 1 || n == 0)
              : when == FIRST_EXCEPTION ? (failed || done == n)
                                        : done == n;
    if (ok) return;
  }
  block_until([&] { return armed && shared.satisfied(); }, arm, disarm, deadline);
}

struct CompletionQueue::Impl {
  struct Node final : Listener {
    Impl* owner = nullptr;
    std::size_t index = 0;
    void fire(StateBase&) noexcept override { owner->push(index); }
  };
  void push(std::size_t i) noexcept {
    std::lock_guard g(m);
    completed.push_back(i);
    if (waiter) waiter->wake();
  }
  std::vector<StateBase*> states;
  std::vector<Node> nodes;
  core::SpinLock m;
  std::deque<std::size_t> completed;  // guarded by m
  core::Waiter* waiter = nullptr;     // guarded by m
  std::size_t delivered = 0;
};

CompletionQueue::CompletionQueue(StateBase* const* states, std::size_t n) : impl_(std::make_unique<Impl>()) {
  impl_->states.assign(states, states + n);
  impl_->nodes.resize(n);
  // Already-done futures come first, in input order.
  std::vector<bool> queued(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = impl_->nodes[i];
    node.owner = impl_.get();
    node.index = i;
    if (states[i]->done()) {
      impl_->push(i);
      queued[i] = true;
    }
  }
  // Not re-checking done() here: a future that completes between the two loops must still be
  // queued (add_listener fails for it), or it is never delivered.
  for (std::size_t i = 0; i < n; ++i) {
    if (queued[i]) continue;
    if (!states[i]->add_listener(impl_->nodes[i])) impl_->push(i);
  }
}

CompletionQueue::~CompletionQueue() {
  for (std::size_t i = 0; i < impl_->states.size(); ++i) impl_->states[i]->remove_listener(impl_->nodes[i]);
}

std::size_t CompletionQueue::remaining() const noexcept { return impl_->states.size() - impl_->delivered; }

std::size_t CompletionQueue::next(core::Deadline deadline) {
  Impl& q = *impl_;
  auto ready = [&] {
    std::lock_guard g(q.m);
    return !q.completed.empty();
  };
  if (!ready()) {
    bool ok = block_until(
        ready,
        [&](core::Waiter& w) {
          // block_until does not disarm a waiter whose arm() returned false, so register it
          // only when it will really wait: a dangling waiter here was woken by a later push()
          // after its stack frame was gone (the as_completed construction-race crash).
          std::lock_guard g(q.m);
          if (!q.completed.empty()) return false;
          q.waiter = &w;
          return true;
        },
        [&](core::Waiter&) {
          std::lock_guard g(q.m);
          q.waiter = nullptr;
        },
        deadline);
    if (!ok)
      throw TimeoutError(std::to_string(remaining()) + " (of " + std::to_string(q.states.size()) +
                         ") futures unfinished");
  }
  std::lock_guard g(q.m);
  std::size_t i = q.completed.front();
  q.completed.pop_front();
  ++q.delivered;
  return i;
}

}  // namespace concur::futures::detail
