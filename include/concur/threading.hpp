#pragma once
/// \file concur::threading — Python's `threading` module.
#include "concur/threading/barrier.hpp"
#include "concur/threading/condition.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/local.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/semaphore.hpp"
#include "concur/threading/thread.hpp"
#include "concur/threading/timer.hpp"
