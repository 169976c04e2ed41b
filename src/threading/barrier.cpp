#include "concur/threading/barrier.hpp"

#include <stdexcept>

namespace concur::threading {

// A port of CPython's Barrier: filling -> draining (everyone leaves) -> filling; resetting and
// broken as there.

Barrier::Barrier(std::size_t parties, BarrierOptions options) : parties_(parties), options_(std::move(options)) {
  if (parties < 1) throw std::invalid_argument("parties must be >= 1");
}

Barrier::Barrier(std::size_t parties, std::function<void()> action)
    : Barrier(parties, BarrierOptions{.action = std::move(action), .timeout = std::nullopt}) {}

std::size_t Barrier::wait() {
  if (options_.timeout) return wait_impl(core::deadline_after(*options_.timeout));
  return wait_impl(std::nullopt);
}

std::size_t Barrier::wait_impl(core::Deadline deadline) {
  std::unique_lock g(m_);
  // _enter: wait for a draining or resetting barrier to empty.
  cv_.wait(g, [&] { return state_ != State::draining && state_ != State::resetting; });
  if (state_ == State::broken) throw BrokenBarrierError();
  std::size_t index = count_;
  ++count_;
  struct Exit {
    Barrier* b;
    ~Exit() {
      --b->count_;
      b->exit_locked();
    }
  } exit_guard{this};
  if (index + 1 == parties_) {
    // _release: run the action, then let everyone go.
    try {
      if (options_.action) options_.action();
      state_ = State::draining;
      cv_.notify_all();
    } catch (...) {
      break_locked();
      throw;
    }
  } else {
    auto released = [&] { return state_ != State::filling; };
    bool ok = deadline ? cv_.wait_until(g, *deadline, released) : (cv_.wait(g, released), true);
    if (!ok) {
      break_locked();
      throw BrokenBarrierError("barrier wait timed out; the barrier is now broken");
    }
    if (state_ == State::broken || state_ == State::resetting) throw BrokenBarrierError();
  }
  return index;
}

void Barrier::exit_locked() {
  if (count_ == 0 && (state_ == State::resetting || state_ == State::draining)) {
    state_ = State::filling;
    cv_.notify_all();
  }
}

void Barrier::break_locked() {
  state_ = State::broken;
  cv_.notify_all();
}

void Barrier::reset() {
  std::lock_guard g(m_);
  if (count_ > 0) {
    if (state_ == State::filling || state_ == State::broken) state_ = State::resetting;
  } else {
    state_ = State::filling;
  }
  cv_.notify_all();
}

void Barrier::abort() {
  std::lock_guard g(m_);
  break_locked();
}

bool Barrier::broken() const {
  std::lock_guard g(m_);
  return state_ == State::broken;
}

std::size_t Barrier::n_waiting() const {
  std::lock_guard g(m_);
  return state_ == State::filling ? count_ : 0;
}

}  // namespace concur::threading
