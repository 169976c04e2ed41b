#pragma once
/// \file concur::asyncio — Python's `asyncio` module.
#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/gather.hpp"
#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/loop.hpp"
#include "concur/asyncio/queues.hpp"
#include "concur/asyncio/sleep.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/asyncio/task_group.hpp"
#include "concur/asyncio/threads.hpp"
#include "concur/asyncio/timeouts.hpp"
#include "concur/asyncio/wait.hpp"
