#include "concur/asyncio/wait.hpp"

namespace concur::asyncio::detail {

MultiWait::MultiWait(std::vector<futures::detail::StateBase*> states, ReturnWhen when, std::int64_t deadline_ns,
                     bool cancelled_fails)
    : states_(std::move(states)), when_(when), deadline_ns_(deadline_ns), cancelled_fails_(cancelled_fails) {
  std::size_t done = 0;
  bool failed = false;
  for (auto* s : states_) {
    if (s->done()) ++done;
    if (bad(*s)) failed = true;
  }
  done_.store(done, std::memory_order_relaxed);
  failed_.store(failed, std::memory_order_relaxed);
}

MultiWait::MultiWait(MultiWait&& o) noexcept
    : states_(std::move(o.states_)),
      when_(o.when_),
      deadline_ns_(o.deadline_ns_),
      cancelled_fails_(o.cancelled_fails_) {
  done_.store(o.done_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  failed_.store(o.failed_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

MultiWait::~MultiWait() { detach(); }

bool MultiWait::satisfied() const noexcept {
  const std::size_t d = done_.load(std::memory_order_acquire);
  const std::size_t n = states_.size();
  switch (when_) {
    case FIRST_COMPLETED:
      return d >= 1 || n == 0;
    case FIRST_EXCEPTION:
      return failed_.load(std::memory_order_acquire) || d >= n;
    case ALL_COMPLETED:
      return d >= n;
  }
  return true;
}

bool MultiWait::await_suspend(std::coroutine_handle<> h) {
  task_ = current_task_base();
  if (!task_) throw std::logic_error("asyncio wait outside of an asyncio task");
  if (task_->cancel_before_suspend()) return false;
  loop_ = &task_->loop();
  waiter_.emplace(task_);
  // Count afresh while registering: a future done now is counted once, by us.
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  nodes_.resize(states_.size());
  armed_ = true;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    nodes_[i].owner = this;
    if (!states_[i]->add_listener(nodes_[i])) {
      if (bad(*states_[i])) failed_.store(true, std::memory_order_release);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
  if (satisfied()) {
    if (!woken_.exchange(true, std::memory_order_acq_rel)) {
      detach();
      return false;  // already there; nothing will wake us
    }
    // A listener fired meanwhile and already scheduled us: suspend and be resumed by it.
  } else if (deadline_ns_ >= 0) {
    when_ns = deadline_ns_;
    loop_->add_timer(this);
  }
  task_->suspended_at(h, this);
  return true;
}

void MultiWait::on_done(futures::detail::StateBase& s) noexcept {
  if (bad(s)) failed_.store(true, std::memory_order_release);
  done_.fetch_add(1, std::memory_order_acq_rel);
  if (satisfied() && !woken_.exchange(true, std::memory_order_acq_rel)) waiter_->wake();
}

void MultiWait::fire() noexcept {
  if (!woken_.exchange(true, std::memory_order_acq_rel)) loop_->schedule(task_);
}

CancelResult MultiWait::cancel() noexcept {
  if (woken_.exchange(true, std::memory_order_acq_rel)) return CancelResult::too_late;
  detach();
  return CancelResult::detached;
}

void MultiWait::detach() noexcept {
  if (!armed_) return;
  armed_ = false;
  for (std::size_t i = 0; i < nodes_.size(); ++i) states_[i]->remove_listener(nodes_[i]);
  if (loop_ && scheduled()) loop_->remove_timer(this);
}

bool MultiWait::await_resume() {
  detach();
  if (task_) task_->check_cancelled();
  if (satisfied()) return true;
  // Recount (listeners were removed): a future may have finished as the timer fired.
  std::size_t done = 0;
  bool failed = false;
  for (auto* s : states_) {
    if (s->done()) ++done;
    if (bad(*s)) failed = true;
  }
  done_.store(done);
  failed_.store(failed);
  return satisfied();
}

CompletionQueue::CompletionQueue(const std::vector<futures::detail::StateBase*>& states) : slots_(states.size()) {
  order_.reserve(states.size());
  for (std::size_t i = 0; i < states.size(); ++i) {
    Slot& s = slots_[i];
    s.q = this;
    s.state = states[i];
    s.index = i;
    if (!states[i]->add_listener(s)) order_.push_back(i);  // already done: in the given order
  }
}

CompletionQueue::~CompletionQueue() {
  for (Slot& s : slots_) s.state->remove_listener(s);
}

futures::Future<void> CompletionQueue::arm() {
  signal_.emplace();
  return signal_->get_future();
}

void CompletionQueue::push(std::size_t i) noexcept {
  order_.push_back(i);  // capacity reserved for every task
  if (signal_) {
    try {
      signal_->set_result();
    } catch (...) {  // already set: nothing to do
    }
    signal_.reset();
  }
}

}  // namespace concur::asyncio::detail
