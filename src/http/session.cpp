// http::Session, the blocking client (include/concur/http/session.hpp): a ClientSession
// driven by a private event loop on the calling thread.
#include "concur/http/session.hpp"

#include "concur/asyncio/loop.hpp"
#include "concur/asyncio/sleep.hpp"

namespace concur::http {

namespace aio = concur::asyncio;

namespace {

Coro<Response> fetch(ClientSession session, std::string method, std::string url, RequestOptions options) {
  ClientResponse r = co_await session.request(std::move(method), std::move(url), std::move(options));
  std::string body = co_await r.read();
  auto convert = [](ClientResponse& from, std::string b) {
    Response out;
    out.status_code = from.status;
    out.reason = std::move(from.reason);
    out.headers = std::move(from.headers);
    out.url = std::move(from.url);
    out.method = std::move(from.method);
    return std::make_pair(std::move(out), std::move(b));
  };
  auto [resp, bytes] = convert(r, std::move(body));
  for (ClientResponse& h : r.history) resp.history.push_back(convert(h, std::string()).first);
  co_return Response(std::move(resp)).with_body(std::move(bytes));
}

Coro<void> close_session(ClientSession session) {
  co_await session.close();
  co_await aio::sleep(std::chrono::milliseconds(0));  // let the closed transports finish
}

}  // namespace

nlohmann::json Response::json() const {
  try {
    return nlohmann::json::parse(body_);
  } catch (const nlohmann::json::exception& e) {
    throw ClientPayloadError(std::string("the body of ") + url.str() + " is not JSON: " + e.what(), url.str());
  }
}

void Response::raise_for_status() const {
  if (status_code >= 400) {
    throw ClientResponseError(std::to_string(status_code) + " " + reason + " for url: " + url.str(), url.str(),
                              status_code);
  }
}

struct Session::Impl {
  std::unique_ptr<aio::EventLoop> loop;
  std::optional<ClientSession> session;

  explicit Impl(ClientSessionOptions o)
      : loop(std::make_unique<aio::EventLoop>()), session(std::in_place, std::move(o)) {}
  ~Impl() { shut(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void shut() noexcept {
    if (!loop) return;
    try {
      if (session) loop->run_until_complete(close_session(*session));
    } catch (...) {  // best effort: the loop's close releases what is left
    }
    session.reset();
    try {
      loop->close();
    } catch (...) {
    }
    loop.reset();
  }
};

Session::Session() : Session(ClientSessionOptions{}) {}
Session::Session(ClientSessionOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Response Session::request(const std::string& method, const std::string& url, RequestOptions options) {
  if (!impl_ || !impl_->loop) throw ClientError("the session is closed: " + url, url);
  return impl_->loop->run_until_complete(fetch(*impl_->session, method, url, std::move(options)));
}

void Session::close() {
  if (impl_) impl_->shut();
}

std::size_t Session::connections_opened() const {
  return impl_ && impl_->session ? impl_->session->connections_opened() : 0;
}

}  // namespace concur::http
