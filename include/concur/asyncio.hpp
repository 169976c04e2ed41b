#pragma once
/// \file concur::asyncio — Python's `asyncio` module.
#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/loop.hpp"
#include "concur/asyncio/sleep.hpp"
#include "concur/asyncio/task.hpp"
