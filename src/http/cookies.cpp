// The client's cookie jar, HTTP dates and gzip/deflate bodies (client_internal.hpp).
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "client_internal.hpp"

namespace concur::http::detail {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  return r;
}

bool is_ip_literal(std::string_view host) {
  return host.find(':') != std::string_view::npos ||
         std::all_of(host.begin(), host.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

bool domain_match(std::string_view host, std::string_view domain) {
  if (host == domain) return true;
  return host.size() > domain.size() && host.ends_with(domain) && host[host.size() - domain.size() - 1] == '.' &&
         !is_ip_literal(host);
}

bool path_match(std::string_view req, std::string_view cookie) {
  if (req == cookie) return true;
  if (!req.starts_with(cookie)) return false;
  return cookie.ends_with('/') || req[cookie.size()] == '/';
}

std::string default_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return "/";
  auto slash = path.rfind('/');
  return slash == 0 ? "/" : std::string(path.substr(0, slash));
}

}  // namespace

void store_cookies(std::vector<Cookie>& jar, const URL& url, const Headers& headers) {
  auto now = std::chrono::system_clock::now();
  for (const std::string& line : headers.get_all("Set-Cookie")) {
    std::string_view rest = line;
    std::size_t semi = rest.find(';');
    std::string_view pair = trim(rest.substr(0, semi));
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    Cookie c;
    c.name = std::string(trim(pair.substr(0, eq)));
    c.value = std::string(trim(pair.substr(eq + 1)));
    if (c.value.size() >= 2 && c.value.front() == '"' && c.value.back() == '"')
      c.value = c.value.substr(1, c.value.size() - 2);
    c.domain = url.host;
    c.path = default_path(url.path);
    bool bad = false;
    bool max_age_seen = false;
    while (semi != std::string_view::npos) {
      rest = rest.substr(semi + 1);
      semi = rest.find(';');
      std::string_view attr = trim(rest.substr(0, semi));
      std::size_t aeq = attr.find('=');
      std::string key = lower(trim(attr.substr(0, aeq)));
      std::string_view val = aeq == std::string_view::npos ? std::string_view() : trim(attr.substr(aeq + 1));
      if (key == "domain" && !val.empty()) {
        std::string d = lower(val.front() == '.' ? val.substr(1) : val);
        if (!domain_match(url.host, d)) {
          bad = true;  // a server may not set cookies for another domain
        } else {
          c.domain = d;
          c.host_only = false;
        }
      } else if (key == "path" && !val.empty() && val.front() == '/') {
        c.path = std::string(val);
      } else if (key == "secure") {
        c.secure = true;
      } else if (key == "max-age") {
        max_age_seen = true;
        char* end = nullptr;
        std::string v(val);
        long long secs = std::strtoll(v.c_str(), &end, 10);
        if (end != v.c_str())
          c.expires = secs <= 0 ? std::chrono::system_clock::time_point{} : now + std::chrono::seconds(secs);
      } else if (key == "expires" && !max_age_seen) {
        c.expires = parse_http_date(val);
      }
    }
    if (bad) continue;
    std::erase_if(jar, [&](const Cookie& o) { return o.name == c.name && o.domain == c.domain && o.path == c.path; });
    if (c.expires && *c.expires <= now) continue;  // Max-Age=0 or a past date deletes it
    jar.push_back(std::move(c));
  }
}

std::string cookie_header(std::vector<Cookie>& jar, const URL& url) {
  auto now = std::chrono::system_clock::now();
  std::erase_if(jar, [&](const Cookie& c) { return c.expires && *c.expires <= now; });
  std::string out;
  for (const Cookie& c : jar) {
    bool host_ok = c.host_only ? url.host == c.domain : domain_match(url.host, c.domain);
    if (!host_ok || !path_match(url.path, c.path) || (c.secure && !url.is_https())) continue;
    if (!out.empty()) out += "; ";
    out += c.name + "=" + c.value;
  }
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  std::string s(trim(text));
  std::tm tm{};
  for (const char* fmt :
       {"%a, %d %b %Y %H:%M:%S", "%A, %d-%b-%y %H:%M:%S", "%a %b %d %H:%M:%S %Y", "%a, %d-%b-%Y %H:%M:%S"}) {
    tm = std::tm{};
    const char* end = ::strptime(s.c_str(), fmt, &tm);
    if (end != nullptr) return std::chrono::system_clock::from_time_t(::timegm(&tm));
  }
  return std::nullopt;
}

std::string http_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

// ---- gzip / deflate -----------------------------------------------------------------------------

BodyDecoder::BodyDecoder(std::string_view enc) {
  std::string e = lower(trim(enc));
  if (e == "gzip" || e == "x-gzip") {
    mode_ = 1;
    init(16 + MAX_WBITS);
  } else if (e == "deflate") {
    mode_ = 2;
    init(MAX_WBITS);
  }
}

void BodyDecoder::init(int window_bits) {
  if (z_ != nullptr) {
    ::inflateEnd(static_cast<z_stream*>(z_));
    delete static_cast<z_stream*>(z_);
  }
  auto* z = new z_stream{};
  if (::inflateInit2(z, window_bits) != Z_OK) {
    delete z;
    z_ = nullptr;
    throw std::runtime_error("zlib: inflateInit2 failed");
  }
  z_ = z;
}

BodyDecoder::~BodyDecoder() {
  if (z_ != nullptr) {
    ::inflateEnd(static_cast<z_stream*>(z_));
    delete static_cast<z_stream*>(z_);
  }
}

std::string BodyDecoder::decode(std::string_view data) {
  if (mode_ == 0) return std::string(data);
  auto* z = static_cast<z_stream*>(z_);
  std::string out;
  if (ended_) {
    if (!data.empty()) throw std::runtime_error("data after the end of the compressed body");
    return out;
  }
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z->avail_in = static_cast<uInt>(data.size());
  char buf[16384];
  while (z->avail_in > 0 && !ended_) {
    z->next_out = reinterpret_cast<Bytef*>(buf);
    z->avail_out = sizeof buf;
    int rc = ::inflate(z, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR && mode_ == 2 && !started_ && !tried_raw_) {
      // "deflate" is often sent as a raw deflate stream without the zlib wrapper.
      tried_raw_ = true;
      init(-MAX_WBITS);
      return decode(data);
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      throw std::runtime_error(std::string("corrupt compressed body (zlib: ") + (z->msg != nullptr ? z->msg : "error") +
                               ")");
    }
    started_ = true;
    out.append(buf, sizeof buf - z->avail_out);
    if (rc == Z_STREAM_END) ended_ = true;
    if (rc == Z_BUF_ERROR && z->avail_out != 0) break;
  }
  return out;
}

void BodyDecoder::finish() {
  if (mode_ != 0 && started_ && !ended_) throw std::runtime_error("truncated compressed body");
}

std::string gzip_compress(std::string_view data) {
  z_stream z{};
  if (::deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  std::string out;
  out.resize(::deflateBound(&z, static_cast<uLong>(data.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = ::deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  ::deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate failed");
  return out;
}

}  // namespace concur::http::detail
