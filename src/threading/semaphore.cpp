#include "concur/threading/semaphore.hpp"

#include <stdexcept>

namespace concur::threading {

namespace {
std::int64_t checked(std::int64_t v) {
  if (v < 0) throw std::invalid_argument("semaphore initial value must be >= 0");
  return v;
}
}  // namespace

Semaphore::Semaphore(std::int64_t value) : core_(checked(value)) {}

bool Semaphore::acquire(bool blocking) noexcept {
  if (!blocking) return core_.try_acquire();
  return core::acquire_blocking(core_, std::nullopt);
}

bool Semaphore::acquire_until(core::Clock::time_point deadline) noexcept {
  return core::acquire_blocking(core_, deadline);
}

void Semaphore::release(std::int64_t n) {
  if (n < 1) throw std::invalid_argument("n must be one or more");
  core_.release(n);
}

BoundedSemaphore::BoundedSemaphore(std::int64_t value) : Semaphore(value), initial_(value) {}

void BoundedSemaphore::release(std::int64_t n) {
  if (n < 1) throw std::invalid_argument("n must be one or more");
  if (!core_.release_bounded(n, initial_)) throw std::invalid_argument("Semaphore released too many times");
}

}  // namespace concur::threading
