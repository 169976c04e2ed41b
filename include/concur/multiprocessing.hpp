#pragma once
/// \file concur::multiprocessing — Python's multiprocessing: Process, Pipe/Connection, Pool,
/// Queue/SimpleQueue/JoinableQueue, shared memory and process-shared synchronisation; and
/// concurrent.futures' ProcessPoolExecutor (in concur::futures).
#include "concur/multiprocessing/connection.hpp"  // IWYU pragma: export
#include "concur/multiprocessing/pool.hpp"        // IWYU pragma: export
#include "concur/multiprocessing/process.hpp"     // IWYU pragma: export
#include "concur/multiprocessing/queues.hpp"      // IWYU pragma: export
#include "concur/multiprocessing/serialize.hpp"   // IWYU pragma: export
#if __has_include("concur/multiprocessing/shared_memory.hpp")
#include "concur/multiprocessing/shared_memory.hpp"  // IWYU pragma: export
#endif
#if __has_include("concur/multiprocessing/synchronize.hpp")
#include "concur/multiprocessing/synchronize.hpp"  // IWYU pragma: export
#endif
#if __has_include("concur/multiprocessing/sharedctypes.hpp")
#include "concur/multiprocessing/sharedctypes.hpp"  // IWYU pragma: export
#endif
