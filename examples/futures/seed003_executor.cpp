/// Seed 003, section 4 ("Concurrent Futures"), translated line by line from Python.
///
///     from concurrent.futures import ThreadPoolExecutor
///     import time
///
///     def worker():
///         print("Worker started")
///         time.sleep(2)
///         print("worker finished")
///
///     with ThreadPoolExecutor(max_workers=2) as executor:
///         future1 = executor.submit(worker)
///         future2 = executor.submit(worker)
///
///     #Block until results are available
///     print(future1.result())
///     print(future2.result())
#include <chrono>
#include <iostream>
#include <thread>

#include <concur/futures.hpp>

namespace cf = concur::futures;
using namespace std::chrono_literals;

void worker() {
  std::cout << "Worker started\n";
  std::this_thread::sleep_for(200ms);  // the tutorial sleeps 2 s; 200 ms keeps CI fast
  std::cout << "worker finished\n";
}

int main() {
  cf::ThreadPoolExecutor executor({.max_workers = 2});  // with ThreadPoolExecutor(max_workers=2) as executor:
  cf::Future<void> future1 = executor.submit(worker);
  cf::Future<void> future2 = executor.submit(worker);
  executor.shutdown();  // the end of the `with` block: shutdown(wait=True)

  // Block until results are available
  // result() of a Future<void> returns nothing (it still rethrows the task's exception);
  // Python prints the None that worker() returned, so we print it too.
  future1.result();
  std::cout << "None\n";
  future2.result();
  std::cout << "None\n";
}
