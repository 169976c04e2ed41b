#include "concur/asyncio/streams.hpp"

#include <stdexcept>

#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/sleep.hpp"

namespace concur::asyncio {

namespace detail {

/// What a StreamReader, its StreamWriter and their protocol share. Loop thread only.
struct StreamState {
  explicit StreamState(std::size_t lim) : limit(lim) {}
  std::size_t limit;
  std::string buf;
  std::size_t pos = 0;  // bytes of buf already consumed
  bool eof = false;
  std::exception_ptr error;
  Event data_event;                // set when data, EOF or an error arrives
  Transport* transport = nullptr;  // valid until connection_lost
  bool read_paused = false;
  // Writer side.
  bool write_paused = false;
  Event drain_event;  // set while writing is not paused
  bool lost = false;
  std::exception_ptr lost_error;
  Event closed_event;
  bool server_side = false;  // made by start_server (start_tls needs to know)

  [[nodiscard]] std::size_t size() const noexcept { return buf.size() - pos; }
  [[nodiscard]] std::string_view view() const noexcept { return std::string_view(buf).substr(pos); }

  std::string take(std::size_t n) {
    if (pos == 0 && n == buf.size()) {  // all of it: hand the buffer over, no copy
      std::string out;
      out.swap(buf);
      maybe_resume();
      return out;
    }
    std::string out = buf.substr(pos, n);
    pos += n;
    if (pos == buf.size()) {
      buf.clear();
      pos = 0;
    } else if (pos > 64 * 1024 && pos * 2 > buf.size()) {
      buf.erase(0, pos);
      pos = 0;
    }
    maybe_resume();
    return out;
  }

  void feed(std::string_view d) {
    if (d.empty()) return;
    if (eof) throw std::logic_error("feed_data after feed_eof");
    buf.append(d);
    data_event.set();
    if (transport && !read_paused && size() > 2 * limit) {
      read_paused = true;
      transport->pause_reading();
    }
  }
  void maybe_resume() {
    if (read_paused && size() <= limit) {
      read_paused = false;
      if (transport) transport->resume_reading();
    }
  }
  void feed_eof() {
    eof = true;
    data_event.set();
  }
  void set_error(std::exception_ptr e) {
    error = std::move(e);
    data_event.set();
  }
  void check_error() const {
    if (error) std::rethrow_exception(error);
  }
  /// Waits for more data, EOF or an error (cancel-safe: consumes nothing).
  Coro<void> wait_for_data() {
    check_error();
    data_event.clear();
    if (read_paused) {  // waiting with reading paused would never end
      read_paused = false;
      if (transport) transport->resume_reading();
    }
    co_await data_event.wait();
  }
};

namespace {

class StreamProtocol final : public Protocol {
 public:
  StreamProtocol(std::shared_ptr<StreamState> s, ClientConnected cb) : s_(std::move(s)), cb_(std::move(cb)) {
    s_->drain_event.set();
  }
  void connection_made(Transport& t) override {
    s_->transport = &t;
    if (cb_) {
      std::pair<StreamReader, StreamWriter> rw = streams_of(t.shared_from_this(), s_);
      // The loop owns the task until it ends; its frame holds the only reader/writer handles.
      (void)create_task(run_client(std::move(cb_), rw.first, rw.second), "stream client");
    }
  }
  void data_received(std::string_view data) override { s_->feed(data); }
  bool eof_received() override {
    s_->feed_eof();
    return true;  // keep the writing side open (half-close), as Python's streams
  }
  void connection_lost(std::exception_ptr exc) override {
    s_->transport = nullptr;
    if (exc) {
      s_->set_error(exc);
    } else {
      s_->feed_eof();
    }
    s_->lost = true;
    s_->lost_error = exc;
    s_->drain_event.set();
    s_->closed_event.set();
  }
  void pause_writing() override {
    s_->write_paused = true;
    s_->drain_event.clear();
  }
  void resume_writing() override {
    s_->write_paused = false;
    s_->drain_event.set();
  }

