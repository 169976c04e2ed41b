#include "concur/threading/timer.hpp"

namespace concur::threading {

Timer::Timer(std::chrono::nanoseconds interval, concur::detail::unique_function fn)
    : finished_(std::make_shared<Event>()),
      thread_(ThreadOptions{},
              concur::detail::unique_function([finished = finished_, interval, f = std::move(fn)]() mutable {
                if (!finished->wait(interval)) f();
                finished->set();
              })) {}

}  // namespace concur::threading
