#pragma once
// Private to src/multiprocessing: what worker.cpp (how workers start and serve) and
// forkserver.cpp (the "forkserver" start method) use of each other.
#include <sys/types.h>

#include <string>

#include "concur/multiprocessing/detail/worker.hpp"

namespace concur::multiprocessing::detail {

/// The descriptors a spawned process finds: its socket, and a worker's progress page.
inline constexpr int kWorkerFd = 3;
inline constexpr int kProgressFd = 4;

/// posix_spawn of this executable with `socket_fd` as kWorkerFd, `progress_fd` (unless -1) as
/// kProgressFd, nothing else beyond stdio, and CONCUR_MP_WORKER=`worker_env` in the
/// environment. Returns the pid; throws OSError.
pid_t spawn_self(int socket_fd, int progress_fd, const std::string& worker_env);

/// In a child the fork server just forked: map the progress page, watch the parent
/// (`parent_pidfd`, a pidfd of the program's main process) from a thread, and serve requests on
/// `sock` until told to exit.
[[noreturn]] void serve_forked(int sock, int progress_fd, int parent_pidfd);

/// The fork server's body (the process CONCUR_MP_WORKER=forkserver:<parent> started): forks
/// children on request over kWorkerFd until `parent` is gone.
[[noreturn]] void forkserver_main(pid_t parent);

/// A worker forked by the fork server (started on first use).
SpawnedWorker forkserver_spawn(int child_sock, int progress_fd);

}  // namespace concur::multiprocessing::detail
