// TCP echo in the event-driven style (asyncio.Protocol, as in Twisted/Tornado):
// callbacks instead of coroutines for the connection's life cycle.
#include <cstdio>
#include <memory>
#include <string>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;

struct EchoServer : aio::Protocol {
  aio::Transport* tr = nullptr;
  void connection_made(aio::Transport& t) override { tr = &t; }
  void data_received(std::string_view data) override { tr->write(data); }
  void connection_lost(std::exception_ptr) override { std::printf("server: connection closed\n"); }
};

struct EchoClient : aio::Protocol {
  std::string message;
  std::string received;
  aio::Event done;
  explicit EchoClient(std::string m) : message(std::move(m)) {}
  void connection_made(aio::Transport& t) override {
    t.write(message);
    std::printf("client: sent %zu bytes\n", message.size());
  }
  void data_received(std::string_view data) override { received.append(data); }
  void connection_lost(std::exception_ptr) override { done.set(); }
};

aio::Coro<int> amain() {
  aio::EventLoop& loop = aio::get_running_loop();
  aio::Server server = co_await loop.create_server([] { return std::make_unique<EchoServer>(); }, "127.0.0.1", 0);
  auto [transport, client] = co_await loop.create_connection(
      [] { return std::make_unique<EchoClient>("Hello, protocols!"); }, "127.0.0.1", server.port());
  while (client->received.size() < client->message.size()) co_await aio::sleep(std::chrono::milliseconds(1));
  std::printf("client: received '%s'\n", client->received.c_str());
  transport->close();
  co_await client->done.wait();
  server.close();
  co_await server.wait_closed();
  co_return client->received == client->message ? 0 : 1;
}

int main() { return aio::run(amain()); }
