/// Seed 004, "Option 1: Multithreading for I/O", translated line by line from Python — with
/// real HTTP downloads (concur::http::Session, the requests analogue) from a loopback web app
/// standing in for the two sites (20 ms per request instead of the internet).
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
///     sites = ['https://www.jython.org', 'http://olympus.realpython.org/dice'] * 80
///     download_all_sites(sites)  # Takes 3.7 secs
#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "loopback_sites.hpp"

#include <concur/futures.hpp>
#include <concur/http.hpp>
#include <concur/threading.hpp>

namespace cf = concur::futures;
namespace http = concur::http;
namespace threading = concur::threading;

threading::local<http::Session> loc;  // loc = threading.local(); get_session() is loc.get()
std::atomic<std::size_t> bytes_read{0};

void download_site(const std::string& url) {
  http::Session& session = loc.get();
  http::Response resp = session.get(url);  // with session.get(url) as resp:
  resp.raise_for_status();
  bytes_read += resp.content().size();
  std::cout << "Finished reading site\n";
}

void download_all_sites(const std::vector<std::string>& sites) {
  cf::ThreadPoolExecutor exec(5);  // with ThreadPoolExecutor(max_workers=5) as exec:
  exec.map(download_site, sites);
  exec.shutdown(true);
}

int main() {
  LoopbackSites net;
  std::vector<std::string> sites;
  for (int i = 0; i < 80; ++i) {  // [...] * 80
    sites.push_back(net.jython());
    sites.push_back(net.dice());
  }
  auto start = std::chrono::steady_clock::now();
  download_all_sites(sites);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "Downloaded " << sites.size() << " sites (" << bytes_read << " bytes) in " << took.count()
            << " s with 5 threads\n";
  return bytes_read == 80 * (10 * 1024 + 1) ? 0 : 1;
}
