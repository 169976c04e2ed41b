#pragma once
/// \file asyncio DNS: loop.getaddrinfo / loop.getnameinfo (Python's socket.getaddrinfo /
/// getnameinfo run asynchronously, as asyncio's loop methods), on c-ares.
///
/// Each loop has its own resolver (a c-ares channel), made on first use and destroyed when the
/// loop closes. Its sockets are watched by the loop and its retry timer is a loop timer: a
/// lookup never blocks the loop and needs no thread. Names are looked up as the system does:
/// the hosts file first ("localhost", /etc/hosts), then the DNS servers of /etc/resolv.conf
/// (or those set with set_resolver_options / CONCUR_DNS_SERVERS). Numeric hosts need no lookup.
///
/// Threads: loop thread only; every await resumes on the loop's thread.
/// Cancel safety: cancelling a lookup (directly, or by wait_for/timeout) ends the await at once
/// with CancelledError; the query is abandoned (its answer, if one still comes, is dropped) and
/// once no lookup of the loop is awaited any more the resolver stops its queries. Nothing else
/// changes: the next lookup on the loop works as usual.
/// Loop close: pending lookups are cancelled; the channel and its sockets are released.
#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/loop.hpp"
#include "concur/asyncio/transports.hpp"
#include "concur/core/error.hpp"

namespace concur::asyncio {

/// A name lookup failed (Python's socket.gaierror). errno_code() is the EAI_* code Python would
/// report (EAI_NONAME, EAI_AGAIN for a timeout, ...); the message says what was looked up and
/// why it failed: "getaddrinfo(no.such.host.test): Domain name not found".
class GaiError : public OSError {
 public:
  GaiError(int eai_code, const std::string& what) : OSError(eai_code, what) {}
};

/// One result of getaddrinfo: Python's (family, type, proto, canonname, sockaddr) tuple.
struct AddrInfo {
  int family = 0;         // AF_INET or AF_INET6
  int type = 0;           // SOCK_STREAM, SOCK_DGRAM, SOCK_RAW
  int protocol = 0;       // IPPROTO_TCP, IPPROTO_UDP, 0
  std::string canonname;  // first result only, with AI_CANONNAME; else empty
  SocketAddress address;  // numeric host and port
  friend bool operator==(const AddrInfo&, const AddrInfo&) = default;
};

/// Keyword arguments of getaddrinfo (Python's family=, type=, proto=, flags=).
struct GetaddrinfoOptions {
  int family = AF_UNSPEC;  // AF_INET, AF_INET6 or AF_UNSPEC (both)
  int type = 0;            // 0: each address for SOCK_STREAM, SOCK_DGRAM and SOCK_RAW, as Python
  int protocol = 0;        // 0: the type's usual protocol
  int flags = 0;           // AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, AI_V4MAPPED, AI_ALL
};

/// How a loop's resolver finds names (set before its first lookup, or while none is pending).
struct ResolverOptions {
  /// DNS servers, "host[:port],..." ("127.0.0.1:5353,[::1]:53"). Empty: the
  /// CONCUR_DNS_SERVERS environment variable (same form), else /etc/resolv.conf.
  std::string servers;
  /// Time to wait for the first answer of a try (later tries wait longer); 0: the system's.
  std::chrono::milliseconds timeout{0};
  /// Attempts per server before giving up; 0: the system's.
  int tries = 0;
  /// Where to look, in order: "f" the hosts file, "b" DNS; empty: the system's (usually "fb").
  std::string lookups;
};

/// Configures `loop`'s resolver (a later lookup uses the new options). std::logic_error while
/// a query is still pending on it or when the loop is closed; std::invalid_argument for a
/// malformed server list (raised by the next lookup). Loop thread (or before the loop runs).
void set_resolver_options(EventLoop& loop, ResolverOptions options);

/// Python's asyncio getaddrinfo on the running loop (see EventLoop::getaddrinfo).
Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, int port, GetaddrinfoOptions options = {});
/// Python's asyncio getnameinfo on the running loop (see EventLoop::getnameinfo).
Coro<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags = 0);

// EventLoop::getaddrinfo(host, port[, options]) -> Coro<std::vector<AddrInfo>>
//   The addresses of `host` for `port` (Python's loop.getaddrinfo). An empty host is the
//   loopback address, or with AI_PASSIVE every interface. Errors: GaiError naming the host
//   (unknown name, no address of the family asked for, timeout of every DNS server);
//   std::invalid_argument for a port outside 0..65535.
// EventLoop::getnameinfo(address, flags) -> Coro<std::pair<std::string, std::string>>
//   (host, service) of a numeric address (Python's loop.getnameinfo); flags NI_NUMERICHOST,
//   NI_NUMERICSERV, NI_NAMEREQD, NI_NOFQDN, NI_DGRAM. Errors: GaiError naming the address.
// Both: resumed on the loop's thread; cancel safety as in the file comment.

namespace detail {
/// Queries the loop's resolver has started and not yet seen the end of, abandoned ones
/// included (tests: a cancelled lookup must not linger).
std::size_t dns_queries_in_flight(const EventLoop& loop) noexcept;
}  // namespace detail

}  // namespace concur::asyncio
