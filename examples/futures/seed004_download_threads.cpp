/// Seed 004, "Option 1: Multithreading for I/O", translated line by line from Python.
///
///     from concurrent.futures import ThreadPoolExecutor
///     from requests import Session
///     import threading
///
///     loc = threading.local()
///
///     def get_session():
///         if not hasattr(loc, 'session'):
///             loc.session = Session()
///         return loc.session
///
///     def download_site(url):
///         session = get_session()
///         with session.get(url) as resp:
///             print('Finished reading site')
///
///     def download_all_sites(sites):
///         with ThreadPoolExecutor(max_workers=5) as exec:
///             exec.map(download_site, sites)
///
///     sites = [
///         'https://www.jython.org',
///         'http://olympus.realpython.org/dice',
///     ] * 80
///
///     download_all_sites(sites)  # Takes 3.7 secs
///
/// There is no network in CI, so Session::get sleeps 5 ms instead of downloading.
#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <concur/futures.hpp>
#include <concur/threading.hpp>

namespace cf = concur::futures;
namespace threading = concur::threading;
using namespace std::chrono_literals;

std::atomic<int> sessions_made{0};  // how many Sessions exist: one per pool thread

/// A stand-in for requests.Session: get() pretends to download for 5 ms.
struct Response {
  std::string url;
};
struct Session {
  Session() { sessions_made.fetch_add(1, std::memory_order_relaxed); }  // relaxed: a plain counter
  Response get(const std::string& url) {
    std::this_thread::sleep_for(5ms);
    return Response{url};
  }
};

threading::local<Session> loc;

Session& get_session() {
  return loc.get();  // `if not hasattr(loc, 'session'): loc.session = Session()` happens inside get()
}

void download_site(const std::string& url) {
  Session& session = get_session();
  Response resp = session.get(url);  // with session.get(url) as resp:
  std::cout << "Finished reading site\n";
}

void download_all_sites(const std::vector<std::string>& sites) {
  cf::ThreadPoolExecutor exec(5);  // with ThreadPoolExecutor(max_workers=5) as exec:
  exec.map(download_site, sites);
}  // leaving the block shuts the pool down and waits for every download

int main() {
  std::vector<std::string> sites;
  for (int i = 0; i < 80; ++i) {  // [...] * 80
    sites.emplace_back("https://www.jython.org");
    sites.emplace_back("http://olympus.realpython.org/dice");
  }

  auto start = std::chrono::steady_clock::now();
  download_all_sites(sites);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "Downloaded " << sites.size() << " sites in " << took.count() << " s with " << sessions_made
            << " sessions\n";
  return sessions_made >= 1 && sessions_made <= 5 ? 0 : 1;
}
