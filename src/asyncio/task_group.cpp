#include "concur/asyncio/task_group.hpp"

namespace concur::asyncio {

Coro<void> TaskGroup::join() {
  auto s = s_;
  bool cancelled = false;
  // Children may add children: wait until none is left unfinished.
  for (;;) {
    std::vector<futures::detail::StateBase*> pending;
    for (auto& c : s->children)
      if (!c.state->done()) pending.push_back(c.state);
    if (pending.empty()) break;
    try {
      co_await detail::MultiWait(std::move(pending), ALL_COMPLETED, -1);
    } catch (const CancelledError&) {
      // Our caller is cancelled: cancel the children, wait for them, then propagate.
      cancelled = true;
      s->abort();
    }
  }
  s->joined = true;
  if (!s->errors.empty()) throw ExceptionGroup("unhandled errors in a TaskGroup", s->errors);
  if (cancelled) throw CancelledError();
}

}  // namespace concur::asyncio
