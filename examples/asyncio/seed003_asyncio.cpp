/// Seed 003, section 3 ("Asynchronous programming (`asyncio` module)"), translated line by line
/// from Python.
///
///     import asyncio
///
///     async def worker():
///         print("Worker started")
///         await asyncio.sleep(2)  # Simulates I/O-bound operation
///         print("Worker finished")
///
///     async def main():
///         task1 = asyncio.create_task(worker())
///         task2 = asyncio.create_task(worker())
///
///         await task1
///         await task2
///
///     # If you're in an environment with an already running event loop, use `await` instead of `asyncio.run()`
///     await main()
///
/// Output:
///
///     Worker started
///     Worker started
///     Worker finished
///     Worker finished
///
/// C++ has no top-level `await`, so main() calls aio::run(amain()) — the asyncio.run() form.
#include <chrono>
#include <iostream>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

aio::Coro<void> worker() {  // async def worker():
  std::cout << "Worker started\n";
  // Python sleeps 2 s; 200 ms shows the same overlap without slowing the example test run.
  co_await aio::sleep(200ms);  // Simulates I/O-bound operation
  std::cout << "Worker finished\n";
}

aio::Coro<void> amain() {  // async def main():
  aio::Task<void> task1 = aio::create_task(worker());
  aio::Task<void> task2 = aio::create_task(worker());

  co_await task1;
  co_await task2;
}

int main() {
  auto start = std::chrono::steady_clock::now();
  aio::run(amain());
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  // Both workers slept at the same time on one thread: about 0.2 s in all, not 0.4 s.
  std::cout << "Both workers done in " << took.count() << " s\n";
  return took < 390ms ? 0 : 1;
}
