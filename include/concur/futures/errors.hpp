#pragma once
#include "concur/core/error.hpp"

namespace concur::futures {

/// The executor can no longer run tasks (Python's `BrokenExecutor`).
class BrokenExecutor : public Error {
 public:
  using Error::Error;
};
/// A ThreadPoolExecutor whose worker initializer failed (Python's `BrokenThreadPool`).
class BrokenThreadPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};
/// A process pool whose worker died (Python's `BrokenProcessPool`).
class BrokenProcessPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};
/// A Promise was destroyed without a result: its Future gets this instead of hanging.
class BrokenPromise : public Error {
 public:
  BrokenPromise() : Error("the promise was destroyed without setting a result") {}
};

}  // namespace concur::futures
