/// Seed 003, section 2 ("Process-based concurrency"), translated line by line from Python.
///
///     import multiprocessing
///     import time
///
///     def worker():
///         print(f"Worker process started")
///         time.sleep(2)
///         print(f"Worker process finished")
///
///     process1 = multiprocessing.Process(target=worker)
///     process2 = multiprocessing.Process(target=worker)
///     process1.start()
///     process2.start()
///     process1.join()
///     process2.join()
///     print("Both Processes completed")
///
/// Each Process is this program started again (Python's "spawn"): it runs worker() and exits;
/// main() runs only in the parent.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <concur/multiprocessing.hpp>

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

void worker() {
  std::cout << "Worker process started (pid " << ::getpid() << ")" << std::endl;
  std::this_thread::sleep_for(200ms);  // the tutorial sleeps 2 s; 200 ms keeps CI fast
  std::cout << "Worker process finished" << std::endl;
}

int main() {
  mp::Process process1(worker);  // Creates two processes
  mp::Process process2(worker);
  process1.start();  // Start process
  process2.start();
  process1.join();  // wait for both processes to complete
  process2.join();
  std::cout << "Both Processes completed\n";
  return process1.exitcode() == 0 && process2.exitcode() == 0 ? 0 : 1;
}
