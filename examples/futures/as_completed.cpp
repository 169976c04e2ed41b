/// concurrent.futures.as_completed and wait(return_when=FIRST_EXCEPTION).
#include <chrono>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <concur/futures.hpp>

namespace cf = concur::futures;
using namespace std::chrono_literals;

/// Larger inputs finish sooner, so completion order is the reverse of submission order.
int slow_square(int x) {
  std::this_thread::sleep_for((6 - x) * 20ms);
  return x * x;
}

/// Fails at once for 3; the others take a while.
int check(int x) {
  if (x == 3) throw std::invalid_argument("3 is not allowed");
  std::this_thread::sleep_for(300ms);
  return x;
}

int main() {
  cf::ThreadPoolExecutor pool(5);

  // as_completed: futures in the order they finish, not the order they were submitted.
  std::vector<cf::Future<int>> futures;
  for (int x = 1; x <= 5; ++x) futures.push_back(pool.submit(slow_square, x));
  int total = 0;
  for (cf::Future<int> done : cf::as_completed(futures)) {
    std::cout << "done: " << done.result() << "\n";
    total += done.result();
  }

  // wait(FIRST_EXCEPTION): returns as soon as one future fails (or all are done).
  std::vector<cf::Future<int>> checks;
  for (int x = 1; x <= 5; ++x) checks.push_back(pool.submit(check, x));
  auto [done, not_done] = cf::wait(checks, {.timeout = 5s, .return_when = cf::FIRST_EXCEPTION});
  bool saw_failure = false;
  for (auto f : done) {
    if (std::exception_ptr e = f.exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::invalid_argument& err) {
        std::cout << "failed: " << err.what() << "\n";
        saw_failure = true;
      }
    }
  }
  std::cout << done.size() << " done, " << not_done.size() << " not done when the first exception arrived\n";
  pool.shutdown(/*wait=*/true, /*cancel_futures=*/true);
  return total == 55 && saw_failure ? 0 : 1;
}
