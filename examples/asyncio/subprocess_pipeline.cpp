// `printf 'pear\napple\nfig\n' | sort` driven from asyncio: two subprocesses whose pipe runs
// through this program (Python: asyncio.create_subprocess_exec with stdout=PIPE / stdin=PIPE).
#include <iostream>
#include <string>
#include <vector>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;

// Copies everything `from` produces into `to`, then closes `to` (the next stage sees EOF).
aio::Coro<void> pump(aio::StreamReader from, aio::StreamWriter to) {
  for (;;) {
    std::string chunk = co_await from.read(64 * 1024);
    if (chunk.empty()) break;
    to.write(chunk);
    co_await to.drain();  // back-pressure: wait while the next stage is slow
  }
  to.close();
}

aio::Coro<int> amain() {
  std::vector<std::string> printf_args{"pear\\nbanana\\napple\\nfig\\ncherry\\n"};
  aio::SubprocessOptions printf_opts{.stdout_ = aio::PIPE};  // (no braces inside co_await: GCC 12)
  aio::Process producer = co_await aio::create_subprocess_exec("printf", printf_args, printf_opts);

  std::vector<std::string> sort_args;
  aio::SubprocessOptions sort_opts{.stdin_ = aio::PIPE, .stdout_ = aio::PIPE};
  sort_opts.env = std::vector<std::string>{"LC_ALL=C", "PATH=/usr/bin:/bin"};
  aio::Process sorter = co_await aio::create_subprocess_exec("sort", sort_args, sort_opts);

  aio::Task<void> between = aio::create_task(pump(producer.stdout_(), sorter.stdin_()));
  std::string sorted = co_await sorter.stdout_().read();  // to EOF
  co_await between;
  int rc1 = co_await producer.wait();
  int rc2 = co_await sorter.wait();

  std::cout << sorted;
  std::cout << "printf exited with " << rc1 << ", sort with " << rc2 << "\n";
  co_return sorted == "apple\nbanana\ncherry\nfig\npear\n" && rc1 == 0 && rc2 == 0 ? 0 : 1;
}

int main() { return aio::run(amain()); }
