#pragma once
#include "concur/core/error.hpp"

namespace concur::queue {

/// get_nowait() on an empty queue, or a timed get() that ran out of time.
class Empty : public Error {
 public:
  Empty();
};
/// put_nowait() on a full queue, or a timed put() that ran out of time.
class Full : public Error {
 public:
  Full();
};
/// put() after shutdown(), or get() on a shut-down queue that is empty.
class ShutDown : public Error {
 public:
  ShutDown();
};

}  // namespace concur::queue
