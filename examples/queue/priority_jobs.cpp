/// queue.PriorityQueue: jobs come out smallest priority first, as with Python's
/// `PriorityQueue.put((priority, job))`; a worker thread drains it.
#include <iostream>
#include <string>
#include <vector>

#include <concur/queue.hpp>
#include <concur/threading.hpp>

namespace threading = concur::threading;
namespace queue = concur::queue;

/// A job ordered by priority (smaller first), then by name, as Python compares tuples.
struct Job {
  int priority = 0;
  std::string name;
  friend auto operator<=>(const Job&, const Job&) = default;
};

int main() {
  queue::PriorityQueue<Job> jobs;
  jobs.put({3, "write report"});
  jobs.put({1, "fix outage"});
  jobs.put({2, "review patch"});
  jobs.put({1, "answer pager"});

  std::vector<std::string> order;
  threading::Thread worker([&] {
    while (true) {
      Job job;
      try {
        job = jobs.get_nowait();
      } catch (const queue::Empty&) {
        return;  // nothing left
      }
      std::cout << "priority " << job.priority << ": " << job.name << "\n";
      order.push_back(job.name);
      jobs.task_done();
    }
  });
  worker.start();
  jobs.join();  // every job processed
  worker.join();

  std::vector<std::string> expected{"answer pager", "fix outage", "review patch", "write report"};
  return order == expected ? 0 : 1;
}
