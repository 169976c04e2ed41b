/// Seed 004, "Option 2: Asyncio for I/O", translated line by line from Python — with real HTTP
/// downloads (concur::http::ClientSession, the aiohttp analogue) from a loopback web app
/// standing in for the two sites (20 ms per request instead of the internet).
///
///     async def download_site(session, url):
///         async with session.get(url) as resp:
///             print('Finished reading site')
///
///     async def download_all_sites(sites):
///         async with ClientSession() as sess:
///             tasks = []
///             for url in sites:
///                 t = create_task(download_site(sess, url))
///                 tasks.append(t)
///             await gather(*tasks)
///
///     sites = ['https://www.jython.org', 'http://olympus.realpython.org/dice'] * 80
///     run(download_all_sites(sites))  # Takes 2.6 secs
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "loopback_sites.hpp"

#include <concur/asyncio.hpp>
#include <concur/http.hpp>

namespace aio = concur::asyncio;
namespace http = concur::http;

aio::Coro<std::size_t> download_site(http::ClientSession& session, std::string url) {
  http::ClientResponse resp = co_await session.get(std::move(url));  // async with session.get(url) as resp:
  std::string body = co_await resp.read();
  std::cout << "Finished reading site\n";
  co_return body.size();
}

aio::Coro<std::size_t> download_all_sites(const std::vector<std::string>& sites) {
  http::ClientSession sess;  // async with ClientSession() as sess:
  std::vector<aio::Task<std::size_t>> tasks;
  for (const auto& url : sites) {
    aio::Task<std::size_t> t = aio::create_task(download_site(sess, url));
    tasks.push_back(t);
  }
  std::vector<std::size_t> sizes = co_await aio::gather(std::move(tasks));
  co_await sess.close();
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  co_return total;
}

int main() {
  LoopbackSites net;
  std::vector<std::string> sites;
  for (int i = 0; i < 80; ++i) {  // [...] * 80
    sites.push_back(net.jython());
    sites.push_back(net.dice());
  }
  auto start = std::chrono::steady_clock::now();
  std::size_t bytes = aio::run(download_all_sites(sites));
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "Downloaded " << sites.size() << " sites (" << bytes << " bytes) in " << took.count()
            << " s on one thread\n";
  return bytes == 80 * (10 * 1024 + 1) ? 0 : 1;
}