 private:
  static Coro<void> run_client(ClientConnected cb, StreamReader r, StreamWriter w) {
    try {
      co_await cb(r, w);
    } catch (const CancelledError&) {
      w.close();
      throw;
    } catch (...) {
      report_unraisable("unhandled exception in a start_server client callback", std::current_exception());
      w.transport().abort();
    }
  }
  std::shared_ptr<StreamState> s_;
  ClientConnected cb_;
};

}  // namespace

ProtocolFactory stream_protocol_factory(std::shared_ptr<StreamState>* out_state, std::size_t limit) {
  return [out_state, limit]() -> std::unique_ptr<Protocol> {
    auto s = std::make_shared<StreamState>(limit);
    *out_state = s;
    return std::make_unique<StreamProtocol>(std::move(s), nullptr);
  };
}

ProtocolFactory stream_server_factory(ClientConnected cb, std::size_t limit) {
  return [cb = std::move(cb), limit]() -> std::unique_ptr<Protocol> {
    auto s = std::make_shared<StreamState>(limit);
    s->server_side = true;
    return std::make_unique<StreamProtocol>(std::move(s), cb);
  };
}

std::pair<StreamReader, StreamWriter> streams_of(const std::shared_ptr<Transport>& t,
                                                 std::shared_ptr<StreamState> state) {
  return {StreamReader(state), StreamWriter(t, state)};
}

Coro<std::pair<StreamReader, StreamWriter>> open_connection_impl(std::string host, int port, StreamOptions options) {
  std::shared_ptr<StreamState> state;
  ConnectOptions co;
  co.local_addr = options.local_addr;
  co.ssl = std::move(options.ssl);
  co.server_hostname = std::move(options.server_hostname);
  co.ssl_handshake_timeout = options.ssl_handshake_timeout;
  std::shared_ptr<Transport> t = co_await create_connection_impl(
      get_running_loop(), stream_protocol_factory(&state, options.limit), std::move(host), port, std::move(co));
  co_return streams_of(t, std::move(state));
}

Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection_impl(std::string path, StreamOptions options) {
  std::shared_ptr<StreamState> state;
  ConnectOptions co;
  co.ssl = std::move(options.ssl);
  co.server_hostname = std::move(options.server_hostname);
  co.ssl_handshake_timeout = options.ssl_handshake_timeout;
  std::shared_ptr<Transport> t = co_await create_unix_connection_impl(
      get_running_loop(), stream_protocol_factory(&state, options.limit), std::move(path), std::move(co));
  co_return streams_of(t, std::move(state));
}

}  // namespace detail

// ---- errors ---------------------------------------------------------------------------------------

IncompleteReadError::IncompleteReadError(std::string partial, std::size_t expected)
    : Error(std::to_string(partial.size()) + " bytes read on a total of " +
            (expected ? std::to_string(expected) : std::string("undefined")) + " expected bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

// ---- StreamReader ----------------------------------------------------------------------------------

StreamReader::StreamReader(std::size_t limit) : s_(std::make_shared<detail::StreamState>(limit)) {
  if (limit == 0) throw std::invalid_argument("StreamReader: limit must be positive");
}

bool StreamReader::at_eof() const noexcept { return s_->eof && s_->size() == 0; }
std::size_t StreamReader::buffered() const noexcept { return s_->size(); }
std::exception_ptr StreamReader::exception() const noexcept { return s_->error; }
void StreamReader::feed_data(std::string_view data) { s_->feed(data); }
void StreamReader::feed_eof() { s_->feed_eof(); }
void StreamReader::set_exception(std::exception_ptr e) { s_->set_error(std::move(e)); }

Coro<std::string> StreamReader::read(std::ptrdiff_t n) {
  auto s = s_;
  if (n == 0) co_return std::string();
  if (n < 0) {
    while (!s->eof) co_await s->wait_for_data();
    s->check_error();
    co_return s->take(s->size());
  }
  while (s->size() == 0 && !s->eof) co_await s->wait_for_data();
  if (s->size() == 0) s->check_error();
  co_return s->take(std::min<std::size_t>(static_cast<std::size_t>(n), s->size()));
}

Coro<std::string> StreamReader::readexactly(std::size_t n) {
  auto s = s_;
  while (s->size() < n) {
    if (s->eof) {
      s->check_error();
      throw IncompleteReadError(s->take(s->size()), n);
    }
    co_await s->wait_for_data();
  }
  co_return s->take(n);
}

Coro<std::string> StreamReader::readuntil(std::string separator) {
  if (separator.empty()) throw std::invalid_argument("readuntil: the separator must not be empty");
  auto s = s_;
  std::size_t searched = 0;  // no separator starts before this offset
  for (;;) {
    std::string_view v = s->view();
    std::size_t at = v.find(separator, searched);
    if (at != std::string_view::npos) {
      if (at > s->limit) throw LimitOverrunError("separator is found, but chunk is longer than the limit", at);
      co_return s->take(at + separator.size());
    }
    if (v.size() >= separator.size()) searched = v.size() - separator.size() + 1;
    if (v.size() > s->limit) throw LimitOverrunError("separator is not found, and chunk exceeds the limit", v.size());
    if (s->eof) {
      s->check_error();
      throw IncompleteReadError(s->take(s->size()), 0);
    }
    co_await s->wait_for_data();
  }
}

Coro<std::string> StreamReader::readline() {
  auto s = s_;
  try {
    co_return co_await readuntil("\n");
  } catch (const IncompleteReadError& e) {
    co_return e.partial();
  } catch (const LimitOverrunError& e) {
    // As Python: drop the over-long line (up to its separator when it is buffered).
    std::string_view v = s->view();
    std::size_t at = v.find('\n');
    s->take(at == std::string_view::npos ? v.size() : at + 1);
    throw;
  }
}

// ---- StreamWriter ----------------------------------------------------------------------------------

Coro<void> StreamWriter::drain() {
  auto s = s_;
  if (s->error && !s->lost) std::rethrow_exception(s->error);
  if (t_->is_closing()) {
    co_await sleep(std::chrono::seconds(0));  // let connection_lost run (Python does the same)
  }
  if (s->lost) {
    if (s->lost_error) std::rethrow_exception(s->lost_error);
    if (t_->is_closing()) throw ConnectionResetError(0, "Connection lost");
  }
  while (s->write_paused && !s->lost) co_await s->drain_event.wait();
  if (s->lost) {
    if (s->lost_error) std::rethrow_exception(s->lost_error);
    throw ConnectionResetError(0, "Connection lost");
  }
}

Coro<void> StreamWriter::start_tls(ssl::Context ctx, StartTlsOptions options) {
  auto s = s_;
  options.server_side = s->server_side;
  Protocol* p = detail::protocol_of(*t_);
  if (!p) throw std::logic_error("StreamWriter::start_tls: the transport has no protocol");
  std::shared_ptr<Transport> tls = co_await asyncio::start_tls(t_, *p, std::move(ctx), std::move(options));
  t_ = tls;
  if (!s->lost) s->transport = tls.get();
}

Coro<void> StreamWriter::wait_closed() {
  auto s = s_;
  co_await s->closed_event.wait();
  if (s->lost_error) std::rethrow_exception(s->lost_error);
}

}  // namespace concur::asyncio
