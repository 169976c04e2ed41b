/// A TLS client, with the TLS echo server it talks to, both on loopback (asyncio + ssl).
///
/// The Python it follows:
///
///     ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
///     ssl_ctx.load_cert_chain("cert.pem", "key.pem")
///     server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ssl_ctx)
///
///     client_ctx = ssl.create_default_context()       # verifies certificates and host names
///     client_ctx.load_verify_locations("cert.pem")   # trust our self-made certificate
///     reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
///                                                    server_hostname="localhost")
///     writer.write(b"hello over TLS\n"); await writer.drain()
///     print(await reader.readline())
///
/// The certificate (for "localhost" and 127.0.0.1) is made at start with the `openssl` command
/// into a temporary directory, removed at the end.
#include <unistd.h>

#include <any>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
namespace ssl = concur::asyncio::ssl;

namespace {

std::string g_cert, g_key;

aio::Coro<void> echo(aio::StreamReader reader, aio::StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;  // the client closed (close_notify)
    writer.write("echo: " + line);
    co_await writer.drain();
  }
  writer.close();
}

aio::Coro<int> amain() {
  ssl::Context server_ctx = ssl::create_default_context(ssl::Purpose::CLIENT_AUTH);
  server_ctx.load_cert_chain(g_cert, g_key);
  // With GCC 12, options go in a variable rather than a braced list inside co_await.
  aio::StreamOptions server_options;
  server_options.ssl = server_ctx;
  aio::Server server = co_await aio::start_server(echo, "127.0.0.1", 0, server_options);

  ssl::Context client_ctx = ssl::create_default_context();
  client_ctx.load_verify_locations(g_cert);
  aio::StreamOptions client_options;
  client_options.ssl = client_ctx;
  client_options.server_hostname = "localhost";
  auto [reader, writer] = co_await aio::open_connection("127.0.0.1", server.port(), client_options);

  std::cout << "connected with " << std::any_cast<std::string>(writer.get_extra_info("version")) << ", server "
            << std::any_cast<std::string>(writer.get_extra_info("peercert")) << "\n";
  writer.write("hello over TLS\n");
  co_await writer.drain();
  std::string reply = co_await reader.readline();
  std::cout << "got: " << reply;
  writer.close();
  co_await writer.wait_closed();
  server.close();
  co_await server.wait_closed();
  co_return reply == "echo: hello over TLS\n" ? 0 : 1;
}

}  // namespace

int main() {
  char dir_template[] = "/tmp/concur-tls-example-XXXXXX";
  if (!::mkdtemp(dir_template)) return 1;
  const std::string dir = dir_template;
  g_cert = dir + "/cert.pem";
  g_key = dir + "/key.pem";
  const std::string make_cert =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      g_key + " -out " + g_cert + " 2>/dev/null";
  int rc = 1;
  if (std::system(make_cert.c_str()) == 0) {
    try {
      rc = aio::run(amain());
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
    }
  } else {
    std::cerr << "could not make a certificate with the openssl command\n";
  }
  std::filesystem::remove_all(dir);
  return rc;
}
