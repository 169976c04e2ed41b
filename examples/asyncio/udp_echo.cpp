// UDP with asyncio.DatagramProtocol: an echo server and a client on loopback.
#include <any>
#include <cstdio>
#include <memory>
#include <string>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;

struct EchoServer : aio::DatagramProtocol {
  aio::DatagramTransport* tr = nullptr;
  void connection_made(aio::DatagramTransport& t) override { tr = &t; }
  void datagram_received(std::string_view data, const aio::SocketAddress& from) override {
    std::printf("server: %zu bytes from %s\n", data.size(), from.to_string().c_str());
    tr->sendto(data, from);
  }
};

struct Client : aio::DatagramProtocol {
  std::string reply;
  aio::Event got;
  void datagram_received(std::string_view data, const aio::SocketAddress&) override {
    reply.assign(data);
    got.set();
  }
};

aio::Coro<int> amain() {
  aio::DatagramOptions server_opts;
  server_opts.local_addr = std::make_pair(std::string("127.0.0.1"), 0);
  auto [server, sp] =
      co_await aio::create_datagram_endpoint([] { return std::make_unique<EchoServer>(); }, server_opts);
  int port = std::any_cast<aio::SocketAddress>(server->get_extra_info("sockname")).port;

  aio::DatagramOptions client_opts;
  client_opts.remote_addr = std::make_pair(std::string("127.0.0.1"), port);
  auto [client, cp] = co_await aio::create_datagram_endpoint([] { return std::make_unique<Client>(); }, client_opts);
  client->sendto("ping");
  co_await aio::wait_for(cp->got.wait(), std::chrono::seconds(5));
  std::printf("client: got '%s' back\n", cp->reply.c_str());
  client->close();
  server->close();
  co_return cp->reply == "ping" ? 0 : 1;
}

int main() { return aio::run(amain()); }
