#pragma once
/// \file concur::queue — Python's `queue` module.
#include "concur/queue/errors.hpp"
#include "concur/queue/queue.hpp"
