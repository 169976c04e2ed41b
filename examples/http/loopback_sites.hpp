#pragma once
// The two sites of seed 004 ("https://www.jython.org", about 10 KB, and
// "http://olympus.realpython.org/dice", tiny) stood in for by a concur web app on loopback, on a
// thread of its own, with a per-request delay standing in for the internet.
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <concur/asyncio.hpp>
#include <concur/http.hpp>

class LoopbackSites {
 public:
  explicit LoopbackSites(std::chrono::milliseconds delay = std::chrono::milliseconds(20)) {
    std::promise<int> port;
    auto ready = port.get_future();
    thread_ = std::thread([this, delay, &port] {
      namespace aio = concur::asyncio;
      namespace web = concur::http::web;
      aio::run([&]() -> aio::Coro<void> {
        web::Application app;
        const std::string page(10 * 1024, 'j');
        app.router().add_get("/jython", [delay, page](web::Request&) -> aio::Coro<web::Response> {
          co_await aio::sleep(delay);
          co_return web::Response::html(page);
        });
        app.router().add_get("/dice", [delay](web::Request&) -> aio::Coro<web::Response> {
          co_await aio::sleep(delay);
          co_return web::Response::text("4");
        });
        web::Site site = co_await web::start(app, "127.0.0.1", 0);
        port.set_value(site.port());
        while (!stop_.load()) co_await aio::sleep(std::chrono::milliseconds(5));
        co_await site.shutdown();
      }());
    });
    port_ = ready.get();
  }
  ~LoopbackSites() {
    stop_ = true;
    thread_.join();
  }
  LoopbackSites(const LoopbackSites&) = delete;
  LoopbackSites& operator=(const LoopbackSites&) = delete;

  [[nodiscard]] std::string jython() const { return "http://127.0.0.1:" + std::to_string(port_) + "/jython"; }
  [[nodiscard]] std::string dice() const { return "http://127.0.0.1:" + std::to_string(port_) + "/dice"; }

 private:
  std::atomic<bool> stop_{false};
  int port_ = 0;
  std::thread thread_;
};
