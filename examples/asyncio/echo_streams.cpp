// TCP echo with asyncio streams: the server and three clients in one program.
// Python:
//   async def handle(reader, writer):
//       while line := await reader.readline():
//           writer.write(line); await writer.drain()
//       writer.close()
//   server = await asyncio.start_server(handle, "127.0.0.1", 0)
//   reader, writer = await asyncio.open_connection("127.0.0.1", port)
#include <cstdio>
#include <string>
#include <vector>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;

aio::Coro<void> handle(aio::StreamReader reader, aio::StreamWriter writer) {
  auto peer = std::any_cast<aio::SocketAddress>(writer.get_extra_info("peername"));
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;  // EOF
    writer.write(line);
    co_await writer.drain();
  }
  std::printf("server: %s disconnected\n", peer.to_string().c_str());
  writer.close();
}

aio::Coro<std::string> client(int port, int id) {
  auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port);
  writer.write("hello from client " + std::to_string(id) + "\n");
  co_await writer.drain();
  std::string answer = co_await reader.readline();
  writer.close();
  co_await writer.wait_closed();
  co_return answer;
}

aio::Coro<int> amain() {
  aio::Server server = co_await aio::start_server(handle, "127.0.0.1", 0);
  std::printf("serving on 127.0.0.1:%d\n", server.port());
  std::vector<aio::Coro<std::string>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(client(server.port(), i));
  std::vector<std::string> answers = co_await aio::gather(std::move(clients));
  for (const auto& a : answers) std::printf("client got: %s", a.c_str());
  server.close();
  co_await server.wait_closed();
  co_return answers.size() == 3 ? 0 : 1;
}

int main() { return aio::run(amain()); }
