/// Asynchronous DNS: loop.getaddrinfo and loop.getnameinfo (c-ares underneath; the loop never
/// blocks and a lookup can be cancelled). Python:
///
///     import asyncio, socket
///
///     async def main():
///         loop = asyncio.get_running_loop()
///         infos = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
///         for family, type, proto, canonname, sockaddr in infos:
///             print(family.name, sockaddr)
///         print(await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV))
///
///     asyncio.run(main())
///
/// Output (depending on /etc/hosts):
///
///     AF_INET 127.0.0.1:80
///     ('localhost', '80')
///
/// The resolver is told to read the hosts file only, so this example never uses the network.
#include <sys/socket.h>

#include <iostream>
#include <string>
#include <vector>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;

aio::Coro<void> amain() {
  aio::EventLoop& loop = aio::get_running_loop();
  aio::ResolverOptions hosts_file_only;
  hosts_file_only.lookups = "f";  // "fb" (the default): the hosts file, then DNS
  aio::set_resolver_options(loop, hosts_file_only);

  aio::GetaddrinfoOptions options;
  options.type = SOCK_STREAM;
  std::vector<aio::AddrInfo> infos = co_await loop.getaddrinfo("localhost", 80, options);
  for (const aio::AddrInfo& info : infos)
    std::cout << (info.family == AF_INET6 ? "AF_INET6 " : "AF_INET ") << info.address.to_string() << "\n";

  aio::SocketAddress loopback{AF_INET, "127.0.0.1", 80, {}};
  auto [host, service] = co_await loop.getnameinfo(loopback, NI_NUMERICSERV);
  std::cout << "('" << host << "', '" << service << "')\n";
}

int main() {
  try {
    aio::run(amain());
  } catch (const aio::GaiError& e) {
    std::cerr << "lookup failed: " << e.what() << "\n";
    return 1;
  }
}
