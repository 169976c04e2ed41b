// Python's classic producer/consumer over a multiprocessing.Queue, with two producers, two
// consumers and one sentinel per consumer. The Python it translates:
//
//     import multiprocessing as mp
//
//     N = 1000
//     SENTINEL = None
//
//     def producer(q, first):
//         for i in range(first, first + N):
//             q.put(i)
//
//     def consumer(q, results):
//         count = total = 0
//         while (item := q.get()) is not SENTINEL:
//             count += 1
//             total += item
//         results.put((count, total))
//
//     if __name__ == "__main__":
//         q, results = mp.Queue(maxsize=100), mp.Queue()
//         producers = [mp.Process(target=producer, args=(q, k * N)) for k in range(2)]
//         consumers = [mp.Process(target=consumer, args=(q, results)) for _ in range(2)]
//         for p in producers + consumers:
//             p.start()
//         for p in producers:
//             p.join()
//         for _ in consumers:
//             q.put(SENTINEL)
//         parts = [results.get() for _ in consumers]
//         for c in consumers:
//             c.join()
//         count, total = sum(c for c, _ in parts), sum(t for _, t in parts)
//         print(f"consumed {count} items, total {total}")
//         assert count == 2 * N and total == sum(range(2 * N))
//
// C++ has no None for an int queue: the sentinel is -1. Process targets are plain functions; the
// queues travel to the spawned children as arguments.
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

constexpr int N = 1000;
constexpr int SENTINEL = -1;

void producer(mp::Queue<int> q, int first) {
  for (int i = first; i < first + N; ++i) q.put(i);
}

void consumer(mp::Queue<int> q, mp::Queue<std::pair<long, long>> results) {
  long count = 0, total = 0;
  for (int item; (item = q.get()) != SENTINEL;) {
    count += 1;
    total += item;
  }
  results.put({count, total});
}

int main() {
  mp::Queue<int> q(/*maxsize=*/100);
  mp::Queue<std::pair<long, long>> results;
  std::vector<std::unique_ptr<mp::Process>> producers, consumers;
  for (int k = 0; k < 2; ++k) producers.push_back(std::make_unique<mp::Process>(producer, q, k * N));
  for (int k = 0; k < 2; ++k) consumers.push_back(std::make_unique<mp::Process>(consumer, q, results));
  for (auto& p : producers) p->start();
  for (auto& c : consumers) c->start();
  for (auto& p : producers) p->join();
  for (std::size_t k = 0; k < consumers.size(); ++k) q.put(SENTINEL);
  long count = 0, total = 0;
  for (std::size_t k = 0; k < consumers.size(); ++k) {
    auto [c, t] = results.get();
    count += c;
    total += t;
  }
  for (auto& c : consumers) c->join();
  std::cout << "consumed " << count << " items, total " << total << "\n";
  const long expected_total = long{2 * N} * (2 * N - 1) / 2;
  bool ok = count == 2 * N && total == expected_total;
  for (auto& p : producers) ok = ok && p->exitcode() == 0;
  for (auto& c : consumers) ok = ok && c->exitcode() == 0;
  if (!ok) std::cout << "MISMATCH: expected " << 2 * N << " items, total " << expected_total << "\n";
  return ok ? 0 : 1;
}
