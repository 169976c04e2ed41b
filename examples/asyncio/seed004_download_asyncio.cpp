/// Seed 004, "Option 2: Asyncio for I/O", translated line by line from Python.
///
///     from asyncio import create_task, gather, run
///     from aiohttp import ClientSession
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
///     sites = [
///         'https://www.jython.org',
///         'http://olympus.realpython.org/dice',
///     ] * 80
///
///     run(download_all_sites(sites))  # Takes 2.6 secs
///
/// There is no network in CI (and concur's aiohttp analogue is a later module), so
/// ClientSession::get stands in for the download with a 20 ms aio::sleep: 160 downloads overlap
/// on one thread and finish in about 20 ms, not 160 × 20 ms.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

/// A stand-in for aiohttp.ClientSession: get() pretends to download for 20 ms.
struct Response {
  std::string url;
};
struct ClientSession {
  int requests = 0;
  aio::Coro<Response> get(std::string url) {
    ++requests;
    co_await aio::sleep(20ms);  // the network round trip
    co_return Response{std::move(url)};
  }
};

aio::Coro<void> download_site(ClientSession& session, std::string url) {
  Response resp = co_await session.get(std::move(url));  // async with session.get(url) as resp:
  std::cout << "Finished reading site\n";
}

aio::Coro<int> download_all_sites(const std::vector<std::string>& sites) {
  ClientSession sess;  // async with ClientSession() as sess:
  std::vector<aio::Task<void>> tasks;
  for (const auto& url : sites) {
    aio::Task<void> t = aio::create_task(download_site(sess, url));
    tasks.push_back(t);
  }
  co_await aio::gather(std::move(tasks));
  co_return sess.requests;
}

int main() {
  std::vector<std::string> sites;
  for (int i = 0; i < 80; ++i) {  // [...] * 80
    sites.emplace_back("https://www.jython.org");
    sites.emplace_back("http://olympus.realpython.org/dice");
  }

  auto start = std::chrono::steady_clock::now();
  int requests = aio::run(download_all_sites(sites));
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "Downloaded " << requests << " sites in " << took.count() << " s on one thread\n";
  return requests == 160 && took < 1s ? 0 : 1;
}
