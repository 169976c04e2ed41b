/// Seed 003, section 1 ("Thread-based concurrency"), translated line by line from Python.
///
///     import threading
///     import time
///
///     def worker():
///         print(f"worker thread started")
///         time.sleep(2)
///         print(f"worker thread finished")
///
///     thread1 = threading.Thread(target=worker)
///     thread2 = threading.Thread(target=worker)
///     thread1.start()
///     thread2.start()
///     thread1.join()
///     thread2.join()
///     print("Both threads completed")
#include <chrono>
#include <iostream>
#include <thread>

#include <concur/threading.hpp>

namespace threading = concur::threading;
using namespace std::chrono_literals;

void worker() {
  std::cout << "worker thread started\n";
  std::this_thread::sleep_for(200ms);  // the tutorial sleeps 2 s; 200 ms keeps CI fast
  std::cout << "worker thread finished\n";
}

int main() {
  // Create two threads
  threading::Thread thread1(worker);
  threading::Thread thread2(worker);

  // start threads
  thread1.start();
  thread2.start();

  // Waiting for both threads to complete
  thread1.join();
  thread2.join();

  std::cout << "Both threads completed\n";
}
