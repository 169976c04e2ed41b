#pragma once
/// \file concur core: errors, cancellation, the waiter abstraction, clocks, trace events.
#include "concur/core/cancellation.hpp"
#include "concur/core/error.hpp"
#include "concur/core/futex.hpp"
#include "concur/core/trace.hpp"
#include "concur/core/waiter.hpp"
