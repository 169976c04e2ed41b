/// Uses an installed concur through find_package(concur): a thread, a queue and a thread pool.
#include <iostream>

#include <concur/futures.hpp>
#include <concur/queue.hpp>
#include <concur/threading.hpp>

namespace cf = concur::futures;
namespace threading = concur::threading;

int square(int x) { return x * x; }

int main() {
  concur::queue::Queue<int> q;
  threading::Thread t([&q] { q.put(6); });
  t.start();
  t.join();

  cf::ThreadPoolExecutor pool(2);
  cf::Future<int> f = pool.submit(square, q.get() + 1);
  int r = f.result();
  std::cout << "consumer: square(7) = " << r << "\n";
  return r == 49 ? 0 : 1;
}
