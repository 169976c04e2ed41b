/// Producers and consumers around a bounded queue.Queue: task_done()/join() to wait until every
/// item is processed, then shutdown() to let the consumers leave their get() loop.
#include <iostream>
#include <string>
#include <vector>

#include <concur/queue.hpp>
#include <concur/threading.hpp>

namespace threading = concur::threading;
namespace queue = concur::queue;

int main() {
  queue::Queue<int> q(/*maxsize=*/8);  // producers block while 8 items wait
  threading::Lock lock;                // guards `total` and `processed`
  long total = 0;
  int processed = 0;

  auto producer = [&q](int first, int count) {
    for (int i = first; i < first + count; ++i) q.put(i);
  };
  auto consumer = [&] {
    while (true) {
      int item = 0;
      try {
        item = q.get();
      } catch (const queue::ShutDown&) {
        return;  // shut down and drained: nothing more will come
      }
      {
        std::scoped_lock g(lock);
        total += static_cast<long>(item) * item;
        ++processed;
      }
      q.task_done();
    }
  };

  std::vector<threading::Thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back(threading::ThreadOptions{.name = "consumer-" + std::to_string(c)}, consumer);
  }
  std::vector<threading::Thread> producers;
  for (int p = 0; p < 2; ++p) producers.emplace_back(producer, p * 500, 500);
  for (auto& t : consumers) t.start();
  for (auto& t : producers) t.start();

  for (auto& t : producers) t.join();  // every item is in the queue (or already taken)
  q.join();                            // ... and every item has been marked task_done()
  q.shutdown();                        // consumers blocked in get() now get ShutDown
  for (auto& t : consumers) t.join();

  std::cout << "processed " << processed << " items, sum of squares " << total << "\n";
  // sum of i*i for i in range(1000)
  return processed == 1000 && total == 332833500L ? 0 : 1;
}
