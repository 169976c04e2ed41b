// gather is header-only over MultiWait (wait.cpp); this file keeps the layout symmetric.
#include "concur/asyncio/gather.hpp"
