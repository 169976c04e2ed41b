// threading::Event is header-only over core::EventCore; this file keeps the layout symmetric.
#include "concur/threading/event.hpp"
