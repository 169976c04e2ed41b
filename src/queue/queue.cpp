#include "concur/queue/errors.hpp"

namespace concur::queue {
Empty::Empty() : Error("queue is empty") {}
Full::Full() : Error("queue is full") {}
ShutDown::ShutDown() : Error("queue is shut down") {}
}  // namespace concur::queue
