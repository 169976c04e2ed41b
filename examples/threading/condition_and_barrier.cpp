/// threading.Condition with wait_for(predicate, timeout), and a threading.Barrier that lines up
/// worker threads between phases.
#include <chrono>
#include <cstddef>
#include <iostream>
#include <mutex>
#include <vector>

#include <concur/threading.hpp>

namespace threading = concur::threading;
using namespace std::chrono_literals;

int main() {
  // --- Condition: a consumer waits until the producer has made enough items. ---
  threading::Condition cv;
  int items = 0;
  threading::Thread producer([&] {
    for (int i = 0; i < 5; ++i) {
      std::unique_lock g(cv);
      ++items;
      cv.notify_all();
    }
  });
  producer.start();
  bool enough = false;
  {
    std::unique_lock g(cv);
    enough = cv.wait_for([&] { return items == 5; }, 2s);  // false if 2 s pass first
  }
  producer.join();
  std::cout << "condition: " << (enough ? "all 5 items arrived" : "timed out") << "\n";

  // --- Barrier: three workers finish phase 1 before any starts phase 2. ---
  constexpr std::size_t kParties = 3;
  threading::Lock lock;  // guards `log`
  std::vector<int> log;  // phase numbers in the order they happened
  threading::Barrier barrier(kParties, [] { std::cout << "barrier: all arrived, releasing\n"; });
  std::vector<threading::Thread> workers;
  for (std::size_t w = 0; w < kParties; ++w) {
    workers.emplace_back([&] {
      for (int phase = 1; phase <= 2; ++phase) {
        {
          std::scoped_lock g(lock);
          log.push_back(phase);
        }
        barrier.wait();  // returns a distinct index in [0, 3) to each party
      }
    });
  }
  for (auto& t : workers) t.start();
  for (auto& t : workers) t.join();

  // Every phase-1 entry comes before every phase-2 entry.
  bool ordered = log.size() == 2 * kParties;
  for (std::size_t i = 0; i < log.size(); ++i) ordered = ordered && log[i] == (i < kParties ? 1 : 2);
  std::cout << "barrier: phases " << (ordered ? "in order" : "OUT OF ORDER") << "\n";
  return enough && ordered ? 0 : 1;
}
