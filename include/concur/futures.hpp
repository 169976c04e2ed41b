#pragma once
/// \file concur::futures — Python's `concurrent.futures` module.
#include "concur/futures/errors.hpp"
#include "concur/futures/executor.hpp"
#include "concur/futures/future.hpp"
#include "concur/futures/thread_pool.hpp"
#include "concur/futures/wait.hpp"
