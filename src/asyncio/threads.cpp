#include "concur/asyncio/threads.hpp"

namespace concur::asyncio::detail {

futures::ThreadPoolExecutor& default_executor() {
  static futures::ThreadPoolExecutor pool(futures::ThreadPoolOptions{.thread_name_prefix = "asyncio"});
  return pool;
}

}  // namespace concur::asyncio::detail
